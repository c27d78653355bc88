#!/bin/bash
# Promote this MariaDB replica to primary (Keepalived's notify on MASTER): stop fetching from
# the old primary, apply everything already received (the relay log: with semi-sync AFTER_SYNC
# it holds every acknowledged commit), forget the old primary, then accept writes.
# On an instance that replicates from nobody (the first primary) it only makes sure writes go.
set -u
say() { echo "$(date +%s.%N) $*"; }
if [ -z "$(mysql -N -e 'SHOW SLAVE STATUS')" ]; then
  say "no replication configured: primary already"
  mysql -e "SET GLOBAL read_only=OFF"
  exit 0
fi
say "promoting"
mysql -e "STOP SLAVE IO_THREAD"
received=$(mysql -e 'SHOW SLAVE STATUS\G' | awk '/ Gtid_IO_Pos:/ {print $2}')
say "received up to '${received}', applying the relay log"
if [ -n "$received" ]; then
  mysql -N -e "SELECT MASTER_GTID_WAIT('${received}', 60)"
fi
mysql <<SQL
STOP SLAVE;
RESET SLAVE ALL;
SET GLOBAL rpl_semi_sync_master_enabled=OFF;
SET GLOBAL read_only=OFF;
SQL
say "primary now (gtid_current_pos $(mysql -N -e 'SELECT @@gtid_current_pos'))"
touch /run/harness-promoted
