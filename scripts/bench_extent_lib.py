#!/usr/bin/env python3
"""Benchmark the shared extent library against a cxl_test mock DCD, in one
VM run: the library's cost per offered and per released extent with 64 and
with 4096 live extents in one region, and the kernel memory per live
extent.

Costs come from the library's own counters (debugfs cxl/<dev>/dc_stats:
offer_ns over offered extents, release_ns over release records), so they
hold the library's work, the mock device's mailbox and the test policy's
callbacks, and none of the shell that injects the records.  Each measured
offer is one extent in its own offer, each release one record; the live
set stays the same size while measuring.  Memory is the growth of Slab in
/proc/meminfo while the region goes from 64 to 4096 live extents, less the
mock device's own record of each extent; the library's share is its
allocation per one-extent group, the rest is the extent's sysfs directory.

usage: scripts/bench_extent_lib.py [--kernel K] [--initrd I]
"""
import argparse
import os
import sys

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(TOP, 'scripts'), os.path.join(TOP, 'tests')]

from vm import VM  # noqa: E402
from cxl import POLICY, dc_stats, sh  # noqa: E402
from cxl_mock import (K, PLAT, T, discover, first_region,  # noqa: E402
                      mock_stats)

EXT = 32 * K      # extent size: a multiple of the mock's 4 KiB block
SAMPLE = 64       # offers and releases measured at each size
MOCK_EXTENT = 64  # the mock's own kmalloc per accepted extent (kmalloc-64)


def slab_kib(vm):
    out = sh(vm, 'grep ^Slab: /proc/meminfo')
    return int(out.split()[1])


def inject(vm, d, first, n, chain_len, knob='dc_inject_extent'):
    """Offer extents first..first+n-1 (index * EXT from the region base),
    chain_len per offer; one guest command."""
    sh(vm, f'''k={PLAT}/{d["plat"]}/{knob}
        i={first}; end={first + n}; c=0
        while [ $i -lt $end ]; do
            c=$((c + 1)); more=1
            if [ $c = {chain_len} ] || [ $((i + 1)) = $end ]; then
                more=0; c=0
            fi
            printf '%#x:%#x:0:%d\\n' $(({d["dpa"]} + i * {EXT})) {EXT} $more > $k
            i=$((i + 1))
        done''', timeout=3600)


def measure(vm, d, live):
    """Offer SAMPLE single-extent offers above the live set, then release
    them one record each; returns (ns per offered, ns per released)."""
    a = dc_stats(vm, d['plat'])
    inject(vm, d, live, SAMPLE, 1)
    b = dc_stats(vm, d['plat'])
    inject(vm, d, live, SAMPLE, 1, knob='dc_del_extent')
    c = dc_stats(vm, d['plat'])
    assert b['offered'] - a['offered'] == SAMPLE
    assert b['responses'] - a['responses'] == SAMPLE
    assert c['release_records'] - b['release_records'] == SAMPLE
    assert c['releases'] - b['releases'] == SAMPLE
    return ((b['offer_ns'] - a['offer_ns']) / SAMPLE,
            (c['release_ns'] - b['release_ns']) / SAMPLE)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--kernel')
    ap.add_argument('--initrd')
    a = ap.parse_args()
    with VM() as vm:
        vm.start(kernel=a.kernel, initrd=a.initrd, mock=True)
        vm.wait_ready()
        sh(vm, 'insmod /bin/cxl_dc_test_policy.ko')
        mems = discover(vm)
        d = first_region(vm, mems, 256 * 1024 * K)
        assert d, 'no mock DC region'
        T['bench'] = d
        sh(vm, f'echo {d["region"]} > {POLICY}/bind')
        print(f'# mock {d["plat"]} ({d["mem"]}), {d["region"]}, '
              f'{EXT // K} KiB extents, {SAMPLE} samples per figure',
              flush=True)

        inject(vm, d, 0, 64, 64)
        off64, rel64 = measure(vm, d, 64)
        # Let freed objects settle before the memory baseline.
        sh(vm, 'sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null; true')
        slab0 = slab_kib(vm)
        inject(vm, d, 64, 4096 - 64, 256)
        slab1 = slab_kib(vm)
        st = mock_stats(vm, 'bench')
        assert st['live'] == 4096 and st['violations'] == 0, st
        n = sh(vm, f'ls -d /sys/bus/cxl/devices/{d["region"]}/extent* | '
                   'wc -l').strip()
        assert int(n) == 4096, n
        off4k, rel4k = measure(vm, d, 4096)

        ls = dc_stats(vm, d['plat'])
        per_ext = (slab1 - slab0) * 1024 / (4096 - 64) - MOCK_EXTENT
        lib = ls['extent_bytes'] + ls['group_bytes']
        print(f'offer   cost per extent:  64 live {off64 / 1000:8.1f} us   '
              f'4096 live {off4k / 1000:8.1f} us   ratio {off4k / off64:.2f}')
        print(f'release cost per extent:  64 live {rel64 / 1000:8.1f} us   '
              f'4096 live {rel4k / 1000:8.1f} us   ratio {rel4k / rel64:.2f}')
        print(f'kernel memory per live extent: {per_ext:.0f} B '
              f'(library {lib} B = extent {ls["extent_bytes"]} + group '
              f'{ls["group_bytes"]}; sysfs extent directory '
              f'{per_ext - lib:.0f} B)')
        ok = off4k / off64 <= 2 and rel4k / rel64 <= 2
        print(f'target: 4096 within 2x of 64: {"met" if ok else "MISSED"}; '
              f'library memory under 512 B: '
              f'{"met" if lib < 512 else "MISSED"}; '
              f'with sysfs under 512 B: '
              f'{"met" if per_ext < 512 else "MISSED"}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
