#!/bin/bash
# PID 1 of a gateway: HAProxy (backend `app` starts empty) and gateway-sync.sh, which fills it
# from the registry through HAProxy's runtime API. Stays up when a child dies (process_kill).
set -u
mkdir -p /run/haproxy
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait "${pids[@]}"; exit 0' TERM INT
haproxy -W -db -f /etc/haproxy/haproxy.cfg &
pids+=($!)
/usr/local/bin/gateway-sync.sh &
pids+=($!)
touch /run/harness-started
while :; do sleep 3600 & wait $!; done
