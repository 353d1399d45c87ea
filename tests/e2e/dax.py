"""cxl_region_dax against QEMU's DCD (issue #10, must-show 2, 3 and 4): an
untagged offer claimed with 0 becomes a device-dax instance that a
program maps and uses; a release QEMU asks for is held while the device
exists and completes when it is destroyed, after which QEMU offers the
range again; Debian's daxctl (76.1) lists, reconfigures and destroys a
claimed device, and kmem's daxZ.N/state onlines it; a test-only fs-dax
holder writes and reads it on fsdev_dax; memory kmem leaves online is
stranded, never given back."""
from cxl import (DC_EVENTS, DEV, G, M, bind, bind_dax, create_dc_region,
                 device_extents, qmp_ok, read, sh, sysfs_extents, trace_on,
                 trace_records, wait_for)

R = 'region0'
DAX = 'cxl_region_dax'
VIEW = f'{DEV}/{R}/dax_region0/dax_region'
DAXBUS = '/sys/bus/dax'
NULL = '00000000-0000-0000-0000-000000000000'
B = 128 * M  # the guest's memory block: what kmem can hot-plug
T = 120
state = {}


def _offer(vm, extents):
    trace_on(vm, *DC_EVENTS)
    qmp_ok(vm.add_capacity(extents))
    wait_for('response',
             lambda: trace_records(vm, 'cxl_dc_response') != [], T)
    return [r['event'] for r in trace_records(vm)
            if r['event'] in ('cxl_dc_accept', 'cxl_dc_reject')]


def _avail(vm):
    return int(read(vm, f'{VIEW}/available_size'))


def _claim0(vm):
    dev = read(vm, f'{VIEW}/seed')
    sh(vm, f'echo 0 > {DAXBUS}/devices/{dev}/uuid')
    return dev


def test_setup(vm):
    assert create_dc_region(vm, G) == R
    assert bind(vm, R, DAX) == DAX
    assert read(vm, f'{VIEW}/seed') == 'dax0.0'
    assert _avail(vm) == 0


def test_untagged_offer_claimed_and_mapped(vm):
    assert _offer(vm, [(0, B)]) == ['cxl_dc_accept']
    wait_for('free capacity', lambda: _avail(vm) == B, T)
    dev = _claim0(vm)
    assert read(vm, f'{DAXBUS}/devices/{dev}/uuid') == NULL
    assert int(read(vm, f'{DAXBUS}/devices/{dev}/size')) == B
    assert _avail(vm) == 0
    sh(vm, f'echo {dev} > {DAXBUS}/drivers/device_dax/bind')
    out = sh(vm, f'daxmap /dev/{dev}', timeout=300)
    assert out.strip() == f'OK {B}', out
    state['dev'] = dev


def test_release_held_while_device_exists(vm):
    """QEMU asks for the extent back: the device keeps it (and the data)
    until it is destroyed; then QEMU has it back and offers it again."""
    dev = state['dev']
    qmp_ok(vm.release_capacity([(0, B)]))
    wait_for('release pending', lambda: [e['state'] for e in sysfs_extents(
        vm, R).values()] == ['release-pending'], T)
    assert device_extents(vm) != []
    out = sh(vm, f'daxmap -r /dev/{dev}', timeout=300)
    assert out.strip() == f'OK {B}', out
    # What daxctl destroy-device does: unbind, size 0, delete.
    sh(vm, f'echo {dev} > {DAXBUS}/drivers/device_dax/unbind')
    sh(vm, f'echo 0 > {DAXBUS}/devices/{dev}/size')
    wait_for('released', lambda: device_extents(vm) == [], T)
    assert sysfs_extents(vm, R) == {}
    assert _offer(vm, [(0, B)]) == ['cxl_dc_accept']
    wait_for('free capacity', lambda: _avail(vm) == B, T)


