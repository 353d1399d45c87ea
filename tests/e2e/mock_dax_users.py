"""The users of a cxl_region_dax device, against tools/testing/cxl's mock
DCDs (issue #10): an fs-dax holder on fsdev_dax (FAMFS readiness,
must-show 4: the page offsets it reaches through dax_direct_access()
follow the group's sequence order, and a forced release reaches its
failure notification), kmem (a forced release, and unbinding the policy,
unplug the memory first), and the extent links in dax_regionZ that
ndctl's cxl list -N reads.  cxl_test's first window sits on guest RAM
here (vm.py mock_real_ram), so the region holds data: the holder writes
and reads back across every range boundary, and kmem memory can go
online."""
import uuid

from cxl import (DEV, G, M, SYSRAM, bind, bind_dax, memory_blocks,
                 node_of_block, read, sh, sysfs_extents, unbind, wait_for)
from cxl_mock import (T, agree, chain, dax_avail as avail, dax_view as view,
                      discover, eq, first_region, knob, mock_extents,
                      mock_stats, offer, rec)
from vm import MOCK_RAM_BASE

VM_ARGS = {'mock': True, 'mock_real_ram': True}
DAX = 'cxl_region_dax'
DAXBUS = '/sys/bus/dax'
HOLDER = '/sys/kernel/debug/cxl_dax_holder'
MEMORY = '/sys/devices/system/memory'


def base(vm, d):
    return int(read(vm, f'{DEV}/{d["region"]}/resource'), 0)


def claim(vm, d, tag):
    dev = read(vm, f'{view(d)}/dax_region/seed')
    sh(vm, f'echo {tag} > {DAXBUS}/devices/{dev}/uuid')
    return dev


def gone(vm, dev):
    """Revoked: deleted, or (the region's first) driverless and empty."""
    if dev.endswith('.0'):
        return vm.run(f'[ "$(cat {DAXBUS}/devices/{dev}/size)" = 0 ] && '
                      f'! test -e {DAXBUS}/devices/{dev}/driver')[0] == 0
    return vm.run(f'! test -e {DAXBUS}/devices/{dev}')[0] == 0


def holder(vm, op, arg):
    rc, out = vm.run(f'{{ echo {arg} > {HOLDER}/{op}; }} 2>&1')
    assert rc == 0, (op, arg, out, holder_log(vm))


def holder_log(vm):
    return sh(vm, f'cat {HOLDER}/log').splitlines()


