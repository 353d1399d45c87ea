"""Recovery under every policy (issue #12, item 3), against QEMU's DCD.
The memdev is re-probed (cxl_pci unbound and bound again) while extents
are live under cxl_region_sysram (online memory), cxl_region_dax (a
claimed device a program maps) and cxl_region_virtio (a range the VMM
client maps), in turn.

What the re-probe does: the policy unbinds first (the driver core), so
the memory goes out of use as at any unbind and the device keeps every
extent.  The endpoint decoder is reset; region0 stays, uncommitted, with
its HPA range, size and driver_override.  The user re-creates the decode
the way the region was made (the decoder's mode and size, the target,
commit) and probes the region: the policy binds again and the library
reads the extents back with Get DC Extent List.  They come back with no
new Add DC Response (no cxl_dc_response record, every accept 'recovered'),
at the same DPA, and the policy resumes them."""
from cxl import (DC_EVENTS, DEV, G, M, SYSRAM, bind, create_dc_region,
                 device_extents, driver_of, iomem, memory_blocks, qmp_ok,
                 read, region_base, sh, sysfs_extents, trace_on,
                 trace_records, unbind, wait_for)
from cxl_virtio import VIRTIO, VMM, follow, node, saw, stop

R = 'region0'
DAX = 'cxl_region_dax'
VIEW = f'{DEV}/{R}/dax_region0/dax_region'
DAXBUS = '/sys/bus/dax/devices'
B = 128 * M
T = 120
RES = 'System RAM (cxl_region_sysram)'
state = {}


def _offer(vm, extents):
    trace_on(vm, *DC_EVENTS)
    qmp_ok(vm.add_capacity(extents))
    wait_for('response', lambda: trace_records(vm, 'cxl_dc_response'), T)


def _reprobe(vm):
    """Unbind and bind cxl_pci; returns once the memdev is back."""
    pci = sh(vm, 'basename $(dirname $(readlink -f '
                 '/sys/bus/cxl/devices/mem0))').strip()
    drv = '/sys/bus/pci/drivers/cxl_pci'
    sh(vm, f'echo {pci} > {drv}/unbind && echo {pci} > {drv}/bind', T)
    wait_for('memdev back', lambda: vm.run(
        f'test -e {DEV}/mem0/dynamic_ram_1 && test -e {DEV}/decoder2.0'
    )[0] == 0, 60)


def _reattach(vm):
    """What a user does after the re-probe: the region kept its HPA range
    and its policy (driver_override); its endpoint decoder is reset.
    Size it again (the first decoder of the DC partition starts at its
    base: the same DPA), target it, commit, probe."""
    sh(vm, f'''
        set -e
        cd {DEV}
        echo dynamic_ram_1 > decoder2.0/mode
        echo {G:#x} > decoder2.0/dpa_size
        echo decoder2.0 > {R}/target0
        echo 1 > {R}/commit
        echo {R} > /sys/bus/cxl/drivers_probe
    ''', T)


def _after_reprobe(vm, held, policy):
    """The device kept every extent and the region its decode settings;
    re-attach it and check the recovery: no response, all recovered."""
    assert driver_of(vm, R) == ''
    assert read(vm, f'{DEV}/{R}/commit') == '0'
    assert read(vm, f'{DEV}/{R}/driver_override') == policy
    assert int(read(vm, f'{DEV}/{R}/resource'), 0) == state['base']
    assert sorted(device_extents(vm)) == held
    trace_on(vm, *DC_EVENTS)
    _reattach(vm)
    assert driver_of(vm, R) == policy
    assert trace_records(vm, 'cxl_dc_response') == []
    rec = trace_records(vm, 'cxl_dc_accept')
    assert [r['reason'] for r in rec] == ['recovered'] * len(held), rec
    got = sorted((e['dpa'], e['length'])
                 for e in sysfs_extents(vm, R).values())
    assert got == held, (got, held)


