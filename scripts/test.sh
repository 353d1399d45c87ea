#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# What `make test` runs: build both kernels, run KUnit and every
# end-to-end suite on each, and end with one line 'N passed, N failed'.
set -uo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
fail_build=0

# Where the wall time goes: one mark per phase, printed at the end.
marks=()
mark() { marks+=("$1 $(( $(date +%s) - ${last:-$start} ))s"); last=$(date +%s); }

make --no-print-directory kernel || fail_build=1
mark "setup+build(test)"
make --no-print-directory kernel DEBUG=1 || fail_build=1
mark "build(debug)"

if [ $fail_build = 0 ]; then
	python3 tests/run.py --flavour test --kernel out/bzImage | tee -a "$log"
	mark "suites(test)"
	python3 tests/run.py --flavour debug --kernel out/bzImage-debug \
		--initrd out/initramfs-debug.cpio.gz | tee -a "$log"
	mark "suites(debug)"
fi

passed=$(grep -c '^PASS ' "$log")
failed=$(grep -c '^FAIL ' "$log")
skipped=$(grep -c '^SKIP ' "$log")
[ $fail_build = 0 ] || { echo "FAIL kernel build"; failed=$((failed + 1)); }
echo "# wall time: $(( $(date +%s) - start )) s: ${marks[*]}"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
