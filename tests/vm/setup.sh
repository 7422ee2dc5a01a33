#!/usr/bin/env bash
# Set up the kernel-matrix VM: Debian packages only, idempotent, quick when done.
#
# Installs qemu-system-x86, busybox-static, iw and hostapd; downloads (does not install)
# Debian's stock linux-image matching the linux-headers-*-amd64 installed here, unpacks it
# into the cache, indexes its modules, extracts the uncompressed vmlinux and builds a busybox
# initramfs. Prints KEY=value lines for run.sh. Exit 2: this machine cannot run the VM.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${NETTOP_VM_CACHE:-/var/cache/nettop-vm}

cannot() { echo "vm-setup: cannot run the kernel VM here: $*" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || cannot "needs root"
command -v apt-get >/dev/null || cannot "needs Debian (apt-get)"
[ "$(dpkg --print-architecture)" = amd64 ] || cannot "needs an amd64 host"

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
apt_updated=0
apt_update_once() { [ $apt_updated -eq 1 ] || { apt-get update -q >/dev/null || true; apt_updated=1; }; }

missing=()
for pkg in qemu-system-x86 busybox-static iw hostapd iperf3 iproute2 iptables; do
  installed "$pkg" || missing+=("$pkg")
done
headers=$(ls -d /usr/src/linux-headers-*-amd64 2>/dev/null | sort -V | tail -n 1 || true)
[ -n "$headers" ] || missing+=(linux-headers-amd64)
if [ ${#missing[@]} -gt 0 ]; then
  apt_update_once
  echo "vm-setup: installing ${missing[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
    || cannot "apt-get install ${missing[*]} failed"
  headers=$(ls -d /usr/src/linux-headers-*-amd64 2>/dev/null | sort -V | tail -n 1 || true)
fi
[ -n "$headers" ] || cannot "no Debian linux-headers-*-amd64"
version=${headers##*/linux-headers-}          # e.g. 6.1.0-56-amd64

kdir=$cache/$version
stamp=$kdir/.ready-$(sha256sum "$here/setup.sh" "$here/init" | sha256sum | cut -c1-12)
if [ ! -f "$stamp" ]; then
  mkdir -p "$kdir"
  if ! ls "$kdir"/linux-image-"$version"_*.deb >/dev/null 2>&1; then
    apt-cache show "linux-image-$version" >/dev/null 2>&1 || apt_update_once
    (cd "$kdir" && apt-get download -q "linux-image-$version" >/dev/null 2>&1) \
      || cannot "apt-get download linux-image-$version failed"
  fi
  rm -rf "$kdir/root" "$kdir/initramfs" "$kdir/vmlinux"
  dpkg-deb -x "$kdir"/linux-image-"$version"_*.deb "$kdir/root"
  mods=$kdir/root/lib/modules/$version
  busybox depmod -b "$kdir/root" "$version"
  # The guest mounts this tree over /usr/lib/modules/<ver>: BCC finds its headers through build.
  ln -sfn "$headers" "$mods/build"
  ln -sfn "${headers%-amd64}-common" "$mods/source"

  # extract-vmlinux: the bzImage carries an xz stream; boot the ELF inside it directly (PVH).
  vmlinuz=$kdir/root/boot/vmlinuz-$version
  for offset in $(grep -abo $'\xfd7zXZ\x00' "$vmlinuz" | cut -d: -f1); do
    tail -c +$((offset + 1)) "$vmlinuz" | xz -dc 2>/dev/null > "$kdir/vmlinux.tmp" || true
    if [ "$(head -c 4 "$kdir/vmlinux.tmp" | od -An -c | tr -d ' ')" = '177ELF' ]; then
      mv "$kdir/vmlinux.tmp" "$kdir/vmlinux"; break
    fi
  done
  rm -f "$kdir/vmlinux.tmp"

  # Initramfs: busybox, the modules needed to reach the 9p shares, and our init.
  ird=$kdir/initramfs
  mkdir -p "$ird/bb" "$ird/lib/modules/$version"
  cp /bin/busybox "$ird/bb/busybox"
  for applet in $(/bin/busybox --list); do [ "$applet" = busybox ] || ln -sf busybox "$ird/bb/$applet"; done
  cp "$mods/modules.dep" "$ird/lib/modules/$version/"
  for m in kernel/fs/9p/9p.ko kernel/net/9p/9pnet_virtio.ko kernel/drivers/virtio/virtio_pci.ko \
           kernel/fs/overlayfs/overlay.ko; do
    for f in $m $(grep "^$m:" "$mods/modules.dep" | cut -d: -f2); do
      mkdir -p "$ird/lib/modules/$version/$(dirname "$f")"
      cp "$mods/$f" "$ird/lib/modules/$version/$f"
    done
  done
  cp "$here/init" "$ird/init"
  chmod +x "$ird/init"
  (cd "$ird" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1) > "$kdir/initramfs.cpio.gz"
  touch "$stamp"
fi

echo "VERSION=$version"
echo "KERNEL=$([ -f "$kdir/vmlinux" ] && echo "$kdir/vmlinux" || echo "$kdir/root/boot/vmlinuz-$version")"
echo "BZIMAGE=$kdir/root/boot/vmlinuz-$version"
echo "INITRD=$kdir/initramfs.cpio.gz"
echo "MODULES=$kdir/root/lib/modules/$version"