def blocks_of(vm, start, length):
    """The memoryN directories of [start, start + length)."""
    bs = int(read(vm, f'{MEMORY}/block_size_bytes'), 16)
    return [n for n in range(start // bs, (start + length) // bs)
            if vm.run(f'test -e {MEMORY}/memory{n}')[0] == 0]


def test_setup(vm):
    T.clear()
    mems = discover(vm)
    d = first_region(vm, mems, 512 * M, skip=('cxl_mem.2',))
    assert d, mems
    T['plain'] = d
    # In cxl_test's first window, on guest RAM (VM_ARGS): it holds data.
    assert MOCK_RAM_BASE <= base(vm, d) < MOCK_RAM_BASE + G, base(vm, d)
    eq(bind(vm, d['region'], DAX), DAX)
    sh(vm, 'insmod /bin/cxl_dax_test_holder.ko')


def test_extents_are_linked_in_dax_region(vm):
    """cxl list -N from ndctl's DCD series reads
    regionZ/dax_regionZ/extentZ.N/{offset,length,uuid}: links there to
    regionZ/extentZ.N come and go with the extents."""
    d = T['plain']
    tag = str(uuid.uuid4())
    at = d['dpa'] + 32 * M
    offer(vm, 'plain', chain([(at, 2 * M), (at + 2 * M, 4 * M)], tag))
    wait_for('free capacity', lambda: avail(vm, d) == 6 * M)
    names = sorted(sysfs_extents(vm, d['region']))
    eq(len(names), 2)
    listed = sh(vm, f'cd {view(d)} && for e in extent*; do '
                    'echo $e $(cat $e/offset) $(cat $e/length) '
                    '$(cat $e/uuid); done').splitlines()
    want = sh(vm, f'cd {DEV}/{d["region"]} && for e in extent*; do '
                  'echo $e $(cat $e/offset) $(cat $e/length) '
                  '$(cat $e/uuid); done').splitlines()
    eq(sorted(listed), sorted(want))
    assert all(ln.split()[3] == tag for ln in listed), listed
    sh(vm, f'test -L {view(d)}/{names[0]}')
    # Released (free: at once), the links go with the extents.
    before = mock_stats(vm, 'plain')['releases']
    knob(vm, 'plain', 'dc_del_extent', f'{at:#x}:{6 * M:#x}:{tag}')
    wait_for('release',
             lambda: mock_stats(vm, 'plain')['releases'] > before)
    eq(sh(vm, f'ls {view(d)} | grep -c ^extent; true').strip(), '0')
    agree(vm, 'plain')


def test_fsdev_holder_reaches_the_group_in_sequence_order(vm):
    """FAMFS readiness: a claimed 3-extent group, offered in DPA order
    2, 0, 1, binds to fsdev_dax; the holder takes it with fs_dax_get() and
    dax_direct_access() gives, at device offset 0 and on both sides of
    every range boundary, the physical address of the extent that has
    that place in the group's sequence."""
    d = T['plain']
    tag = str(uuid.uuid4())
    first = d['dpa'] + 64 * M
    dpas = [first + i * 2 * M for i in (2, 0, 1)]
    offer(vm, 'plain', chain([(x, 2 * M) for x in dpas], tag))
    wait_for('free capacity', lambda: avail(vm, d) == 6 * M)
    dev = claim(vm, d, tag)
    bind_dax(vm, dev, 'fsdev_dax')
    holder(vm, 'hold', f'/dev/{dev}')
    hpa = [base(vm, d) + x - d['dpa'] for x in dpas]
    probes = {0: hpa[0]}
    for i in range(1, 3):
        probes[i * 2 * M - 4096] = hpa[i - 1] + 2 * M - 4096
        probes[i * 2 * M] = hpa[i]
    for off in probes:
        holder(vm, 'phys', off)
    got = {int(a, 0): int(b, 0) for _, a, b in
           (ln.split() for ln in holder_log(vm) if ln.startswith('phys '))}
    eq(got, probes)
    # The window is RAM: data written through dax_direct_access() across
    # both range boundaries reads back, here and a page either side.
    holder(vm, 'pattern', f'0 {6 * M:#x} 0xb0da')
    holder(vm, 'check', f'0 {6 * M:#x} 0xb0da')
    for i in range(1, 3):
        holder(vm, 'check', f'{i * 2 * M - 4096:#x} 0x2000 0xb0da')
    log = holder_log(vm)
    assert f'check 0x0+{6 * M:#x} ok' in log, log
    assert f'check {2 * M - 4096:#x}+0x2000 ok' in log, log
    # A second holder is refused; the device cannot change while bound.
    rc, _ = vm.run(f'echo 0 > {DAXBUS}/devices/{dev}/size')
    assert rc != 0
    T['fsdev'] = (dev, tag, dpas)


def test_forced_release_reaches_the_holder(vm):
    """The device takes the group back by force: fsdev_dax is unbound,
    which tells the holder (MF_MEM_PRE_REMOVE over the whole device), the
    device is gone, and the mock holds none of the group."""
    d = T['plain']
    dev, tag, dpas = T['fsdev']
    before = mock_stats(vm, 'plain')
    knob(vm, 'plain', 'dc_force_del_extent',
         f'{min(dpas):#x}:{6 * M:#x}:{tag}')
    wait_for('device revoked', lambda: gone(vm, dev))
    # The mock counts each record as the host handles it.
    wait_for('all three forced', lambda: mock_stats(
        vm, 'plain')['forced'] - before['forced'] == 3)
    notes = [ln for ln in holder_log(vm) if ln.startswith('notify_failure')]
    eq(notes, ['notify_failure offset=0x0 len=0xffffffffffffffff '
               'flags=0x80 pre_remove'])
    # The holder lets go of a dead device: no warning, nothing leaks.
    holder(vm, 'let_go', 1)
    st = mock_stats(vm, 'plain')
    eq(st['forced'] - before['forced'], 3)
    eq(st['releases'], before['releases'])
    assert not any(e[0] in dpas for e in mock_extents(vm, 'plain'))
    eq(avail(vm, d), 0)
    agree(vm, 'plain')


def test_forced_release_record_by_record(vm):
    """The device takes a held 3-extent group back one record at a time:
    the first revokes the holder and the host gives back what is left;
    the records for extents given back meanwhile find nothing; each
    extent is answered once, and nothing is used after."""
    d = T['plain']
    tag = str(uuid.uuid4())
    first = d['dpa'] + 96 * M
    dpas = [first + i * 2 * M for i in range(3)]
    offer(vm, 'plain', chain([(x, 2 * M) for x in dpas], tag))
    wait_for('free capacity', lambda: avail(vm, d) == 6 * M)
    dev = claim(vm, d, tag)
    bind_dax(vm, dev, 'fsdev_dax')
    knob(vm, 'plain', 'dc_force_del_extent',
         *[f'{x:#x}:{2 * M:#x}:{tag}' for x in dpas])
    wait_for('device revoked', lambda: gone(vm, dev))
    wait_for('group gone', lambda: not any(
        e[0] in dpas for e in mock_extents(vm, 'plain')))
    eq(sysfs_extents(vm, d['region']), {})
    eq(avail(vm, d), 0)
    agree(vm, 'plain')


def kmem_group(vm, d, at):
    """An untagged 128 MiB extent on a memory block boundary, claimed and
    bound to kmem; returns (device, DPA, HPA)."""
    bs = int(read(vm, f'{MEMORY}/block_size_bytes'), 16)
    b = base(vm, d)
    hpa = (b + at + bs - 1) // bs * bs
    dpa = d['dpa'] + hpa - b
    offer(vm, 'plain', [rec(dpa, bs)])
    wait_for('free capacity', lambda: avail(vm, d) == bs)
    dev = claim(vm, d, 0)
    bind_dax(vm, dev, 'kmem')
    # Added, not onlined: this kernel's default online type is offline.
    eq(read(vm, f'{DAXBUS}/devices/{dev}/state'), 'offline')
    assert blocks_of(vm, hpa, bs), 'kmem added no memory block'
    return dev, dpa, hpa, bs


def test_forced_release_of_kmem_device_unplugs_first(vm):
    """kmem's memory is unplugged before the device is unbound, so nothing
    is left stuck (kmem warns 'stuck online until reboot' otherwise)."""
    d = T['plain']
    dev, dpa, hpa, bs = kmem_group(vm, d, 128 * M)
    before = mock_stats(vm, 'plain')
    knob(vm, 'plain', 'dc_force_del_extent', f'{dpa:#x}:{bs:#x}:0')
    wait_for('device revoked', lambda: gone(vm, dev))
    eq(blocks_of(vm, hpa, bs), [])
    assert 'kmem' not in sh(vm, 'cat /proc/iomem')
    wait_for('forced', lambda: mock_stats(
        vm, 'plain')['forced'] - before['forced'] == 1)
    agree(vm, 'plain')


def test_forced_release_of_pinned_kmem_memory_waits_aside(vm):
    """The device takes back capacity that kmem has online and a program
    pins: kmem cannot unplug it, so the device stays and the revoke is
    retried with growing pauses.  Meanwhile the region's other work goes
    on: a new offer is accepted.  Once the pins drop the revoke goes
    through: memory unplugged, the device gone, nothing left on the mock."""
    d = T['plain']
    dev, dpa, hpa, bs = kmem_group(vm, d, 384 * M)
    st = f'{DAXBUS}/devices/{dev}/state'
    sh(vm, f'echo unplugged > {st}; echo online_movable > {st}', timeout=120)
    node = read(vm, f'{DAXBUS}/devices/{dev}/target_node')
    sh(vm, f'rm -f /tmp/go; memtouch -n {node} -p -w /tmp/go 96 '
           '> /tmp/mt.log 2>&1 &')
    wait_for('held', lambda: 'HELD' in sh(vm, 'cat /tmp/mt.log'), 120)
    before = mock_stats(vm, 'plain')
    knob(vm, 'plain', 'dc_force_del_extent', f'{dpa:#x}:{bs:#x}:0')
    wait_for('revoke refused', lambda: f'{dev} still in use' in
             sh(vm, 'dmesg'), 120)
    offer(vm, 'plain', [rec(d['dpa'] + 40 * M, 2 * M)])
    wait_for('new capacity', lambda: avail(vm, d) == 2 * M, 60)
    assert not gone(vm, dev) and blocks_of(vm, hpa, bs)
    eq([e['state'] for e in sysfs_extents(vm, d['region']).values()
        if e['dpa'] == dpa], ['release-pending'])
    sh(vm, 'touch /tmp/go')
    wait_for('memtouch done',
             lambda: 'RELEASED' in sh(vm, 'cat /tmp/mt.log'), 120)
    wait_for('device revoked', lambda: gone(vm, dev), 60)
    eq(blocks_of(vm, hpa, bs), [])
    eq(mock_stats(vm, 'plain')['forced'] - before['forced'], 1)
    assert not any(e['dpa'] == dpa
                   for e in sysfs_extents(vm, d['region']).values())
    sh(vm, f'echo all > {DEV}/{d["region"]}/give_back')
    wait_for('given back', lambda: not mock_extents(vm, 'plain'))
    agree(vm, 'plain')


def test_unbind_unplugs_kmem_then_rebind_recovers(vm):
    """Unbinding the policy revokes every device first: kmem unplugs its
    memory, the extent stays accepted on the device, and the next bind
    finds it free again."""
    d = T['plain']
    dev, dpa, hpa, bs = kmem_group(vm, d, 256 * M)
    unbind(vm, d['region'])
    eq(blocks_of(vm, hpa, bs), [])
    assert 'kmem' not in sh(vm, 'cat /proc/iomem')
    assert any(e[0] == dpa for e in mock_extents(vm, 'plain'))
    eq(bind(vm, d['region'], DAX), DAX)
    eq(avail(vm, d), bs)
    sh(vm, f'echo all > {DEV}/{d["region"]}/give_back')
    wait_for('given back', lambda: not mock_extents(vm, 'plain'))
    agree(vm, 'plain')


def test_uuid_of_a_non_dc_dax_device_cannot_be_written(vm):
    """cxl_test's auto RAM region through dax_cxl (the kernel's module, as
    ndctl's CXL tests load it: cxl_test builds none): an ordinary dax
    device reads the null uuid, and a write gives -EOPNOTSUPP."""
    sh(vm, 'insmod /lib/modules/real/dax_cxl.ko')
    devs = wait_for('a dax_cxl device', lambda: [
        p for p in sh(vm, f'ls {DAXBUS}/devices').split()
        if read(vm, f'{region_of(vm, p)}/mode') == 'ram'])
    dev = devs[0]
    eq(read(vm, f'{DAXBUS}/devices/{dev}/uuid'),
       '00000000-0000-0000-0000-000000000000')
    rc, out = vm.run(f'{{ echo 0 > {DAXBUS}/devices/{dev}/uuid; }} 2>&1')
    assert rc != 0 and 'Operation not supported' in out, out
    rc, out = vm.run(f'{{ echo {uuid.uuid4()} > '
                     f'{DAXBUS}/devices/{dev}/uuid; }} 2>&1')
    assert rc != 0 and 'Operation not supported' in out, out


def region_of(vm, dev):
    """The cxl region above a dax device: its dax region's parent."""
    return sh(vm, f'dirname $(dirname $(readlink -f {DAXBUS}/devices/{dev}))'
              ).strip()


def test_forced_release_during_a_sysram_offline(vm):
    """Race (issue 12, item 2), under cxl_region_sysram, bound to the same
    region after cxl_region_dax (a re-bind under another policy), and
    cxl_region_dax again after it.  The device asks for a block
    a program pins, so sysram's offline keeps failing and is retried; the
    device then takes the block by force.  The forced release waits for
    that same offline (pinned memory cannot go), and once the pins drop
    the memory goes offline and is removed, with no Release DC since the
    device has it already; host and device agree."""
    d = T['plain']
    eq(mock_extents(vm, 'plain'), [])
    unbind(vm, d['region'])
    eq(bind(vm, d['region'], SYSRAM), SYSRAM)
    bs = int(read(vm, f'{MEMORY}/block_size_bytes'), 16)
    b = base(vm, d)
    hpa = (b + 384 * M + bs - 1) // bs * bs
    dpa = d['dpa'] + hpa - b
    offer(vm, 'plain', [rec(dpa, bs)])
    wait_for('online', lambda: list(memory_blocks(vm, hpa, bs).values()) ==
             ['online'], 120)
    node = node_of_block(vm, hpa // bs)
    sh(vm, f'rm -f /tmp/go; memtouch -n {node} -p -w /tmp/go 96 '
           '> /tmp/mt.log 2>&1 &')
    wait_for('held', lambda: 'HELD' in sh(vm, 'cat /tmp/mt.log'), 120)
    before = mock_stats(vm, 'plain')
    knob(vm, 'plain', 'dc_del_extent', f'{dpa:#x}:{bs:#x}:0')
    wait_for('release-pending', lambda: [
        e['state'] for e in sysfs_extents(vm, d['region']).values()
        if e['dpa'] == dpa] == ['release-pending'], 120)
    knob(vm, 'plain', 'dc_force_del_extent', f'{dpa:#x}:{bs:#x}:0')
    eq(mock_stats(vm, 'plain')['forced'] - before['forced'], 1)
    sh(vm, 'sleep 2')
    eq(list(memory_blocks(vm, hpa, bs).values()), ['online'])
    eq([e['state'] for e in sysfs_extents(vm, d['region']).values()
        if e['dpa'] == dpa], ['release-pending'])
    sh(vm, 'touch /tmp/go')
    wait_for('memtouch done',
             lambda: 'RELEASED' in sh(vm, 'cat /tmp/mt.log'), 120)
    wait_for('removed', lambda: not memory_blocks(vm, hpa, bs) and not any(
        e['dpa'] == dpa
        for e in sysfs_extents(vm, d['region']).values()), 120)
    st = mock_stats(vm, 'plain')
    eq(st['releases'], before['releases'])
    assert not any(e[0] == dpa for e in mock_extents(vm, 'plain'))
    assert 'System RAM (cxl_region_sysram)' not in sh(vm, 'cat /proc/iomem')
    agree(vm, 'plain')
    unbind(vm, d['region'])
    eq(bind(vm, d['region'], DAX), DAX)


def test_forced_release_of_a_stranded_group(vm):
    """kmem unbound by hand leaves its memory online ("stuck online until
    reboot"), and giving the claim up then strands the group.  When the
    device takes it by force anyway, the host cannot stop using it: the
    library logs that as critical, calls no policy, and sends no Release
    DC; the memory stays online."""
    d = T['plain']
    dev, dpa, hpa, bs = kmem_group(vm, d, 128 * M)
    st = f'{DAXBUS}/devices/{dev}/state'
    sh(vm, f'echo unplugged > {st}; echo online_movable > {st}', timeout=120)
    sh(vm, f'echo {dev} > {DAXBUS}/drivers/kmem/unbind')
    sh(vm, f'echo 0 > {DAXBUS}/devices/{dev}/size')
    eq([e['state'] for e in sysfs_extents(vm, d['region']).values()
        if e['dpa'] == dpa], ['stranded'])
    before = mock_stats(vm, 'plain')
    knob(vm, 'plain', 'dc_force_del_extent', f'{dpa:#x}:{bs:#x}:0')
    wait_for('logged', lambda: f'forced release of stranded DPA {dpa:#x}'
             in sh(vm, 'dmesg'))
    eq(mock_stats(vm, 'plain')['releases'], before['releases'])
    assert blocks_of(vm, hpa, bs), 'stranded memory went away'
    assert any(f'{hpa:x}-' in ln and 'System RAM (kmem)' in ln
               for ln in sh(vm, 'cat /proc/iomem').splitlines())


def test_no_violations(vm):
    st = mock_stats(vm, 'plain')
    eq(st['violations'], 0)
    unbind(vm, d := T['plain']['region'])
    eq(sh(vm, f'ls {DEV}/{d} | grep -c ^extent; true').strip(), '0')
