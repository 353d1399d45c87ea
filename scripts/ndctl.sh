#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Upstream's own CXL test suite: fetch ndctl's source from Debian's source
# package (trixie, ndctl 81; through a private apt state, so the host's apt
# configuration is not changed), build it with meson, and stage it for the
# guest initramfs under opt/ndctl/:
#
#   opt/ndctl/bin/{ndctl,cxl,daxctl}   built with an rpath to opt/ndctl/lib
#   opt/ndctl/lib/                     libndctl, libcxl, libdaxctl
#   opt/ndctl/test/                    ndctl's test scripts, unchanged
#   opt/ndctl/env.sh                   tests/guest/ndctl-env.sh
#
# Prints the staging directory; builds once, then only re-stages env.sh.
#
#   scripts/ndctl.sh [STAGE_DIR]
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$REPO/build}
NDCTL_VERSION=81
SRC=$BUILD/ndctl-src
OBJ=$BUILD/ndctl-obj
STAGE=${1:-$BUILD/ndctl-stage}
PREFIX=/opt/ndctl

log() { echo "[ndctl] $*" >&2; }

fetch() {
	local st=$BUILD/apt
	[ -f "$SRC/ndctl-$NDCTL_VERSION/meson.build" ] && return 0
	log "fetching ndctl $NDCTL_VERSION source (Debian trixie)"
	mkdir -p "$SRC" "$st/lists-ndctl/partial" "$st/cache/archives/partial"
	echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
		> "$st/sources-ndctl.list"
	local A=(-q -o Dir::Etc::SourceList="$st/sources-ndctl.list"
		-o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists="$st/lists-ndctl"
		-o Dir::Cache="$st/cache" -o Dir::State::status=/dev/null
		-o APT::Sandbox::User=root)
	apt-get "${A[@]}" update >/dev/null
	# Only the upstream tarball is needed (apt checks it against the
	# index); the mirror here lacks the .dsc and Debian's packaging.
	(cd "$SRC" && apt-get "${A[@]}" source --download-only ndctl >/dev/null 2>&1) || true
	(cd "$SRC" && tar -xf ndctl_"$NDCTL_VERSION".orig.tar.*) ||
		{ log "no ndctl $NDCTL_VERSION source from trixie"; exit 1; }
}

build() {
	[ -x "$OBJ/cxl/cxl" ] && [ -x "$STAGE$PREFIX/bin/cxl" ] && return 0
	log "building ndctl $NDCTL_VERSION"
	rm -rf "$OBJ" "$STAGE"
	# The test scripts are staged by hand below (the CXL ones need no
	# compiled helper).  No docs, no systemd units: the guest has neither.
	LDFLAGS="-Wl,-rpath,$PREFIX/lib" meson setup -Dwarning_level=0 "$OBJ" \
		"$SRC/ndctl-$NDCTL_VERSION" --prefix=$PREFIX --libdir=$PREFIX/lib \
		-Drootprefix=$PREFIX -Dsysconfdir=/etc \
		-Diniparserdir=/usr/include/iniparser -Ddocs=disabled \
		-Dasciidoctor=disabled -Dsystemd=disabled -Dkeyutils=enabled \
		-Dlibtracefs=enabled >/dev/null
	ninja -C "$OBJ" >/dev/null
	DESTDIR=$STAGE meson install -C "$OBJ" --quiet >/dev/null
	mkdir -p "$STAGE$PREFIX/test"
	cp -a "$SRC/ndctl-$NDCTL_VERSION"/test/* "$STAGE$PREFIX/test/"
	# meson runs a script through its #! line whatever its mode
	chmod +x "$STAGE$PREFIX"/test/*.sh
	rm -rf "$STAGE$PREFIX/include" "$STAGE$PREFIX/share" "$STAGE$PREFIX/lib/pkgconfig"
}

fetch
build
install -m 755 "$REPO/tests/guest/ndctl-env.sh" "$STAGE$PREFIX/env.sh"
echo "$STAGE"
