#!/bin/sh
# Build the guest initramfs (gzip'd newc cpio) for the QEMU test bed:
# busybox-static with its applet links, tests/guest/init as /init, and any
# extra static programs given on the command line, copied to /bin.
#
# usage: scripts/mkinitramfs.sh OUT.cpio.gz [STATIC_PROGRAM...]
set -eu
[ $# -ge 1 ] || { echo "usage: $0 OUT.cpio.gz [STATIC_PROGRAM...]" >&2; exit 2; }
out=$(realpath -m "$1"); shift
top=$(cd "$(dirname "$0")/.." && pwd)
busybox=${BUSYBOX:-/bin/busybox}

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/bin "$root"/sbin "$root"/usr/bin "$root"/usr/sbin \
	"$root"/dev "$root"/proc "$root"/sys "$root"/tmp "$root"/run \
	"$root"/etc "$root"/root
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list-full); do
	[ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
done
cp "$top/tests/guest/init" "$root/init"
chmod 755 "$root/init"
mknod -m 600 "$root/dev/console" c 5 1 2>/dev/null ||
	echo "$0: warning: cannot mknod dev/console (not root?)" >&2
for prog in "$@"; do
	if [ "${prog%.ko}" = "$prog" ] && command -v file >/dev/null && ! file -b "$prog" | grep -q static; then
		echo "$0: warning: $prog does not look statically linked" >&2
	fi
	install -m 755 "$prog" "$root/bin/$(basename "$prog")"
done

mkdir -p "$(dirname "$out")"
(cd "$root" && find . | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) |
	gzip -9 -n >"$out"
echo "$out"
