#!/usr/bin/env bash
# Idempotent host set-up for nettop: BCC, kernel headers BCC can compile with,
# tracefs, and a venv from the system Python (BCC is a distribution package).
# Quick when already done. Usage: scripts/setup-host.sh [--test]
set -euo pipefail
cd "$(dirname "$0")/.."

want_test_tools=0
[ "${1:-}" = "--test" ] && want_test_tools=1

die() { echo "setup: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "must run as root (installs packages and mounts tracefs)"
command -v apt-get >/dev/null || die "needs a Debian or Ubuntu system (apt-get not found)"

kernel=$(uname -r)
missing=()
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
for pkg in python3-bpfcc python3-venv; do installed "$pkg" || missing+=("$pkg"); done
if [ $want_test_tools -eq 1 ]; then
  for pkg in iperf3 iproute2 iptables bpftool tmux; do installed "$pkg" || missing+=("$pkg"); done
fi

apt_updated=0
apt_update_once() { [ $apt_updated -eq 1 ] || { apt-get update -q >/dev/null; apt_updated=1; }; }

headers_dir="/lib/modules/$kernel/build"
if [ ! -e "$headers_dir/include" ]; then
  apt_update_once
  if apt-cache show "linux-headers-$kernel" >/dev/null 2>&1; then
    missing+=("linux-headers-$kernel")
  else
    arch=$(dpkg --print-architecture)
    if apt-cache show "linux-headers-$arch" >/dev/null 2>&1; then
      missing+=("linux-headers-$arch")          # Debian's generic headers
    else
      missing+=("linux-headers-generic")        # Ubuntu's
    fi
  fi
fi

if [ ${#missing[@]} -gt 0 ]; then
  apt_update_once
  echo "setup: installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
fi

if [ ! -e "$headers_dir/include" ]; then
  # No headers for this exact kernel: point BCC at the newest generic ones.
  # nettop never reads a kernel struct through them (offsets come from BTF).
  arch_dir=$(ls -d /usr/src/linux-headers-*-"$(dpkg --print-architecture)" 2>/dev/null | sort -V | tail -n 1 || true)
  [ -z "$arch_dir" ] && arch_dir=$(ls -d /usr/src/linux-headers-*-generic 2>/dev/null | sort -V | tail -n 1 || true)
  [ -n "$arch_dir" ] || die "no kernel headers found under /usr/src"
  common_dir="${arch_dir%-*}-common"
  [ -d "$common_dir" ] || common_dir="$arch_dir"
  mkdir -p "/lib/modules/$kernel"
  ln -sfn "$arch_dir" "/lib/modules/$kernel/build"
  ln -sfn "$common_dir" "/lib/modules/$kernel/source"
  echo "setup: no headers for $kernel; linked $(basename "$arch_dir") for BCC"
fi

mountpoint -q /sys/kernel/debug || mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null || true
mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || true

if [ ! -x .venv/bin/python ]; then
  /usr/bin/python3 -m venv --system-site-packages .venv
fi
stamp=.venv/.nettop-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e ".[test]"
  touch "$stamp"
fi
