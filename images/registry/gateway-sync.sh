#!/bin/bash
# Keeps the gateway's HAProxy backend equal to what the registry holds: every key under
# $GATEWAY_PREFIX (`<prefix><instance>` = `ip:port`) is a server named after the instance.
# A new key becomes a server (`add server`, then `enable health` and `enable server`); a key that
# is gone (its lease expired) puts the server in maintenance (`set server ... state maint`), and
# a key that comes back makes it ready again. It reconciles on every watch event from etcd, and
# at least every $GATEWAY_RESYNC seconds, against HAProxy's own `show servers state`, so a
# restarted HAProxy is filled again. Every change is logged as `Server <backend>/<name> is
# UP|DOWN`, the line the harness's log watcher takes ejection instants from (Docker stamps it).
set -u
reg=${GATEWAY_REGISTRY:?}
prefix=${GATEWAY_PREFIX:?}
backend=${GATEWAY_BACKEND:-app}
args=${GATEWAY_SERVER_ARGS:-check}
resync=${GATEWAY_RESYNC:-1}
sock=/run/haproxy/admin.sock

api() { echo "$*" | socat -t 2 stdio "unix-connect:$sock" 2>/dev/null; }

reconcile() {
  local listing have key value name addr admin
  listing=$(etcdctl --endpoints "$reg" --dial-timeout=1s --command-timeout=2s get --prefix "$prefix") || return 1
  have=$(api "show servers state $backend") || return 1
  declare -A want=() addrs=() maint=()
  while read -r key && read -r value; do
    [ -n "$key" ] && want[${key#"$prefix"}]=$value
  done <<<"$listing"
  # be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state ... srv_port is field 19
  while read -r _ _ _ name addr _ admin _ _ _ _ _ _ _ _ _ _ _ port _; do
    [[ $name =~ ^[A-Za-z0-9._-]+$ ]] || continue
    addrs[$name]=$addr:$port
    maint[$name]=$((admin & 1))
  done < <(grep -v '^#' <<<"$have" | tail -n +2)
  for name in "${!want[@]}"; do
    [[ $name =~ ^[A-Za-z0-9._-]+$ ]] || continue
    value=${want[$name]}
    if [ -z "${addrs[$name]:-}" ]; then
      api "add server $backend/$name $value $args" >/dev/null
      api "enable health $backend/$name" >/dev/null
      api "enable server $backend/$name" >/dev/null
      echo "gateway-sync: Server $backend/$name is UP (registered at $value)"
    elif [ "${maint[$name]}" = 1 ]; then
      [ "${addrs[$name]}" != "$value" ] && api "set server $backend/$name addr ${value%:*} port ${value##*:}" >/dev/null
      api "set server $backend/$name state ready" >/dev/null
      echo "gateway-sync: Server $backend/$name is UP (registered again at $value)"
    elif [ "${addrs[$name]}" != "$value" ]; then
      api "set server $backend/$name addr ${value%:*} port ${value##*:}" >/dev/null
    fi
  done
  for name in "${!addrs[@]}"; do
    if [ -z "${want[$name]:-}" ] && [ "${maint[$name]}" = 0 ]; then
      api "set server $backend/$name state maint" >/dev/null
      echo "gateway-sync: Server $backend/$name is DOWN (deregistered: its key left the registry)"
    fi
  done
}

until [ -S "$sock" ]; do sleep 0.1; done
watch_registry() {
  exec 3< <(exec etcdctl --endpoints "$reg" --dial-timeout=1s watch --prefix "$prefix" 2>/dev/null)
}
watch_registry
while :; do
  reconcile
  if read -r -t "$resync" _ <&3; then
    while read -r -t 0.02 _ <&3; do :; done # one reconcile per burst of events
  elif [ $? -le 128 ]; then
    sleep 0.2 # the watch ended (registry unreachable): start it again
    exec 3<&-
    watch_registry
  fi
done
