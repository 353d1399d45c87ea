"""A randomized campaign of Dynamic Capacity event records, valid and
malformed, against two mock DCDs whose regions run different policies:
cxl_region_sysram (memory added offline: the mock's addresses hold no
memory) and cxl_region_dax (on the sharable memdev, with claims and
unclaims between batches, so that releases and forced releases find
groups free, held, and release-pending).  Used by `make stress`
(scripts/stress.py, thousands of records on the debug kernel) and by a
short slice in `make test` (tests/e2e/stress_slice.py).

Nothing here models what the host should decide.  After every batch the
campaign checks what must hold whatever the records were: the host's
extents agree with the mock's accepted set on each device, no offer is
left pending (every one was answered; a second answer is a violation the
mock counts), and the mock counted no protocol violation.  The kernel's
own detectors (KASAN, lockdep, UBSAN, kmemleak) are read by the runner.

Every run prints its seed: `scripts/stress.py --seed N` replays it."""
import random
import time
import uuid

from cxl import DEV, M, SYSRAM, bind, read, sh, wait_for
from cxl_mock import (PLAT, T, agree, dax_view, discover, mock_extents,
                      mock_stats, rec, shared_and_plain_regions)

DAX = 'cxl_region_dax'
B = 128 * M              # the guest's memory block: sysram's granularity
# The regions: two memory blocks for sysram.
SIZE = {'sysram': 2 * B, 'dax': 2 * B}
TIMEOUT = '/sys/module/cxl_core/parameters/dc_chain_timeout_ms'
DC_UUID = uuid.UUID('ca95afa7-f183-4018-8c2f-95268e101a2a').bytes
ADD, RELEASE, FORCED = 0, 1, 2

# Record classes and their weights.
CLASSES = {
    'offer': 18,             # untagged, in the region, policy aligned
    'offer_tagged': 8,       # a tag group, sequence 0..n-1 where sharable
    'offer_overlap': 5,      # overlaps or repeats accepted capacity
    'offer_misaligned': 4,   # not policy (or block) aligned
    'offer_zero': 3,         # zero length
    'offer_wrap': 3,         # start + length wraps 2^64
    'offer_outside': 3,      # outside the region / the DC partition
    'offer_tag_reused': 4,   # a tag live elsewhere on the host
    'offer_seq_gap': 3,      # sharable group with a sequence gap
    'offer_seq_dup': 2,      # sharable group with a repeated sequence
    'chain_unclosed': 3,     # More set, the chain never closed
    'unknown_type': 3,       # an event type the spec does not define,
                             # or Region Configuration Updated, unchanged
    'config_change': 2,      # the DC region shrinks under the region, or
                             # reads back invalid; then whole again
    'garbage': 3,            # random bytes after a valid header
    'release': 12,           # of an accepted extent
    'release_part': 4,       # of part of one
    'release_unknown': 5,    # of capacity never accepted
    'release_beyond': 3,     # running past the region's end
    'forced': 8,             # of an accepted extent, whatever its state
    'forced_unknown': 3,     # of capacity never accepted
}


def raw(event_type, dpa, length, flags=0, tag=b'', seq=0, junk=None):
    """A whole DC event record as hex (CXL r3.1 Table 8-50)."""
    b = bytearray(128)
    b[0:16] = DC_UUID
    b[16] = 128
    if junk is not None:
        b[48:128] = junk
        return b.hex()
    b[48] = event_type
    b[53] = flags
    b[56:64] = (dpa % (1 << 64)).to_bytes(8, 'little')
    b[64:72] = (length % (1 << 64)).to_bytes(8, 'little')
    b[72:88] = tag.ljust(16, b'\0')[:16]
    b[88:90] = seq.to_bytes(2, 'little')
    return b.hex()