def _give_all_back(vm, extents):
    qmp_ok(vm.release_capacity(extents))
    wait_for('released', lambda: device_extents(vm) == [], T)


def test_setup(vm):
    assert create_dc_region(vm, G) == R
    state['base'] = region_base(vm, R)


def test_sysram_resumes_online_memory(vm):
    assert bind(vm, R, SYSRAM) == SYSRAM
    ext = [(0, B), (2 * B, B)]
    _offer(vm, ext)
    wait_for('online', lambda: len(memory_blocks(vm, state['base'], G)) == 2,
             T)
    held = sorted(device_extents(vm))
    _reprobe(vm)
    assert iomem(vm, RES) == []
    _after_reprobe(vm, held, SYSRAM)
    wait_for('online again',
             lambda: len(memory_blocks(vm, state['base'], G)) == 2, T)
    assert len(iomem(vm, RES)) == 2
    _give_all_back(vm, ext)


def test_dax_claimed_device_comes_back_claimable(vm):
    """A claim does not survive the unbind (the dax devices go with the
    view); the group comes back free, and claims again."""
    unbind(vm, R)
    assert bind(vm, R, DAX) == DAX
    _offer(vm, [(0, B)])
    wait_for('free capacity',
             lambda: int(read(vm, f'{VIEW}/available_size')) == B, T)
    dev = read(vm, f'{VIEW}/seed')
    sh(vm, f'echo 0 > {DAXBUS}/{dev}/uuid')
    sh(vm, f'echo {dev} > /sys/bus/dax/drivers/device_dax/bind')
    out = sh(vm, f'daxmap /dev/{dev}', timeout=300)
    assert out.strip() == f'OK {B}', out
    held = sorted(device_extents(vm))
    _reprobe(vm)
    sh(vm, f'! test -e /dev/{dev}')
    _after_reprobe(vm, held, DAX)
    assert int(read(vm, f'{VIEW}/available_size')) == B
    dev = read(vm, f'{VIEW}/seed')
    sh(vm, f'echo 0 > {DAXBUS}/{dev}/uuid')
    sh(vm, f'echo {dev} > /sys/bus/dax/drivers/device_dax/bind')
    out = sh(vm, f'daxmap /dev/{dev}', timeout=300)
    assert out.strip() == f'OK {B}', out
    sh(vm, f'echo {dev} > /sys/bus/dax/drivers/device_dax/unbind; '
           f'echo 0 > {DAXBUS}/{dev}/size; echo all > {DEV}/{R}/give_back')
    wait_for('given back', lambda: device_extents(vm) == [], T)


def test_virtio_mapped_range_listed_again(vm):
    """The client maps a range; the re-probe hangs its stream up; after
    the re-attach a new client lists the group and maps it again."""
    unbind(vm, R)
    assert bind(vm, R, VIRTIO) == VIRTIO
    sh(vm, f'echo untagged > {DEV}/{R}/tag_mode')
    pid = follow(vm, R)
    _offer(vm, [(4 * B, B)])
    g = saw(vm, r'^ADD group=(\d+) ')
    assert saw(vm, rf'^MAPPED group={g} ok=(\d+)$') == str(B)
    held = sorted(device_extents(vm))
    _reprobe(vm)
    saw(vm, r'^HANGUP$')
    stop(vm, pid)
    # The tag mode a user chose stays with the region for the next bind.
    assert read(vm, f'{DEV}/{R}/tag_mode') == 'untagged'
    _after_reprobe(vm, held, VIRTIO)
    pid = follow(vm, R)
    saw(vm, r'^LIST groups=1$')
    saw(vm, rf'^MAPPED group=\d+ ok={B}$')
    stop(vm, pid)
    out = sh(vm, f'{VMM} {node(R)} list')
    assert f'ranges={4 * B:#x}+{B:#x}' in out, out
    _give_all_back(vm, [(4 * B, B)])
