#!/bin/bash
# Registration sidecar of a web node behind a gateway: puts HARNESS_REGISTRY_KEY =
# HARNESS_REGISTRY_VALUE (ip:port) into the registry (etcd's v3 JSON gateway at
# HARNESS_REGISTRY) under a lease of HARNESS_REGISTRY_TTL seconds, and renews the lease every
# HARNESS_REGISTRY_HEARTBEAT seconds. When a renewal finds the lease gone (it expired while this
# process was frozen, or the registry restarted), it registers again with a new lease.
# Its PID is in /run/harness-register.pid: the heartbeat_freeze fault stops and continues it.
set -u
url=${HARNESS_REGISTRY:?}
ttl=${HARNESS_REGISTRY_TTL:-3}
beat=${HARNESS_REGISTRY_HEARTBEAT:-1}
key=$(printf %s "${HARNESS_REGISTRY_KEY:?}" | base64 -w0)
value=$(printf %s "${HARNESS_REGISTRY_VALUE:?}" | base64 -w0)
echo $$ >/run/harness-register.pid

post() { curl -sS --fail -m 2 -X POST "$url/v3/$1" -d "$2" 2>/dev/null; }

lease=""
while :; do
  if [ -z "$lease" ]; then
    lease=$(post lease/grant "{\"TTL\":$ttl}" | grep -o '"ID":"[0-9]*"' | cut -d'"' -f4)
    if [ -n "$lease" ] && post kv/put "{\"key\":\"$key\",\"value\":\"$value\",\"lease\":\"$lease\"}" >/dev/null; then
      echo "register: $HARNESS_REGISTRY_KEY = $HARNESS_REGISTRY_VALUE (lease $lease, ttl ${ttl}s)"
    else
      lease=""
    fi
  elif resp=$(post lease/keepalive "{\"ID\":\"$lease\"}"); then
    if ! grep -q '"TTL":"[1-9]' <<<"$resp"; then
      echo "register: lease $lease is gone from the registry, registering again"
      lease=""
      continue
    fi
  fi
  sleep "$beat"
done
