"""cxl_region_sysram in `tagged` mode, against a tools/testing/cxl mock DCD
(QEMU cannot send tags): a tag set hot-plugs as one unit and goes as one
unit, whichever of its extents the device names.  The mock's host physical
addresses have no memory behind them, so the region adds memory offline
(online_type `offline`): memory blocks and /proc/iomem show what was
plugged, and the mock checks every response and release it receives."""
import uuid

from cxl import (DC_EVENTS, DEV, M, SYSRAM, bind, driver_of, iomem,
                 memory_blocks, read, region_base, sh, sysfs_extents,
                 trace_on, trace_records, wait_for)
from cxl_mock import (T, accepted, agree, chain, discover, first_region,
                      knob, mock_stats, offer, rec, rejects)

# Nothing backs the mock's addresses: plug, never online.  The module
# parameter sets it before the first bind, and for every re-bind.
VM_ARGS = {'mock': True,
           'extra_append': f'{SYSRAM}.online_type=offline'}
B = 128 * M            # memory block size of the guest
SIZE = 4 * B           # the region: the mock's whole DC partition
RES = 'System RAM (cxl_region_sysram)'
S = {}


def _blocks(vm):
    return memory_blocks(vm, S['base'], SIZE)


def _want_blocks(extents):
    """Block numbers of extents given as (offset in region, length)."""
    return sorted((S['base'] + off) // B + i
                  for off, ln in extents for i in range(ln // B))


def _ranges(extents):
    return sorted((S['base'] + off, S['base'] + off + ln - 1)
                  for off, ln in extents)


def _dpa(off):
    return T['sysram']['dpa'] + off


def test_setup(vm):
    assert int(read(vm, '/sys/devices/system/memory/block_size_bytes'),
               16) == B
    mems = discover(vm)
    # cxl_mem.2 is sharable: its tag sets need sequence numbers (mock_dc.py).
    d = first_region(vm, mems, SIZE, skip=('cxl_mem.2',))
    assert d, f'no DC region of {SIZE:#x} fits: {mems}'
    T['sysram'] = d
    r = d['region']
    S['base'] = region_base(vm, r)
    assert S['base'] % B == 0, hex(S['base'])
    assert bind(vm, r, SYSRAM) == SYSRAM
    assert read(vm, f'{DEV}/{r}/online_type') == 'offline'
    sh(vm, f'echo tagged > {DEV}/{r}/tag_mode')
    assert read(vm, f'{DEV}/{r}/tag_mode') == 'tagged'
    assert _blocks(vm) == {}


def test_untagged_extent_rejected(vm):
    recs, n = offer(vm, 'sysram', chain([(_dpa(0), B)]))
    assert n == 1 and not accepted(recs)
    assert rejects(recs) == ['wrong tag kind for region'], recs
    assert _blocks(vm) == {} and iomem(vm, RES) == []
    agree(vm, 'sysram')


def test_set_with_one_bad_extent_rejected_whole(vm):
    """One extent of the set is not memory block aligned: none of the set
    is plugged, and the device hears one answer accepting nothing."""
    tag = str(uuid.uuid4())
    recs, n = offer(vm, 'sysram', chain(
        [(_dpa(0), B), (_dpa(B), B // 2)], tag))
    assert n == 1 and not accepted(recs), recs
    assert 'not policy aligned' in rejects(recs), rejects(recs)
    assert _blocks(vm) == {} and iomem(vm, RES) == []
    agree(vm, 'sysram')


def test_tag_set_plugs_as_one_unit(vm):
    """Three extents of one tag, offered out of DPA order: every block of
    the set is plugged, as one group, after the one response."""
    tag = str(uuid.uuid4())
    ext = [(2 * B, B), (0, B), (3 * B, B)]
    recs, n = offer(vm, 'sysram', chain([(_dpa(o), ln) for o, ln in ext],
                                        tag))
    assert n == 1 and accepted(recs) == [_dpa(o) for o, _ in ext], recs
    want = _want_blocks(ext)
    wait_for('set plugged', lambda: sorted(_blocks(vm)) == want)
    assert set(_blocks(vm).values()) == {'offline'}
    assert sorted(iomem(vm, RES)) == _ranges(ext)
    got = sysfs_extents(vm, T['sysram']['region'])
    assert sorted((e['offset'], e['uuid'], e['state'])
                  for e in got.values()) == sorted(
        (o, tag, 'active') for o, _ in ext)
    # Arrival order numbers the set (it is not sharable).
    assert sorted((e['offset'], e['seq']) for e in got.values()) == [
        (0, 1), (2 * B, 0), (3 * B, 2)]
    S['tag'], S['ext'] = tag, ext
    agree(vm, 'sysram')


def test_release_of_one_extent_takes_the_set(vm):
    """The device asks for one extent of the set: the host offlines and
    removes the whole set, then gives all of it back in one Release DC."""
    before = mock_stats(vm, 'sysram')
    trace_on(vm, *DC_EVENTS)
    knob(vm, 'sysram', 'dc_del_extent', rec(_dpa(0), B, S['tag']))
    wait_for('Release DC', lambda: mock_stats(vm, 'sysram')['releases'] >
             before['releases'], timeout=120)
    st = mock_stats(vm, 'sysram')
    assert st['releases'] - before['releases'] == 1, st
    assert st['released'] - before['released'] == 3, st
    assert _blocks(vm) == {} and iomem(vm, RES) == []
    assert sysfs_extents(vm, T['sysram']['region']) == {}
    rel = trace_records(vm, 'cxl_dc_released')
    assert sorted(int(r['dpa'], 0) for r in rel) == sorted(
        _dpa(o) for o, _ in S['ext']), rel
    agree(vm, 'sysram')


def test_released_set_can_come_back(vm):
    """The device got its capacity back: the same ranges, under the same
    tag, are accepted and plugged again (the tag is free once more)."""
    recs, n = offer(vm, 'sysram', chain(
        [(_dpa(o), ln) for o, ln in S['ext']], S['tag']))
    assert n == 1 and len(accepted(recs)) == 3, recs
    wait_for('set plugged', lambda: sorted(_blocks(vm)) ==
             _want_blocks(S['ext']))
    agree(vm, 'sysram')


def test_forced_release_takes_the_set_at_once(vm):
    """The device takes one extent of the set by force: every block of the
    set goes out of use at once, loudly, and the two extents the device
    did not take go back to it in one Release DC (nothing is lost)."""
    sh(vm, 'dmesg -c > /dev/null')
    before = mock_stats(vm, 'sysram')
    knob(vm, 'sysram', 'dc_force_del_extent', rec(_dpa(3 * B), B))
    wait_for('set gone', lambda: _blocks(vm) == {}, timeout=120)
    wait_for('rest given back', lambda: mock_stats(vm, 'sysram')['live'] == 0)
    assert iomem(vm, RES) == []
    assert sysfs_extents(vm, T['sysram']['region']) == {}
    st = mock_stats(vm, 'sysram')
    assert st['forced'] - before['forced'] == 1, st
    assert st['releases'] - before['releases'] == 1, st
    assert st['released'] - before['released'] == 2, st
    log = sh(vm, 'dmesg')
    assert 'back by force' in log, log
    assert 'giving back 2 range(s)' in log, log
    agree(vm, 'sysram')


def test_unbind_with_live_set_keeps_capacity(vm):
    """Unbinding the policy with a live set unplugs its memory but keeps
    the capacity accepted on the device; binding again plugs it again,
    without a new response."""
    tag = str(uuid.uuid4())
    ext = [(B, 2 * B)]
    recs, n = offer(vm, 'sysram', chain([(_dpa(o), ln) for o, ln in ext],
                                        tag))
    assert n == 1 and accepted(recs) == [_dpa(B)], recs
    wait_for('plugged', lambda: sorted(_blocks(vm)) == _want_blocks(ext))
    r = T['sysram']['region']
    st0 = mock_stats(vm, 'sysram')
    sh(vm, f'echo {r} > /sys/bus/cxl/drivers/{SYSRAM}/unbind', 120)
    assert driver_of(vm, r) == ''
    assert _blocks(vm) == {} and iomem(vm, RES) == []
    assert sh(vm, f'ls {DEV}/{r} | grep -c "^extent" || true').strip() == '0'
    assert mock_stats(vm, 'sysram')['live'] == st0['live'] == 1
    assert bind(vm, r, SYSRAM) == SYSRAM
    # The region kept the tag mode a user chose; the module parameter
    # gave the new binding its online type before the set came back.
    assert read(vm, f'{DEV}/{r}/tag_mode') == 'tagged'
    assert read(vm, f'{DEV}/{r}/online_type') == 'offline'
    wait_for('plugged again', lambda: sorted(_blocks(vm)) ==
             _want_blocks(ext))
    st1 = mock_stats(vm, 'sysram')
    assert st1['responses'] == st0['responses'], (st0, st1)
    assert st1['releases'] == st0['releases'], (st0, st1)
    assert agree(vm, 'sysram') == [(_dpa(B), 2 * B, tag)]


def test_no_violations(vm):
    st = mock_stats(vm, 'sysram')
    assert st['violations'] == 0, st['last_violation']
