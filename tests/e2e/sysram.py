"""cxl_region_sysram against QEMU's DCD: capacity the fabric manager offers
becomes System RAM with no userspace step after binding the driver, and
goes away when the fabric manager asks for it back.  Checked the way a user
checks: memory blocks, /proc/iomem, MemTotal, a program using the memory on
the region's node; and QEMU agrees on what the host holds."""
from cxl import (DC_EVENTS, DEV, G, M, SYSRAM, TRACE, assert_agree, bind,
                 create_dc_region, create_ram_region, dc_stats,
                 device_extents, driver_of, iomem, meminfo, memory_blocks,
                 node_of_block, qmp_ok, read, region_base, sh, sysfs_extents,
                 trace_on, trace_records, unbind, wait_for)

R = 'region0'
# The device also has 1 GiB of static RAM, for the last test; its DC
# partition starts after it, at DPA D.
VM_ARGS = {'ram_size': '1G'}
D = G
B = 128 * M
T = 120  # seconds to wait for hot-plug: the debug kernel is slow at it
RES = 'System RAM (cxl_region_sysram)'
state = {}


def _offer(vm, extents, n=1):
    """Offer extents as one group; wait for the answer, return the
    accept and reject trace records."""
    trace_on(vm, *DC_EVENTS)
    qmp_ok(vm.add_capacity(extents))
    wait_for('response',
             lambda: len(trace_records(vm, 'cxl_dc_response')) >= n, T)
    return [r for r in trace_records(vm)
            if r['event'] in ('cxl_dc_accept', 'cxl_dc_reject')]


