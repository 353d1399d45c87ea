#!/usr/bin/env python3
"""The main demonstration, what a new user runs first (`make demo`):
boot the kernel against QEMU's emulated Dynamic Capacity Device, show the
device's dynamic_ram_1 partition, create and commit a DC region through
sysfs as a user would, have the fabric manager (QMP) offer capacity, and
show what the kernel did with the offer: one trace record per event
record, and exactly one Add DC Response for the offer.  Then a user's
whole story with cxl_region_sysram: bind the policy, the fabric manager
offers 1 GiB, MemTotal grows, a program uses the new memory, the fabric
manager takes it back, MemTotal shrinks."""
import argparse
import os
import sys

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(TOP, 'scripts'), os.path.join(TOP, 'tests')]
from vm import VM  # noqa: E402
from cxl import (DEV, G, M, SYSRAM, bind, create_dc_region,  # noqa: E402
                 device_extents, meminfo, memory_blocks, node_of_block,
                 region_base, sh, trace_on, trace_records, wait_for)


def step(title):
    print(f'\n=== {title}', flush=True)


def show(vm, cmd):
    print(f'guest# {cmd}')
    print(sh(vm, cmd).rstrip())


def mib(n):
    return f'{n / M:.0f} MiB'


def sysram_story(vm, region):
    step('Pick the System RAM policy for the region (driver_override)')
    show(vm, f'echo {SYSRAM} > {DEV}/{region}/driver_override')
    show(vm, f'echo {region} > /sys/bus/cxl/drivers_probe')
    show(vm, f'readlink {DEV}/{region}/driver; '
             f'cat {DEV}/{region}/online_type {DEV}/{region}/tag_mode')
    before = meminfo(vm)
    print(f'MemTotal: {mib(before)}')

    step('The fabric manager offers 1 GiB; it becomes System RAM by itself')
    print(vm.add_capacity([(0, G)]))
    base = region_base(vm, region)
    wait_for('memory online', lambda: len(memory_blocks(vm, base, G)) == 8
             and set(memory_blocks(vm, base, G).values()) == {'online'})
    show(vm, f"grep -A1 '{region}' /proc/iomem")
    show(vm, f'cat {DEV}/{region}/extent*/state')
    grown = meminfo(vm)
    print(f'MemTotal: {mib(grown)} (+{mib(grown - before)})')

    node = node_of_block(vm, min(memory_blocks(vm, base, G)))
    step(f'A program writes and checks 768 MiB bound to node {node}, '
         'the region\'s node')
    show(vm, f'memtouch -n {node} 768')

    step('The fabric manager takes the 1 GiB back; the memory goes offline '
         'and the device gets its Release DC')
    print(vm.release_capacity([(0, G)]))
    wait_for('released', lambda: device_extents(vm) == [], timeout=120)
    show(vm, f"grep -A1 '{region}' /proc/iomem; ls {DEV}/{region}")
    after = meminfo(vm)
    print(f'MemTotal: {mib(after)} ({mib(after - grown)})')


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--kernel', default=os.path.join(TOP, 'out', 'bzImage'))
    ap.add_argument('--initrd',
                    default=os.path.join(TOP, 'out', 'initramfs.cpio.gz'))
    args = ap.parse_args()
    with VM() as vm:
        step('Boot Linux 7.3 + this project under QEMU (TCG) with one CXL DCD')
        vm.start(kernel=args.kernel, initrd=args.initrd)
        vm.wait_ready()
        print(f'guest ready after {vm.boot_time:.1f}s')
        show(vm, f'ls {DEV}')

        step('The device\'s first Dynamic Capacity region is partition dynamic_ram_1')
        show(vm, f'cat {DEV}/mem0/dynamic_ram_1/size')
        show(vm, "dmesg | grep -i 'DC region'")

        step('Create, size, target and commit a DC region through sysfs')
        region = create_dc_region(vm, G)
        show(vm, f'cat {DEV}/{region}/mode {DEV}/{region}/size '
                 f'{DEV}/{region}/commit')

        step('The fabric manager offers 2 x 128 MiB (QMP cxl-add-dynamic-capacity)')
        trace_on(vm, 'cxl_dynamic_capacity', 'cxl_dc_reject', 'cxl_dc_response')
        print(vm.add_capacity([(0, 128 * M), (128 * M, 128 * M)]))
        wait_for('the response', lambda: trace_records(vm, 'cxl_dc_response'))
        show(vm, "grep -o 'cxl_dc_.*' /sys/kernel/tracing/trace")

        step('No policy is bound to the region yet, so the offer was declined '
             'with one empty response; the device can offer the range again')
        print(vm.add_capacity([(0, 128 * M), (128 * M, 128 * M)]))
        wait_for('the second response',
                 lambda: len(trace_records(vm, 'cxl_dc_response')) == 2)
        show(vm, "grep -o 'cxl_dc_response.*' /sys/kernel/tracing/trace")
        sysram_story(vm, region)
        print('\ndemo complete')


if __name__ == '__main__':
    main()
