#!/usr/bin/env bash
# Boot Debian's stock kernel in qemu and run a command (default: the VM test selection)
# inside it, on this repo, with the host's /usr and /etc. Results come back through a
# 9p-shared directory: console.log, junit.xml, pytest.log, rc.
#
#   tests/vm/run.sh                 # the selection in tests/vm/selection.sh, then a summary
#   tests/vm/run.sh --if-possible   # the same, or a one-line reason and exit 0 where the VM
#                                   # cannot run (NETTOP_SKIP_VM=1, not root, not Debian amd64)
#   tests/vm/run.sh -- CMD...       # any shell command, run in the repo inside the guest
#   tests/vm/run.sh --script FILE   # a bash script from the host, run the same way
#
# Env: NETTOP_VM_BOOT=vmlinux|bzimage (default vmlinux), NETTOP_VM_TIMEOUT (seconds, default
# 2400), NETTOP_VM_MEM (default 4G), NETTOP_VM_RESULTS (directory to keep results in).
# Exit: the guest command's status; 2 if this machine cannot run the VM; 124 on timeout.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

if_possible=0
[ "${1:-}" = "--if-possible" ] && { if_possible=1; shift; }
if [ "${NETTOP_SKIP_VM:-0}" = 1 ]; then
  echo "vm: skipping the kernel VM suite (NETTOP_SKIP_VM=1)" >&2; exit 0
fi
status=0
settings=$("$here/setup.sh") || status=$?
if [ $status -ne 0 ]; then
  [ $if_possible -eq 1 ] && [ $status -eq 2 ] && { echo "vm: skipping the kernel VM suite" >&2; exit 0; }
  exit $status
fi
eval "$settings"

results=${NETTOP_VM_RESULTS:-$(mktemp -d /tmp/nettop-vm.XXXXXX)}
mkdir -p "$results"
rm -f "$results"/{rc,junit.xml,pytest.log,console.log}
if [ "${1:-}" = "--" ]; then
  shift
  printf '%q ' "$@" > "$results/cmd.sh"
elif [ "${1:-}" = "--script" ]; then
  cp "$2" "$results/cmd.sh"
else
  cp "$here/selection.sh" "$results/cmd.sh"
fi

case "${NETTOP_VM_BOOT:-vmlinux}" in
  bzimage) image=$BZIMAGE ;;
  *) image=$KERNEL ;;
esac
share() { echo "-virtfs local,path=$2,mount_tag=$1,security_model=none,multidevs=remap$3"; }

echo "vm: booting $VERSION ($(basename "$image")) under qemu TCG; results in $results" >&2
start=$(date +%s)
set +e
# shellcheck disable=SC2046
timeout --foreground -k 10 "${NETTOP_VM_TIMEOUT:-2400}" \
  qemu-system-x86_64 -accel tcg,thread=multi -cpu max -smp 2 -m "${NETTOP_VM_MEM:-4G}" \
    -display none -monitor none -serial stdio -no-reboot -nic user,model=virtio-net-pci \
    -kernel "$image" -initrd "$INITRD" \
    -append "console=ttyS0 quiet panic=-1 nettop.repo=$repo" \
    $(share usr /usr ,readonly=on) $(share etc /etc ,readonly=on) \
    $(share modules "$MODULES" ,readonly=on) $(share repo "$repo" ,readonly=on) \
    $(share results "$results" "") \
    </dev/null 2>&1 | tee "$results/console.log"
status=${PIPESTATUS[0]}
set -e
echo "vm: qemu ran $(( $(date +%s) - start ))s" >&2
[ $status -eq 124 ] && { echo "vm: timed out after ${NETTOP_VM_TIMEOUT:-2400}s" >&2; exit 124; }
[ -f "$results/junit.xml" ] && python3 "$here/summary.py" "$results"
[ -f "$results/rc" ] || { echo "vm: the guest did not finish (qemu exit $status)" >&2; exit 1; }
exit "$(cat "$results/rc")"
