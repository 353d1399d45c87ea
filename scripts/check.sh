#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# The mechanical checks a maintainer runs before reading: checkpatch
# --strict on every new file and every patch, sparse (C=1, a sparse new
# enough for 7.3, built from Debian's source package) and W=1 on every
# object the project touches, kernel-doc -Wall, and the ABI validator.
# Findings on upstream lines the project did not change are not ours and
# are not counted.  Exits non-zero on any finding.
set -uo pipefail
# Debian's python3 (with python3-ply for checkpatch's SPDX check) first.
export PATH=/usr/bin:$PATH
REPO=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$REPO/build}
TREE=$BUILD/linux
OBJ=$BUILD/obj-check
"$REPO/scripts/kernel.sh" tree >/dev/null || exit 1
cd "$REPO"
NEW=$(git ls-files drivers include tools Documentation)
NEW_C=$(git ls-files drivers include tools | grep -E '\.[ch]$')
findings=0
note() { echo "$*"; findings=$((findings + 1)); }

sparse_bin() {
	local src=$BUILD/sparse-src st=$BUILD/apt
	[ -x "$src/sparse" ] && { echo "$src/sparse"; return; }
	mkdir -p "$src" "$st/lists-src/partial" "$st/cache/archives/partial"
	echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian sid main" > "$st/sources-src.list"
	local A=(-q -o Dir::Etc::SourceList="$st/sources-src.list"
		-o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists="$st/lists-src"
		-o Dir::Cache="$st/cache" -o Dir::State::status=/dev/null
		-o APT::Sandbox::User=root)
	(cd "$src" && apt-get "${A[@]}" update >/dev/null &&
	 apt-get "${A[@]}" source --download-only sparse >/dev/null &&
	 tar -xzf sparse_*.orig.tar.gz && cd sparse-*/ &&
	 make -s sparse HAVE_LLVM=no HAVE_GTK=no HAVE_LIBXML=no >/dev/null 2>&1 &&
	 cp sparse "$src/sparse") >&2 || return 1
	echo "$src/sparse"
}

# Lines the project added: new files whole, patched files by diff.
added_lines() {
	local f
	for f in $NEW_C; do echo "$f:*"; done
	git -C "$TREE" diff -U0 v7.3 -- drivers include | awk '
		/^\+\+\+ b\// { file = substr($0, 7) }
		/^@@/ { split($3, a, ","); start = substr(a[1], 2); n = (a[2] == "" ? 1 : a[2]);
			for (i = 0; i < n; i++) print file ":" start + i }'
}

ours() {	# filter compiler/sparse output to findings on our lines
	python3 -c '
import re, sys
added = set(l.strip() for l in open(sys.argv[1]))
for line in sys.stdin:
    m = re.match(r"(?:\S*/)?((?:drivers|include)/\S+?):(\d+):(?:\d+:)? (warning|error)", line)
    if not m:
        continue
    f, n = m.group(1), m.group(2)
    if f + ":*" in added or f"{f}:{n}" in added:
        sys.stdout.write(line)
' "$1"
}

echo "== checkpatch --strict"
for f in $NEW_C; do
	ignore=""
	# A trace header: TRACE_EVENT()'s layout, and TRACE_INCLUDE_PATH as a
	# path relative to include/trace/.
	case "$f" in *_trace.h) ignore="--ignore OPEN_ENDED_LINE,PARENTHESIS_ALIGNMENT,SPACING" ;; esac
	out=$(cd "$TREE" && scripts/checkpatch.pl --strict --quiet --no-summary --show-types $ignore -f "$f" 2>&1)
	[ -n "$out" ] && note "$out"
done
for p in patches/*.patch; do
	ignore=""
	# TRACE_EVENT() has its own layout, the one every event in trace.h uses.
	case "$p" in *-cxl-trace-*) ignore="--ignore OPEN_ENDED_LINE,PARENTHESIS_ALIGNMENT" ;; esac
	out=$(cd "$TREE" && scripts/checkpatch.pl --strict --quiet --no-summary --show-types $ignore "$REPO/$p" 2>&1)
	[ -n "$out" ] && note "$p: $out"
done

echo "== sparse (C=1) and W=1 on the touched objects"
SPARSE=$(sparse_bin) || { note "could not build sparse"; SPARSE=sparse; }
added=$(mktemp)
added_lines > "$added"
mkdir -p "$OBJ"
if [ ! -f "$OBJ/.config" ]; then
	cp "$BUILD/obj/.config" "$OBJ/.config" 2>/dev/null ||
		make -s -C "$TREE" O="$OBJ" tinyconfig >/dev/null
	"$TREE/scripts/kconfig/merge_config.sh" -m -O "$OBJ" "$OBJ/.config" kernel/test.config >/dev/null
	make -s -C "$TREE" O="$OBJ" olddefconfig >/dev/null
fi
objs=$( (for f in $NEW_C; do echo "$f"; done
	 git -C "$TREE" diff --name-only v7.3 -- drivers) | grep '\.c$' |
	grep -v '^tools/' | sed 's/\.c$/.o/' | sort -u |
	# only real objects: a file #included by another is built with it
	while read -r o; do
		grep -qs "$(basename "$o")" "$TREE/$(dirname "$o")/Makefile" && echo "$o"
	done)
touch_src() { for o in $objs; do touch "$TREE/${o%.o}.c"; done; }
touch_src
out=$(make -C "$TREE" O="$OBJ" -j"$(nproc)" W=1 C=1 CHECK="$SPARSE" $objs 2>&1)
echo "$out" | grep -q "Error 1\|Error 2" && note "build failed: $(echo "$out" | tail -5)"
mine=$(echo "$out" | ours "$added")
[ -n "$mine" ] && note "$mine"

echo "== kernel-doc -Wall"
for f in $NEW_C; do
	out=$("$TREE/scripts/kernel-doc" -none -Wall "$TREE/$f" 2>&1)
	[ -n "$out" ] && note "$out"
done

echo "== ABI validation"
out=$(cd "$TREE" && python3 tools/docs/get_abi.py validate 2>&1 | grep -iE 'cxl|dynamic_ram|dc_' )
[ -n "$out" ] && note "$out"
rm -f "$added"

if [ $findings -gt 0 ]; then
	echo "check: $findings finding(s)"
	exit 1
fi
echo "check: clean"
