"""Helpers for the suites and benchmarks that drive tools/testing/cxl's
mock Dynamic Capacity Devices (tools/testing/cxl/test/mem_dc.c) in a guest
booted with the cxl_test module set (scripts/vm.py --mock)."""
from cxl import (DC_EVENTS, DEV, dc_region_script, read, sh,
                 sysfs_extents, trace_on, trace_records, wait_for)

PLAT = '/sys/bus/platform/devices'
K = 1 << 10

# The mock memdevs and DC regions a suite works on, found at setup:
# name -> dict(mem, plat, endpoint, region, decoder, dpa (DPA base)).
T = {}


def knob(vm, dev, name, *recs):
    """Write records to a mock knob, one write each, in one guest command."""
    cmds = [f'echo {r} > {PLAT}/{T[dev]["plat"]}/{name}' for r in recs]
    sh(vm, ' && '.join(cmds), timeout=240)


def rec(dpa, length, tag=None, more=0, seq=None):
    s = f'{dpa:#x}:{length:#x}:{tag or 0}:{more}'
    return s if seq is None else f'{s}:{seq}'


def chain(extents, tag=None, seqs=None):
    """Records of one offer: More set on all but the last."""
    n = len(extents)
    return [rec(d, ln, tag, int(i < n - 1), None if seqs is None else seqs[i])
            for i, (d, ln) in enumerate(extents)]


def mock_stats(vm, dev):
    out = sh(vm, f'cat {PLAT}/{T[dev]["plat"]}/dc_stats')
    st = {}
    for ln in out.splitlines():
        k, _, v = ln.partition(' ')
        st[k] = int(v) if v.lstrip('-').isdigit() else v
    return st


def mock_extents(vm, dev):
    """The mock device's accepted extents, whole: read with Get DC Extent
    List (the mock's own dc_extents file stops at a page)."""
    out = sh(vm, f'cat /sys/kernel/debug/cxl/{T[dev]["plat"]}/dc_extents')
    return [(int(a, 0), int(b, 0), u, int(s)) for a, b, u, s in
            (ln.split() for ln in out.splitlines() if ln.strip())]


def agree(vm, dev):
    """The mock device's accepted list equals the region's extent dirs."""
    d = T[dev]
    devl = sorted((a, b, u) for a, b, u, _ in mock_extents(vm, dev))
    ext = sysfs_extents(vm, d['region']).values()
    guest = sorted((e['dpa'], e['length'], e['uuid']) for e in ext)
    assert devl == guest, f'device {devl} != sysfs {guest}'
    assert all(e['dpa'] == e['offset'] + d['dpa'] for e in ext), ext
    st = mock_stats(vm, dev)
    assert st['violations'] == 0, st['last_violation']
    assert st['pending_offers'] == 0, st
    return devl


def offer(vm, dev, records, knob_name='dc_inject_extent'):
    """Offer records; returns (trace records, responses sent for it)."""
    before = mock_stats(vm, dev)['responses']
    trace_on(vm, *DC_EVENTS)
    knob(vm, dev, knob_name, *records)
    wait_for('response', lambda: mock_stats(vm, dev)['responses'] > before)
    return trace_records(vm), mock_stats(vm, dev)['responses'] - before


def rejects(recs):
    return [r['reason'] for r in recs if r['event'] == 'cxl_dc_reject']


def accepted(recs):
    return [int(r['dpa'], 0) for r in recs if r['event'] == 'cxl_dc_accept']


def discover(vm):
    """Two mock memdevs that can each hold a one-way DC region under the
    same root decoder: the sharable one (cxl_mem.1) and another."""
    out = sh(vm, f'''cd {DEV}
        for e in endpoint*; do
            m=$(basename $(readlink -f $e/uport))
            p=$(basename $(dirname $(readlink -f $m)))
            echo $m $p $e $(readlink -f $m)
        done''')
    mems = {}
    for ln in out.splitlines():
        m, plat, ep, path = ln.split()
        mems[plat] = dict(mem=m, plat=plat, endpoint=ep, path=path)
    return mems