def test_daxctl_lists_reconfigures_and_destroys(vm):
    dev = _claim0(vm)
    sh(vm, f'echo {dev} > {DAXBUS}/drivers/device_dax/bind')
    out = sh(vm, 'daxctl list -R -D')
    assert f'"chardev":"{dev}"' in out.replace(' ', ''), out
    assert f'"size":{B}' in out.replace(' ', ''), out
    # System RAM and back.
    sh(vm, f'daxctl reconfigure-device --mode=system-ram {dev}', timeout=T)
    assert 'System RAM (kmem)' in sh(vm, 'cat /proc/iomem')
    wait_for('online', lambda: read(
        vm, f'{DAXBUS}/devices/{dev}/state') != 'unplugged', T)
    sh(vm, f'daxctl reconfigure-device --mode=devdax -f {dev}', timeout=T)
    assert 'System RAM (kmem)' not in sh(vm, 'cat /proc/iomem')
    # destroy-device gives the claim up; the group stays, free.
    sh(vm, f'daxctl disable-device {dev} && daxctl destroy-device {dev}')
    assert _avail(vm) == B
    assert device_extents(vm) != []
    state['free'] = True


def _kmem_online(vm, dev):
    """Bind dev to kmem and put its memory online, movable, through
    daxZ.N/state (kmem adds it offline at bind, this kernel's default,
    and onlines only from unplugged); returns the state attribute."""
    bind_dax(vm, dev, 'kmem')
    st = f'{DAXBUS}/devices/{dev}/state'
    if read(vm, st) != 'unplugged':
        sh(vm, f'echo unplugged > {st}', timeout=T)
    sh(vm, f'echo online_movable > {st}', timeout=T)
    return st


def test_kmem_state_onlines_a_claimed_device(vm):
    dev = _claim0(vm)
    st = _kmem_online(vm, dev)
    assert read(vm, st) == 'online_movable'
    assert 'System RAM (kmem)' in sh(vm, 'cat /proc/iomem')
    sh(vm, f'echo unplugged > {st}', timeout=T)
    sh(vm, f'echo {dev} > {DAXBUS}/drivers/kmem/unbind')
    sh(vm, f'echo 0 > {DAXBUS}/devices/{dev}/size')
    # Given back on the user's word, and QEMU agrees.
    sh(vm, f'echo 0 > {DEV}/{R}/give_back')
    wait_for('given back', lambda: device_extents(vm) == [], T)
    assert _avail(vm) == 0


HOLDER = '/sys/kernel/debug/cxl_dax_holder'


def _holder(vm, op, arg):
    rc, out = vm.run(f'{{ echo {arg} > {HOLDER}/{op}; }} 2>&1', timeout=T)
    assert rc == 0, (op, arg, out, sh(vm, f'cat {HOLDER}/log'))


def test_fsdev_holder_reads_and_writes_the_memory(vm):
    """FAMFS readiness (must-show 4) on memory QEMU backs: a claimed device
    binds to fsdev_dax, a test-only fs-dax holder takes it with
    fs_dax_get() and, page by page through dax_direct_access() as iomap
    does, writes a pattern over all of it and reads it back.  (QEMU sends
    no tags, so its groups have one extent: the range boundaries and the
    forced release are in tests/e2e/mock_dax_users.py.)"""
    assert _offer(vm, [(B, B)]) == ['cxl_dc_accept']
    wait_for('free capacity', lambda: _avail(vm) == B, T)
    dev = _claim0(vm)
    # As famfs does: take the device from whatever driver into fsdev_dax.
    bind_dax(vm, dev, 'fsdev_dax')
    sh(vm, 'insmod /bin/cxl_dax_test_holder.ko')
    _holder(vm, 'hold', f'/dev/{dev}')
    # A second holder is refused.
    rc, _ = vm.run(f'echo /dev/{dev} > {HOLDER}/hold')
    assert rc != 0
    _holder(vm, 'pattern', f'0 {B:#x} 0x5eed')
    _holder(vm, 'check', f'0 {B:#x} 0x5eed')
    _holder(vm, 'phys', 0)
    start = int(read(vm, f'{DAXBUS}/devices/{dev}/mapping0/start'), 0)
    log = sh(vm, f'cat {HOLDER}/log').splitlines()
    assert f'pattern 0x0+{B:#x} ok' in log, log
    assert f'phys 0x0 {start:#x}' in log, log
    _holder(vm, 'let_go', 1)
    sh(vm, f'echo {dev} > {DAXBUS}/drivers/fsdev_dax/unbind; '
           f'echo 0 > {DAXBUS}/devices/{dev}/size; '
           f'echo 0 > {DEV}/{R}/give_back; rmmod cxl_dax_test_holder')
    wait_for('given back', lambda: device_extents(vm) == [], T)
    assert _avail(vm) == 0


