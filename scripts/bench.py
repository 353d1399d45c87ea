#!/usr/bin/env python3
"""Benchmark (`make bench`): how fast 1 GiB becomes System RAM and goes
away again through cxl_region_sysram, against upstream's path for a static
RAM region, against the kernel's own onlining of the same DC memory, and
against the same offer brought online through cxl_region_dax and kmem.
One VM run; each figure is the median of a few rounds; prints ratios.

Upstream's path is measured two ways.  "daxctl" is what a user runs:
`daxctl reconfigure-device --mode=system-ram dax0.0` (ndctl's user space:
kmem binds, the memory is added and onlined movable), and back with
`daxctl offline-memory` and `--mode=devdax`.  "sysfs" is the same kernel
work with no user-space program: kmem bound through sysfs, blocks onlined
by shell writes to sysfs, the least any user-space step can cost.  (A CXL
RAM region's dax device binds to kmem by itself in 7.3; the memory is
added offline, the default online type of this kernel.)

Times come from the guest's trace buffer on CLOCK_MONOTONIC.  sysram
online runs from the offer's first DC event record to the moment a guest
loop polling every 2 ms sees the last block online (a trace_marker
write); sysram release from the release's event record to the Release DC
record, sent once the memory is removed.  The other paths are bracketed
by trace_marker writes in the same guest command.  "kernel onlining" is
onlining already-added blocks through sysfs; "kernel add+online" is kmem
adding and onlining the memory by itself (auto_online_blocks).

"dax+kmem" is the same DC region bound to cxl_region_dax instead, and the
steps a user (or a udev rule) takes for it, from a guest shell started
before the offer: wait for the view's available_size (polled every 2
ms), claim the offered extent into the seed device with `0` (its uuid),
bind the device to kmem through new_id, and bring it online.  "state"
does that the 7.3 way, through daxZ.N/state: kmem adds the memory
offline (this kernel's default online type), then the state goes to
unplugged and to online_movable (kmem onlines only from unplugged).
"auto" lets kmem add and online it at bind (auto_online_blocks set to
online_movable; the state then reads online_movable).  Each runs from
the offer's first DC event record, as sysram online does, to a
trace_marker write once the poller sees every block online; the steps
in between are marked too.  Each round then gives the claim up and
QEMU takes the extent back.  The region is bound to sysram and to
cxl_region_dax in turns, one round of each path at a time, so that a
host that gets busier during the run slows all of them alike."""
import argparse
import os
import re
import statistics
import sys

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(TOP, 'scripts'), os.path.join(TOP, 'tests')]
from vm import VM  # noqa: E402
from cxl import (DEV, G, MEMORY, SYSRAM, bind, block_size,  # noqa: E402
                 create_dc_region, create_ram_region, device_extents,
                 qmp_ok, region_base, sh, unbind, wait_for)

DAX = '/sys/bus/dax'
DAX_POLICY = 'cxl_region_dax'


TRACE = '/sys/kernel/tracing'
# A marker's 'function' is tracing_mark_write, or an address without
# kallsyms.
_STAMP = re.compile(r'\s(\d+\.\d+): (tracing_mark_write|0x[0-9a-f]+|'
                    r'cxl_dynamic_capacity|cxl_dc_accept|cxl_dc_released): (\S+)')


def mark(name):
    return f'echo {name} > {TRACE}/trace_marker'


# How a claimed dax device comes online: (auto_online_blocks while kmem
# binds, the step after the bind, in the guest shell; $d is the device).
DAX_ONLINE = {
    # kmem adds the memory offline; its state onlines from unplugged only.
    'state': ('offline', 'read st < $d/state; [ $st = unplugged ] || '
                         'echo unplugged > $d/state; '
                         f'{mark("unplugged")}; '
                         'echo online_movable > $d/state'),
    # kmem adds and onlines it at bind.
    'auto': ('online_movable', 'read st < $d/state; '
                               '[ $st = online_movable ]'),
}


def stamps(vm):
    """[(seconds, what)] from the trace buffer, then empty it: what is
    the marker text, or 'event' for a DC event record."""
    out = sh(vm, f'cat {TRACE}/trace; echo > {TRACE}/trace')
    res = []
    for m in _STAMP.finditer(out):
        what = {'cxl_dynamic_capacity': 'event', 'cxl_dc_accept': 'accept',
                'cxl_dc_released': 'released'}.get(m.group(2), m.group(3))
        res.append((float(m.group(1)), what))
    return res


