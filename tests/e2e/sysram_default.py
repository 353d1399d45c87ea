"""cxl_core.dc_default_policy: a host that wants no userspace step names a
default policy at boot; a DC region then binds to it without an override,
and its offers go straight to System RAM.  RAM regions keep cxl_region.
Last, a killed unbind strands memory that stays pinned."""
from cxl import (DC_EVENTS, DEV, G, M, SYSRAM, bind, block_size,
                 create_dc_region, dc_stats, device_extents, driver_of,
                 memory_blocks, meminfo, node_of_block, qmp_ok, read,
                 region_base, sh, sysfs_extents, trace_on, wait_for)

VM_ARGS = {'extra_append': f'cxl_core.dc_default_policy={SYSRAM}'}
R = 'region0'
T = 120
RES = 'System RAM (cxl_region_sysram)'


def test_default_policy_binds_dc_region(vm):
    assert read(vm, '/sys/module/cxl_core/parameters/dc_default_policy') \
        == SYSRAM
    assert create_dc_region(vm, G) == R
    sh(vm, f'echo {R} > /sys/bus/cxl/drivers_probe')
    assert driver_of(vm, R) == SYSRAM
    assert read(vm, f'{DEV}/{R}/driver_override') == '(null)'


def test_offer_goes_online_without_userspace_step(vm):
    before = meminfo(vm)
    qmp_ok(vm.add_capacity([(0, 256 * M)]))
    wait_for('MemTotal grows', lambda: meminfo(vm) - before == 256 * M)
    qmp_ok(vm.release_capacity([(0, 256 * M)]))
    wait_for('released', lambda: device_extents(vm) == [], timeout=120)
    assert meminfo(vm) == before


def test_override_still_wins(vm):
    sh(vm, f'echo {R} > /sys/bus/cxl/drivers/{SYSRAM}/unbind')
    sh(vm, f'echo cxl_region > {DEV}/{R}/driver_override && '
           f'echo {R} > /sys/bus/cxl/drivers_probe')
    assert driver_of(vm, R) == 'cxl_region'


def test_killed_unbind_strands_pinned_memory(vm):
    """Last: it leaves memory online until reboot.  Unbinding waits for
    pinned memory, killably; killing the task that unbinds leaves the
    memory online, its group stranded: QEMU keeps the extent, a QMP
    release is never confirmed, and the next bind does not take it."""
    sh(vm, f'echo {R} > /sys/bus/cxl/drivers/cxl_region/unbind')
    assert bind(vm, R, SYSRAM) == SYSRAM
    base, B = region_base(vm, R), block_size(vm)
    trace_on(vm, *DC_EVENTS)
    qmp_ok(vm.add_capacity([(512 * M, B)]))
    wait_for('online', lambda: len(memory_blocks(vm, base, G)) == 1, T)
    node = node_of_block(vm, min(memory_blocks(vm, base, G)))
    sh(vm, f'rm -f /tmp/go; memtouch -n {node} -p -w /tmp/go 96 '
           '> /tmp/mt.log 2>&1 &')
    wait_for('held', lambda: 'HELD' in sh(vm, 'cat /tmp/mt.log'), T)
    held = device_extents(vm)
    responses = dc_stats(vm)['responses']

    sh(vm, f'sh -c "echo {R} > /sys/bus/cxl/drivers/{SYSRAM}/unbind" '
           '</dev/null >/dev/null 2>&1 & echo $! > /tmp/unbind.pid')
    sh(vm, 'sleep 5')
    alive = 'kill -0 $(cat /tmp/unbind.pid) 2>/dev/null && echo alive; true'
    assert 'alive' in sh(vm, alive), 'unbind returned with memory pinned'
    assert len(memory_blocks(vm, base, G)) == 1
    sh(vm, 'kill -9 $(cat /tmp/unbind.pid)')
    wait_for('unbind killed', lambda: 'alive' not in sh(vm, alive), T)
    assert driver_of(vm, R) == ''
    log = sh(vm, 'dmesg')
    assert 'unbind killed' in log and 'stranded' in log, log[-2000:]
    # Still System RAM, still on the device.
    assert set(memory_blocks(vm, base, G).values()) == {'online'}
    assert RES in sh(vm, 'cat /proc/iomem')
    assert device_extents(vm) == held

    # Bound again: not recovered; released by QEMU: never confirmed.
    assert bind(vm, R, SYSRAM) == SYSRAM
    assert len(memory_blocks(vm, base, G)) == 1
    assert sysfs_extents(vm, R) == {}
    qmp_ok(vm.release_capacity([(512 * M, B)]))
    sh(vm, 'sleep 3')
    assert device_extents(vm) == held
    assert dc_stats(vm)['responses'] == responses
    # The pins drop: the memory stays, free, until reboot.
    sh(vm, 'touch /tmp/go')
    wait_for('memtouch done',
             lambda: 'RELEASED' in sh(vm, 'cat /tmp/mt.log'), T)
    assert set(memory_blocks(vm, base, G).values()) == {'online'}
    assert device_extents(vm) == held
