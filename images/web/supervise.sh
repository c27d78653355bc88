#!/bin/bash
# PID 1 of a web node: PHP-FPM (foreground) and Nginx. Stays up when one of them dies so that a
# process_kill fault hits only that process; SIGTERM stops both. With the argument `php-fpm`
# it runs PHP-FPM alone (the php-fpm kind: a bare FastCGI pool behind an Nginx LB).
set -u
mkdir -p /run/php /var/log/harness
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait "${pids[@]}"; exit 0' TERM INT
php-fpm8.2 --nodaemonize --fpm-config /etc/php/8.2/fpm/php-fpm.conf &
pids+=($!)
if [ "${1:-}" != "php-fpm" ]; then
  nginx -g 'daemon off;' &
  pids+=($!)
fi
# Behind a gateway: register in the service registry and keep the lease alive (register.sh).
if [ -n "${HARNESS_REGISTRY:-}" ]; then
  /usr/local/bin/register.sh &
  pids+=($!)
fi
touch /run/harness-started
while :; do sleep 3600 & wait $!; done
