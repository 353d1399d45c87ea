#!/bin/sh
# Build the guest initramfs (gzip'd newc cpio) for the QEMU test bed:
# busybox-static with its applet links, tests/guest/init as /init, and any
# extra static programs given on the command line, copied to /bin.
#
# Module sets: each subdirectory of $MODSETS (real/, mock/) is copied to
# /lib/modules/<set>/ with a file 'order' listing its modules so that each
# comes after the modules it depends on; the guest's /init loads one set.
#
# usage: [MODSETS=DIR] [GUEST_TOOLS=...] [GUEST_TREES=...] scripts/mkinitramfs.sh OUT.cpio.gz [STATIC_PROGRAM...]
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

# The shared libraries ldd names for a program, at the same paths; not
# those under $2, a staged tree that brings them along.
copy_libs() {
	local lib
	for lib in $(ldd "$1" | grep -o '/[^ ]*'); do
		case $lib in "${2:-/nonexistent}"/*) continue ;; esac
		[ -e "$root$lib" ] || install -D -m 755 "$(realpath "$lib")" "$root$lib"
	done
}

# Dynamically linked tools from the host (GUEST_TOOLS, names on $PATH), with
# their libraries: upstream's user space, for the benchmarks that time the
# paths users take and for ndctl's test scripts.
for tool in ${GUEST_TOOLS:-}; do
	bin=$(command -v "$tool") || { echo "$0: no $tool on this host" >&2; exit 1; }
	install -D -m 755 "$bin" "$root/usr/bin/$tool"
	copy_libs "$bin"
done

# Staged trees (GUEST_TREES, directories laid out like the guest's root,
# such as scripts/ndctl.sh's), with the host libraries their programs need
# (their own libraries are in the tree, found through an rpath).
for tree in ${GUEST_TREES:-}; do
	cp -a "$tree"/. "$root"/
	tree=$(realpath "$tree")
	libs=$(find "$tree" -name 'lib*.so*' -printf '%h\n' | sort -u | paste -sd:)
	find "$tree" -type f -perm -u+x | while read -r f; do
		LD_LIBRARY_PATH=$libs ldd "$f" >/dev/null 2>&1 || continue
		LD_LIBRARY_PATH=$libs copy_libs "$f" "$tree"
	done
done

# What the kernel has built in (KBUILD_OBJ: its build directory), so that
# libkmod in those tools finds kmem and device_dax built in, not missing.
if [ -n "${KBUILD_OBJ:-}" ] && [ -f "$KBUILD_OBJ/modules.builtin" ]; then
	krel=$(cat "$KBUILD_OBJ/include/config/kernel.release")
	mkdir -p "$root/lib/modules/$krel"
	cp "$KBUILD_OBJ/modules.builtin" "$KBUILD_OBJ/modules.builtin.modinfo" \
		"$root/lib/modules/$krel/"
	: >"$root/lib/modules/$krel/modules.order"
	depmod -b "$root" "$krel"
fi

# Print the modules of a directory, each after its dependencies.
module_order() {
	python3 - "$1" <<-'EOPY'
	import os, subprocess, sys
	d = sys.argv[1]
	mods = {f[:-3]: os.path.join(d, f) for f in os.listdir(d) if f.endswith('.ko')}
	deps = {}
	for m, path in mods.items():
	    out = subprocess.run(['modinfo', '-F', 'depends', path],
	                         capture_output=True, text=True, check=True).stdout
	    deps[m] = [x for x in out.strip().split(',') if x in mods]
	done = []
	def visit(m, stack=()):
	    if m in done:
	        return
	    if m in stack:
	        sys.exit(f'module dependency loop at {m}')
	    for x in sorted(deps[m]):
	        visit(x, stack + (m,))
	    done.append(m)
	for m in sorted(mods):
	    visit(m)
	print('\n'.join(done))
	EOPY
}

if [ -n "${MODSETS:-}" ]; then
	for set in "$MODSETS"/*/; do
		set=$(basename "$set")
		mkdir -p "$root/lib/modules/$set"
		cp "$MODSETS/$set"/*.ko "$root/lib/modules/$set/"
		module_order "$root/lib/modules/$set" >"$root/lib/modules/$set/order"
	done
fi

mkdir -p "$(dirname "$out")"
(cd "$root" && find . | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) |
	gzip -9 -n >"$out"
echo "$out"