def span(recs, a, b):
    """Seconds from the first record a to the first record b."""
    ta = next(t for t, w in recs if w == a)
    tb = next(t for t, w in recs if w == b)
    return tb - ta


def wait_cmd(blocks, state):
    """Guest loop until every block is in state ('gone': removed), on
    shell builtins so that polling costs the guest little."""
    names = ' '.join(f'memory{b}' for b in blocks)
    if state == 'gone':
        cond = f'n=0; for b in {names}; do [ -e $b ] && n=1; done; [ $n = 0 ]'
    else:
        cond = (f'n=0; for b in {names}; do read s < $b/state && '
                f'[ "$s" = {state} ] && n=$((n+1)); done; '
                f'[ $n = {len(blocks)} ]')
    return f'cd {MEMORY}; until {cond}; do usleep 2000; done'


def set_blocks(blocks, state):
    return f'cd {MEMORY}; ' + '; '.join(
        f'echo {state} > memory{b}/state' for b in blocks)


class Bench:
    def __init__(self, vm, rounds):
        self.vm, self.rounds = vm, rounds
        self.t = {}
        sh(vm, f'echo mono > {TRACE}/trace_clock; '
               f'echo 1 > {TRACE}/events/cxl/cxl_dynamic_capacity/enable; '
               f'echo 1 > {TRACE}/events/cxl/cxl_dc_accept/enable; '
               f'echo 1 > {TRACE}/events/cxl/cxl_dc_released/enable; '
               f'echo > {TRACE}/trace')

    def add(self, key, seconds):
        self.t.setdefault(key, []).append(seconds)

    def med(self, key):
        return statistics.median(self.t[key])

    def static_dax_kmem(self):
        vm = self.vm
        region = create_ram_region(vm, G)
        sh(vm, f'echo {region} > /sys/bus/cxl/drivers_probe')
        wait_for('dax0.0', lambda: vm.run(f'[ -e {DAX}/devices/dax0.0 ]')[0] == 0)
        bs, base = block_size(vm), region_base(vm, region)
        blocks = [base // bs + i for i in range(G // bs)]
        # A CXL RAM region's dax device binds to kmem by itself; start the
        # rounds from the unbound device.
        sh(vm, wait_cmd(blocks, 'offline'))
        sh(vm, f'echo dax0.0 > {DAX}/drivers/kmem/unbind; '
               + wait_cmd(blocks, 'gone'))
        for _ in range(self.rounds):
            # Upstream's path: kmem adds the memory (offline: the default
            # online type of this kernel), then user space onlines it.
            stamps(vm)
            sh(vm, '; '.join([
                mark('start'), f'echo dax0.0 > {DAX}/drivers/kmem/bind',
                wait_cmd(blocks, 'offline'), mark('added'),
                set_blocks(blocks, 'online_movable'), mark('online'),
                set_blocks(blocks, 'offline'), mark('offline'),
                f'echo dax0.0 > {DAX}/drivers/kmem/unbind',
                wait_cmd(blocks, 'gone'), mark('gone')]), 300)
            r = stamps(vm)
            self.add('kmem online', span(r, 'start', 'online'))
            self.add('static: kernel onlining', span(r, 'added', 'online'))
            self.add('kmem release', span(r, 'online', 'gone'))
            self.add('static: kernel offlining', span(r, 'online', 'offline'))
        # The kernel adding and onlining it by itself, no user space step:
        # kmem with auto_online_blocks=online_movable.
        auto = f'{MEMORY}/auto_online_blocks'
        old = sh(vm, f'cat {auto}').strip()
        sh(vm, f'echo online_movable > {auto}')
        for _ in range(self.rounds):
            stamps(vm)
            sh(vm, '; '.join([
                mark('start'), f'echo dax0.0 > {DAX}/drivers/kmem/bind',
                wait_cmd(blocks, 'online'), mark('online'),
                set_blocks(blocks, 'offline'),
                f'echo dax0.0 > {DAX}/drivers/kmem/unbind',
                wait_cmd(blocks, 'gone')]), 300)
            self.add('kmem auto-online (kernel)',
                     span(stamps(vm), 'start', 'online'))
        sh(vm, f'echo {old} > {auto}')
        # What a user runs: daxctl (ndctl's user space) turns the dax
        # device into System RAM and back, with its defaults (movable).
        for _ in range(self.rounds):
            stamps(vm)
            out = sh(vm, '; '.join([
                mark('start'),
                'daxctl reconfigure-device --mode=system-ram dax0.0 '
                '>/dev/null 2>&1', wait_cmd(blocks, 'online'), mark('online'),
                f'cat {MEMORY}/memory{blocks[-1]}/valid_zones',
                'daxctl offline-memory dax0.0 >/dev/null 2>&1',
                'daxctl reconfigure-device --mode=devdax dax0.0 '
                '>/dev/null 2>&1', wait_cmd(blocks, 'gone'), mark('gone')]),
               300)
            # Same zone as sysram's default, for a fair comparison.
            assert out.split() == ['Movable'], out
            r = stamps(vm)
            self.add('daxctl online', span(r, 'start', 'online'))
            self.add('daxctl release', span(r, 'online', 'gone'))
        # Give the device's decoder back for the DC region.
        sh(vm, f'echo dax0.0 > {DAX}/drivers/device_dax/unbind; '
               f'echo {region} > /sys/bus/cxl/drivers/cxl_region/unbind; '
               f'echo 0 > {DEV}/{region}/commit; '
               f'echo {region} > {DEV}/decoder0.0/delete_region; '
               f'echo 0 > {DEV}/decoder2.0/dpa_size')

    def dc(self):
        """One DC region, offers of 1 GiB: cxl_region_sysram and
        cxl_region_dax+kmem take turns, round by round, so that a busy
        host slows each alike; then the kernel's own onlining."""
        vm = self.vm
        region = create_dc_region(vm, G)
        bs, base = block_size(vm), region_base(vm, region)
        blocks = [base // bs + i for i in range(G // bs)]
        for _ in range(self.rounds):
            bind(vm, region, SYSRAM)
            self.sysram_round(blocks)
            unbind(vm, region)
            assert bind(vm, region, DAX_POLICY) == DAX_POLICY
            for how in DAX_ONLINE:
                self.dax_round(region, blocks, how)
            unbind(vm, region)
        # The kernel's own onlining of the same memory: added offline by
        # the driver, onlined through sysfs.
        bind(vm, region, SYSRAM)
        sh(vm, f'echo offline > {DEV}/{region}/online_type')
        for _ in range(self.rounds):
            qmp_ok(vm.add_capacity([(0, G)]))
            sh(vm, wait_cmd(blocks, 'offline'), 300)
            stamps(vm)
            sh(vm, '; '.join([
                mark('start'), set_blocks(blocks, 'online_movable'),
                mark('online'), set_blocks(blocks, 'offline'),
                mark('offline')]))
            r = stamps(vm)
            self.add('dc: kernel onlining', span(r, 'start', 'online'))
            self.add('dc: kernel offlining', span(r, 'online', 'offline'))
            qmp_ok(vm.release_capacity([(0, G)]))
            sh(vm, wait_cmd(blocks, 'gone'), 300)
            wait_for('released', lambda: device_extents(vm) == [])
        unbind(vm, region)

    def sysram_round(self, blocks):
        vm = self.vm
        stamps(vm)
        # The poller runs before the offer is made, so that it sees the
        # last block come online, not when the host asked it to.
        sh(vm, f"({wait_cmd(blocks, 'online')}; {mark('online')}) "
               '>/dev/null 2>&1 &')
        qmp_ok(vm.add_capacity([(0, G)]))
        wait_for('online', lambda: 'online' in
                 sh(vm, f'cat {TRACE}/trace'), timeout=300)
        r = stamps(vm)
        self.add('sysram online', span(r, 'event', 'online'))
        self.add('sysram: offer to accept', span(r, 'event', 'accept'))
        qmp_ok(vm.release_capacity([(0, G)]))
        wait_for('released', lambda: device_extents(vm) == [])
        # Until Release DC went out: the memory was removed before.
        self.add('sysram release', span(stamps(vm), 'event', 'released'))

    def dax_round(self, region, blocks, how):
        """The offer through cxl_region_dax and kmem, onlined the way how
        says (DAX_ONLINE); then the claim is given up and QEMU's release
        takes the free group back at once."""
        vm = self.vm
        z = region[len('region'):]
        view = f'{DEV}/{region}/dax_region{z}/dax_region'
        at_bind, online = DAX_ONLINE[how]
        auto = f'{MEMORY}/auto_online_blocks'
        old = sh(vm, f'cat {auto}').strip()
        sh(vm, f'echo {at_bind} > {auto}')
        stamps(vm)
        # What a user (or a udev rule) does once the offer shows up as
        # free capacity; started before the offer.
        sh(vm, f"""(cd {view}
            until read a < available_size && [ $a = {G} ]; do
                usleep 2000
            done
            {mark('free')}
            read s < seed; d={DAX}/devices/$s; echo $s > /tmp/dax-dev
            (set -e
             echo 0 > $d/uuid; {mark('claimed')}
             echo $s > {DAX}/drivers/kmem/new_id; [ -e $d/driver ]
             {mark('bound')}
             {online}
             {wait_cmd(blocks, 'online')}; {mark('online')}
            ) || {mark('failed')}) >/dev/null 2>&1 &""")
        qmp_ok(vm.add_capacity([(0, G)]))
        wait_for('online', lambda: re.search(
            r': (online|failed)$', sh(vm, f'cat {TRACE}/trace'), re.M),
            timeout=300)
        r = stamps(vm)
        assert 'failed' not in [w for _, w in r], r
        self.add(f'dax+kmem online ({how})', span(r, 'event', 'online'))
        self.add('dax: offer to free', span(r, 'event', 'free'))
        self.add('dax: claim', span(r, 'free', 'claimed'))
        if how == 'state':
            self.add('dax (state): kmem adds', span(r, 'claimed', 'bound'))
            self.add('dax (state): unplug', span(r, 'bound', 'unplugged'))
            self.add('dax (state): online', span(r, 'unplugged', 'online'))
        else:
            self.add('dax (auto): kmem adds+online',
                     span(r, 'claimed', 'online'))
        sh(vm, f"""s=$(cat /tmp/dax-dev); d={DAX}/devices/$s
            echo unplugged > $d/state
            echo $s > {DAX}/drivers/kmem/unbind
            echo $s > {DAX}/drivers/kmem/remove_id
            echo 0 > $d/size
            [ $s = dax{z}.0 ] || echo $s > {view}/delete
            echo {old} > {auto}
            {wait_cmd(blocks, 'gone')}""", 300)
        qmp_ok(vm.release_capacity([(0, G)]))
        wait_for('released', lambda: device_extents(vm) == [])

    def report(self):
        print(f'\n1 GiB, median of {self.rounds} rounds (ms, each round)')
        for k in sorted(self.t):
            vals = ', '.join(f'{v * 1000:.0f}' for v in self.t[k])
            print(f'  {k:28s} {self.med(k) * 1000:7.0f} ms   ({vals})')
        ratios = [
            ('online:  sysram / dax+kmem (daxctl)', 'sysram online',
             'daxctl online', 0.7),
            ('online:  sysram / dax+kmem (sysfs)', 'sysram online',
             'kmem online', 0.7),
            ('online:  sysram / kernel onlining', 'sysram online',
             'dc: kernel onlining', 1.5),
            ('online:  sysram / kernel add+online', 'sysram online',
             'kmem auto-online (kernel)', 1.5),
            ('online:  sysram / DC dax+kmem, state', 'sysram online',
             'dax+kmem online (state)', None),
            ('online:  sysram / DC dax+kmem, auto', 'sysram online',
             'dax+kmem online (auto)', None),
            ('release: sysram / dax+kmem (daxctl)', 'sysram release',
             'daxctl release', 0.7),
            ('release: sysram / dax+kmem (sysfs)', 'sysram release',
             'kmem release', 0.7),
            ('release: sysram / kernel offlining', 'sysram release',
             'dc: kernel offlining', 1.5),
        ]
        # No policy can online memory faster than the kernel adds and
        # onlines it: that bounds what any sysram path can reach.
        floor = self.med('kmem auto-online (kernel)') / self.med('kmem online')
        print(f'\n  floor for any policy: kernel add+online / dax+kmem '
              f'(sysfs) = {floor:.2f}x')
        print()
        for title, a, b, target in ratios:
            r = self.med(a) / self.med(b)
            if target is None:
                print(f'  {title:36s} {r:5.2f}x  (same offer, same run)')
                continue
            print(f'  {title:36s} {r:5.2f}x  (target <= {target}x: '
                  f'{"met" if r <= target else "NOT met"})')


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--kernel', default=os.path.join(TOP, 'out', 'bzImage'))
    ap.add_argument('--initrd',
                    default=os.path.join(TOP, 'out', 'initramfs.cpio.gz'))
    ap.add_argument('--rounds', type=int, default=5)
    args = ap.parse_args()
    with VM() as vm:
        vm.start(kernel=args.kernel, initrd=args.initrd, ram_size='1G')
        vm.wait_ready()
        b = Bench(vm, args.rounds)
        b.static_dax_kmem()
        b.dc()
        b.report()


if __name__ == '__main__':
    main()
