#!/bin/sh
# A second initramfs, appended to the guest's for the suites that run QEMU
# inside the guest (tests/e2e/virtio.py): the host's
# qemu-system-x86_64 with the shared libraries it loads, at their paths.
# The kernel unpacks concatenated archives one over the other.  Rebuilt
# only when the host's QEMU changed.
#
# usage: scripts/mkinitramfs-qemu.sh OUT.cpio.gz
set -eu
[ $# -eq 1 ] || { echo "usage: $0 OUT.cpio.gz" >&2; exit 2; }
out=$(realpath -m "$1")
qemu=$(command -v qemu-system-x86_64)
[ -f "$out" ] && [ "$out" -nt "$qemu" ] && { echo "$out"; exit 0; }
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
install -D -m 755 "$qemu" "$root/usr/bin/qemu-system-x86_64"
for lib in $(ldd "$qemu" | grep -o '/[^ ]*'); do
	install -D -m 755 "$(realpath "$lib")" "$root$lib"
done
mkdir -p "$(dirname "$out")"
(cd "$root" && find . | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) |
	gzip -6 -n >"$out.tmp"
mv "$out.tmp" "$out"
echo "$out"
