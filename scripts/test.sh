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

# Two suites at a time, of either kernel, longest first, each in a VM of
# its own: on two cores, two TCG guests side by side get through about
# 1.3 to 1.5 times the work of one.
if [ $fail_build = 0 ]; then
	python3 tests/run.py --flavour test,debug --jobs "${TEST_JOBS:-2}" \
		| tee -a "$log"
	mark "suites(test+debug)"
fi

passed=$(grep -c '^PASS ' "$log")
failed=$(grep -c '^FAIL ' "$log")
skipped=$(grep -c '^SKIP ' "$log")
[ $fail_build = 0 ] || { echo "FAIL kernel build"; failed=$((failed + 1)); }
echo "# wall time: $(( $(date +%s) - start )) s: ${marks[*]}"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
