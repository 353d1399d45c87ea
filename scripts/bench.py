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
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(TOP, 'scripts'), os.path.join(TOP, 'tests')]
from vm import VM  # noqa: E402
from cxl import (DEV, G, MEMORY, SYSRAM, bind, block_size,  # noqa: E402
                 create_dc_region, create_ram_region, device_extents,
                 qmp_ok, region_base, sh, unbind, wait_for)

DAX = '/sys/bus/dax'
HOLD_FREE = '/sys/module/cxl_core/parameters/dc_hold_free_blocks'
DAX_POLICY = 'cxl_region_dax'


TRACE = '/sys/kernel/tracing'
# A marker's 'function' is tracing_mark_write, or an address without
# kallsyms.
_STAMP = re.compile(r'\s(\d+\.\d+): (tracing_mark_write|0x[0-9a-f]+|'
                    r'cxl_\w+): (.*)$', re.M)
# The trace events read, and the stage each one marks (by its first field).
EVENTS = ('cxl/cxl_dynamic_capacity', 'cxl/cxl_dc_accept',
          'cxl/cxl_dc_released', 'cxl_dc/cxl_dc_mbox_send',
          'cxl_dc/cxl_dc_mbox_done', 'cxl_dc/cxl_dc_unplug',
          'cxl_dc/cxl_dc_memory')
ADD_DC_RESPONSE, RELEASE_DC = '0x4802', '0x4803'
MBOX = {('cxl_dc_mbox_send', ADD_DC_RESPONSE): 'respond',
        ('cxl_dc_mbox_done', ADD_DC_RESPONSE): 'answered',
        ('cxl_dc_mbox_send', RELEASE_DC): 'release_dc',
        ('cxl_dc_mbox_done', RELEASE_DC): 'release_done'}


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


def _what(event, text):
    """The stage a trace record marks: the marker's text; 'event' for a
    DC event record; respond, answered, release_dc, release_done for
    the library's mailbox commands; unplug_<stage>; mem_<action> for a
    memory block of the region."""
    fields = dict(f.split('=', 1) for f in text.split() if '=' in f)
    if event.startswith('cxl_dc_mbox'):
        return MBOX.get((event, fields.get('opcode')), event)
    if event == 'cxl_dc_unplug':
        return 'unplug_' + fields['stage']
    if event == 'cxl_dc_memory':
        return 'mem_' + fields['action']
    return {'cxl_dynamic_capacity': 'event', 'cxl_dc_accept': 'accept',
            'cxl_dc_released': 'released'}.get(event, text.split()[0])


def stamps(vm):
    """[(seconds, what)] from the trace buffer, then empty it (see
    _what())."""
    out = sh(vm, f'cat {TRACE}/trace; echo > {TRACE}/trace')
    return [(float(m.group(1)), _what(m.group(2), m.group(3)))
            for m in _STAMP.finditer(out)]


def at(recs, w, last=False):
    """When the first (or last) record w came."""
    ts = [t for t, x in recs if x == w]
    return ts[-1] if last else ts[0]


def span(recs, a, b, last=False):
    """Seconds from the first record a to the first (last) record b."""
    return at(recs, b, last) - at(recs, a)


# Stages of an add and of a release through cxl_region_sysram, each from
# one trace record to the next (the last of those in LAST; the first of
# the others): the device's record drained, the Add DC Response sent and
# answered, the memory added (its first block going online), all of it
# online (the last block's MEM_ONLINE); the release
# record drained, the unplug attempt started, every page held
# (fake-offline), the last block offline, the memory removed, Release DC
# sent and answered.
ONLINE_STAGES = (
    ('1 record to response sent', 'event', 'respond'),
    ('2 response round trip', 'respond', 'answered'),
    ('3 answered to memory added', 'answered', 'mem_going_online'),
    ('4 memory onlined', 'mem_going_online', 'mem_online'))
RELEASE_STAGES = (
    ('1 record to unplug', 'event', 'unplug_start'),
    ('2 fake-offline', 'unplug_start', 'unplug_held'),
    ('3 offline', 'unplug_held', 'mem_offline'),
    ('4 remove', 'mem_offline', 'unplug_removed'),
    ('5 removed to Release DC', 'unplug_removed', 'release_dc'),
    ('6 Release DC round trip', 'release_dc', 'release_done'))
LAST = ('answered', 'mem_online', 'mem_offline', 'release_done')


SETTLE = 0.5  # seconds the guest is left alone after an offer or a release


