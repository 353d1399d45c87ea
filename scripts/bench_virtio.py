#!/usr/bin/env python3
"""Benchmark (`make bench`): cxl_region_virtio, issue #11's figures, one
run each, printing ratios.

Events: 100 single-extent offers (2 MiB, untagged) written to a mock
DCD's injection knob reach the reference client
(tools/cxl/cxl_virtio_vmm follow -M: it reads events and maps nothing).
The rate is from the first offer written to the 100th event read, on
the guest's CLOCK_MONOTONIC; the events must arrive in offer order, one
each.

Faults and time: QEMU's DCD offers one 1 GiB extent; the client maps it
from /dev/cxl/virtio_region0 and writes one byte per 4 KiB page, counting
its minor faults (getrusage) and the time.  The same is done at a virtual
address 4 KiB off every 2 MiB boundary, which forces 4 KiB entries, and,
after the region is re-bound to cxl_region_dax and the extent claimed,
through /dev/daxZ.N (2 MiB alignment).  A first pass, not counted,
makes QEMU allocate the memory behind the extent on the host, which it
does on first touch."""
import argparse
import os
import re
import sys

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(TOP, 'scripts'), os.path.join(TOP, 'tests')]
from vm import VM  # noqa: E402
from cxl import (DEV, G, M, bind, create_dc_region, qmp_ok,  # noqa: E402
                 read, sh, sysfs_extents, unbind, wait_for)
from cxl_mock import T, discover, first_region  # noqa: E402
from cxl_virtio import VIRTIO, VMM, node  # noqa: E402

N = 100
PLAT = '/sys/bus/platform/devices'


def events(a):
    with VM() as vm:
        vm.start(kernel=a.kernel, initrd=a.initrd, mock=True)
        vm.wait_ready()
        d = first_region(vm, discover(vm), 256 * M)
        assert d, 'no mock DC region'
        T['bench'] = d
        r = d['region']
        assert bind(vm, r, VIRTIO) == VIRTIO
        sh(vm, f'echo untagged > {DEV}/{r}/tag_mode')
        out = sh(vm, f'''
            {VMM} {node(r)} follow -M -n {N} > /tmp/ev.log 2>&1 &
            while ! grep -q LIST /tmp/ev.log; do sleep 0.1; done
            {VMM} - now
            i=0
            while [ $i -lt {N} ]; do
                printf '%#x:0x200000:0:0\\n' $(({d["dpa"]} + i * 0x200000)) \\
                    > {PLAT}/{d["plat"]}/dc_inject_extent
                i=$((i + 1))
            done
            wait
            cat /tmp/ev.log''', timeout=600)
        t0 = int(re.search(r'^(\d+)$', out, re.M).group(1))
        adds = re.findall(r'^ADD group=(\d+) \S+ ranges=0x([0-9a-f]+)\+',
                          out, re.M)
        done = re.search(r'^DONE events=(\d+) first=(\d+) last=(\d+)$',
                         out, re.M)
        assert done and int(done.group(1)) == N, out[-2000:]
        offs = [int(o, 16) for _, o in adds]
        ids = [int(g) for g, _ in adds]
        in_order = (offs == [i * 2 * M for i in range(N)] and
                    ids == sorted(ids) and len(set(ids)) == N)
        last = int(done.group(3))
        span = (last - t0) / 1e9
        reads = (last - int(done.group(2))) / 1e9
        print(f'events: {N} offers -> {len(adds)} ADD events, '
              f'{"in order, none lost" if in_order else "OUT OF ORDER/LOST"}'
              f'; {N / span:.0f} events/s from the first offer written '
              f'({span * 1000:.0f} ms), first to last event read '
              f'{reads * 1000:.0f} ms', flush=True)
        return in_order


def touch(vm, path, length, mode=''):
    out = sh(vm, f'{VMM} {path} touch 0 {length} {mode}', timeout=1800)
    m = re.search(r'TOUCHED bytes=\d+ faults=(\d+) ns=(\d+) aligned2m=(\d)',
                  out)
    assert m, out
    return int(m.group(1)), int(m.group(2)) / 1e9, int(m.group(3))


def faults(a):
    with VM() as vm:
        vm.start(kernel=a.kernel, initrd=a.initrd, dc_size='2G',
                 dc_regions=2)
        vm.wait_ready()
        r = create_dc_region(vm, G)
        assert bind(vm, r, VIRTIO) == VIRTIO
        sh(vm, f'echo untagged > {DEV}/{r}/tag_mode')
        qmp_ok(vm.add_capacity([(0, G)]))
        wait_for('active', lambda: [e['state'] for e in sysfs_extents(
            vm, r).values()] == ['active'], 120)
        base = int(read(vm, f'{DEV}/{r}/resource'), 0)
        # QEMU allocates its backing memory on the first touch: once
        # before anything is timed, so every path finds it there.
        touch(vm, node(r), G)
        f_v, t_v, al = touch(vm, node(r), G)
        f_4k, t_4k, _ = touch(vm, node(r), G, '4k')
        # The same extent through cxl_region_dax and device_dax.
        unbind(vm, r)
        assert bind(vm, r, 'cxl_region_dax') == 'cxl_region_dax'
        view = f'{DEV}/{r}/dax_{r}/dax_region'
        wait_for('free', lambda: int(read(vm, f'{view}/available_size')) ==
                 G, 120)
        dev = read(vm, f'{view}/seed')
        sh(vm, f'echo 0 > /sys/bus/dax/devices/{dev}/uuid && '
               f'echo {dev} > /sys/bus/dax/drivers/device_dax/bind')
        f_d, t_d, _ = touch(vm, f'/dev/{dev}', G)
        print(f'faults to touch 1 GiB (region base {base:#x}, mapping '
              f'{"" if al else "not "}2 MiB-aligned): virtio {f_v}, '
              f'at 4 KiB entries {f_4k} (ratio {f_v / f_4k:.4f}); '
              f'/dev/{dev} {f_d}', flush=True)
        print(f'time to touch 1 GiB: virtio {t_v * 1000:.0f} ms, '
              f'/dev/{dev} {t_d * 1000:.0f} ms (ratio {t_v / t_d:.2f}), '
              f'virtio at 4 KiB entries {t_4k * 1000:.0f} ms '
              f'(ratio {t_v / t_4k:.2f})', flush=True)
        ok = f_v <= 512
        print(f'target: 512 faults or fewer for 1 GiB: '
              f'{"met" if ok else "MISSED"}', flush=True)
        return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--kernel')
    ap.add_argument('--initrd')
    a = ap.parse_args()
    ok = events(a)
    ok = faults(a) and ok
    sys.exit(0 if ok else 1)


if __name__ == '__main__':
    main()
