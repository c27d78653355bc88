#!/bin/bash
# Redis for PHP sessions: no persistence, password from the run's generated secret.
# The exporter (Debian's prometheus-redis-exporter) serves :9121 beside it.
# REDIS_MASTER_HOST makes this instance a replica; REDIS_SENTINEL_MASTER starts a Sentinel beside
# it (Debian's redis-sentinel) watching that master; /etc/keepalived/keepalived.conf starts
# Keepalived, whose tracking script (redis-is-master.sh) keeps the VIP on the master.
set -u
mkdir -p /var/log/harness
printf '%s' "${REDIS_PASSWORD:-}" > /run/redis-password && chmod 600 /run/redis-password
REDIS_ADDR=redis://127.0.0.1:6379 REDIS_PASSWORD="${REDIS_PASSWORD:-}" \
  prometheus-redis-exporter -web.listen-address :9121 >/var/log/harness/redis-exporter.log 2>&1 &
args=(--bind 0.0.0.0 --port 6379 --protected-mode no --save '' --appendonly no)
[ -n "${REDIS_PASSWORD:-}" ] && args+=(--requirepass "$REDIS_PASSWORD" --masterauth "$REDIS_PASSWORD")
[ -n "${REDIS_ANNOUNCE_IP:-}" ] && args+=(--replica-announce-ip "$REDIS_ANNOUNCE_IP")
[ -n "${REDIS_MASTER_HOST:-}" ] && args+=(--replicaof "$REDIS_MASTER_HOST" 6379)
if [ -n "${REDIS_SENTINEL_MASTER:-}" ]; then
  cat > /run/sentinel.conf <<CONF
port 26379
bind 0.0.0.0
protected-mode no
sentinel announce-ip ${REDIS_ANNOUNCE_IP}
sentinel monitor harness ${REDIS_SENTINEL_MASTER} 6379 ${REDIS_SENTINEL_QUORUM}
sentinel auth-pass harness ${REDIS_PASSWORD}
sentinel down-after-milliseconds harness ${REDIS_SENTINEL_DOWN_AFTER_MS}
sentinel failover-timeout harness ${REDIS_SENTINEL_FAILOVER_TIMEOUT_MS}
sentinel parallel-syncs harness 1
CONF
  redis-sentinel /run/sentinel.conf >/var/log/harness/sentinel.log 2>&1 &
  # Sentinel's view of the master (redis_sentinel_master_status{master_address}, ok sentinels
  # and replicas) for Prometheus: the same exporter, pointed at the Sentinel (no password).
  env -u REDIS_PASSWORD REDIS_ADDR=redis://127.0.0.1:26379 \
    prometheus-redis-exporter -web.listen-address :9355 \
    >/var/log/harness/sentinel-exporter.log 2>&1 &
fi
if [ -f /etc/keepalived/keepalived.conf ]; then
  rm -f /run/keepalived.pid /run/vrrp.pid /run/checkers.pid
  keepalived --dont-fork --log-console --log-detail -f /etc/keepalived/keepalived.conf \
    >/var/log/harness/keepalived-daemon.log 2>&1 &
fi
exec redis-server "${args[@]}"
