"""cxl_region_virtio against QEMU's DCD (issue #11, must-show 1 and 3):
the reference VMM client (tools/cxl/cxl_virtio_vmm) follows
/dev/cxl/virtio_region0, maps and checks every offered range, and takes
part in each release; a mapping kept past the acknowledgment, in the
client or in a peer that got the file by SCM_RIGHTS, faults with SIGBUS;
a second opener, mmap of a range that is not active, and /dev/mem are
refused; a VMM killed mid-handshake leaves the release to complete; a
restarted VMM lists the groups; unbinding hangs the stream up and leaves
the capacity accepted; QEMU's own memory-backend-file, run in the guest,
backs guest memory with an active range."""

from cxl import (DEV, M, bind, create_dc_region, device_extents, qmp_ok,
                 read, region_base, sh, sysfs_extents, unbind, wait_for)
from cxl_virtio import (T, VIRTIO, VMM, ctl, follow, log, node, pids, saw,
                        stop)

# QEMU itself, for the memory-backend-file test.
VM_ARGS = {'extra_initrd': 'initramfs-qemu.cpio.gz'}
R = 'region0'
NODE = node(R)
B = 128 * M
state = {}


def devmem_map(vm, addr):
    """Map and touch one page of /dev/mem at addr: the client's output.
    (read() of /dev/mem stops at the end of RAM, below any CXL window:
    mmap() is the way in.)"""
    return sh(vm, f'{VMM} /dev/mem touch {addr} 4096; true')


def offer(vm, dpa, length):
    qmp_ok(vm.add_capacity([(dpa, length)]))


def test_setup_and_devmem_control(vm):
    assert create_dc_region(vm, 1 << 30) == R
    state['base'] = region_base(vm, R)
    # Unclaimed, the region is within /dev/mem's reach: what the next
    # test shows closed is open before the bind.
    out = devmem_map(vm, state['base'])
    assert 'TOUCHED bytes=4096' in out, out
    assert bind(vm, R, VIRTIO) == VIRTIO
    sh(vm, f'test -c {NODE}')
    assert read(vm, f'{DEV}/{R}/tag_mode') == 'tagged'
    # QEMU sends no tags: a user lets untagged extents in.
    sh(vm, f'echo untagged > {DEV}/{R}/tag_mode')
    out = sh(vm, f'{VMM} {NODE} info')
    assert f'size={1 << 30:#x} align=0x200000 groups=0' in out, out


def test_devmem_cannot_read_the_region(vm):
    for addr in (state['base'], state['base'] + (1 << 30) - 4096):
        out = devmem_map(vm, addr)
        assert 'MAP-FAILED errno=1' in out, out
    assert 'virtio_region0' in sh(vm, 'cat /proc/iomem')


def test_second_opener_is_refused(vm):
    pid = follow(vm, R)
    out = sh(vm, f'{VMM} {NODE} info; true')
    assert 'OPEN-FAILED errno=16' in out, out
    state['pid'] = pid


def test_offer_reaches_the_client_which_maps_it(vm):
    offer(vm, 0, B)
    g = saw(vm, r'^ADD group=(\d+) tag=0{8}-0{4}-0{4}-0{4}-0{12} '
                r'ranges=0x0\+0x8000000$')
    assert saw(vm, rf'^MAPPED group={g} ok=(\d+)$') == str(B)
    state['g'] = g


def test_mmap_outside_active_ranges_fails(vm):
    ctl(vm, f'try-map 0 {B}')
    saw(vm, r'^TRY-MAP-OK offset=0x0$')
    ctl(vm, f'try-map {B} {2 * M}')       # in the region, not active
    saw(vm, rf'^TRY-MAP-FAILED offset={B:#x} errno=6$')
    ctl(vm, f'try-map {B - 2 * M} {4 * M}')    # straddles the end
    saw(vm, rf'^TRY-MAP-FAILED offset={B - 2 * M:#x} errno=6$')
    ctl(vm, f'try-map {1 << 30} {2 * M}')  # past the region
    saw(vm, rf'^TRY-MAP-FAILED offset={1 << 30:#x} errno=22$')


def test_release_is_acknowledged_then_given_back(vm):
    g = state['g']
    qmp_ok(vm.release_capacity([(0, B)]))
    saw(vm, rf'^RELEASE group={g} ')
    saw(vm, rf'^ACKED group={g}$')
    wait_for('released', lambda: device_extents(vm) == [], T)
    assert sysfs_extents(vm, R) == {}
    stop(vm, state.pop('pid'))


