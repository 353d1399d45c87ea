#!/usr/bin/env python3
"""Test runner: boots the project's kernel under QEMU TCG with one CXL DCD,
collects the KUnit results the kernel printed at boot (parsed by the
kernel's own tools/testing/kunit/kunit.py), runs every end-to-end suite in
tests/e2e/, and checks each guest's console for kernel reports (KASAN,
lockdep, UBSAN, kmemleak, BUG, WARNING).  Ends with 'N passed, N failed'.

    tests/run.py [--flavour test|debug|test,debug] [--jobs N]
                 [--kernel K] [--initrd I] [SUITE...]

A suite is a module tests/e2e/NAME.py whose test_* functions take a
booted VM; each suite gets a fresh VM, its tests run in file order.  A
test that raises cxl.Skip is counted as skipped, with its reason.  With
--jobs N, up to N suites (of any flavour named) run side by side, each
in a child run.py with a VM of its own; `make test` runs two.
"""
import argparse
import importlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import traceback

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(TOP, 'scripts'), os.path.join(TOP, 'tests')]
from vm import VM, ChannelStall  # noqa: E402
from cxl import Skip  # noqa: E402

KUNIT_PY = os.path.join(TOP, 'build', 'linux', 'tools', 'testing', 'kunit',
                        'kunit.py')
REPORTS = re.compile(r'BUG: |WARNING: |UBSAN: |KASAN|Oops|'
                     r'possible circular locking|possible recursive locking|'
                     r'suspected memory leak|Kernel panic|'
                     r'inconsistent lock state|sleeping function called|'
                     r'blocked for more than')


class Results:
    def __init__(self, flavour):
        self.flavour, self.passed, self.failed, self.skipped = flavour, 0, 0, 0
        self.held = None

    def hold(self):
        """Keep what a suite records until keep() or drop()."""
        self.held = []

    def keep(self):
        held, self.held = self.held, None
        for rec in held:
            self.record(*rec)

    def drop(self):
        self.held = None

    def record(self, name, ok, why='', skip=False):
        if self.held is not None:
            self.held.append((name, ok, why, skip))
            return
        if skip:
            self.skipped += 1
            print(f'SKIP [{self.flavour}] {name}: {why}', flush=True)
        elif ok:
            self.passed += 1
            print(f'PASS [{self.flavour}] {name}', flush=True)
        else:
            self.failed += 1
            print(f'FAIL [{self.flavour}] {name}: {why}', flush=True)


def _kunit_blocks(console):
    """One KTAP document per module that ran KUnit suites when loaded
    (cxl_core.ko, dcd_kunit.ko): split at each top-level version line."""
    blocks, cur = [], None
    for ln in console.splitlines():
        body = re.sub(r'^\[[^\]]*\]\s?', '', ln)
        if body.startswith(('KTAP version', 'TAP version')):
            cur = []
            blocks.append(cur)
        if cur is not None:
            cur.append(ln)
    return ['\n'.join(b) + '\n' for b in blocks]


def kunit(console, res):
    """Count every KUnit case the boot printed; a missing suite is a
    failure, not a pass."""
    cases = 0

    def walk(group, path):
        nonlocal cases
        for sub in group.get('sub_groups', []):
            walk(sub, path + [sub['name']])
        for case in group.get('test_cases', []):
            cases += 1
            res.record('kunit ' + '.'.join(path + [case['name']]),
                       case['status'] == 'PASS', case['status'])

    for block in _kunit_blocks(console):
        with tempfile.NamedTemporaryFile('w', suffix='.log',
                                         delete=False) as f:
            f.write(block)
        p = subprocess.run([sys.executable, KUNIT_PY, 'parse', '--json',
                            f.name], capture_output=True, text=True)
        os.unlink(f.name)
        try:
            data = json.loads(p.stdout[p.stdout.index('\n{') + 1:])
        except (ValueError, json.JSONDecodeError):
            res.record('kunit', False,
                       'no KUnit output parsed:\n' + p.stdout[-2000:])
            continue
        walk(data, [])
    if not cases:
        res.record('kunit', False, 'no KUnit cases ran')


DETECTORS = ('KernelAddressSanitizer initialized', 'Lock dependency validator',
             'kmemleak: Kernel memory leak detector initialized')


def detectors_armed(vm, res):
    """A clean debug run means something only if the detectors ran."""
    _, log = vm.run('dmesg')
    missing = [d for d in DETECTORS if d not in log]
    res.record('debug kernel: KASAN, lockdep and kmemleak armed', not missing,
               f'missing: {missing}')


def check_reports(vm, res, suite, stalled=False):
    """The console must hold no kernel report after a suite.  Returns
    whether it held none."""
    if vm.alive() and not stalled:
        # Let kmemleak look now, rather than in ten minutes.  It reports
        # an object unreferenced at a scan once the object is 5 s old, so
        # one scan after 6 s sees everything the suite left; a scan costs
        # about 20 s on the debug kernel under TCG.
        vm.run('[ -e /sys/kernel/debug/kmemleak ] && sleep 6 && '
               'echo scan > /sys/kernel/debug/kmemleak; true', timeout=120)
    hits = [ln for ln in vm.console().splitlines() if REPORTS.search(ln)]
    res.record(f'{suite}: no kernel reports', not hits, '\n'.join(hits[:20]))
    return not hits