class Campaign:
    def __init__(self, vm, seed, log=print):
        self.vm, self.seed, self.log = vm, seed, log
        self.rng = random.Random(seed)
        self.counts = {c: 0 for c in CLASSES}
        self.records = 0
        self.batches = 0
        self.t0 = time.monotonic()
        self.live_tags = []

    # -- setup -------------------------------------------------------------

    def setup(self):
        """Two regions on two mock memdevs: sysram on a plain one, dax on
        the sharable one; a short chain timer, so that a chain never
        closed is answered within the batch."""
        vm = self.vm
        T.clear()
        mems = discover(vm)
        # cxl_test's one-way windows are small: 256 MiB each, one root.
        shared, plain = shared_and_plain_regions(vm, mems, SIZE['dax'])
        T['dax'], T['sysram'] = shared, plain
        base = int(read(vm, f'{DEV}/{plain["region"]}/resource'), 0)
        assert base % B == 0, hex(base)
        assert bind(vm, plain['region'], SYSRAM) == SYSRAM
        assert read(vm, f'{DEV}/{plain["region"]}/online_type') == 'offline'
        assert bind(vm, shared['region'], DAX) == DAX
        sh(vm, f'echo 300 > {TIMEOUT}')
        self.before = {d: mock_stats(vm, d) for d in T}
        self.log(f'# stress: seed {self.seed}')

    # -- records -----------------------------------------------------------

    def _gran(self, dev):
        return B if dev == 'sysram' else 2 * M

    def _slot(self, dev, taken, length):
        """A free, aligned DPA range of length in dev's region, or None."""
        d, g = T[dev], self._gran(dev)
        for _ in range(20):
            off = self.rng.randrange(0, SIZE[dev] - length + 1, g)
            a = d['dpa'] + off
            if not any(a < x + n and x < a + length for x, n in taken):
                taken.append((a, length))
                return a
        return None

    def _one(self, dev, cls, accepted, taken):
        """Knob writes (knob name, value) for one record class."""
        rng, d, g = self.rng, T[dev], self._gran(dev)
        sharable = dev == 'dax'
        inject = 'dc_inject_shared_extent' if sharable else 'dc_inject_extent'
        end = d['dpa'] + SIZE[dev]
        if cls == 'offer':
            a = self._slot(dev, taken, g * rng.choice((1, 1, 2)))
            return [(inject if not sharable else 'dc_inject_extent',
                     rec(a, g))] if a is not None else []
        if cls in ('offer_tagged', 'offer_seq_gap', 'offer_seq_dup'):
            n = rng.randint(2, 3)
            parts = [self._slot(dev, taken, g) for _ in range(n)]
            if None in parts:
                return []
            tag = str(uuid.uuid4())
            self.live_tags.append(tag)
            seqs = list(range(n))
            if cls == 'offer_seq_gap':
                seqs[-1] += 1
            elif cls == 'offer_seq_dup':
                seqs[-1] = seqs[0]
            order = list(range(n))
            rng.shuffle(order)
            if not sharable:
                return [(inject, rec(parts[i], g, tag, int(k < n - 1)))
                        for k, i in enumerate(order)]
            return [(inject, rec(parts[i], g, tag, int(k < n - 1), seqs[i]))
                    for k, i in enumerate(order)]
        if cls == 'offer_overlap':
            if not accepted:
                return []
            a, n, _ = rng.choice(accepted)
            a = max(d['dpa'], a - rng.choice((0, g)))
            return [('dc_inject_extent', rec(a, n))]
        if cls == 'offer_misaligned':
            a = d['dpa'] + rng.randrange(0, SIZE[dev] - 2 * g + 1, g)
            return [('dc_inject_raw', raw(ADD, a + rng.choice((4096, 0)),
                                          g // 2 + rng.choice((0, 4096))))]
        if cls == 'offer_zero':
            return [('dc_inject_raw', raw(ADD, d['dpa'], 0))]
        if cls == 'offer_wrap':
            return [('dc_inject_raw', raw(ADD, (1 << 64) - g, 2 * g))]
        if cls == 'offer_outside':
            a = rng.choice((0, end, end + SIZE[dev], 1 << 50))
            return [('dc_inject_raw', raw(ADD, a, g))]
        if cls == 'offer_tag_reused':
            if not self.live_tags:
                return []
            tag = rng.choice(self.live_tags)
            a = self._slot(dev, taken, g)
            if a is None:
                return []
            return [(inject, rec(a, g, tag, 0, 0 if sharable else None))]
        if cls == 'chain_unclosed':
            a = self._slot(dev, taken, g)
            return [(inject if not sharable else 'dc_inject_extent',
                     rec(a, g, None, 1))] if a is not None else []
        if cls == 'unknown_type':
            return [('dc_inject_raw', raw(rng.choice((3, 6, 0x7f, 0xff)),
                                          d['dpa'], g))]
        if cls == 'config_change':
            # The mock's DC region is 512 MiB from the region's first DPA.
            ln = rng.choice((rng.randrange(0, SIZE[dev], g), 1,
                             SIZE[dev] + 1))
            return [('dc_region_length', f'{ln:#x}'),
                    ('dc_region_length', f'{512 * M:#x}')]
        if cls == 'garbage':
            junk = bytes(rng.randrange(256) for _ in range(80))
            return [('dc_inject_raw', raw(0, 0, 0, junk=junk))]
        if cls in ('release', 'forced', 'release_part'):
            if not accepted:
                return []
            a, n, tag = rng.choice(accepted)
            knob = 'dc_force_del_extent' if cls == 'forced' else \
                'dc_del_extent'
            if cls == 'release_part' and n > g:
                n = g
            return [(knob, f'{a:#x}:{n:#x}:{tag if tag != NULL else 0}')]
        if cls in ('release_unknown', 'forced_unknown'):
            a = self._slot(dev, list(taken), g)
            if a is None:
                return []
            knob = 'dc_force_del_extent' if cls == 'forced_unknown' else \
                'dc_del_extent'
            return [(knob, f'{a:#x}:{g:#x}:0')]
        if cls == 'release_beyond':
            return [('dc_del_extent', f'{end - g:#x}:{4 * g:#x}:0')]
        raise ValueError(cls)

    def batch(self, n):
        """About n records over both devices, then the checks."""
        vm, rng = self.vm, self.rng
        classes, weights = zip(*CLASSES.items())
        cmds = []
        for dev in T:
            acc = [(a, ln, u) for a, ln, u, _ in mock_extents(vm, dev)]
            taken = [(a, ln) for a, ln, _ in acc]
            writes = []
            while len(writes) < n // len(T):
                cls = rng.choices(classes, weights)[0]
                w = self._one(dev, cls, acc, taken)
                if w:
                    self.counts[cls] += 1
                    writes += w
            self.records += len(writes)
            path = f'{PLAT}/{T[dev]["plat"]}'
            # One write per record; a knob that refuses one goes on.
            cmds.append('; '.join(f'echo {v} > {path}/{k} 2>/dev/null'
                                  for k, v in writes))
        # The two devices' records interleave: both run at once.
        sh(vm, ' & '.join(f'( {c} )' for c in cmds) + '; wait; true',
           timeout=600)
        self._claims()
        self.batches += 1
        self.check()

    def _claims(self):
        """Between batches, claim some free dax capacity and give some
        claims up, so that the next batch's releases find groups free,
        held and release-pending."""
        vm, rng, d = self.vm, self.rng, T['dax']
        view = f'{dax_view(d)}/dax_region'
        for _ in range(rng.randint(0, 3)):
            what = rng.choice(['0'] + self.live_tags[-4:])
            seed = read(vm, f'{view}/seed')
            vm.run(f'echo {what} > /sys/bus/dax/devices/{seed}/uuid')
        devs = sh(vm, f'ls -d {view}/../dax*.* 2>/dev/null | '
                      'xargs -n1 basename; true').split()
        for dev in devs:
            if rng.random() < 0.3:
                vm.run(f'echo 0 > /sys/bus/dax/devices/{dev}/size')

    # -- checks ------------------------------------------------------------

    def check(self):
        vm = self.vm
        for dev in T:
            wait_for(f'{dev}: offers answered', lambda: mock_stats(
                vm, dev)['pending_offers'] == 0, 60)

            def agrees():
                try:
                    return agree(vm, dev) is not None
                except AssertionError as e:
                    self.last = str(e)
                    return False
            try:
                wait_for(f'{dev}: host and device agree', agrees, 60)
            except AssertionError:
                raise AssertionError(
                    f'seed {self.seed} batch {self.batches}: {self.last}')
        assert sh(vm, 'echo alive').strip() == 'alive'

    def finish(self):
        """Give every claim up and all capacity back; report."""
        vm = self.vm
        view = f'{dax_view(T["dax"])}/dax_region'
        sh(vm, f'for d in $(ls -d {view}/../dax*.* 2>/dev/null); do '
               'echo 0 > /sys/bus/dax/devices/$(basename $d)/size; done; '
               f'echo all > {DEV}/{T["dax"]["region"]}/give_back; true')
        for dev in T:
            for a, n, u, _ in mock_extents(vm, dev):
                vm.run(f'echo {a:#x}:{n:#x}:{u if u != NULL else 0} > '
                       f'{PLAT}/{T[dev]["plat"]}/dc_del_extent')
        self.check()
        for dev in T:
            wait_for(f'{dev}: all given back',
                     lambda: mock_extents(vm, dev) == [], 60)
        return self.report()

    def report(self):
        vm = self.vm
        lines = [f'# stress: seed {self.seed}, {self.records} records in '
                 f'{self.batches} batches, {time.monotonic() - self.t0:.0f} s']
        lines.append('# records per class: ' + ', '.join(
            f'{c} {n}' for c, n in sorted(self.counts.items())))
        for dev in T:
            b, a = self.before[dev], mock_stats(vm, dev)
            lines.append(
                f'# {dev} ({T[dev]["plat"]}, {T[dev]["region"]}): '
                f'records {a["records"] - b["records"]}, '
                f'offered {a["offered"] - b["offered"]}, '
                f'responses {a["responses"] - b["responses"]}, '
                f'accepted {a["accepted"] - b["accepted"]}, '
                f'releases {a["releases"] - b["releases"]} '
                f'({a["released"] - b["released"]} extents), '
                f'forced {a["forced"] - b["forced"]}, '
                f'pending offers {a["pending_offers"]}, '
                f'violations {a["violations"]}, Release DC refused for '
                f'capacity taken by force meanwhile '
                f'{a["raced_releases"] - b["raced_releases"]}')
        for ln in lines:
            self.log(ln)
        return lines


NULL = '00000000-0000-0000-0000-000000000000'