def _blocks(vm, extents):
    bs, base = B, state['base']
    return sorted((base + off) // bs + i
                  for off, ln in extents for i in range(ln // bs))


def _online(vm):
    return memory_blocks(vm, state['base'], G)


def test_setup(vm):
    assert create_dc_region(vm, G) == R
    # A DC region binds to no driver by itself: the policy is a choice.
    sh(vm, f'echo {R} > /sys/bus/cxl/drivers_probe')
    assert driver_of(vm, R) == ''
    state['base'] = region_base(vm, R)
    state['memtotal'] = meminfo(vm)
    assert int(read(vm, '/sys/devices/system/memory/block_size_bytes'),
               16) == B


def test_offer_without_policy_rejected(vm):
    recs = _offer(vm, [(0, B)])
    assert [r['reason'] for r in recs] == ['no policy bound'], recs
    assert device_extents(vm) == []


def test_bind_by_driver_override(vm):
    assert bind(vm, R, SYSRAM) == SYSRAM
    assert read(vm, f'{DEV}/{R}/online_type') == 'online_movable'
    assert read(vm, f'{DEV}/{R}/tag_mode') == 'untagged'
    assert _online(vm) == {}


def test_offer_4x128_goes_online(vm):
    ext = [(i * B, B) for i in range(4)]
    recs = _offer(vm, ext)
    assert [r['event'] for r in recs] == ['cxl_dc_accept'] * 4, recs
    want = _blocks(vm, ext)
    wait_for('blocks online', lambda: sorted(_online(vm)) == want, T)
    assert set(_online(vm).values()) == {'online'}
    for b in want:
        zones = read(vm, f'/sys/devices/system/memory/memory{b}/valid_zones')
        assert zones == 'Movable', (b, zones)
    base = state['base']
    assert sorted(iomem(vm, RES)) == [(base + o, base + o + ln - 1)
                                      for o, ln in ext]
    assert meminfo(vm) - state['memtotal'] == 4 * B
    assert all(e['state'] == 'active' for e in sysfs_extents(vm, R).values())
    assert_agree(vm, R, D)
    state['node'] = node_of_block(vm, want[0])


def _tier_of(vm, node):
    """The memory tier (memory_tierN's N) holding node, or None."""
    out = sh(vm, 'cd /sys/devices/virtual/memory_tiering && '
                 'for t in memory_tier*; do echo ${t#memory_tier} '
                 '$(cat $t/nodelist); done')
    for ln in out.splitlines():
        tier, _, nodes = ln.partition(' ')
        for part in nodes.split(','):
            lo, _, hi = part.partition('-')
            if lo and int(lo) <= node <= int(hi or lo):
                return int(tier)
    return None


def test_memory_tier_below_dram(vm):
    """As kmem does for dax memory, the region's node gets a memory type
    of its own before its memory comes online: demotion sees CXL memory
    in a lower tier than DRAM, not as more DRAM."""
    node = node_of_block(vm, min(_online(vm)))
    dram, cxl = _tier_of(vm, 0), _tier_of(vm, node)
    assert node != 0 and dram is not None and cxl is not None, (node, dram, cxl)
    assert cxl > dram, f'node {node} in memory_tier{cxl}, DRAM in {dram}'


def test_program_uses_region_node(vm):
    node = state['node']
    out = sh(vm, f'memtouch -n {node} 384', timeout=300)
    assert 'OK 384' in out, out


def test_release_goes_offline(vm):
    ext = [(i * B, B) for i in range(4)]
    before = dc_stats(vm)['releases']
    qmp_ok(vm.release_capacity(ext))
    wait_for('released', lambda: dc_stats(vm)['releases'] == before + 4,
             timeout=120)
    assert _online(vm) == {}
    assert iomem(vm, RES) == []
    assert meminfo(vm) == state['memtotal']
    assert device_extents(vm) == [] and sysfs_extents(vm, R) == {}
    # QEMU got its Release DC: it offers the same range again.
    recs = _offer(vm, ext)
    assert [r['event'] for r in recs] == ['cxl_dc_accept'] * 4, recs
    wait_for('online again', lambda: len(_online(vm)) == 4, T)
    qmp_ok(vm.release_capacity(ext))
    wait_for('released again', lambda: device_extents(vm) == [], T)
    wait_for('MemTotal back', lambda: meminfo(vm) == state['memtotal'], T)


def test_release_held_while_pinned(vm):
    ext = [(512 * M, B)]
    _offer(vm, ext)
    wait_for('online', lambda: len(_online(vm)) == 1, T)
    sh(vm, f'rm -f /tmp/go; memtouch -n {state["node"]} -p -w /tmp/go 96 '
           '> /tmp/mt.log 2>&1 &')
    wait_for('held', lambda: 'HELD' in sh(vm, 'cat /tmp/mt.log'), T)
    trace_on(vm, *DC_EVENTS)
    qmp_ok(vm.release_capacity(ext))
    wait_for('release-pending', lambda: [
        e['state'] for e in sysfs_extents(vm, R).values()] ==
        ['release-pending'], T)
    # The guest stays responsive, the memory stays, the device keeps it.
    for _ in range(3):
        sh(vm, 'sleep 2')
        assert [e['state'] for e in sysfs_extents(vm, R).values()] == [
            'release-pending']
    assert device_extents(vm) == [(D + 512 * M, B)]
    assert len(_online(vm)) == 1 and len(iomem(vm, RES)) == 1
    assert not trace_records(vm, 'cxl_dc_released')
    # The program lets go: the release completes on its own.
    sh(vm, 'touch /tmp/go')
    wait_for('memtouch done',
             lambda: 'RELEASED' in sh(vm, 'cat /tmp/mt.log'), T)
    wait_for('released', lambda: device_extents(vm) == [], T)
    assert sysfs_extents(vm, R) == {} and _online(vm) == {}
    assert meminfo(vm) == state['memtotal']


def _stage(r):
    """The stage a trace record marks, for test_stages_traced_in_order."""
    e = r['event']
    if e == 'cxl_dynamic_capacity':
        return f'record {r["type"]}'
    if e.startswith('cxl_dc_mbox_'):
        return f'{e[len("cxl_dc_mbox_"):]} {r["opcode"]}'
    if e == 'cxl_dc_unplug':
        return f'unplug {r["stage"]}'
    return r['action']


def test_stages_traced_in_order(vm):
    """Each stage of an add and of a release leaves its trace record, in
    the order the work is done (what make bench times): the record, Add DC
    Response sent and answered, the block added and online; the release
    record, the unplug attempt, the block offline, removed, Release DC
    sent and answered.  Unused memory is not held fake-offline first, so
    the attempt goes straight from start to held."""
    events = ('cxl/cxl_dynamic_capacity', 'cxl_dc/cxl_dc_mbox_send',
              'cxl_dc/cxl_dc_mbox_done', 'cxl_dc/cxl_dc_unplug',
              'cxl_dc/cxl_dc_memory')
    sh(vm, ' && '.join([f'echo 1 > {TRACE}/events/{e}/enable'
                        for e in events] + [f'echo > {TRACE}/trace']))
    ext = [(768 * M, B)]
    qmp_ok(vm.add_capacity(ext))
    wait_for('online', lambda: len(_online(vm)) == 1, T)
    qmp_ok(vm.release_capacity(ext))
    wait_for('released', lambda: device_extents(vm) == [], T)
    names = [e.split('/')[1] for e in events]
    # Earlier tests left the library's decision events on.
    got = [_stage(r) for r in trace_records(vm) if r['event'] in names]
    sh(vm, ' && '.join(f'echo 0 > {TRACE}/events/{e}/enable'
                       for e in events))
    assert got == [
        'record add', 'send 0x4802', 'done 0x4802', 'going_online', 'online',
        'record release', 'unplug start', 'unplug held', 'going_offline',
        'offline', 'unplug removed', 'send 0x4803', 'done 0x4803'], got
    assert _online(vm) == {} and sysfs_extents(vm, R) == {}


def test_misaligned_rejected(vm):
    recs = _offer(vm, [(640 * M, 2 * M), (650 * M, B)])
    assert [r['reason'] for r in recs] == ['not policy aligned'] * 2, recs
    assert device_extents(vm) == [] and _online(vm) == {}


def test_wrong_tag_kind_rejected(vm):
    sh(vm, f'echo tagged > {DEV}/{R}/tag_mode')
    try:
        recs = _offer(vm, [(0, B)])
        assert [r['reason'] for r in recs] == [
            'wrong tag kind for region'], recs
    finally:
        sh(vm, f'echo untagged > {DEV}/{R}/tag_mode')
    assert device_extents(vm) == [] and _online(vm) == {}


def test_unbind_rebind_keeps_capacity(vm):
    ext = [(0, B), (B, B)]
    _offer(vm, ext)
    wait_for('online', lambda: len(_online(vm)) == 2, T)
    assert meminfo(vm) - state['memtotal'] == 2 * B
    responses = dc_stats(vm)['responses']

    unbind(vm, R)
    assert driver_of(vm, R) == ''
    assert _online(vm) == {} and iomem(vm, RES) == []
    assert meminfo(vm) == state['memtotal']
    # Not given back: the device still has both, nobody uses them.
    assert sorted(device_extents(vm)) == [(D + o, ln) for o, ln in ext]
    assert sysfs_extents(vm, R) == {}
    recs = _offer(vm, [(4 * B, B)])
    assert [r['reason'] for r in recs] == ['no policy bound'], recs

    trace_on(vm, *DC_EVENTS)
    assert bind(vm, R, SYSRAM) == SYSRAM
    wait_for('online again', lambda: len(_online(vm)) == 2, T)
    assert meminfo(vm) - state['memtotal'] == 2 * B
    assert dc_stats(vm)['responses'] == responses + 1  # the rejected offer
    assert [r['reason'] for r in trace_records(vm, 'cxl_dc_accept')] == [
        'recovered'] * 2
    assert_agree(vm, R, D)

    # Twice more, then let the fabric manager take it all back.
    for _ in range(2):
        unbind(vm, R)
        bind(vm, R, SYSRAM)
    assert meminfo(vm) - state['memtotal'] == 2 * B
    qmp_ok(vm.release_capacity(ext))
    wait_for('released', lambda: device_extents(vm) == [], T)
    assert meminfo(vm) == state['memtotal']
    assert_agree(vm, R, D)


def test_static_ram_region_whole(vm):
    """One driver for both partition kinds: a static RAM region is added
    whole at bind and removed whole at unbind.  (The emulated host bridge
    has one decoder: the DC region makes room first.)"""
    unbind(vm, R)
    sh(vm, f'echo 0 > {DEV}/{R}/commit && '
           f'echo {R} > {DEV}/decoder0.0/delete_region && '
           f'echo 0 > {DEV}/decoder2.0/dpa_size')
    ram = create_ram_region(vm, G)
    assert bind(vm, ram, SYSRAM) == SYSRAM
    base = region_base(vm, ram)
    assert iomem(vm, RES) == [(base, base + G - 1)]
    blocks = memory_blocks(vm, base, G)
    assert len(blocks) == G // B and set(blocks.values()) == {'online'}
    assert meminfo(vm) - state['memtotal'] == G
    out = sh(vm, f'memtouch -n {node_of_block(vm, min(blocks))} 256',
             timeout=300)
    assert 'OK 256' in out, out
    unbind(vm, ram)
    assert iomem(vm, RES) == [] and memory_blocks(vm, base, G) == {}
    assert meminfo(vm) == state['memtotal']