def runs_on(suite, flavour):
    """A suite may name the kernels it means something on (FLAVOURS)."""
    only = getattr(importlib.import_module(f'e2e.{suite}'), 'FLAVOURS', None)
    return not only or flavour in only


def run_suite(name, args, res, first):
    """Run one suite in a fresh VM.  Returns True when the command
    channel stalled and the console shows no kernel report: the guest
    was fine, the channel was not, and the suite is worth running again."""
    mod = importlib.import_module(f'e2e.{name}')
    if not runs_on(name, res.flavour):
        res.record(name, True, getattr(mod, 'FLAVOURS_WHY', 'not on this '
                                       'kernel'), skip=True)
        return None
    tests = [(n, f) for n, f in vars(mod).items()
             if n.startswith('test_') and callable(f)]
    tests.sort(key=lambda t: t[1].__code__.co_firstlineno)
    with VM(workdir=os.environ.get("VM_WORKDIR")) as vm:
        vm.start(kernel=args.kernel, initrd=args.initrd,
                 **getattr(mod, 'VM_ARGS', {}))
        vm.wait_ready()
        print(f'# [{res.flavour}] suite {name}: guest ready after '
              f'{vm.boot_time:.1f}s', flush=True)
        # kmemleak scans after each suite (check_reports); its automatic
        # scan on a KASAN kernel under TCG can stall the guest for a
        # minute or more, longer than a test command may take.
        vm.run('[ -e /sys/kernel/debug/kmemleak ] && '
               'echo scan=off > /sys/kernel/debug/kmemleak; true')
        if first:
            kunit(vm.console(), res)
            if res.flavour == 'debug':
                detectors_armed(vm, res)
        stalled = False
        for tname, fn in tests:
            t0 = time.monotonic()
            try:
                fn(vm)
                res.record(f'{name}.{tname} ({time.monotonic() - t0:.1f}s)',
                           True)
            except Skip as e:  # cannot run here, and says why
                res.record(f'{name}.{tname}', True, str(e), skip=True)
            except Exception as e:  # a test's failure, report and go on
                why = f'{e}\n' + ''.join(traceback.format_exc(limit=3))
                res.record(f'{name}.{tname}', False, why)
                # Nothing said over a stuck channel can be trusted.
                stalled = isinstance(e, ChannelStall)
                if stalled or not vm.alive():
                    break
        clean = check_reports(vm, res, name, stalled)
    return stalled and clean


# Each flavour's kernel and initramfs, as `make kernel [DEBUG=1]` leaves
# them.
FLAVOUR_FILES = {
    'test': ('bzImage', 'initramfs.cpio.gz'),
    'debug': ('bzImage-debug', 'initramfs-debug.cpio.gz'),
}

# What a suite's VM took, boot included, in seconds, on a 2-core TCG
# machine (make test, 2026-12-03): only to start the longest first when
# suites run side by side (--jobs); a suite not listed counts as 100 s.
SUITE_COST = {
    'test': {'ndctl_cxl': 291, 'virtio': 104, 'sysram': 70, 'dax': 65,
             'mock_dc': 56, 'recovery': 47},
    'debug': {'mock_dc': 440, 'mock_dax': 424, 'mock_dax_users': 403,
              'sysram_failnth': 374, 'sysram': 319, 'virtio': 247,
              'sysram_tagged': 231, 'mock_virtio': 230, 'dax': 213,
              'extent_lib': 198, 'recovery': 194, 'sysram_default': 151,
              'races': 147, 'mock_preload': 115},
}


def run_suites(suites, args, res):
    """Run suites one after another in this process, each in a fresh VM."""
    walls = []
    ran = not args.kunit    # KUnit and the detectors: the first boot's
    for s in suites:
        t_suite = time.monotonic()
        # Under TCG the virtio console now and then stops carrying data
        # with the guest otherwise well (see scripts/vm.py): such a suite
        # runs again in a fresh VM, and says so; so does a guest that
        # never got ready (the same stall, seen during boot).  Up to three
        # tries; a third stall, or any kernel report, fails it as usual.
        for attempt in (1, 2, 3):
            res.hold()
            try:
                again = run_suite(s, args, res, first=not ran)
                ran = ran or again is not None
            except TimeoutError as e:  # never got ready: nothing ran
                res.record(f'{s}', False, f'suite aborted: {e}')
                again = 'READY' in str(e)
            except Exception as e:  # the VM itself failed
                res.record(f'{s}', False, f'suite aborted: {e}')
                again = False
            if again and attempt < 3:
                res.drop()
                print(f'# [{args.flavour}] suite {s}: the command channel '
                      'stalled with no kernel report; running the suite '
                      'again in a fresh VM', flush=True)
                continue
            res.keep()
            break
        walls.append((time.monotonic() - t_suite, s))
        print(f'# [{args.flavour}] suite {s}: {walls[-1][0]:.0f}s wall, '
              'boot included', flush=True)
    return walls