def test_mapping_kept_past_the_ack_faults_in_every_process(vm):
    """The client keeps its mapping (-k), and a peer that got the file by
    SCM_RIGHTS maps the group too (-p): after the acknowledgment both
    take SIGBUS, and the release reaches QEMU, which offers it again."""
    pid = follow(vm, R, '-k -p')
    saw(vm, r'^PEER got fd$')
    offer(vm, 0, B)
    g = saw(vm, r'^ADD group=(\d+) ')
    saw(vm, rf'^MAPPED group={g} ok={B}$')
    saw(vm, rf'^PEER MAPPED group={g}$')
    ctl(vm, f'peer-touch {g}')
    saw(vm, rf'^PEER READ group={g}$')
    qmp_ok(vm.release_capacity([(0, B)]))
    saw(vm, rf'^ACKED group={g}$')
    ctl(vm, f'touch {g}')
    saw(vm, rf'^SIGBUS group={g}$')
    ctl(vm, f'peer-touch {g}')
    saw(vm, rf'^PEER SIGBUS group={g}$')
    wait_for('released', lambda: device_extents(vm) == [], T)
    offer(vm, 0, B)
    g2 = saw(vm, r'^ADD group=(\d+) ')
    assert int(g2) > int(g)
    saw(vm, rf'^MAPPED group={g2} ok={B}$')
    state['pid'], state['g'] = pid, g2


def test_client_gives_a_group_back(vm):
    g = state['g']
    ctl(vm, f'give-back {g}')
    saw(vm, rf'^GAVE-BACK group={g}$')
    ctl(vm, f'touch {g}')
    saw(vm, rf'^SIGBUS group={g}$')
    wait_for('given back', lambda: device_extents(vm) == [], T)
    assert sysfs_extents(vm, R) == {}
    ctl(vm, f'give-back {g}')
    saw(vm, rf'^GIVE-BACK-FAILED group={g} errno=2$')
    offer(vm, 0, B)
    saw(vm, r'^MAPPED group=\d+ ok=')
    stop(vm, state.pop('pid'))


def test_restarted_client_lists_and_maps_again(vm):
    """The client was killed with the group active: it stays accepted,
    and the next client lists it and maps it."""
    assert [e['state'] for e in sysfs_extents(vm, R).values()] == ['active']
    pid = follow(vm, R)
    out = log(vm)
    assert 'LIST groups=1' in out, out
    g = saw(vm, r'^ADD group=(\d+) tag=\S+ ranges=0x0\+0x8000000$')
    saw(vm, rf'^MAPPED group={g} ok={B}$')
    state['pid'], state['g'] = pid, g


def test_client_killed_mid_handshake_release_completes(vm):
    """No acknowledgment (-A): the release waits; killing the client and
    its peer closes the file, which completes it."""
    stop(vm, state.pop('pid'))
    pid = follow(vm, R, '-A -p')
    g = saw(vm, r'^ADD group=(\d+) ')
    saw(vm, rf'^PEER MAPPED group={g}$')
    qmp_ok(vm.release_capacity([(0, B)]))
    saw(vm, rf'^RELEASE group={g} ')
    wait_for('release pending', lambda: [
        e['state'] for e in sysfs_extents(vm, R).values()] ==
        ['release-pending'], T)
    assert device_extents(vm) == [(0, B)]
    assert len(pids(vm)) == 2 and pid in pids(vm)
    stop(vm)
    wait_for('released', lambda: device_extents(vm) == [], T)
    assert sysfs_extents(vm, R) == {}


def test_unbind_hangs_up_and_keeps_the_capacity(vm):
    offer(vm, 0, B)
    wait_for('active', lambda: [e['state'] for e in sysfs_extents(
        vm, R).values()] == ['active'], T)
    follow(vm, R)
    saw(vm, r'^MAPPED group=\d+ ok=')
    unbind(vm, R)
    saw(vm, r'^HANGUP$')
    assert device_extents(vm) == [(0, B)]
    sh(vm, f'test ! -e {NODE}')
    # The next bind gets it back, active, for a new client.
    sh(vm, f'echo untagged > {DEV}/{R}/tag_mode')
    assert bind(vm, R, VIRTIO) == VIRTIO
    out = sh(vm, f'{VMM} {NODE} list')
    assert 'LIST groups=1' in out and 'ranges=0x0+0x8000000' in out, out


def test_qemu_memory_backend_file_takes_the_range(vm):
    """Must-show 2: QEMU itself (the host's, shipped in the guest) backs
    guest memory with the active range: memory-backend-file on the
    device, shared and preallocated (every page touched), and QMP's
    query-memdev lists it."""
    qmp = ('{"execute":"qmp_capabilities"}\\n'
           '{"execute":"query-memdev"}\\n{"execute":"quit"}\\n')
    out = sh(vm, f"printf '{qmp}' | qemu-system-x86_64 -machine none "
                 '-nodefaults -display none -accel tcg -qmp stdio '
                 '-object memory-backend-file,id=cxl0,'
                 f'mem-path={NODE},share=on,prealloc=on,offset=0,'
                 f'size={B} 2>&1', timeout=300)
    assert f'"size": {B}' in out and '"id": "cxl0"' in out, out
    assert '"prealloc": true' in out and '"share": true' in out, out
    # Past the active range the device refuses the mapping: QEMU fails.
    rc, out = vm.run('qemu-system-x86_64 -machine none -nodefaults '
                     '-display none -accel tcg -object memory-backend-file,'
                     f'id=cxl0,mem-path={NODE},share=on,prealloc=on,'
                     f'offset={B},size={B} </dev/null 2>&1', timeout=300)
    assert rc != 0, out
