#!/bin/bash
# PID 1 of a web node: PHP-FPM (foreground) and Nginx. Stays up when one of them dies so that a
# process_kill fault hits only that process; SIGTERM stops both.
set -u
mkdir -p /run/php /var/log/harness
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait; exit 0' TERM INT
php-fpm8.2 --nodaemonize --fpm-config /etc/php/8.2/fpm/php-fpm.conf &
pids+=($!)
nginx -g 'daemon off;' &
pids+=($!)
touch /run/harness-started
while :; do sleep 3600 & wait $!; done
