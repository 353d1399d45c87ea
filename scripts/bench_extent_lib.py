#!/usr/bin/env python3
"""Benchmark the shared extent library against a cxl_test mock DCD, in one
VM run: the library's cost per offered and per released extent with 64 and
with 4096 live extents in one region, the kernel memory per live
extent, and how long cxl_region_dax takes to claim a tag group.

Costs come from the library's own counters (debugfs cxl/<dev>/dc_stats:
offer_ns over offered extents, release_ns over release records), so they
hold the library's work, the mock device's mailbox and the test policy's
callbacks, and none of the shell that injects the records.  Each measured
offer is one extent in its own offer, each release one record; the live
set stays the same size while measuring.  Memory is the growth of Slab in
/proc/meminfo while the region goes from 64 to 4096 live extents, less the
mock device's own record of each extent; the library's share is its
allocation per one-extent group, the rest is the extent's sysfs directory.

The claim is timed in the guest: the write of a tag to the 0-sized seed
device's daxZ.N/uuid alone, between two trace_marker writes in the same
guest command (trace clock CLOCK_MONOTONIC), so it holds the tag's look-up
(cxl_dc_find_group()), the group's ranges given to the device and the new
seed, and none of the shell.  Each claim is then given up (size 0, as
daxctl destroy-device does) and its device deleted, so the same group is
claimed again; each figure is the median of CLAIMS claims, timed after as
many that are not (the first claims after an offer run up to twice as
long, until the caches they use are warm).  Three cases,
in a region of its own bound to cxl_region_dax: a group of 8 extents (2
MiB each, the policy's granularity) with nothing else live, a group of
64, and the same 8-extent group among 4096 live extents.  A mock region
(256 MiB) holds only 128 extents of 2 MiB, so for the last case the
claim's region is filled with one-extent tagged groups and the rest of
the 4096 are one-extent tagged groups of 32 KiB in a region of another
mock device under the test policy: all of them in the host-wide tag
registry the claim looks its tag up in.  The library's own region is
unbound first (its extents stay accepted on its device), so that the
first two cases see no other live extent.

usage: scripts/bench_extent_lib.py [--kernel K] [--initrd I]
"""
import argparse
import os
import re
import statistics
import sys
import uuid

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(TOP, 'scripts'), os.path.join(TOP, 'tests')]

from vm import VM  # noqa: E402
from cxl import (DEV, M, bind, dc_stats, read, sh,  # noqa: E402
                 tp_bind, tp_unbind,
                 wait_for)
from cxl_mock import (K, PLAT, T, chain, discover, first_region,  # noqa: E402
                      mock_stats, offer, rejects)

EXT = 32 * K      # extent size: a multiple of the mock's 4 KiB block
SAMPLE = 64       # offers and releases measured at each size
MOCK_EXTENT = 64  # the mock's own kmalloc per accepted extent (kmalloc-64)

DAX = 'cxl_region_dax'
DAXBUS = '/sys/bus/dax/devices'
TRACE = '/sys/kernel/tracing'
DAX_EXT = 2 * M   # cxl_region_dax's granularity with the mock's 4 KiB blocks
REGION = 256 * M  # a mock DC region: the smallest a root decoder maps
CLAIMS = 21       # claims timed per case: cheap, and TCG is noisy
LIVE = 4096       # live extents on the host for the third case
# A marker's 'function' is tracing_mark_write, or an address without
# kallsyms.
_MARK = re.compile(r'\s(\d+\.\d+): (?:tracing_mark_write|0x[0-9a-f]+): '
                   r'(claim|claimed)$', re.M)


def slab_kib(vm):
    out = sh(vm, 'grep ^Slab: /proc/meminfo')
    return int(out.split()[1])


