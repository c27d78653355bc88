#!/bin/bash
# MariaDB with the app's schema. Debian's package already initialised the data directory;
# the app user gets the run's generated password. /run/harness-ready marks the end of init.
set -eu
mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
mysqld --user=mysql --bind-address=0.0.0.0 --skip-name-resolve --innodb-flush-log-at-trx-commit=1 &
pid=$!
trap 'kill $pid; wait $pid; exit 0' TERM INT
for _ in $(seq 100); do mysqladmin --silent ping >/dev/null 2>&1 && break; sleep 0.2; done
mysql <<SQL
CREATE DATABASE IF NOT EXISTS ${DB_NAME:-app};
CREATE USER IF NOT EXISTS '${DB_USER:-app}'@'%' IDENTIFIED BY '${DB_PASSWORD}';
GRANT ALL ON ${DB_NAME:-app}.* TO '${DB_USER:-app}'@'%';
CREATE TABLE IF NOT EXISTS ${DB_NAME:-app}.orders (
  id VARCHAR(64) PRIMARY KEY, item VARCHAR(255), node VARCHAR(64),
  created_at TIMESTAMP(3) DEFAULT CURRENT_TIMESTAMP(3)) ENGINE=InnoDB;
FLUSH PRIVILEGES;
SQL
cat > /run/exporter.cnf <<CNF
[client]
user=${DB_USER:-app}
password=${DB_PASSWORD}
host=127.0.0.1
CNF
prometheus-mysqld-exporter --config.my-cnf=/run/exporter.cnf --web.listen-address=:9104 >/var/log/mysqld-exporter.log 2>&1 &
touch /run/harness-ready
wait $pid
