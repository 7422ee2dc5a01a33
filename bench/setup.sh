#!/usr/bin/env bash
# Idempotent: the workloads and the tools nettop is compared with (Debian packages).
# Quick when already installed. Run by `make bench` after scripts/setup-host.sh --test.
set -euo pipefail
[ "$(id -u)" -eq 0 ] || { echo "bench: must run as root" >&2; exit 1; }
missing=()
for pkg in iperf3 sockperf iftop nethogs iptraf-ng bpfcc-tools bpftool tmux iproute2; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench: installing ${missing[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
fi
