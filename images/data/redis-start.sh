#!/bin/sh
# Redis for PHP sessions: no persistence, password from the run's generated secret.
# The exporter (Debian's prometheus-redis-exporter) serves :9121 beside it.
REDIS_ADDR=redis://127.0.0.1:6379 prometheus-redis-exporter -web.listen-address :9121 &
exec redis-server --bind 0.0.0.0 --port 6379 --protected-mode no --save '' --appendonly no \
  ${REDIS_PASSWORD:+--requirepass "$REDIS_PASSWORD"}
