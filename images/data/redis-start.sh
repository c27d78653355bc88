#!/bin/sh
# Redis for PHP sessions: no persistence, password from the run's generated secret.
exec redis-server --bind 0.0.0.0 --port 6379 --protected-mode no --save '' --appendonly no \
  ${REDIS_PASSWORD:+--requirepass "$REDIS_PASSWORD"}
