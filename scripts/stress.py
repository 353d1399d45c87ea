#!/usr/bin/env python3
"""make stress: the randomized campaign of tests/dc_stress.py, long, on
the debug kernel by default (KASAN, lockdep, UBSAN, kmemleak): at least
--records records in batches, two mock DCDs, sysram and dax; checks
after every batch; prints the seed, the records per class, what each
device saw, the wall time, and any kernel report."""
import argparse
import os
import random
import sys

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(TOP, 'scripts'), os.path.join(TOP, 'tests')]
from vm import VM  # noqa: E402
from cxl import SYSRAM  # noqa: E402
from dc_stress import Campaign  # noqa: E402
from run import REPORTS  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--kernel',
                    default=os.path.join(TOP, 'out', 'bzImage-debug'))
    ap.add_argument('--initrd', default=os.path.join(
        TOP, 'out', 'initramfs-debug.cpio.gz'))
    ap.add_argument('--records', type=int, default=10000)
    ap.add_argument('--batch', type=int, default=200)
    ap.add_argument('--seed', type=int)
    a = ap.parse_args()
    seed = a.seed if a.seed is not None else random.randrange(1 << 32)
    print(f'# stress: seed {seed} (--seed {seed} replays it)', flush=True)
    with VM() as vm:
        vm.start(kernel=a.kernel, initrd=a.initrd, mock=True,
                 extra_append=f'{SYSRAM}.online_type=offline')
        vm.wait_ready()
        vm.run('[ -e /sys/kernel/debug/kmemleak ] && '
               'echo scan=off > /sys/kernel/debug/kmemleak; true')
        c = Campaign(vm, seed, log=lambda s: print(s, flush=True))
        c.setup()
        while c.records < a.records:
            c.batch(a.batch)
            print(f'# stress: {c.records} records, batch {c.batches} '
                  'checked', flush=True)
        c.finish()
        vm.run('[ -e /sys/kernel/debug/kmemleak ] && '
               'echo scan > /sys/kernel/debug/kmemleak && sleep 6 && '
               'echo scan > /sys/kernel/debug/kmemleak; true', timeout=120)
        hits = [ln for ln in vm.console().splitlines() if REPORTS.search(ln)]
    for ln in hits[:40]:
        print(ln)
    print(f'# stress: {len(hits)} kernel report lines')
    return 1 if hits else 0


if __name__ == '__main__':
    sys.exit(main())
