#!/bin/bash
# Nginx's upstream servers as the harness wants them now. Open-source Nginx has no active health
# checks, so this script is one, and the only thing that rewrites the upstream's server lines:
#   nginx-upstreams.sh check            poll each backend of /etc/harness/nginx-check every
#                                       `inter`; `fall` failures in a row mark it `down`, `rise`
#                                       successes bring it back (HAProxy's semantics)
#   nginx-upstreams.sh admin DOWN W     a deploy's wishes (harness/chaos/lbctl.py): the IPs in
#                                       DOWN taken out, "ip=weight ..." in W
#   nginx-upstreams.sh restore          the deploy's wishes forgotten ("unchanged" if none)
# Each change renders the stable config (the one the run started with) with `down`/`weight=` on
# the server lines, then `nginx -t` and a graceful reload, under one lock. Once the new workers
# run it logs `nginx-check: Server app/<instance> is DOWN|UP` (the nginx-lb kind's LogLines):
# every server held down again after each reload, since the watchers take Nginx's `start worker
# processes` to mean every server is fresh.
set -u
CONF=${NGINX_CONF:-/etc/nginx/nginx.conf}
STABLE=$CONF.harness-stable
STATE=${NGINX_STATE:-/run/harness/nginx}
CHECKS=${NGINX_CHECKS:-/etc/harness/nginx-check}
RELOAD=${NGINX_RELOAD:-nginx -t -q && nginx -s reload}
WORKERS=${NGINX_WORKERS:-pgrep -fx 'nginx: worker process'}  # the serving workers' PIDs
mkdir -p "$STATE/down"

say() { echo "nginx-check: $*" >&2; }
workers() { eval "$WORKERS" | sort | tr '\n' ' '; }

render() {  # stable config -> config with the down set and weights applied
  local down weights
  down=$(cat "$STATE"/admin.down "$STATE"/down/* 2>/dev/null | tr '\n' ' ')
  weights=$(cat "$STATE/admin.weights" 2>/dev/null)
  awk -v down=" $down " -v weights=" $weights " '
    BEGIN {
      n = split(down, a, " "); for (i = 1; i <= n; i++) d[a[i]] = 1
      n = split(weights, a, " "); for (i = 1; i <= n; i++) { split(a[i], kv, "="); w[kv[1]] = kv[2] }
    }
    $1 == "server" && $2 ~ /^[0-9.]+(:[0-9]+)?;?$/ && index($0, ";") {
      ip = $2; sub(/[:;].*/, "", ip)
      semi = index($0, ";"); head = substr($0, 1, semi - 1); tail = substr($0, semi)
      if (ip in w) { gsub(/[ \t]+weight=[0-9]+/, "", head); head = head " weight=" w[ip] }
      if (ip in d) head = head " down"
      print head tail; next
    }
    { print }' "$STABLE"
}

apply() {  # [instance ...]: those are UP again; call under the lock
  local before t
  [ -f "$STABLE" ] || cp -p "$CONF" "$STABLE"
  render > "$CONF.new" && mv "$CONF.new" "$CONF" || return 1
  before=$(workers)
  eval "$RELOAD" || return 1
  for t in $(seq 40); do  # the master logged `start worker processes` before forking them
    [ -z "$before" ] || [ "$(workers)" != "$before" ] && break
    sleep 0.05
  done
  for name in "$@"; do say "Server app/$name is UP"; done
  for f in "$STATE"/down/*; do [ -e "$f" ] && say "Server app/${f##*/} is DOWN"; done
  return 0
}

locked() { ( flock 9; "$@" ) 9>"$STATE/lock"; }

probe() {  # ip port: one check
  curl -fsS -o /dev/null --max-time "$TIMEOUT" "http://$1:$2$CHECK_PATH" 2>/dev/null
}

check_one() {  # instance ip port: this server's checks, for as long as the container runs
  local name=$1 ip=$2 port=$3 fails=0 oks=0 state=UP
  while :; do
    if probe "$ip" "$port"; then fails=0; oks=$((oks + 1)); else oks=0; fails=$((fails + 1)); fi
    if [ $state = UP ] && [ $fails -ge "$FALL" ]; then
      state=DOWN
      echo "$ip" > "$STATE/down/$name"
      locked apply || say "reload failed: $name stays in"
    elif [ $state = DOWN ] && [ $oks -ge "$RISE" ]; then
      state=UP
      rm -f "$STATE/down/$name"
      locked apply "$name" || say "reload failed: $name stays out"
    fi
    sleep "$INTER"
  done
}

case "${1:-}" in
  check)
    read -r CHECK_PATH INTER TIMEOUT FALL RISE < "$CHECKS"
    rm -f "$STATE"/down/*
    tail -n +2 "$CHECKS" | while read -r name ip port; do check_one "$name" "$ip" "$port" & done
    master=""
    while :; do  # a restarted Nginx starts from the config on disk: say again what is down
      now=$(cat /run/nginx.pid 2>/dev/null)
      if [ -n "$master" ] && [ "$now" != "$master" ]; then locked apply; fi
      master=$now
      sleep 1
    done
    ;;
  admin)
    printf '%s\n' ${2:-} > "$STATE/admin.down"
    printf '%s\n' "${3:-}" > "$STATE/admin.weights"
    locked apply
    ;;
  restore)
    if [ ! -f "$STABLE" ]; then echo unchanged; exit 0; fi
    rm -f "$STATE/admin.down" "$STATE/admin.weights"
    locked apply || exit 1
    # without health checks the stable config is the config again: nothing left to restore
    [ -f "$CHECKS" ] || rm -f "$STABLE"
    ;;
  *) echo "usage: $0 check | admin 'IP ...' 'IP=WEIGHT ...' | restore" >&2; exit 2 ;;
esac
