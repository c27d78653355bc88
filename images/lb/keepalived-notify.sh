#!/bin/sh
# Keepalived calls this on every state change: TYPE NAME STATE PRIORITY.
# One line per transition, with a wall-clock timestamp, read back by the harness's watchers.
mkdir -p /var/log/harness
echo "$(date +%s.%N) $1 $2 $3 $4" >> /var/log/harness/keepalived.log
