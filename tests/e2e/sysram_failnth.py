"""Binding cxl_region_sysram to a DC region that already holds accepted
extents, with every allocation on the bind path failed in turn (issue 9,
item 12: "sysram probe can leave memory online when the devm action after
registration fails").  Two 128 MiB untagged extents are accepted while the
policy is bound, the policy is unbound (they stay accepted on QEMU's
device), then the region is bound again with /proc/self/fail-nth set to
N = 1, 2, 3, ... (failslab, sleeping allocations included) until a bind
completes with the fault never injected.

After every bind that failed: it failed with an errno, in bounded time;
nothing of the region is System RAM or even added (/proc/iomem, memory
blocks, MemTotal); the device still holds both extents (Get DC Extent
List) and got no Release DC and no new response; the region has no
driver, no extent directories and no worker thread left.  The sweep must
reach failures after the policy registered and the recovered extents
went online, the case of item 12.

A bind that tolerated its fault is unbound again before the next N; it
must have left the region consistent: every extent the device holds is
online (System RAM, counted active) or kept accepted and unused with a
log line saying why, and an extent directory missing (a courtesy, the
library says) is logged too.  After the sweep a normal bind brings both
extents online and the teardown is clean."""
import re
import time

from cxl import (DEV, G, M, SYSRAM, Skip, bind, create_dc_region,
                 device_extents, qmp_ok, read, region_base, sh,
                 sysfs_extents, unbind, wait_for)

R = 'region0'
B = 128 * M                    # the guest's memory block size
SIZE = G                       # the region
EXT = [(0, B), (B, B)]         # offset in the region, length: two groups
RES = 'System RAM (cxl_region_sysram)'
FAILSLAB = '/sys/kernel/debug/failslab'
BIND = f'/sys/bus/cxl/drivers/{SYSRAM}/bind'
T = 180          # a bind or an unbind hot-plugs 256 MiB: slow on debug
MAX_N = 1000     # a sweep longer than this has lost its end
S = {}


# -- what the guest shows, in one command -------------------------------------

_SNAPSHOT = f'''
    cd {DEV}/{R}
    echo "@driver"; [ -e driver ] && basename "$(readlink driver)"
    echo "@iomem"; grep -F '{RES}' /proc/iomem
    echo "@blocks"; grep -H . /sys/devices/system/memory/memory*/state
    echo "@bytes"; grep -H . *_bytes
    echo "@extents"
    grep -H . extent*/dpa extent*/length extent*/state 2>/dev/null
    echo "@device"; cat /sys/kernel/debug/cxl/*/dc_extents
    echo "@stats"; cat /sys/kernel/debug/cxl/*/dc_stats
    echo "@meminfo"; grep ^MemTotal: /proc/meminfo
    echo "@worker"; grep -l '^cxl_sysram/' /proc/[0-9]*/comm 2>/dev/null
    echo "@dmesg"; dmesg -c
    true'''


def _snapshot(vm, first=''):
    """Run the shell first, then read everything a check needs in the same
    guest command: the region's driver, its System RAM ranges, memory
    blocks, byte counts and extent directories, MemTotal, the device's own
    extent list and counters, the policy's worker thread, and the kernel
    log since the last snapshot (cleared).  What first printed is under
    'before'."""
    rc, out = vm.run(first + _SNAPSHOT, timeout=T)
    assert rc != 137, f'no answer in {T}s to:{first or " a snapshot"}\n{out}'
    assert rc == 0, f'snapshot failed ({rc}):\n{out}'
    sec, cur = {'before': []}, 'before'
    for ln in out.splitlines():
        if ln.startswith('@') and ' ' not in ln:
            cur = ln[1:]
            sec[cur] = []
        elif ln.strip():
            sec[cur].append(ln.strip())
    first, last = S['base'] // B, (S['base'] + SIZE - 1) // B
    blocks = {}
    for ln in sec['blocks']:
        m = re.search(r'/memory(\d+)/state:(\S+)', ln)
        if m and first <= int(m.group(1)) <= last:
            blocks[int(m.group(1))] = m.group(2)
    iomem = []
    for ln in sec['iomem']:
        a, b = ln.partition(' : ')[0].split('-')
        iomem.append((int(a, 16), int(b, 16)))
    ext = {}
    for ln in sec['extents']:
        path, _, val = ln.partition(':')
        name, _, attr = path.partition('/')
        ext.setdefault(name, {})[attr] = val
    return {
        'driver': sec['driver'][0] if sec['driver'] else '',
        'iomem': sorted(iomem),
        'blocks': blocks,
        'bytes': {k.partition(':')[0]: int(k.partition(':')[2], 0)
                  for k in sec['bytes']},
        'extents': sorted((int(e['dpa'], 0), int(e['length'], 0),
                           e['state']) for e in ext.values()),
        'device': sorted((int(a, 0), int(b, 0)) for a, b, *_ in
                         (ln.split() for ln in sec['device'])),
        'stats': {k: int(v) for k, v in (ln.split() for ln in sec['stats'])},
        'memtotal': int(sec['meminfo'][0].split()[1]) * 1024,
        'worker': sec['worker'],
        'dmesg': [re.sub(r'^\[[^\]]*\]\s*', '', ln) for ln in sec['dmesg']],
        'before': sec['before'],
    }


