#!/usr/bin/env bash
# Installs everything harness needs on a fresh Debian/Ubuntu machine (run as root):
#   a Docker engine from the distribution's packages (started if none runs), debootstrap,
#   a Python virtualenv in .venv with the harness, and the built-in images (the base image
#   debian:bookworm-slim is bootstrapped with debootstrap when it cannot be had otherwise).
# --dev also installs the test tools (pytest, hypothesis, ruff, mypy) and Chromium for the
# report test. Safe to run again: every step skips what is already there.
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
if [ "${#pkgs[@]}" -gt 0 ]; then
  say "apt-get install ${pkgs[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
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
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
if [ "$DEV" = 1 ]; then
  .venv/bin/python -m pip install -q -e '.[dev]'
else
  .venv/bin/python -m pip install -q -e .
fi

say "building images (first time: bootstraps the base image, ~2 minutes)"
.venv/bin/harness images build
say "ready: .venv/bin/harness run topologies/ha.yaml"