def settle():
    """Leave the guest alone while it brings memory in or out: no command
    of the benchmark competes with the work measured."""
    time.sleep(SETTLE)


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
        sh(vm, f'echo mono > {TRACE}/trace_clock; ' + ''.join(
            f'echo 1 > {TRACE}/events/{e}/enable; ' for e in EVENTS) +
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
            # The same with every block taken fake-offline before it is
            # offlined, free or not (as before this was measured).
            sh(vm, f'echo 1 > {HOLD_FREE}')
            self.sysram_round(blocks, 'sysram, hold free')
            sh(vm, f'echo 0 > {HOLD_FREE}')
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
                mark('online')]))
            self.add('dc: kernel onlining', span(stamps(vm), 'start',
                                                 'online'))
            # Offlined after the same pause as sysram's release comes.
            settle()
            sh(vm, '; '.join([
                mark('online'), set_blocks(blocks, 'offline'),
                mark('offline')]))
            offline = span(stamps(vm), 'online', 'offline')
            self.add('dc: kernel offlining', offline)
            # The release finds the blocks offline: the driver's attempt
            # holds no page and only removes them.
            qmp_ok(vm.release_capacity([(0, G)]))
            settle()
            sh(vm, wait_cmd(blocks, 'gone'), 300)
            wait_for('released', lambda: device_extents(vm) == [])
            remove = span(stamps(vm), 'unplug_held', 'unplug_removed')
            self.add('dc: kernel remove', remove)
            self.add('dc: kernel offline+remove', offline + remove)
        unbind(vm, region)

    def sysram_round(self, blocks, key='sysram'):
        vm = self.vm
        stamps(vm)
        # Nothing runs in the guest meanwhile: the memory is online when
        # its last block's MEM_ONLINE notification comes (a tracepoint).
        qmp_ok(vm.add_capacity([(0, G)]))
        settle()
        wait_for('online', lambda: sh(
            vm, f'grep -c "cxl_dc_memory: action=online " {TRACE}/trace; '
                'true').strip() == str(len(blocks)), timeout=300)
        r = stamps(vm)
        self.add(f'{key} online', span(r, 'event', 'mem_online', last=True))
        if key != 'sysram':
            # Online is the same path: only the release differs.
            r = []
        # Where the time goes, stage by stage (ONLINE_STAGES).
        for name, a, b in ONLINE_STAGES if r else ():
            self.add(f'sysram online {name}',
                     at(r, b, b in LAST) - at(r, a, a in LAST))
        qmp_ok(vm.release_capacity([(0, G)]))
        settle()
        wait_for('released', lambda: device_extents(vm) == [])
        # Until the device answered Release DC: the memory was removed
        # before it went out.
        r = stamps(vm)
        self.add(f'{key} release', span(r, 'event', 'release_done'))
        for name, a, b in RELEASE_STAGES:
            self.add(f'{key} release {name}',
                     at(r, b, b in LAST) - at(r, a, a in LAST))

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
        # The device asks for the capacity back while the dax device holds
        # it: the group stays release-pending until the user gives the
        # claim up, the 7.3 way (state unplugged: kmem offlines and
        # removes the memory), then the library sends Release DC.
        stamps(vm)
        qmp_ok(vm.release_capacity([(0, G)]))
        wait_for('release pending', lambda: 'release-pending' in sh(
            vm, f'cat {DEV}/{region}/extent*/state'))
        sh(vm, f"""s=$(cat /tmp/dax-dev); d={DAX}/devices/$s
            {mark('unplug')}
            echo unplugged > $d/state
            {wait_cmd(blocks, 'gone')}; {mark('unplugged')}
            echo $s > {DAX}/drivers/kmem/unbind
            echo $s > {DAX}/drivers/kmem/remove_id
            echo 0 > $d/size
            [ $s = dax{z}.0 ] || echo $s > {view}/delete
            echo {old} > {auto}""", 300)
        wait_for('released', lambda: device_extents(vm) == [])
        r = stamps(vm)
        self.add(f'dax+kmem release ({how})',
                 span(r, 'unplug', 'release_done'))
        self.add(f'dax ({how}): kmem offline+remove',
                 span(r, 'unplug', 'unplugged'))

    def report(self):
        print(f'\n1 GiB, median of {self.rounds} rounds (ms, each round)')
        for k in sorted(self.t):
            vals = ', '.join(f'{v * 1000:.0f}' for v in self.t[k])
            print(f'  {k:44s} {self.med(k) * 1000:7.0f} ms   ({vals})')
        ratios = [
            ('online:  sysram / dax+kmem (daxctl)', 'sysram online',
             'daxctl online', 0.7),
            ('online:  sysram / dax+kmem (sysfs)', 'sysram online',
             'kmem online', 0.7),
            ('online:  sysram / kernel onlining', 'sysram online',
             'dc: kernel onlining', 1.5),
            ('online:  sysram / kernel add+online', 'sysram online',
             'kmem auto-online (kernel)', 1.05),
            ('online:  sysram / DC dax+kmem, state', 'sysram online',
             'dax+kmem online (state)', None),
            ('online:  sysram / DC dax+kmem, auto', 'sysram online',
             'dax+kmem online (auto)', None),
            ('release: sysram / dax+kmem (daxctl)', 'sysram release',
             'daxctl release', 0.7),
            ('release: sysram / dax+kmem (sysfs)', 'sysram release',
             'kmem release', 0.7),
            ('release: sysram / DC dax+kmem, state', 'sysram release',
             'dax+kmem release (state)', None),
            ('release: sysram / DC dax+kmem, auto', 'sysram release',
             'dax+kmem release (auto)', None),
            ('release: sysram / kernel offlining', 'sysram release',
             'dc: kernel offlining', 1.5),
            ('release: sysram / kernel offline+remove', 'sysram release',
             'dc: kernel offline+remove', 1.1),
            ('release: sysram, hold free / kernel off+rm',
             'sysram, hold free release', 'dc: kernel offline+remove', None),
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
                print(f'  {title:42s} {r:5.2f}x  (same offer, same run)')
                continue
            print(f'  {title:42s} {r:5.2f}x  (target <= {target}x: '
                  f'{"met" if r <= target else "NOT met"})')


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--kernel', default=os.path.join(TOP, 'out', 'bzImage'))
    ap.add_argument('--initrd',
                    default=os.path.join(TOP, 'out', 'initramfs.cpio.gz'))
    ap.add_argument('--rounds', type=int, default=15)
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
