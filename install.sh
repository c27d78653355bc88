#!/usr/bin/env bash
# Installs everything harness needs on a fresh Debian/Ubuntu machine (run as root):
#   a Docker engine from the distribution's packages (started if none runs), debootstrap and
#   mmdebstrap (when the distribution has it), a Python virtualenv in .venv with the harness
#   (installed with uv from PyPI, or pip when uv cannot be had), and the built-in images,
#   several built at once (the base image debian:bookworm-slim is bootstrapped with
#   mmdebstrap, or debootstrap, when absent).
# --dev also installs the test tools (pytest, hypothesis, ruff, mypy), Chromium for the
# report test and Debian's prometheus package (promtool + prometheus, for the unit tests'
# loopback Prometheus in tests/promlab.py; its system service is never started nor enabled).
# Safe to run again: every step skips what is already there.
set -euo pipefail
cd "$(dirname "$0")"
DEV=0
[ "${1:-}" = "--dev" ] && DEV=1
say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

if [ "$(id -u)" != 0 ]; then
  echo "install.sh needs root (apt-get, dockerd); run: sudo ./install.sh" >&2
  exit 1
fi

pkgs=()
command -v debootstrap >/dev/null || pkgs+=(debootstrap)
command -v iptables >/dev/null || pkgs+=(iptables)
command -v dockerd >/dev/null || pkgs+=(docker.io)
python3 -c 'import venv, ensurepip' 2>/dev/null || pkgs+=(python3-venv)
[ "$DEV" = 1 ] && ! command -v chromium >/dev/null && pkgs+=(chromium)
[ "$DEV" = 1 ] && ! command -v promtool >/dev/null && pkgs+=(prometheus)
[ "$DEV" = 1 ] && ! command -v docker-compose >/dev/null && pkgs+=(docker-compose)
[ "$DEV" = 1 ] && ! command -v npm >/dev/null && pkgs+=(nodejs npm)
if [ "${#pkgs[@]}" -gt 0 ]; then
  say "apt-get install ${pkgs[*]}"
  # Debian's prometheus package starts a daemon on 0.0.0.0:9090 from its postinst. The tests
  # run their own on loopback, so keep the service from starting: a policy-rc.d refusing only
  # prometheus (other packages' services start as usual) while apt runs, unless the machine
  # already has one (containers usually do, refusing everything), then disable it for boot.
  policy=/usr/sbin/policy-rc.d
  own_policy=0
  if [[ " ${pkgs[*]} " == *" prometheus "* ]] && [ ! -e "$policy" ]; then
    printf '%s\n' '#!/bin/sh' '# written by harness install.sh while apt-get runs; removed after' \
      'for a; do case "$a" in prometheus|prometheus.service) exit 101 ;; esac; done' 'exit 0' >"$policy"
    chmod 755 "$policy"
    own_policy=1
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
  if [ "$own_policy" = 1 ]; then rm -f "$policy"; trap - EXIT; fi
  if [[ " ${pkgs[*]} " == *" prometheus "* ]]; then
    if [ -d /run/systemd/system ]; then
      systemctl disable --now prometheus.service >/dev/null 2>&1 || true
    else
      deb-systemd-helper disable prometheus.service >/dev/null 2>&1 || true
      if [ -x /etc/init.d/prometheus ]; then /etc/init.d/prometheus stop >/dev/null 2>&1 || true; fi
    fi
    update-rc.d prometheus disable >/dev/null 2>&1 || true
  fi
fi
# mmdebstrap bootstraps the base image faster; without it debootstrap does, so a distribution
# that lacks it (an Ubuntu without universe, say) does not stop the install.
if ! command -v mmdebstrap >/dev/null; then
  [ "${#pkgs[@]}" -gt 0 ] || apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap \
    >/dev/null 2>&1 || say "mmdebstrap could not be installed: debootstrap will bootstrap the base image"
fi

if ! docker info >/dev/null 2>&1; then
  say "starting dockerd"
  (setsid dockerd >/var/log/harness-dockerd.log 2>&1 &)
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "dockerd did not start; see /var/log/harness-dockerd.log" >&2; exit 1; }
fi

if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  python3 -m venv .venv
fi
say "installing the harness into .venv"
target=.
[ "$DEV" = 1 ] && target='.[dev]'
# uv (a PyPI wheel) installs the same packages as pip in about a third of the time. It reads
# no pip.conf: the index and extra indexes pip would use (PIP_* or pip.conf) are handed on,
# with pip's rule (the best version across them); anything going wrong falls back to pip.
pipconf=$(.venv/bin/python -m pip config list 2>/dev/null || true)
pipset() { # pip's setting $1: its PIP_* variable, else pip.conf's [install], else [global]
  local var v
  var="PIP_$(tr a-z- A-Z_ <<<"$1")"
  v=${!var:-}
  [ -n "$v" ] || v=$(sed -n "s/^install\.$1='\(.*\)'\$/\1/p" <<<"$pipconf" | tail -1)
  [ -n "$v" ] || v=$(sed -n "s/^global\.$1='\(.*\)'\$/\1/p" <<<"$pipconf" | tail -1)
  v=${v//\\n/ }
  echo "${v# }"
}
index=$(pipset index-url)
extra=$(pipset extra-index-url)
[ -n "$index" ] && export UV_INDEX_URL="${UV_INDEX_URL:-$index}"
if [ -n "$extra" ]; then
  export UV_EXTRA_INDEX_URL="${UV_EXTRA_INDEX_URL:-$extra}"
  export UV_INDEX_STRATEGY="${UV_INDEX_STRATEGY:-unsafe-best-match}"
fi
if .venv/bin/python -m pip install -q uv >/dev/null 2>&1 &&
  .venv/bin/python -m uv pip install -q --python .venv/bin/python -e "$target"; then
  :
else
  say "uv could not install the harness; using pip"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e "$target"
fi

say "building images (first time: bootstraps the base image, ~1.5 minutes)"
.venv/bin/harness images build
say "ready: .venv/bin/harness run topologies/ha.yaml"
