#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Fetch Linux 7.3 from Debian's linux-source-7.3 package (through a private
# apt state, so the host's apt configuration is not changed), apply
# patches/ and the new files of this repository, and build incrementally.
#
#   scripts/kernel.sh tree            prepare build/linux only
#   scripts/kernel.sh build [debug]   build the test (or debug) kernel
#   scripts/kernel.sh save-patches    write build/linux's commits to patches/
#
# Environment: BUILD (default: <repo>/build), OUT (default: <repo>/out).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$REPO/build}
OUT=${OUT:-$REPO/out}
TREE=$BUILD/linux
PKG=linux-source-7.3
GIT="git -C $TREE -c user.name=cxl-dcd -c user.email=cxl-dcd@localhost"
OVERLAY_DIRS="drivers include tools Documentation"
TEST_MODULES="tools/testing/cxl/dc_policy tools/testing/cxl/dax_holder"

log() { echo "[kernel] $*" >&2; }

apt_private() {
	local st=$BUILD/apt
	mkdir -p "$st/lists/partial" "$st/cache/archives/partial"
	cat > "$st/sources.list" <<-EOS
	deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie-backports main
	EOS
	apt-get -q -o Dir::Etc::SourceList="$st/sources.list" \
		-o Dir::Etc::SourceParts=/dev/null \
		-o Dir::State::Lists="$st/lists" -o Dir::Cache="$st/cache" \
		-o Dir::State::status=/dev/null -o APT::Sandbox::User=root "$@"
}

fetch_tree() {
	[ -e "$TREE/.git" ] && return 0
	log "fetching $PKG into $BUILD"
	mkdir -p "$BUILD"
	apt_private update >/dev/null
	(cd "$BUILD" && apt_private download "$PKG" >/dev/null)
	rm -rf "$BUILD/pkg" "$TREE.tmp"
	dpkg -x "$BUILD"/${PKG}_*_all.deb "$BUILD/pkg"
	mkdir -p "$TREE.tmp"
	tar -xf "$BUILD"/pkg/usr/src/$PKG.tar.xz -C "$TREE.tmp" --strip-components=1
	rm -rf "$BUILD/pkg" "$BUILD"/${PKG}_*_all.deb
	# Debian's .gitignore hides everything at the top level: add by force.
	git -C "$TREE.tmp" init -q
	git -C "$TREE.tmp" add -f . >/dev/null
	git -C "$TREE.tmp" -c user.name=cxl-dcd -c user.email=cxl-dcd@localhost \
		commit -q -m "Linux $(make -s -C "$TREE.tmp" kernelversion) ($PKG)"
	git -C "$TREE.tmp" tag v7.3
	mv "$TREE.tmp" "$TREE"
}

patches_stamp() { cat "$REPO"/patches/*.patch 2>/dev/null | sha256sum | cut -c1-16; }

apply_patches() {
	local want have
	want=$(patches_stamp)
	have=$(cat "$TREE/.dcd-patches" 2>/dev/null || true)
	[ "$want" = "$have" ] && return 0
	log "applying patches/ to a pristine tree"
	$GIT reset -q --hard v7.3
	if ls "$REPO"/patches/*.patch >/dev/null 2>&1; then
		$GIT am -q "$REPO"/patches/*.patch
	fi
	echo "$want" > "$TREE/.dcd-patches"
}

# Copy the repository's new files into the tree; only changed contents are
# written, so an incremental build recompiles only what changed.
overlay() {
	local f
	(cd "$REPO" && git ls-files -co --exclude-standard $OVERLAY_DIRS) |
	while read -r f; do
		[ -f "$REPO/$f" ] || continue
		if $GIT ls-files --error-unmatch "$f" >/dev/null 2>&1; then
			echo "error: $f exists upstream: change it in patches/" >&2
			exit 1
		fi
		mkdir -p "$(dirname "$TREE/$f")"
		cmp -s "$REPO/$f" "$TREE/$f" || cp "$REPO/$f" "$TREE/$f"
	done
}

configure() {
	local obj=$1; shift
	local want have
	want=$(cat "$@" | sha256sum | cut -c1-16)
	have=$(cat "$obj/.dcd-config" 2>/dev/null || true)
	[ "$want" = "$have" ] && [ -f "$obj/.config" ] && return 0
	log "configuring $obj from tinyconfig + $*"
	# Out-of-tree builds (MO=) do not notice a new configuration.
	rm -rf "$obj/ext"
	mkdir -p "$obj"
	make -s -C "$TREE" O="$obj" tinyconfig >/dev/null
	"$TREE/scripts/kconfig/merge_config.sh" -m -O "$obj" "$obj/.config" "$@" >/dev/null
	make -s -C "$TREE" O="$obj" olddefconfig
	local missing=0 line
	while read -r line; do
		case "$line" in CONFIG_*=*) ;; *) continue ;; esac
		grep -qx "$line" "$obj/.config" || { echo "config: $line did not stick" >&2; missing=1; }
	done < <(cat "$@")
	[ $missing = 0 ] || exit 1
	echo "$want" > "$obj/.dcd-config"
}

prepare() { fetch_tree; apply_patches; overlay; }

build() {
	local flavour=${1:-test} obj frags
	prepare
	if [ "$flavour" = debug ]; then
		obj=$BUILD/obj-debug
		frags="$REPO/kernel/test.config $REPO/kernel/debug.config"
	else
		obj=$BUILD/obj
		frags="$REPO/kernel/test.config"
	fi
	configure "$obj" $frags
	log "building $flavour kernel in $obj"
	make -s -C "$TREE" O="$obj" -j"$(nproc)" bzImage modules
	local sfx="" mods m
	[ "$flavour" = debug ] && sfx=-debug
	mods=$OUT/modules$sfx
	rm -rf "$mods"
	mkdir -p "$OUT" "$mods/real" "$mods/mock"
	cp "$obj/arch/x86/boot/bzImage" "$OUT/bzImage$sfx"
	# The kernel's own modules: the CXL stack the guest loads against
	# QEMU's device (and the KUnit module).
	# modules.order names this configuration's modules only.
	for m in $(cat "$obj/modules.order"); do
		cp "$obj/${m%.o}.ko" "$mods/real/"
	done
	# tools/testing/cxl: the same CXL drivers linked against cxl_test's
	# mocks, loaded instead of the real set for the mock device tests.
	# Built out of the source tree (MO=), one output per flavour.
	make -s -C "$TREE" O="$obj" M="$TREE/tools/testing/cxl" \
		MO="$obj/ext/cxl_test" modules
	find "$obj/ext/cxl_test" -name '*.ko' -exec cp {} "$mods/mock/" \;
	# Test-only modules loaded on top of either set.
	for m in $TEST_MODULES; do
		make -s -C "$TREE" O="$obj" M="$TREE/$m" MO="$obj/ext/$m" modules
		find "$obj/ext/$m" -name '*.ko' -exec cp {} "$mods/" \;
	done
}

save_patches() {
	rm -f "$REPO"/patches/*.patch
	mkdir -p "$REPO/patches"
	$GIT format-patch -q --no-signature --zero-commit -N -o "$REPO/patches" v7.3..HEAD
	patches_stamp > "$TREE/.dcd-patches"
	ls "$REPO/patches"
}

case "${1:-build}" in
tree) prepare ;;
build) build "${2:-test}" ;;
save-patches) save_patches ;;
*) echo "usage: $0 tree|build [debug]|save-patches" >&2; exit 2 ;;
esac
