"""cxl_region_sysram hot-adds memory when the host is short of it (issue 13,
item 1).  Hot-plugged memory needs a memmap, 64 bytes per 4 KiB page:
16 MiB for 1 GiB, taken from memory already online, which a host short of
memory does not have, and that is when a fabric manager adds capacity.
With cxl_region_sysram.memmap_on_memory (and the kernel's
memory_hotplug.memmap_on_memory) the memmap of each memory block sits on
that block.  A program locks all but about 14 MiB of the guest's free
memory, in a 1 GiB guest (no transparent huge pages, min_free_kbytes
4 MiB); QEMU then offers 1 GiB.  With the parameter it goes online and
comes back out; without it the offer is answered, cxl_region_sysram
declines to add memory whose memmap does not fit in what is available
(rather than take the host's last pages and wake the OOM killer), the
capacity goes back to the device with Release DC, nobody is killed, and
nothing hangs."""
from cxl import (G, M, SYSRAM, bind, create_dc_region, device_extents,
                 meminfo, memory_blocks, qmp_ok, region_base, sh,
                 sysfs_extents, wait_for)

# A 1 GiB guest: less to lock.
VM_ARGS = {'mem': '1G', 'extra_append': 'memory_hotplug.memmap_on_memory=1'}
# KASAN backs hot-added memory with shadow, 1/8 of it, taken from memory
# already online (128 MiB per GiB, memmap_on_memory or not): a host short
# of memory cannot hot-add on such a kernel.  The test kernel runs it.
FLAVOURS = ('test',)
FLAVOURS_WHY = ('KASAN takes 128 MiB of shadow per hot-added GiB from '
                'online memory: no pressure test on the debug kernel')
PARAM = f'/sys/module/{SYSRAM}/parameters/memmap_on_memory'
T = 180
S = {}


def _free_kib(vm):
    return meminfo(vm, 'MemFree') // 1024


def test_setup(vm):
    S['region'] = r = create_dc_region(vm, G)
    assert bind(vm, r, SYSRAM) == SYSRAM
    S['base'] = region_base(vm, r)
    S['memtotal'] = meminfo(vm)
    # Lock all the free memory but about 14 MiB: the memmap of 1 GiB
    # (16 MiB) cannot come from what is left.  The kernel's own reserve,
    # min_free_kbytes, is 44 MiB with transparent huge pages
    # (khugepaged raises it again whenever memory comes online): without
    # them, a host tuned to use its memory keeps 4 MiB.
    # The per-CPU free lists are kept short, so that MemFree is what an
    # allocation can have.
    sh(vm, 'echo never > /sys/kernel/mm/transparent_hugepage/enabled; '
           'echo 4096 > /proc/sys/vm/min_free_kbytes; '
           'echo 100000 > /proc/sys/vm/percpu_pagelist_high_fraction; '
           'rm -f /tmp/go')
    hog = _free_kib(vm) // 1024 - 14
    sh(vm, f'memtouch -l -w /tmp/go {hog} > /tmp/hog.log 2>&1 &')
    wait_for('memory locked', lambda: 'HELD' in sh(vm, 'cat /tmp/hog.log'),
             T)
    # What the first program's page tables did not take, a second takes.
    more = _free_kib(vm) // 1024 - 14
    if more > 0:
        sh(vm, f'memtouch -l -w /tmp/go {more} > /tmp/hog2.log 2>&1 &')
        wait_for('memory locked', lambda: 'HELD' in sh(
            vm, 'cat /tmp/hog2.log'), T)
        hog += more
    free = _free_kib(vm)
    print(f'# {hog} MiB locked, MemFree {free} KiB', flush=True)
    assert free < 16 * 1024, free


def test_1g_goes_online_with_memmap_on_memory(vm):
    sh(vm, f'echo 1 > {PARAM}')
    try:
        free = _free_kib(vm)
        qmp_ok(vm.add_capacity([(0, G)]))
        wait_for('1 GiB online', lambda: list(memory_blocks(
            vm, S['base'], G).values()) == ['online'] * 8, T)
        added = meminfo(vm) - S['memtotal']
        print(f'# MemFree before {free} KiB; MemTotal +{added >> 20} MiB '
              '(1 GiB less the memmap it holds)', flush=True)
        assert G - 16 * M <= added <= G, added
        assert [e['state'] for e in sysfs_extents(vm, S['region']).values()] \
            == ['active']
        # Out again: the memmap pages of each block are not the page
        # allocator's, and the bounded unplug leaves them alone.
        qmp_ok(vm.release_capacity([(0, G)]))
        wait_for('released', lambda: device_extents(vm) == [], T)
        assert memory_blocks(vm, S['base'], G) == {}
        assert meminfo(vm) == S['memtotal']
    finally:
        sh(vm, f'echo 0 > {PARAM}')


def test_without_it_the_offer_fails_cleanly(vm):
    # Memory coming online had the kernel compute min_free_kbytes again
    # (7 MiB for this guest): back to 4 MiB, the host's own setting.
    sh(vm, 'echo 4096 > /proc/sys/vm/min_free_kbytes; dmesg -c > /dev/null')
    free = _free_kib(vm)
    print(f'# MemFree {free} KiB', flush=True)
    assert free < 16 * 1024, free
    qmp_ok(vm.add_capacity([(0, G)]))
    wait_for('given back', lambda: 'not added (see memmap_on_memory)'
             in sh(vm, 'dmesg') and device_extents(vm) == [], T)
    assert memory_blocks(vm, S['base'], G) == {}
    assert sysfs_extents(vm, S['region']) == {}
    assert meminfo(vm) == S['memtotal']
    # Nobody was killed.
    assert 'Killed' not in sh(vm, 'dmesg') and \
        'RELEASED' not in sh(vm, 'cat /tmp/hog.log')
    # QEMU holds nothing pending: it takes a new offer of the range.
    sh(vm, 'touch /tmp/go')
    wait_for('locked memory given up',
             lambda: 'RELEASED' in sh(vm, 'cat /tmp/hog.log'), T)
    wait_for('programs gone', lambda: sh(
        vm, 'pidof memtouch; true').strip() == '', T)
    qmp_ok(vm.add_capacity([(0, G)]))
    wait_for('online', lambda: len(memory_blocks(vm, S['base'], G)) == 8, T)
    qmp_ok(vm.release_capacity([(0, G)]))
    wait_for('released', lambda: device_extents(vm) == [], T)
