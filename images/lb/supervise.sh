#!/bin/bash
# PID 1 of the LB container. It starts what is configured and stays up when a child dies, so a
# fault can kill the LB process alone (Keepalived's tracking script must then notice) without
# killing the container. SIGTERM stops everything.
set -u
mkdir -p /run/haproxy /var/log/harness
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait "${pids[@]}"; exit 0' TERM INT
if [ -f /etc/haproxy/haproxy.cfg ]; then
  haproxy -W -db -f /etc/haproxy/haproxy.cfg &
  pids+=($!)
fi
if [ -f /etc/harness/nginx-lb ]; then
  nginx -g 'daemon off;' &
  pids+=($!)
  prometheus-nginx-exporter -web.listen-address=:9113 -nginx.scrape-uri=http://127.0.0.1:8080/stub_status &
  pids+=($!)
  if [ -f /etc/harness/nginx-check ]; then  # the nginx-lb's active health checks
    /usr/local/bin/nginx-upstreams.sh check &
    pids+=($!)
  fi
fi
if [ -f /etc/keepalived/keepalived.conf ]; then
  # After a SIGKILL the pidfiles stay; a reused PID would make Keepalived refuse to start.
  rm -f /run/keepalived.pid /run/vrrp.pid /run/checkers.pid
  keepalived --dont-fork --log-console --log-detail -f /etc/keepalived/keepalived.conf &
  pids+=($!)
fi
touch /run/harness-started
while :; do sleep 3600 & wait $!; done