def inject(vm, d, first, n, chain_len, knob='dc_inject_extent', ext=EXT,
           tag=None):
    """Offer extents first..first+n-1 (index * ext from the region base),
    chain_len per offer; untagged, or (tag: four hex digits) each under a
    tag of its own, <index as 8 hex digits>-<tag>-4000-8000-000000000000;
    one guest command."""
    fmt, arg = ('0', '') if tag is None else \
        (f'%08x-{tag}-4000-8000-000000000000', ' $i')
    sh(vm, f'''k={PLAT}/{d["plat"]}/{knob}
        i={first}; end={first + n}; c=0
        while [ $i -lt $end ]; do
            c=$((c + 1)); more=1
            if [ $c = {chain_len} ] || [ $((i + 1)) = $end ]; then
                more=0; c=0
            fi
            printf '%#x:%#x:{fmt}:%d\\n' \\
                $(({d["dpa"]} + i * {ext})) {ext}{arg} $more > $k
            i=$((i + 1))
        done''', timeout=3600)


def measure(vm, d, live, ext=EXT):
    """Offer SAMPLE single-extent offers of ext above the live set, then
    release them one record each; returns (ns per offered, ns per
    released)."""
    a = dc_stats(vm, d['plat'])
    inject(vm, d, live, SAMPLE, 1, ext=ext)
    b = dc_stats(vm, d['plat'])
    inject(vm, d, live, SAMPLE, 1, knob='dc_del_extent', ext=ext)
    c = dc_stats(vm, d['plat'])
    assert b['offered'] - a['offered'] == SAMPLE
    assert b['responses'] - a['responses'] == SAMPLE
    assert c['release_records'] - b['release_records'] == SAMPLE
    assert c['releases'] - b['releases'] == SAMPLE
    return ((b['offer_ns'] - a['offer_ns']) / SAMPLE,
            (c['release_ns'] - b['release_ns']) / SAMPLE)


def dax_bus(d):
    """(the region's dax_region directory, the view's first device)."""
    z = d['region'][len('region'):]
    return f'{DEV}/{d["region"]}/dax_region{z}/dax_region', f'dax{z}.0'


def claims(vm, d, tag, size):
    """Claim tag into the seed 2 * CLAIMS times, in one guest command, each
    claim given up and its device deleted before the next; returns the
    seconds of each of the last CLAIMS claims (the uuid write)."""
    bus, first = dax_bus(d)
    out = sh(vm, f'''echo > {TRACE}/trace
        r=0
        while [ $r -lt {2 * CLAIMS} ]; do
            read s < {bus}/seed
            echo claim > {TRACE}/trace_marker
            echo {tag} > {DAXBUS}/$s/uuid
            echo claimed > {TRACE}/trace_marker
            read sz < {DAXBUS}/$s/size; echo size $sz
            echo 0 > {DAXBUS}/$s/size
            [ $s = {first} ] || echo $s > {bus}/delete
            r=$((r + 1))
        done
        cat {TRACE}/trace''', timeout=600)
    sizes = re.findall(r'^size (\d+)$', out, re.M)
    assert sizes == [str(size)] * 2 * CLAIMS, out
    t = _MARK.findall(out)
    assert [w for _, w in t] == ['claim', 'claimed'] * 2 * CLAIMS, out
    return [float(b) - float(a)
            for (a, _), (b, _) in zip(t[::2], t[1::2])][CLAIMS:]


def offer_group(vm, d, first, n):
    """Offer extents first..first+n-1 of DAX_EXT as one tag group in one
    offer; wait until it is free capacity of the dax view; its tag."""
    tag = str(uuid.uuid4())
    bus, _ = dax_bus(d)
    before = int(read(vm, f'{bus}/available_size'))
    recs, n_resp = offer(vm, 'dax', chain(
        [(d['dpa'] + (first + i) * DAX_EXT, DAX_EXT) for i in range(n)], tag))
    assert n_resp == 1 and not rejects(recs), recs
    wait_for('free capacity', lambda: int(read(
        vm, f'{bus}/available_size')) == before + n * DAX_EXT)
    return tag


def live_extents(vm):
    return int(sh(vm, f'ls -d {DEV}/region*/extent* 2>/dev/null | wc -l; '
                      'true').strip())


