#!/bin/sh
# Compile every tests/guest/*.c and tools/cxl/*.c (against the tree's uapi
# headers) into a static binary in OUTDIR and print the paths of the
# binaries, one per line (to feed scripts/mkinitramfs.sh).
#
# usage: scripts/build-guest.sh OUTDIR
set -eu
[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
top=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$1"
for src in "$top"/tests/guest/*.c "$top"/tools/cxl/*.c; do
	[ -e "$src" ] || continue
	bin="$1/$(basename "$src" .c)"
	${CC:-gcc} -static -O2 -Wall -Wextra -I"$top/include/uapi" -o "$bin" "$src"
	echo "$bin"
done
