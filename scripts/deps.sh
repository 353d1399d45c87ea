#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Install what building and testing need on Debian 12: the kernel build
# tools, busybox-static and daxctl for the guest, what ndctl's CXL test
# suite needs to build (scripts/ndctl.sh) and to run (bash, jq, kmod,
# uuidgen, keyctl), and QEMU 10.0 from bookworm-backports
# (its CXL Dynamic Capacity emulation).  Does nothing when all is there.
set -euo pipefail

PKGS="build-essential bc bison flex libelf-dev libssl-dev cpio kmod \
	busybox-static python3 python3-ply python3-git perl gzip xz-utils git dwarves \
	daxctl meson ninja-build pkg-config libkmod-dev libudev-dev uuid-dev \
	libjson-c-dev libkeyutils-dev libiniparser-dev libtraceevent-dev \
	libtracefs-dev jq uuid-runtime keyutils"
QEMU_VERSION=1:10.0

missing=""
for p in $PKGS; do
	dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
qemu=$(dpkg-query -W -f='${Version}' qemu-system-x86 2>/dev/null || true)
case "$qemu" in $QEMU_VERSION.*) ;; *) missing="$missing qemu" ;; esac
[ -z "$missing" ] && exit 0

echo "[deps] installing:$missing" >&2
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
list=/etc/apt/sources.list.d/bookworm-backports.list
if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
	echo "deb http://deb.debian.org/debian bookworm-backports main" |
		$SUDO tee "$list" >/dev/null
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >/dev/null
$SUDO apt-get install -y -q --no-install-recommends $PKGS >/dev/null
$SUDO apt-get install -y -q --no-install-recommends -t bookworm-backports \
	qemu-system-x86 >/dev/null
