#!/usr/bin/env python3
"""Benchmark the extent library at scale against cxl_test mock DCDs, in one
VM run: 65,536 live extents across three regions, an offer as long as one
chain may be, and the recovery of a device's whole extent list at bind.

- Cost per extent: the library's own counters (debugfs cxl/<dev>/dc_stats,
  offer_ns over offered extents, release_ns over release records), as in
  scripts/bench_extent_lib.py: 64 one-extent offers above the live set,
  then 64 one-record releases of them, first with 64 live extents on the
  host, then with 65,536 (21,846, 21,845 and 21,845 in three regions of
  256 MiB, two of them on one mock memdev, as many as cxl_test's one-way
  windows map; all under the test policy, one-extent groups of 4 KiB).
- Memory per extent: the growth of Slab in /proc/meminfo while the host
  goes from 4,096 to 65,536 live extents, less the mock device's own
  record of each (its dc_stats extent_bytes) and the test policy's entry
  for each group (32 B); the library's share is its
  allocation per one-extent group, the rest is the extent's sysfs
  directory.
- A chain at the cap (CXL_DC_CHAIN_MAX, 512 records): one offer of 512
  extents among 4,096 live; the host must answer it with one response,
  split over as many Add DC Response commands as the mailbox payload
  needs (the mock checks every part, and counts the commands).
- Recovery: the test policy is unbound from a region (its extents stay
  accepted on the device) and bound again; the library reads the
  device's list with Get DC Extent List, in as many commands as the
  payload needs, and checks and rebuilds every group.  Its counter
  recover_ns times that (the policy's activations are not in it); the
  bind's wall time in the guest is printed beside it.  Once with 4,096
  extents on the device, once with 65,536 (the region's whole 256 MiB in
  4 KiB extents; the other regions are unbound first).  n log n predicts
  a ratio of 21.3, linear 16.
- A TCG guest's speed drifts within a run, so the small cases are
  measured again at the end (the device takes back all but 4,096, then
  all but 64, extents by forced release while the region is unbound):
  ratios are against the mean of the first and the last baseline, and
  against each.

usage: scripts/bench_scale.py [--kernel K] [--initrd I]
"""
import math
import os
import re
import sys

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(TOP, 'scripts'), os.path.join(TOP, 'tests')]

from vm import VM  # noqa: E402
from cxl import M, dc_stats, sh, tp_bind, tp_unbind  # noqa: E402
from cxl_mock import (AUTO_REGION_MEMS, K, PLAT, T, create_region,  # noqa: E402
                      mock_stats, one_way_roots)
from bench_extent_lib import (SAMPLE, bench_args, boot_mock,  # noqa: E402
                              inject, measure, slab_kib)