def flavour_files(flavour, args):
    """The kernel and initramfs a flavour boots: --kernel and --initrd
    when given (one flavour), else what make kernel left in out/."""
    kernel, initrd = (os.path.join(TOP, 'out', n)
                      for n in FLAVOUR_FILES[flavour])
    return args.kernel or kernel, args.initrd or initrd


def run_side_by_side(work, jobs, args):
    """Run (flavour, suite) pairs, up to jobs at once, each in a child
    run.py of its own (its own VM); a child's output is printed whole
    when it ends, so suites' lines never interleave.  The longest start
    first.  Returns {flavour: [passed, failed, skipped]} and the walls."""
    # KUnit and the detectors are read in one boot of each flavour: the
    # first of its suites, in the order given, that boots at all (with the
    # real modules, for dax, the first by name).
    carrier = {}
    for f, s in work:
        if f not in carrier and runs_on(s, f):
            carrier[f] = s
    work = sorted(work, key=lambda w: -SUITE_COST[w[0]].get(w[1], 100))
    counts = {f: [0, 0, 0] for f, _ in work}
    walls = {f: [] for f, _ in work}
    running, queue = [], list(work)
    wd = os.environ.get('VM_WORKDIR')
    while queue or running:
        while queue and len(running) < jobs:
            f, s = queue.pop(0)
            kernel, initrd = flavour_files(f, args)
            cmd = [sys.executable, os.path.abspath(__file__),
                   '--flavour', f, '--kernel', kernel, '--initrd', initrd,
                   '--quiet'] + ([] if carrier.get(f) == s else
                                 ['--no-kunit']) + [s]
            env = dict(os.environ)
            if wd:
                env['VM_WORKDIR'] = os.path.join(wd, f'{f}-{s}')
            out = tempfile.TemporaryFile('w+')
            print(f'# [{f}] suite {s}: started, {len(running) + 1} '
                  'running', flush=True)
            running.append((f, s, time.monotonic(), out, subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, env=env)))
        time.sleep(1)
        for item in [r for r in running if r[4].poll() is not None]:
            running.remove(item)
            f, s, t0, out, proc = item
            out.seek(0)
            text = out.read()
            out.close()
            sys.stdout.write(text)
            n = counts[f]
            for i, tag in enumerate(('PASS ', 'FAIL ', 'SKIP ')):
                n[i] += sum(ln.startswith(tag) for ln in text.splitlines())
            if proc.returncode and not re.search(r'^FAIL ', text, re.M):
                # A child that died without saying why still fails.
                print(f'FAIL [{f}] {s}: runner exited {proc.returncode}')
                n[1] += 1
            walls[f].append((time.monotonic() - t0, s))
            sys.stdout.flush()
    return counts, walls


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--kernel')
    ap.add_argument('--initrd')
    ap.add_argument('--flavour', default='test',
                    help='test, debug, or both as test,debug')
    ap.add_argument('--jobs', '-j', type=int, default=1,
                    help='suites run side by side, each in its own VM')
    ap.add_argument('--no-kunit', dest='kunit', action='store_false',
                    help='do not read KUnit and the detectors at boot')
    ap.add_argument('--quiet', action='store_true', help=argparse.SUPPRESS)
    ap.add_argument('suites', nargs='*')
    args = ap.parse_args()
    suites = args.suites or sorted(
        f[:-3] for f in os.listdir(os.path.join(TOP, 'tests', 'e2e'))
        if f.endswith('.py') and not f.startswith('_'))
    flavours = args.flavour.split(',')
    if len(flavours) > 1 and (args.kernel or args.initrd):
        ap.error('--kernel and --initrd name one flavour\'s files')
    if len(flavours) == 1 and args.jobs == 1:
        f = args.flavour
        args.kernel, args.initrd = flavour_files(f, args)
        res = Results(f)
        walls = run_suites(suites, args, res)
        if args.quiet:
            sys.exit(1 if res.failed else 0)
        counts = {f: [res.passed, res.failed, res.skipped]}
        walls = {f: walls}
    else:
        counts, walls = run_side_by_side(
            [(f, s) for f in flavours for s in suites], args.jobs, args)
    for f in flavours:
        # Where the time went, longest first (the CI budget: README).
        print(f'# [{f}] suite wall times: ' + ', '.join(
            f'{n} {t:.0f}s' for t, n in sorted(walls[f], reverse=True)) +
            f'; total {sum(t for t, _ in walls[f]):.0f}s', flush=True)
        print(f'# [{f}] {counts[f][0]} passed, {counts[f][1]} failed',
              flush=True)
    sys.exit(1 if any(c[1] for c in counts.values()) else 0)


if __name__ == '__main__':
    main()