def test_killed_unbind_strands_pinned_kmem_memory(vm):
    """Unbinding the policy revokes every device first; kmem cannot unplug
    pinned memory, so unbinding waits, killably.  Killing it leaves the
    memory online and the group stranded: QEMU keeps the extent, and the
    next bind does not offer it to anyone."""
    assert _offer(vm, [(3 * B, B)]) == ['cxl_dc_accept']
    wait_for('free capacity', lambda: _avail(vm) == B, T)
    dev = _claim0(vm)
    _kmem_online(vm, dev)
    node = read(vm, f'{DAXBUS}/devices/{dev}/target_node')
    sh(vm, f'rm -f /tmp/go; memtouch -n {node} -p -w /tmp/go 96 '
           '> /tmp/mt.log 2>&1 &')
    wait_for('held', lambda: 'HELD' in sh(vm, 'cat /tmp/mt.log'), T)
    held = device_extents(vm)

    sh(vm, f'sh -c "echo {R} > /sys/bus/cxl/drivers/{DAX}/unbind" '
           '</dev/null >/dev/null 2>&1 & echo $! > /tmp/unbind.pid')
    sh(vm, 'sleep 5')
    alive = 'kill -0 $(cat /tmp/unbind.pid) 2>/dev/null && echo alive; true'
    assert 'alive' in sh(vm, alive), 'unbind returned with memory pinned'
    sh(vm, 'kill -9 $(cat /tmp/unbind.pid)')
    wait_for('unbind killed', lambda: 'alive' not in sh(vm, alive), T)
    assert read(vm, f'{DEV}/{R}/driver_override') == DAX
    log = sh(vm, 'dmesg')
    assert 'unbind killed' in log and 'stranded' in log, log[-2000:]
    assert 'System RAM (kmem)' in sh(vm, 'cat /proc/iomem')
    assert device_extents(vm) == held

    assert bind(vm, R, DAX) == DAX
    assert _avail(vm) == 0 and sysfs_extents(vm, R) == {}
    sh(vm, 'touch /tmp/go')
    wait_for('memtouch done',
             lambda: 'RELEASED' in sh(vm, 'cat /tmp/mt.log'), T)
    assert device_extents(vm) == held


def test_memory_left_online_is_stranded(vm):
    """Last: it leaves memory online until reboot.  kmem unbound by hand
    with its memory online leaves it 'stuck online until reboot'; giving
    the claim up then strands the group: it shows 'stranded', no give-back
    takes it, a QMP release is never confirmed, and neither a rebind nor
    delete_region hands it to anyone: QEMU still has it at the end."""
    assert _offer(vm, [(2 * B, B)]) == ['cxl_dc_accept']
    wait_for('free capacity', lambda: _avail(vm) == B, T)
    dev = _claim0(vm)
    _kmem_online(vm, dev)
    sh(vm, f'echo {dev} > {DAXBUS}/drivers/kmem/unbind')
    assert 'System RAM (kmem)' in sh(vm, 'cat /proc/iomem')
    sh(vm, f'echo 0 > {DAXBUS}/devices/{dev}/size')
    assert [e['state'] for e in sysfs_extents(vm, R).values()] == \
        ['stranded']
    assert _avail(vm) == 0
    rc, _ = vm.run(f'echo all > {DEV}/{R}/give_back')
    assert rc != 0
    held = device_extents(vm)
    assert held != []
    qmp_ok(vm.release_capacity([(2 * B, B)]))
    sh(vm, 'sleep 3')
    assert device_extents(vm) == held
    assert [e['state'] for e in sysfs_extents(vm, R).values()] == \
        ['stranded']
    # Unbound, bound again: not recovered; deleted: not given back.
    sh(vm, f'echo {R} > /sys/bus/cxl/drivers/{DAX}/unbind', timeout=T)
    assert bind(vm, R, DAX) == DAX
    assert _avail(vm) == 0 and sysfs_extents(vm, R) == {}
    sh(vm, f'echo {R} > /sys/bus/cxl/drivers/{DAX}/unbind', timeout=T)
    sh(vm, f'echo {R} > {DEV}/decoder0.0/delete_region', timeout=T)
    assert device_extents(vm) == held
    assert 'System RAM (kmem)' in sh(vm, 'cat /proc/iomem')
