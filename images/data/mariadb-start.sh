#!/bin/bash
# MariaDB with the app's schema. Debian's package already initialised the data directory;
# the app user gets the run's generated password. /run/harness-ready marks the end of init.
# Replication (DB_SERVER_ID set): GTID, binlog on every instance (any of them can become the
# primary); DB_PRIMARY_HOST set makes this instance a read-only replica of it. DB_REPL_MODE
# semi_sync turns on MariaDB's built-in semi-synchronous replication on both sides.
# With /etc/keepalived/keepalived.conf, Keepalived carries the database VIP (started on a replica
# only once it replicates, so a late primary is never mistaken for a dead one).
set -eu
mkdir -p /run/mysqld /var/log/harness && chown mysql:mysql /run/mysqld
repl=()
if [ -n "${DB_SERVER_ID:-}" ]; then
  repl+=(--server-id="$DB_SERVER_ID" --log-bin=mysql-bin --binlog-format=ROW --log-slave-updates=ON
         --gtid-strict-mode=ON --sync-binlog=1 --slave-net-timeout=5)
  if [ "${DB_REPL_MODE:-async}" = semi_sync ]; then
    repl+=(--rpl-semi-sync-master-enabled=ON --rpl-semi-sync-slave-enabled=ON
           --rpl-semi-sync-master-wait-point="${DB_SEMI_SYNC_WAIT_POINT:-AFTER_SYNC}"
           --rpl-semi-sync-master-timeout="${DB_SEMI_SYNC_TIMEOUT_MS:-10000}")
  fi
  [ -n "${DB_PRIMARY_HOST:-}" ] && repl+=(--read-only=ON)
fi
mysqld --user=mysql --bind-address=0.0.0.0 --skip-name-resolve --innodb-flush-log-at-trx-commit=1 "${repl[@]}" &
pid=$!
trap 'kill $pid; wait $pid; exit 0' TERM INT
for _ in $(seq 100); do mysqladmin --silent ping >/dev/null 2>&1 && break; sleep 0.2; done
# Local setup stays out of the binlog: every instance makes the same, and replicas start from
# the primary's first transaction.
mysql <<SQL
SET sql_log_bin=0;
CREATE DATABASE IF NOT EXISTS ${DB_NAME:-app};
CREATE USER IF NOT EXISTS '${DB_USER:-app}'@'%' IDENTIFIED BY '${DB_PASSWORD}';
GRANT ALL ON ${DB_NAME:-app}.* TO '${DB_USER:-app}'@'%';
GRANT REPLICATION CLIENT, SLAVE MONITOR ON *.* TO '${DB_USER:-app}'@'%';
CREATE USER IF NOT EXISTS 'repl'@'%' IDENTIFIED BY '${DB_PASSWORD}';
GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%';
CREATE TABLE IF NOT EXISTS ${DB_NAME:-app}.orders (
  id VARCHAR(64) PRIMARY KEY, item VARCHAR(255), node VARCHAR(64),
  created_at TIMESTAMP(3) DEFAULT CURRENT_TIMESTAMP(3)) ENGINE=InnoDB;
CREATE DATABASE IF NOT EXISTS heartbeat;
CREATE TABLE IF NOT EXISTS heartbeat.heartbeat (
  server_id INT UNSIGNED PRIMARY KEY, ts DATETIME(6) NOT NULL) ENGINE=InnoDB;
GRANT SELECT ON heartbeat.* TO '${DB_USER:-app}'@'%';
FLUSH PRIVILEGES;
SQL
if [ -n "${DB_PRIMARY_HOST:-}" ]; then
  mysql <<SQL
CHANGE MASTER TO MASTER_HOST='${DB_PRIMARY_HOST}', MASTER_PORT=${DB_PRIMARY_PORT:-3306},
  MASTER_USER='repl', MASTER_PASSWORD='${DB_PASSWORD}', MASTER_USE_GTID=slave_pos,
  MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=1;
START SLAVE;
SQL
fi
cat > /run/exporter.cnf <<CNF
[client]
user=${DB_USER:-app}
password=${DB_PASSWORD}
host=127.0.0.1
CNF
prometheus-mysqld-exporter --config.my-cnf=/run/exporter.cnf --web.listen-address=:9104 \
  --collect.heartbeat >/var/log/mysqld-exporter.log 2>&1 &
if [ -n "${DB_SERVER_ID:-}" ]; then
  # The replication-lag heartbeat: whoever is primary (read_only off) rewrites one row 100 ms
  # after the previous write returned (one at a time: concurrent writes of one row would queue
  # behind each other's semi-sync wait and store stale times); a replica applies it, and the
  # exporter reads now - ts on every instance. Row 0 is shared, so a promoted replica carries on
  # the same series.
  beat="INSERT INTO heartbeat.heartbeat (server_id, ts) SELECT 0, NOW(6) FROM DUAL
        WHERE @@global.read_only = 0 ON DUPLICATE KEY UPDATE ts = NOW(6)"
  # The first primary starts beating once a replica is attached: a semi-sync commit without one
  # waits out the whole timeout, and the heartbeat would start the run seconds stale.
  (
    if [ -z "${DB_PRIMARY_HOST:-}" ]; then
      until [ -n "$(mysql -N -e 'SHOW SLAVE HOSTS')" ]; do sleep 0.2; done
    fi
    while :; do timeout 5 mysql -e "$beat" >/dev/null 2>&1; sleep 0.1; done
  ) &
fi
if [ -f /etc/keepalived/keepalived.conf ]; then
  (
    if [ -n "${DB_PRIMARY_HOST:-}" ]; then
      until mysql -e 'SHOW SLAVE STATUS\G' | grep -q 'Slave_IO_Running: Yes'; do sleep 0.5; done
    fi
    rm -f /run/keepalived.pid /run/vrrp.pid /run/checkers.pid
    exec keepalived --dont-fork --log-console --log-detail -f /etc/keepalived/keepalived.conf \
      >/var/log/harness/keepalived-daemon.log 2>&1
  ) &
fi
touch /run/harness-ready
wait $pid