EXT = 4 * K            # the mock's block size: the most extents per region
REGION = 256 * M       # 65,536 extents of 4 KiB
REGIONS = 3            # as many as cxl_test's one-way windows map
SMALL, LARGE = 4096, 65536
# 65,536 live, spread over the regions (the first one the largest)
PER_REGION = [LARGE - (REGIONS - 1) * (LARGE // REGIONS)] + \
    [LARGE // REGIONS] * (REGIONS - 1)
CHAIN = 512            # CXL_DC_CHAIN_MAX
FILL_CHAIN = 256       # records per offer while filling
TRACE = '/sys/kernel/tracing'
TP_GROUP = 32          # the test policy's own entry per group (kmalloc-32)
_MARK = re.compile(r'\s(\d+\.\d+): (?:tracing_mark_write|0x[0-9a-f]+): '
                   r'(bind|bound)$', re.M)


def make_regions(vm, mems):
    """REGIONS one-way DC regions of REGION, two on each mock memdev
    (endpoint decoders 0 and 1: the mock's DC partition holds 512 MiB),
    none on the sharable memdev or on those of cxl_test's auto region."""
    out = []
    for plat in sorted(mems):
        if plat in AUTO_REGION_MEMS or plat == 'cxl_mem.2':
            continue
        for index in (0, 1):
            d = next((d for d in (create_region(vm, mems[plat], root, REGION,
                                                index)
                                  for root in one_way_roots(vm)) if d), None)
            if not d:
                break
            out.append(d)
            if len(out) == REGIONS:
                return out
    raise AssertionError(f'only {len(out)} mock DC regions of {REGION}')


def live_on(vm, d):
    return int(sh(vm, f'ls -d /sys/bus/cxl/devices/{d["region"]}/extent* '
                      '2>/dev/null | wc -l; true').strip())


def fill(vm, d, start, end, check=True):
    """Offer extents start..end-1 of region d, FILL_CHAIN per offer; then
    count the region's extent directories, unless check is False (the
    listing brings a dentry and an inode per extent into the slab)."""
    if end > start:
        inject(vm, d, start, end - start, FILL_CHAIN, ext=EXT)
    n = live_on(vm, d) if check else end
    assert n == end, (d['region'], n, end)


def rebind(vm, d):
    """Unbind the test policy from region d and bind it again: see
    recover()."""
    sh(vm, tp_unbind(d['region']), timeout=1800)
    return recover(vm, d)


def shrink(vm, d, n):
    """Unbind the test policy from region d, and let its device take back
    every extent from index n on by one forced release (the host holds
    none of them then)."""
    sh(vm, tp_unbind(d['region']), timeout=1800)
    sh(vm, f'echo {d["dpa"] + n * EXT:#x}:{REGION - n * EXT:#x}:0 > '
           f'{PLAT}/{d["plat"]}/dc_force_del_extent', timeout=600)
    assert mock_stats(vm, d['key'])['live'] == n


def recover(vm, d):
    """Bind the test policy to region d: (the library's recover_ns,
    extents recovered, Get DC Extent List commands the device saw, the
    bind's wall time in seconds)."""
    a, ma = dc_stats(vm, d['plat']), mock_stats(vm, d['key'])
    out = sh(vm, f'''echo > {TRACE}/trace
        echo bind > {TRACE}/trace_marker
        {tp_bind(d['region'])}
        echo bound > {TRACE}/trace_marker
        cat {TRACE}/trace''', timeout=1800)
    b, mb = dc_stats(vm, d['plat']), mock_stats(vm, d['key'])
    t = dict((w, float(s)) for s, w in _MARK.findall(out))
    return (b['recover_ns'] - a['recover_ns'],
            b['recovered'] - a['recovered'],
            mb['list_cmds'] - ma['list_cmds'], t['bound'] - t['bind'])


def chain_at_cap(vm, d, first):
    """One offer of CHAIN extents at index first of region d: (us per
    extent, responses, Add DC Response commands)."""
    a, ma = dc_stats(vm, d['plat']), mock_stats(vm, d['key'])
    inject(vm, d, first, CHAIN, CHAIN, ext=EXT)
    b, mb = dc_stats(vm, d['plat']), mock_stats(vm, d['key'])
    assert b['offered'] - a['offered'] == CHAIN
    assert mb['accepted'] - ma['accepted'] == CHAIN, (ma, mb)
    assert mb['violations'] == 0, mb['last_violation']
    # Given back, so that the live set is what it was.
    inject(vm, d, first, CHAIN, 1, knob='dc_del_extent', ext=EXT)
    return ((b['offer_ns'] - a['offer_ns']) / CHAIN / 1000,
            mb['responses'] - ma['responses'],
            mb['response_cmds'] - ma['response_cmds'])


def main():
    a = bench_args(__doc__)
    with VM() as vm:
        mems = boot_mock(vm, a)
        sh(vm, f'echo mono > {TRACE}/trace_clock')
        regions = make_regions(vm, mems)
        for i, d in enumerate(regions):
            d['key'] = f'scale{i}'
            T[d['key']] = d
            sh(vm, tp_bind(d['region']))
        r0 = regions[0]
        print(f'# {REGIONS} regions of {REGION // M} MiB under the test '
              f'policy: ' + ', '.join(f'{d["region"]} ({d["plat"]})'
                                      for d in regions) +
              f'; {EXT // K} KiB extents, one-extent groups; '
              f'{SAMPLE} samples per cost', flush=True)

        fill(vm, r0, 0, 64)
        off64, rel64 = measure(vm, r0, 64, ext=EXT)

        fill(vm, r0, 64, SMALL)
        us_chain, n_resp, n_cmds = chain_at_cap(vm, r0, SMALL)
        rec_small = rebind(vm, r0)

        sh(vm, 'sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null; true')
        slab0 = slab_kib(vm)
        for d, n in zip(regions, PER_REGION):
            fill(vm, d, SMALL if d is r0 else 0, n, check=False)
        slab1 = slab_kib(vm)
        live = sum(live_on(vm, d) for d in regions)
        assert live == LARGE, live
        off_l, rel_l = measure(vm, r0, PER_REGION[0], ext=EXT)

        ls = dc_stats(vm, r0['plat'])
        mock_ext = mock_stats(vm, r0['key'])['extent_bytes']
        per_ext = ((slab1 - slab0) * 1024 / (LARGE - SMALL) - mock_ext -
                   TP_GROUP)
        lib = ls['extent_bytes'] + ls['group_bytes']

        # The whole region in extents, on one device, and nothing else live:
        # the other region on r0's memdev is unbound and its capacity taken
        # back by one forced release (the host holds none of it then).
        for d in regions[1:]:
            sh(vm, tp_unbind(d['region']), timeout=1800)
        for d in regions[1:]:
            if d['plat'] == r0['plat']:
                sh(vm, f'echo {d["dpa"]:#x}:{REGION:#x}:0 > '
                       f'{PLAT}/{d["plat"]}/dc_force_del_extent', timeout=600)
        assert mock_stats(vm, r0['key'])['live'] == PER_REGION[0]
        fill(vm, r0, PER_REGION[0], LARGE)
        rec_large = rebind(vm, r0)
        # The small cases again at the end, after the host's memory grew:
        # a TCG guest's speed drifts within a run, and the two baselines
        # show by how much.
        shrink(vm, r0, SMALL)
        rec_small2 = recover(vm, r0)
        shrink(vm, r0, 64)
        recover(vm, r0)
        off64b, rel64b = measure(vm, r0, 64, ext=EXT)
        for d in regions:
            st = mock_stats(vm, d['key'])
            assert st['violations'] == 0, st['last_violation']

        # Against the mean of the first and the last baseline.
        off0, rel0 = (off64 + off64b) / 2, (rel64 + rel64b) / 2
        for what, a, b, big in (('offer  ', off64, off64b, off_l),
                                ('release', rel64, rel64b, rel_l)):
            print(f'{what} cost per extent:  64 live {a / 1000:6.1f} us '
                  f'(at the end {b / 1000:6.1f} us)   {LARGE} live '
                  f'{big / 1000:6.1f} us   ratio {2 * big / (a + b):.2f} '
                  f'(against each: {big / a:.2f}, {big / b:.2f})')
        ok = off_l / off0 <= 2 and rel_l / rel0 <= 2
        print(f'target: {LARGE} live within 2x of 64: '
              f'{"met" if ok else "MISSED"}')
        print(f'kernel memory per live extent: {per_ext:.0f} B (library '
              f'{lib} B = extent {ls["extent_bytes"]} + group '
              f'{ls["group_bytes"]}; sysfs extent directory '
              f'{per_ext - lib:.0f} B; the mock device\'s own '
              f'{mock_ext} B and the test policy\'s {TP_GROUP} B not '
              f'counted)')
        print(f'chain of {CHAIN} records: {us_chain:.1f} us per extent, '
              f'{n_resp} response in {n_cmds} Add DC Response command(s) '
              f'(mailbox payload: the mock\'s), 0 violations')
        for n, (ns, got, cmds, wall), when in (
                (SMALL, rec_small, 'first'), (LARGE, rec_large, ''),
                (SMALL, rec_small2, 'last')):
            assert got == n, (n, got)
            print(f'recovery of {n:5d} extents: {ns / 1e6:8.1f} ms '
                  f'({ns / n / 1000:.1f} us per extent, {cmds} Get DC '
                  f'Extent List commands; bind {wall * 1000:.0f} ms) '
                  f'{when}')
        small = (rec_small[0] + rec_small2[0]) / 2
        ratio = rec_large[0] / small
        nlogn = LARGE * math.log2(LARGE) / (SMALL * math.log2(SMALL))
        print(f'recovery ratio {LARGE} / {SMALL} (the mean of both): '
              f'{ratio:.1f} (linear '
              f'{LARGE / SMALL:.0f}, n log n {nlogn:.1f}, n^2 '
              f'{(LARGE / SMALL) ** 2:.0f}): '
              f'{"O(n log n) met" if ratio <= 1.5 * nlogn else "MISSED"}',
              flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