def _unbind(vm):
    """Unbind the policy; returns the snapshot after."""
    return _snapshot(vm, f'echo {R} > /sys/bus/cxl/drivers/{SYSRAM}/unbind')


def _hpa(extents):
    """System RAM ranges of extents: no static partition, so a DPA is the
    offset in the region."""
    return sorted((S['base'] + d, S['base'] + d + ln - 1) for d, ln in extents)


def _blocks_of(extents):
    return sorted((S['base'] + d) // B + i
                  for d, ln in extents for i in range(ln // B))


# -- checks -------------------------------------------------------------------

def _assert_held_not_given_back(snap, what):
    """The device holds both extents, got no Release DC and no new Add DC
    Response: a bind reads extents back, it never answers or gives back."""
    assert snap['device'] == sorted(EXT), \
        f'{what}: the device holds {snap["device"]}, not {sorted(EXT)}'
    for k in ('responses', 'releases'):
        assert snap['stats'][k] == S['stats'][k], \
            f'{what}: dc_stats {k} {S["stats"][k]} -> {snap["stats"][k]}'


def _assert_unbound_clean(vm, snap, what):
    """Nothing of the region is in use or left behind; the device still
    holds both extents."""
    if snap['worker']:  # kthread_stop() returned: the thread is exiting
        wait_for(f'{what}: worker thread gone',
                 lambda: not _snapshot(vm)['worker'], 30)
        snap = _snapshot(vm)
    assert snap['driver'] == '', f'{what}: region bound to {snap["driver"]}'
    assert snap['iomem'] == [], f'{what}: {RES} left in /proc/iomem: ' \
        f'{[(hex(a), hex(b)) for a, b in snap["iomem"]]}'
    assert snap['blocks'] == {}, \
        f'{what}: memory blocks left in the region: {snap["blocks"]}'
    assert snap['memtotal'] == S['memtotal'], \
        f'{what}: MemTotal {snap["memtotal"]} != {S["memtotal"]}'
    assert snap['extents'] == [], \
        f'{what}: extent directories left: {snap["extents"]}'
    _assert_held_not_given_back(snap, what)


def _assert_bound_consistent(snap, what):
    """The region is bound and tracks every byte the device holds: an
    extent is System RAM, all of it online, exactly when the library
    counts it active; the others are kept accepted and unused (a group
    the bind could not take up), each with a log line saying so.  An
    extent directory may be missing (it is a courtesy, the library says),
    with a log line too.  Returns the DPAs of the groups kept unused and
    the number of extents with no directory."""
    assert snap['driver'] == SYSRAM, f'{what}: driver {snap["driver"]!r}'
    _assert_held_not_given_back(snap, what)
    dev, byt, log = snap['device'], snap['bytes'], snap['dmesg']
    online = [(d, ln) for d, ln in dev if _hpa([(d, ln)])[0] in snap['iomem']]
    assert snap['iomem'] == _hpa(online), \
        f'{what}: {RES} {snap["iomem"]} is not a set of extents {dev}'
    assert sorted(snap['blocks']) == _blocks_of(online) and \
        set(snap['blocks'].values()) <= {'online'}, \
        f'{what}: memory blocks {snap["blocks"]}, want ' \
        f'{_blocks_of(online)} online'
    added = sum(ln for _, ln in online)
    assert snap['memtotal'] == S['memtotal'] + added, \
        f'{what}: MemTotal {snap["memtotal"]}, want +{added}'
    assert byt['active_bytes'] == added and \
        byt['release_pending_bytes'] == 0, \
        f'{what}: {byt} with {added} bytes System RAM'
    dirs = {(d, ln): st for d, ln, st in snap['extents']}
    assert set(dirs) <= set(dev), f'{what}: extents {dirs}, device {dev}'
    for ext, st in dirs.items():
        assert st == ('active' if ext in online else 'accepted'), \
            f'{what}: extent {ext} {st}, System RAM {ext in online}'
    kept = [d for (d, _), st in dirs.items() if st == 'accepted']
    for d in kept:
        assert any(f'(DPA {d:#x}) accepted and unused' in ln for ln in log), \
            f'{what}: extent at DPA {d:#x} kept unused with no log line'
    assert len(snap['worker']) == 1, f'{what}: workers {snap["worker"]}'
    unlisted = len(dev) - len(dirs)
    said = sum('no sysfs entry for extent' in ln for ln in log)
    total = sum(ln for _, ln in dev)
    assert byt['accepted_bytes'] + byt['active_bytes'] == total, \
        f'{what}: the region tracks {byt["accepted_bytes"]:#x} accepted + ' \
        f'{byt["active_bytes"]:#x} active bytes of the {total:#x} the ' \
        f'device holds; {unlisted} extent(s) with no directory, ' \
        f'{said} logged'
    assert said == unlisted, \
        f'{what}: {unlisted} extent(s) with no directory, {said} logged'
    return kept, unlisted


def _assert_bound_full(snap, what):
    kept, unlisted = _assert_bound_consistent(snap, what)
    assert not kept and not unlisted, \
        f'{what}: extents kept unused at DPA {kept}, {unlisted} unlisted'


# -- the bind with a fault ----------------------------------------------------

def _bind_nth(vm, n):
    """Bind the region with the n-th fault-injection-capable call of the
    writing task failed.  One shell does it with builtins: the bind file
    and fail-nth are opened first, so that n counts calls of the bind
    write only; fail-nth is read back and disarmed before anything else
    runs.  Returns the exit status of the write, what fail-nth read after
    it (0: the fault was injected), what the write said, and the
    snapshot after it."""
    snap = _snapshot(vm, f'''
        exec 3>{BIND} 4<>/proc/self/fail-nth
        echo {n} >&4
        echo {R} >&3; rc=$?
        read left <&4
        echo 0 >&4
        exec 3>&- 4>&-
        echo "@rc $rc $left"''')
    said = snap['before']
    m = re.fullmatch(r'@rc (\d+) (\d+)', said[-1] if said else '')
    assert m, f'fail-nth {n}: the bind script said {said}'
    return int(m.group(1)), int(m.group(2)), ' '.join(said[:-1]), snap


# Frames of the allocator and of fault injection itself, above the caller.
_ALLOC = re.compile(r'^(dump_stack|fail_dump|should_fail|__should_fail|'
                    r'slab_|kmem_cache_alloc|__kmem_cache|__kmalloc|kmalloc|'
                    r'kzalloc|kcalloc|__kvmalloc|kvmalloc|kvcalloc|krealloc|'
                    r'__do_kmalloc|kmemdup|kstrdup|kvasprintf|kasprintf|'
                    r'alloc_hooks)')
# Frames worth naming in a site: ours, devres, the driver core's bind steps.
_LANDMARK = re.compile(r'^(cxl_|sysram_|dc_|devm_|__devm_|devres_|'
                       r'driver_sysfs_add|device_add_groups|driver_bound|'
                       r'kobject_uevent|bind_store|kernfs_fop_write_iter)')


def _site(log):
    """Where the fault hit, from the stack fail_dump() logged: the
    allocation's caller, then the landmarks below it.  Most frames these
    kernels print are '?' ones: they count too, so a stale one may show
    up.  None when nothing was logged (a __GFP_NOWARN allocation)."""
    frames, on = None, False
    for ln in log:
        if ln.startswith('FAULT_INJECTION'):
            frames, on = [], False
        elif ln.startswith('Call Trace:'):
            on = frames is not None
        elif on and ln.startswith('</TASK>'):
            on = False
        elif on and not ln.startswith('<'):
            fn = ln.lstrip('? ').split('+')[0]
            if not _ALLOC.match(fn) and (not frames or frames[-1] != fn):
                frames.append(fn)
    if frames is None:
        return None
    marks = []
    for fn in frames[1:]:
        if _LANDMARK.match(fn) and fn not in marks:
            marks.append(fn)
    return ' < '.join((frames[:1] + marks)[:5])


def _after_registration(log):
    """The policy registered and both recovered groups went online before
    the fault (cxl_dc_register_policy() returns once their activation
    did): a failure now must take that memory out again (item 12)."""
    done = [i for i, ln in enumerate(log)
            if 'recovered 2 accepted extent(s), 0 group(s) kept' in ln]
    fault = [i for i, ln in enumerate(log) if ln.startswith('FAULT_INJ')]
    return bool(done and fault and done[0] < fault[0])


# -- the suite ----------------------------------------------------------------

def test_setup(vm):
    rc, _ = vm.run(f'[ -e {FAILSLAB}/ignore-gfp-wait ] && '
                   '[ -e /proc/self/fail-nth ]')
    if rc:
        raise Skip('kernel without CONFIG_FAILSLAB and '
                   'CONFIG_FAULT_INJECTION_DEBUG_FS')
    # fail-nth takes precedence over probability, interval and times, and
    # task-filter is not consulted for it.  Sleeping (GFP_KERNEL)
    # allocations are skipped unless ignore-gfp-wait is N: nearly every
    # allocation of a bind is one.  Probability 0: no other task ever
    # sees a fault.  verbose 2: each fault logs its stack.
    sh(vm, f'cd {FAILSLAB} && echo N > ignore-gfp-wait && '
           'echo 0 > probability && echo N > task-filter && '
           'echo 2 > verbose')
    # With kmemleak, every allocation is followed by one of kmemleak's
    # own (__GFP_NOWARN, with a pool to fall back on): half the points
    # would fail kmemleak, not the bind, each at the cost of a whole
    # hot-plug cycle.  cache-filter limits faults (and fail-nth's count)
    # to the caches flagged: all but kmemleak's.
    rc, _ = vm.run('[ -e /sys/kernel/debug/kmemleak ]')
    if rc == 0:
        out = sh(vm, f'''
            cd /sys/kernel/slab
            for c in *; do
                [ -L $c ] || [ "${{c#kmemleak_}}" != "$c" ] && continue
                echo 1 2>/dev/null > $c/failslab || echo "REFUSED $c"
            done
            echo Y > {FAILSLAB}/cache-filter''')
        assert 'REFUSED' not in out, f'caches left out of the sweep: {out}'
    assert create_dc_region(vm, SIZE) == R
    S['base'] = region_base(vm, R)
    assert int(read(vm, '/sys/devices/system/memory/block_size_bytes'),
               16) == B


def test_accept_then_unbind(vm):
    """The extents are accepted under the policy, then left on the device
    with no policy bound: the state every bind of the sweep starts from."""
    assert bind(vm, R, SYSRAM) == SYSRAM
    # One offer; untagged, each extent is a group of its own.
    qmp_ok(vm.add_capacity(EXT))
    wait_for('both extents active',
             lambda: [e['state'] for e in sysfs_extents(vm, R).values()] ==
             ['active'] * len(EXT), T)
    assert sorted(device_extents(vm)) == sorted(EXT)
    snap = _unbind(vm)
    S['memtotal'], S['stats'] = snap['memtotal'], snap['stats']
    _assert_unbound_clean(vm, snap, 'after unbind')
    S['ready'] = True


def _tolerated(vm, snap, what):
    """A bind that succeeded although its fault was injected must be
    consistent; what is not is kept for test_tolerated_faults_consistent,
    and the sweep goes on once unbinding has left nothing behind.
    Returns an outcome to print."""
    try:
        kept, unlisted = _assert_bound_consistent(snap, what)
        outcome = 'tolerated' + \
            (f', {len(kept)} group(s) kept accepted and unused'
             if kept else '') + \
            (f', {unlisted} extent(s) with no directory' if unlisted else '')
    except AssertionError as e:
        S['wrong'].append(str(e))
        outcome = f'tolerated, INCONSISTENT: {str(e).partition(": ")[2]}'
    _assert_unbound_clean(vm, _unbind(vm), f'{what}, unbound')
    return outcome


def test_bind_fail_nth_sweep(vm):
    """Fail the 1st, 2nd, ... allocation of the bind until one runs with
    no fault left to inject."""
    assert S.get('ready'), 'no accepted extents to bind to'
    failed, errors, after_reg, tolerated = [], {}, [], []
    S['wrong'] = []
    t0 = time.monotonic()
    for n in range(1, MAX_N + 1):
        wrc, left, err, snap = _bind_nth(vm, n)
        what = f'fail-nth {n}'
        if left:  # never injected: the bind ran its whole course
            assert wrc == 0, f'{what}: bind failed with no fault: {err}'
            _assert_bound_full(snap, f'{what} (no fault)')
            calls = n - left
            break
        site = _site(snap['dmesg']) or '(no stack: __GFP_NOWARN)'
        what += f' at {site}'
        if wrc:
            # echo tells the write's errno by its strerror.
            assert 'write error: ' in err, f'{what}: no errno: {err!r}'
            errno = err.rpartition('write error: ')[2]
            errors[errno] = errors.get(errno, 0) + 1
            _assert_unbound_clean(vm, snap, what)
            failed.append(n)
            outcome = f'failed: {errno}'
            if _after_registration(snap['dmesg']):
                after_reg.append(n)
                outcome += ', after both groups went online'
        else:
            tolerated.append(n)
            outcome = _tolerated(vm, snap, f'{what}, tolerated')
        print(f'# fail-nth {n}: {outcome}: {site}', flush=True)
    else:
        raise AssertionError(f'every bind up to fail-nth {MAX_N} hit a fault')
    S['points'] = n - 1
    print(f'# sweep: {n - 1} injection points in '
          f'{time.monotonic() - t0:.0f}s: {len(failed)} binds failed '
          f'{errors}, {len(after_reg)} of them after the recovered groups '
          f'went online (fail-nth {after_reg}); {len(tolerated)} tolerated, '
          f'{len(S["wrong"])} of them inconsistent; the bind with no fault '
          f'made {calls} fault-capable calls', flush=True)
    _assert_unbound_clean(vm, _unbind(vm), 'unbind after the sweep')
    assert failed, 'no bind failed: fail-nth injected nothing'
    assert after_reg, \
        'no bind failed after the policy registered: item 12 not reached'


def test_tolerated_faults_consistent(vm):
    """Every bind of the sweep that succeeded with its fault injected left
    the region consistent: each extent the device holds is online or
    visibly kept accepted and unused."""
    assert 'wrong' in S, 'the sweep did not run'
    assert not S['wrong'], 'binds that tolerated a fault inconsistently:\n' \
        + '\n'.join(S['wrong'])


def test_normal_bind_all_online(vm):
    """Nothing the sweep did is left: a plain bind, the way a user does
    it, brings both extents online."""
    assert 'points' in S, 'the sweep did not finish'
    assert bind(vm, R, SYSRAM) == SYSRAM
    _assert_bound_full(_snapshot(vm), 'bind after the sweep')


def test_teardown_clean(vm):
    """Unbinding keeps the extents on the device and leaves nothing
    behind; bound again, the fabric manager takes them back, and the
    region goes."""
    _assert_unbound_clean(vm, _unbind(vm), 'unbind')
    assert bind(vm, R, SYSRAM) == SYSRAM
    qmp_ok(vm.release_capacity(EXT))
    wait_for('released', lambda: device_extents(vm) == [], T)
    snap = _snapshot(vm)
    assert snap['extents'] == [] and snap['iomem'] == [] and \
        snap['blocks'] == {}, snap
    assert snap['memtotal'] == S['memtotal']
    assert snap['stats']['releases'] == S['stats']['releases'] + len(EXT)
    unbind(vm, R, T)
    sh(vm, f'echo 0 > {DEV}/{R}/commit && '
           f'echo {R} > {DEV}/decoder0.0/delete_region')
    rc, _ = vm.run(f'[ -e {DEV}/{R} ]')
    assert rc, f'{R} still exists'
    wait_for('no worker thread', lambda: vm.run(
        "grep -l '^cxl_sysram/' /proc/[0-9]*/comm")[0], 30)
