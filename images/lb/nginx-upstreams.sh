#!/bin/bash
# Nginx's upstream servers as the harness wants them now. Open-source Nginx has no active health
# checks, so this script is one, and the only thing that rewrites the upstream's server lines:
#   nginx-upstreams.sh check            poll each backend of /etc/harness/nginx-check every
#                                       `inter`; `fall` failures in a row mark it `down`, `rise`
#                                       successes bring it back (HAProxy's semantics)
#   nginx-upstreams.sh admin DOWN W     a deploy's wishes (harness/chaos/lbctl.py): the IPs in
#                                       DOWN taken out, "ip=weight ..." in W
#   nginx-upstreams.sh restore          the deploy's wishes forgotten ("unchanged" if none)
#   nginx-upstreams.sh up IP ...        exit 0 once the checks serve each IP: not held down by
#                                       them, and a good check since the deploy's last wish
# Each change renders the stable config (the one the run started with) with `down`/`weight=` on
# the server lines, then `nginx -t` and a graceful reload, under one lock. Once the new workers
# run it logs `nginx-check: Server app/<instance> is DOWN|UP` (the nginx-lb kind's LogLines),
# for what that reload applied (one snapshot of the down set): every server held down again
# after each reload, since the watchers take Nginx's `start worker processes` to mean every
# server is fresh; UP only for a server no deploy holds out.
set -u
CONF=${NGINX_CONF:-/etc/nginx/nginx.conf}
STABLE=$CONF.harness-stable
STATE=${NGINX_STATE:-/run/harness/nginx}
CHECKS=${NGINX_CHECKS:-/etc/harness/nginx-check}
RELOAD=${NGINX_RELOAD:-nginx -t -q && nginx -s reload}
WORKERS=${NGINX_WORKERS:-pgrep -fx 'nginx: worker process'}  # the serving workers' PIDs
PIDFILE=${NGINX_PID:-/run/nginx.pid}
mkdir -p "$STATE/down" "$STATE/ok"  # down/<instance>: its IP, held down by the checks;
# ok/<instance>: touched at each good check

say() { echo "nginx-check: $*" >&2; }
workers() { eval "$WORKERS" | sort | tr '\n' ' '; }

held() {  # "instance ip" per server the checks hold down now
  local f ip
  for f in "$STATE"/down/*; do { [ -e "$f" ] && read -r ip < "$f"; } 2>/dev/null && echo "${f##*/} $ip"; done
}

render() {  # IPS: stable config -> config with IPS, admin's down set and weights applied
  local down weights
  down="$1 $(cat "$STATE"/admin.down 2>/dev/null | tr '\n' ' ')"
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

apply() {  # [instance ip]: that one is UP again; call under the lock
  local before t snap name ip
  snap=$(held)  # what this reload applies is what it announces, whatever changes meanwhile
  [ -f "$STABLE" ] || cp -p "$CONF" "$STABLE"
  render "$(echo "$snap" | cut -s -d' ' -f2)" > "$CONF.new" && mv "$CONF.new" "$CONF" || return 1
  before=$(workers)
  eval "$RELOAD" || return 1
  for t in $(seq 40); do  # the master logged `start worker processes` before forking them
    [ -z "$before" ] || [ "$(workers)" != "$before" ] && break
    sleep 0.05
  done
  if [ $# -eq 2 ] && ! grep -qxF "$2" "$STATE/admin.down" 2>/dev/null; then
    say "Server app/$1 is UP"  # (one a deploy holds out stays out: its put_back says so)
  fi
  while read -r name ip; do [ -n "$name" ] && say "Server app/$name is DOWN"; done <<< "$snap"
  return 0
}

locked() { ( flock 9; "$@" ) 9>"$STATE/lock"; }

probe() {  # ip port: one check
  curl -fsS -o /dev/null --max-time "$TIMEOUT" "http://$1:$2$CHECK_PATH" 2>/dev/null
}

hold() {  # instance ip: held down (written whole: apply may read it at any time)
  echo "$2" > "$STATE/.down-$1" && mv "$STATE/.down-$1" "$STATE/down/$1"
}

check_one() {  # instance ip port: this server's checks, for as long as the script runs
  local name=$1 ip=$2 port=$3 fails=0 oks=0 state=UP
  while :; do
    if probe "$ip" "$port"; then
      fails=0; oks=$((oks + 1)); : > "$STATE/ok/$name"
    else
      oks=0; fails=$((fails + 1))
    fi
    # a failed reload leaves the server as it was; the next check tries again
    if [ $state = UP ] && [ $fails -ge "$FALL" ]; then
      hold "$name" "$ip"
      if locked apply; then state=DOWN; else
        rm -f "$STATE/down/$name"; say "reload failed: $name stays in"
      fi
    elif [ $state = DOWN ] && [ $oks -ge "$RISE" ]; then
      rm -f "$STATE/down/$name"
      if locked apply "$name" "$ip"; then state=UP; else
        hold "$name" "$ip"; say "reload failed: $name stays out"
      fi
    fi
    sleep "$INTER"
  done
}

case "${1:-}" in
  check)
    read -r CHECK_PATH INTER TIMEOUT FALL RISE < "$CHECKS"
    rm -f "$STATE"/down/* "$STATE"/ok/*
    loops=()  # the checks end with the script (supervise.sh stops it with TERM)
    trap 'kill "${loops[@]}" 2>/dev/null; exit 0' TERM INT
    while read -r name ip port; do
      check_one "$name" "$ip" "$port" &
      loops+=($!)
    done < <(tail -n +2 "$CHECKS")
    master=""  # the last Nginx master seen (a stopped Nginx has no pidfile)
    while :; do  # a restarted Nginx starts from the config on disk: say again what is down
      now=$(cat "$PIDFILE" 2>/dev/null)
      if [ -n "$now" ]; then
        if [ -n "$master" ] && [ "$now" != "$master" ]; then locked apply; fi
        master=$now
      fi
      sleep 1 & wait $!
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
  up)
    [ -f "$CHECKS" ] || exit 0
    shift
    for ip in "$@"; do
      name=$(awk -v ip="$ip" 'NR > 1 && $2 == ip { print $1 }' "$CHECKS")
      [ -n "$name" ] || continue  # not checked
      # a good check after the wish (put_back rewrote admin.down), and not held down since
      [ "$STATE/ok/$name" -nt "$STATE/admin.down" ] && [ ! -e "$STATE/down/$name" ] || exit 1
    done
    ;;
  *) echo "usage: $0 check | admin 'IP ...' 'IP=WEIGHT ...' | restore | up IP ..." >&2; exit 2 ;;
esac
