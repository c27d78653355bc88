#!/bin/sh
# Keepalived calls this on every state change: TYPE NAME STATE PRIORITY.
# One line per transition, with a wall-clock timestamp (read back by the harness's watchers);
# on a database instance that becomes MASTER, the replica is promoted (db-promote.sh).
# The promotion is the one pluggable step: a topology replaces it with its own script through
# `config: {/usr/local/bin/db-promote.sh: my-promote.sh}` (run with sh, so it needs no +x).
mkdir -p /var/log/harness
echo "$(date +%s.%N) $1 $2 $3 $4" >> /var/log/harness/keepalived.log
if [ "$3" = MASTER ] && [ -f /usr/local/bin/db-promote.sh ] && pgrep -x mysqld >/dev/null; then
  sh /usr/local/bin/db-promote.sh >> /var/log/harness/promote.log 2>&1
fi
exit 0