def create_region(vm, d, root, size, index=0):
    """A one-way DC region of size on memdev d under root decoder root,
    through the memdev's endpoint decoder index (its DPA follows those of
    the decoders before it), or None (and nothing left behind) when it
    does not fit there."""
    ep = d['endpoint'].replace('endpoint', 'decoder') + f'.{index}'
    region = sh(vm, f'cat {DEV}/{root}/create_dynamic_ram_1_region').strip()
    rc, out = vm.run(dc_region_script(region, size, root, ep) +
                     f'cat {ep}/dpa_resource')
    if rc:
        vm.run(f'cd {DEV}; echo {region} > {root}/delete_region; '
               f'echo 0 > {ep}/dpa_size')
        return None
    return dict(d, region=region, decoder=ep, root=root,
                dpa=int(out.split()[-1], 0))


# cxl_test's auto region lives on these mock memdevs: leave them alone.
AUTO_REGION_MEMS = ('cxl_mem.0', 'cxl_mem.4')


def first_region(vm, mems, size, skip=()):
    """A one-way DC region of size on the first mock memdev (by name; none
    in skip or in AUTO_REGION_MEMS) under the first root decoder where one
    fits, or None."""
    for root in one_way_roots(vm):
        for plat in sorted(mems):
            if plat in AUTO_REGION_MEMS or plat in skip:
                continue
            d = create_region(vm, mems[plat], root, size)
            if d:
                return d
    return None


def shared_and_plain_regions(vm, mems, size):
    """Two one-way DC regions of size under one root decoder: one on the
    sharable memdev (cxl_mem.2), one on another mock memdev."""
    roots = one_way_roots(vm)
    assert roots, 'no one-way RAM root decoder'
    for root in roots:
        a = create_region(vm, mems['cxl_mem.2'], root, size)
        if not a:
            continue
        for plat in sorted(mems):
            if plat == 'cxl_mem.2' or plat in AUTO_REGION_MEMS:
                continue
            b = create_region(vm, mems[plat], root, size)
            if b:
                return a, b
    raise AssertionError(f'no two DC regions fit: {mems} {roots}')


def one_way_roots(vm):
    """Root decoders that can hold a one-way RAM-class region."""
    return sh(vm, f'cd {DEV}; for d in decoder0.*; do '
                  '[ "$(cat $d/interleave_ways)" = 1 ] && '
                  '[ "$(cat $d/cap_ram)" = 1 ] && echo $d; done; true').split()


def eq(got, want):
    assert got == want, (got, want)


def dax_view(d):
    """regionZ/dax_regionZ of region d bound to cxl_region_dax."""
    return f'{DEV}/{d["region"]}/dax_region{d["region"][len("region"):]}'


def dax_avail(vm, d):
    return int(read(vm, f'{dax_view(d)}/dax_region/available_size'))


KMEMLEAK = '/sys/kernel/debug/kmemleak'


def kmemleak_armed(vm):
    """kmemleak is there (the debug kernel) and has not turned itself off."""
    return vm.run(f'[ -e {KMEMLEAK} ] && cat {KMEMLEAK} >/dev/null')[0] == 0


def kmemleak_clear(vm):
    """Forget the leaks kmemleak reported so far (the suite's end fails on
    them anyway): what kmemleak_leaks() lists after this is new, or was
    not yet reported.  No scan here: a scan costs about 20 s on the debug
    kernel under TCG."""
    sh(vm, f'echo clear > {KMEMLEAK}', timeout=60)


def kmemleak_leaks(vm):
    """Suspects since kmemleak_clear(): an object is reported once it is
    unreferenced at a scan and 5 s old, hence one scan after 6 s."""
    return sh(vm, f'sleep 6 && echo scan > {KMEMLEAK} && cat {KMEMLEAK}',
              timeout=600).strip()