def dax_claim(vm, mems, skip):
    """The claim times, {case: [seconds]}, in a region on a mock memdev
    not in skip."""
    d = first_region(vm, mems, REGION, skip=skip)
    assert d, 'no mock DC region for cxl_region_dax'
    T['dax'] = d
    assert bind(vm, d['region'], DAX) == DAX
    print(f'# claim: {DAX} on {d["region"]} ({d["plat"]}), '
          f'{DAX_EXT // M} MiB extents, median of {CLAIMS} claims',
          flush=True)
    sh(vm, f'echo mono > {TRACE}/trace_clock')
    t = {}
    # Nothing else live on the host: the library's region was unbound.
    assert live_extents(vm) == 0
    tag8 = offer_group(vm, d, 0, 8)
    t['8'] = claims(vm, d, tag8, 8 * DAX_EXT)
    tag64 = offer_group(vm, d, 8, 64)
    t['64'] = claims(vm, d, tag64, 64 * DAX_EXT)
    # Fill the claim's region with one-extent tagged groups, then another
    # mock device's region under the test policy up to LIVE.
    bus, _ = dax_bus(d)
    used, full = 8 + 64, REGION // DAX_EXT
    inject(vm, d, used, full - used, full - used, ext=DAX_EXT, tag='da00')
    wait_for('region full', lambda: int(read(
        vm, f'{bus}/available_size')) == REGION)
    f = first_region(vm, mems, REGION, skip=skip + (d['plat'],))
    assert f, 'no second mock DC region'
    T['fill'] = f
    sh(vm, tp_bind(f["region"]))
    inject(vm, f, 0, LIVE - full, 256, tag='f000')
    wait_for('live extents', lambda: live_extents(vm) == LIVE, 600)
    print(f'# {LIVE} live: {full} in {d["region"]} (the 8- and 64-extent '
          f'groups and {full - used} of one extent), {LIVE - full} in '
          f'{f["region"]} ({f["plat"]}, test policy, one-extent groups)',
          flush=True)
    t[str(LIVE)] = claims(vm, d, tag8, 8 * DAX_EXT)
    for dev in ('dax', 'fill'):
        st = mock_stats(vm, dev)
        assert st['violations'] == 0, st['last_violation']
    return t


def bench_args(doc):
    """The command line of a mock benchmark: --kernel and --initrd."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument('--kernel')
    ap.add_argument('--initrd')
    return ap.parse_args()


def boot_mock(vm, args):
    """Boot vm on cxl_test's mock devices (args.kernel, args.initrd) with
    the test policy loaded; the mock memdevs (discover())."""
    vm.start(kernel=args.kernel, initrd=args.initrd, mock=True)
    vm.wait_ready()
    sh(vm, 'insmod /bin/cxl_dc_test_policy.ko')
    return discover(vm)


def main():
    a = bench_args(__doc__)
    with VM() as vm:
        mems = boot_mock(vm, a)
        d = first_region(vm, mems, 256 * 1024 * K)
        assert d, 'no mock DC region'
        T['bench'] = d
        sh(vm, tp_bind(d["region"]))
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
              f'{"met" if per_ext < 512 else "MISSED"}', flush=True)

        # The library forgets its region's extents (they stay accepted on
        # the mock device): the claim's first cases see nothing else live.
        sh(vm, tp_unbind(d["region"]), timeout=600)
        t = dax_claim(vm, mems, (d['plat'], 'cxl_mem.2'))
        med = {k: statistics.median(v) for k, v in t.items()}
        for k, title in (('8', 'group of 8 extents'),
                         ('64', 'group of 64 extents'),
                         (str(LIVE), f'8 among {LIVE} live')):
            print(f'claim {title:22s} {med[k] * 1000:7.2f} ms   (min '
                  f'{min(t[k]) * 1000:.2f}, max {max(t[k]) * 1000:.2f})')
        r64 = med['64'] / med['8']
        r4k = med[str(LIVE)] / med['8']
        print(f'claim ratio: 64 / 8 extents {r64:.2f}   '
              f'{LIVE} live / 8 {r4k:.2f}')
        print(f'target: claim among {LIVE} live within 2x of 8 extents: '
              f'{"met" if r4k <= 2 else "MISSED"}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
