#!/bin/bash
# PID 1 of a registry: a one-member etcd, and a watch on the services prefix that prints every
# registration (PUT) and deregistration (DELETE: a lease expired or was revoked) as it happens,
# so Docker's timestamp on that line is the registry's own deregistration instant.
set -u
prefix=${REGISTRY_PREFIX:-/harness/services/}
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait "${pids[@]}"; exit 0' TERM INT
etcd --name registry --data-dir /var/lib/harness-etcd \
  --listen-client-urls http://0.0.0.0:2379 --advertise-client-urls "http://${REGISTRY_IP:-127.0.0.1}:2379" \
  --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
  --initial-cluster registry=http://127.0.0.1:2380 --logger zap --log-level warn &
pids+=($!)
(
  # etcdctl's simple watch output is three lines per event: type, key, value (empty on DELETE).
  while :; do
    etcdctl --endpoints 127.0.0.1:2379 watch --prefix "$prefix" 2>/dev/null |
      while read -r type && read -r key && read -r value; do
        echo "registry: $type $key $value"
      done
    sleep 0.2
  done
) &
pids+=($!)
touch /run/harness-started
while :; do sleep 3600 & wait $!; done
