#!/bin/sh
# The key the test generated is the only way in (AUTHORIZED_KEY); host keys are made per
# container. nginx answers /health with the host's name; sshd stays in the foreground.
set -e
printf '%s\n' "$AUTHORIZED_KEY" > /root/.ssh/authorized_keys
chmod 600 /root/.ssh/authorized_keys
ssh-keygen -A >/dev/null
cat > /etc/nginx/sites-enabled/default <<CONF
server {
    listen 80 default_server;
    location /health { return 200 "ok $(hostname)\n"; }
}
CONF
nginx
exec /usr/sbin/sshd -D -e -o PasswordAuthentication=no -o PermitRootLogin=prohibit-password
