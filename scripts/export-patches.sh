#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Export the whole work as a `git format-patch` series against v7.3 in
# out/patches/: each patch of patches/ together with the new files
# patches/series assigns to it.  Then prove the series: apply it to a
# pristine 7.3 tree and build drivers/cxl/ after every patch.
#
#   scripts/export-patches.sh [--no-build]
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$REPO/build}
OUT=${OUT:-$REPO/out}
TREE=$BUILD/linux
WT=$BUILD/export
GITID=(-c user.name=cxl-dcd -c user.email=cxl-dcd@localhost)

"$REPO/scripts/kernel.sh" tree >/dev/null

files_for() {	# patch number -> new files
	awk -v n="$1" -F': *' '$1 == n { print $2 }' "$REPO/patches/series" | tr ' ' '\n' | sed '/^$/d'
}

# Every new file must belong to exactly one patch.
listed=$(grep -v '^#' "$REPO/patches/series" | cut -d: -f2- | tr ' ' '\n' | sed '/^$/d' | sort)
have=$(cd "$REPO" && git ls-files drivers include tools Documentation | sort)
if [ "$listed" != "$have" ]; then
	echo "patches/series does not list exactly the new files:" >&2
	diff <(echo "$listed") <(echo "$have") >&2 || true
	exit 1
fi

rm -rf "$WT"; git -C "$TREE" worktree prune
git -C "$TREE" worktree add -q --detach "$WT" v7.3
for p in "$REPO"/patches/[0-9]*.patch; do
	n=$(basename "$p" | cut -c1-4)
	git -C "$WT" "${GITID[@]}" am -q "$p"
	for f in $(files_for "$n"); do
		mkdir -p "$WT/$(dirname "$f")"
		cp "$REPO/$f" "$WT/$f"
		git -C "$WT" add -f "$f"
	done
	git -C "$WT" "${GITID[@]}" commit -q --amend --no-edit
done
rm -rf "$OUT/patches"
git -C "$WT" "${GITID[@]}" format-patch -q --no-signature --cover-letter \
	--to=linux-cxl@vger.kernel.org -o "$OUT/patches" v7.3..HEAD
# The cover letter: subject and text from patches/cover-letter.txt.
python3 - "$OUT/patches/0000-cover-letter.patch" "$REPO/patches/cover-letter.txt" <<'PY'
import sys
path, src = sys.argv[1], open(sys.argv[2]).read()
subject, _, blurb = src.partition('\n\n')
text = open(path).read()
text = text.replace('*** SUBJECT HERE ***', subject.strip(), 1)
text = text.replace('*** BLURB HERE ***', blurb.rstrip(), 1)
open(path, 'w').write(text)
PY
git -C "$TREE" worktree remove --force "$WT"
echo "exported $(ls "$OUT"/patches/0*.patch | wc -l) patches to $OUT/patches"

[ "${1:-}" = --no-build ] && exit 0

# Apply to a pristine tree and build the CXL core after each patch.
git -C "$TREE" worktree add -q --detach "$WT" v7.3
obj=$BUILD/obj-series
mkdir -p "$obj"
if [ ! -f "$obj/.config" ]; then
	make -s -C "$WT" O="$obj" tinyconfig >/dev/null
	"$WT/scripts/kconfig/merge_config.sh" -m -O "$obj" "$obj/.config" "$REPO/kernel/test.config" >/dev/null
fi
status=0
for p in "$OUT"/patches/0*.patch; do
	case "$p" in *0000-cover-letter.patch) continue ;; esac
	if ! git -C "$WT" "${GITID[@]}" am -q "$p"; then
		echo "FAIL does not apply: $(basename "$p")"; status=1; break
	fi
	make -s -C "$WT" O="$obj" olddefconfig >/dev/null
	if make -s -C "$WT" O="$obj" -j"$(nproc)" drivers/cxl/ >"$obj/log" 2>&1; then
		echo "ok   applies and builds: $(basename "$p")"
	else
		echo "FAIL build: $(basename "$p")"; tail -20 "$obj/log"; status=1
	fi
done
git -C "$TREE" worktree remove --force "$WT"
exit $status
