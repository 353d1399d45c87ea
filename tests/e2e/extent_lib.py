"""The shared extent library driven by QEMU's DCD and the test-only policy
(tools/testing/cxl/dc_policy): offers answered once and in order, groups
handed to the policy, releases held while the policy is busy, extents
recovered on re-bind without a new response.  After every step the
device's own list (Get DC Extent List, read in the guest) and the guest's
regionZ/extentZ.N directories agree."""
import time

from vm import DCD_PATH
from cxl import (DC_EVENTS, DEV, G, M, POLICY, assert_agree, create_dc_region,
                 tp_bind, tp_unbind,
                 dc_stats, device_extents, policy, qmp_ok, sh, sysfs_extents,
                 trace_on, trace_records, wait_for)

R = 'region0'


def _responses(vm):
    return trace_records(vm, 'cxl_dc_response')


def _offer(vm, extents, n_responses=1):
    """Offer, wait for the answer; returns the new trace records."""
    trace_on(vm, *DC_EVENTS)
    qmp_ok(vm.add_capacity(extents))
    wait_for('response', lambda: len(_responses(vm)) >= n_responses)
    return trace_records(vm)


def test_setup(vm):
    sh(vm, 'insmod /bin/cxl_dc_test_policy.ko')
    assert create_dc_region(vm, G) == R


def test_offer_without_policy_rejected(vm):
    recs = _offer(vm, [(0, 2 * M)])
    rej = [r for r in recs if r['event'] == 'cxl_dc_reject']
    assert [r['reason'] for r in rej] == ['no policy bound'], rej
    assert device_extents(vm) == []


def test_chain_of_8_one_response_in_order(vm):
    sh(vm, tp_bind(R))
    assert sh(vm, f'cat {DEV}/{R}/tag_mode').strip() == 'any'
    # Offered in a deliberately non-sorted order.
    offs = [7, 2, 5, 0, 3, 6, 1, 4]
    recs = _offer(vm, [(o * 4 * M, 2 * M) for o in offs])
    rsp = [r for r in recs if r['event'] == 'cxl_dc_response']
    assert [(r['offered'], r['accepted']) for r in rsp] == [('8', '8')], rsp
    acc = [int(r['dpa'], 0) for r in recs if r['event'] == 'cxl_dc_accept']
    assert acc == [o * 4 * M for o in offs]
    # QEMU lists accepted extents in the order the response named them.
    assert [d for d, _ in device_extents(vm)] == acc
    assert_agree(vm, R)
    assert all(e['state'] == 'active'
               for e in sysfs_extents(vm, R).values())


def test_two_offers_fifo(vm):
    trace_on(vm, *DC_EVENTS)
    qmp_ok(vm.add_capacity([(64 * M, 2 * M)]))
    qmp_ok(vm.add_capacity([(66 * M, 2 * M), (68 * M, 4 * M)]))
    wait_for('two responses', lambda: len(_responses(vm)) == 2)
    assert [(r['offered'], r['accepted']) for r in _responses(vm)] == [
        ('1', '1'), ('2', '2')]
    assert_agree(vm, R)


def test_release_held_while_busy(vm):
    policy(vm, 'release', 'busy')
    trace_on(vm, *DC_EVENTS)
    qmp_ok(vm.release_capacity([(64 * M, 2 * M)]))
    wait_for('release-pending', lambda: any(
        e['state'] == 'release-pending' for e in sysfs_extents(vm, R).values()))
    # Still the device's: nothing was confirmed while the policy is busy.
    assert (64 * M, 2 * M) in device_extents(vm)
    assert not trace_records(vm, 'cxl_dc_released')
    policy(vm, 'complete', 1)
    wait_for('released', lambda: trace_records(vm, 'cxl_dc_released'))
    assert (64 * M, 2 * M) not in device_extents(vm)
    assert_agree(vm, R)
    policy(vm, 'release', 'ok')


def test_release_when_policy_lets_go(vm):
    before = dc_stats(vm)['releases']
    trace_on(vm, *DC_EVENTS)
    qmp_ok(vm.release_capacity([(66 * M, 2 * M), (68 * M, 4 * M)]))
    wait_for('two releases', lambda: dc_stats(vm)['releases'] == before + 2)
    assert_agree(vm, R)
    # The device got its Release DC: the range can be offered again.
    recs = _offer(vm, [(66 * M, 2 * M)])
    assert [r['event'] for r in recs if r['event'] == 'cxl_dc_accept']
    assert_agree(vm, R)


def test_policy_rejects(vm):
    policy(vm, 'validate', 'reject')
    recs = _offer(vm, [(96 * M, 2 * M)])
    rej = [r for r in recs if r['event'] == 'cxl_dc_reject']
    assert [r['reason'] for r in rej] == ['policy rejected'], rej
    policy(vm, 'validate', 'accept')
    assert (96 * M, 2 * M) not in device_extents(vm)
    assert_agree(vm, R)


def test_failed_activation_gives_back(vm):
    policy(vm, 'activate', 'fail')
    recs = _offer(vm, [(98 * M, 2 * M)])
    policy(vm, 'activate', 'ok')
    assert [r['event'] for r in recs if r['event'] == 'cxl_dc_accept']
    assert trace_records(vm, 'cxl_dc_released')
    assert (98 * M, 2 * M) not in device_extents(vm)
    assert_agree(vm, R)


def test_rebind_recovers_without_response(vm):
    live = assert_agree(vm, R)
    assert live
    responses = dc_stats(vm)['responses']
    sh(vm, tp_unbind(R))
    assert sysfs_extents(vm, R) == {}
    assert sorted(device_extents(vm)) == live
    trace_on(vm, *DC_EVENTS)
    sh(vm, tp_bind(R))
    assert assert_agree(vm, R) == live
    assert all(e['state'] == 'active'
               for e in sysfs_extents(vm, R).values())
    assert dc_stats(vm)['responses'] == responses
    assert not _responses(vm)
    rec = trace_records(vm, 'cxl_dc_accept')
    assert len(rec) == len(live) and all(
        r['reason'] == 'recovered' for r in rec)


def test_release_while_unbound_gives_back(vm):
    sh(vm, tp_unbind(R))
    qmp_ok(vm.release_capacity([(0, 2 * M)]))
    wait_for('given back', lambda: (0, 2 * M) not in device_extents(vm))
    sh(vm, tp_bind(R))
    assert_agree(vm, R)


def test_policy_granularity(vm):
    sh(vm, tp_unbind(R))
    policy(vm, 'granularity', 256 * M)
    sh(vm, tp_bind(R))
    recs = _offer(vm, [(258 * M, 2 * M), (512 * M, 256 * M)])
    why = {int(r['dpa'], 0): r['reason'] for r in recs
           if r['event'] == 'cxl_dc_reject'}
    assert why == {258 * M: 'not policy aligned'}, why
    assert (512 * M, 256 * M) in device_extents(vm)
    assert_agree(vm, R)


def test_tag_mode_locked_while_live(vm):
    rc, out = vm.run(f'echo untagged > {DEV}/{R}/tag_mode')
    assert rc != 0 and 'busy' in out.lower(), out


def test_slow_activation_holds_up_no_other_log(vm):
    """Policy callbacks run on the device's own workqueue, not in the
    event interrupt thread: while an activation takes 8 s, a General Media
    record on the Informational log is still drained and traced at once.
    Shown by order, not by a time limit: the record is traced while the
    activation is still running (its extent still 'accepted').  The
    latency is printed."""
    sh(vm, tp_unbind(R))
    policy(vm, 'granularity', 0)
    sh(vm, tp_bind(R))
    held = device_extents(vm)
    off = next(o for o in range(0, G, 2 * M) if not any(
        d <= o < d + ln for d, ln in held))
    policy(vm, 'activate', 'slow')
    try:
        trace_on(vm, *DC_EVENTS, 'cxl_general_media')
        qmp_ok(vm.add_capacity([(off, 2 * M)]))
        wait_for('response', lambda: _responses(vm))
        t0 = time.monotonic()
        qmp_ok(vm.qmp('cxl-inject-general-media-event', path=DCD_PATH,
                      log='informational', flags=1, dpa=0, descriptor=0,
                      type=0, **{'transaction-type': 0}))
        wait_for('general media record', lambda: trace_records(
            vm, 'cxl_general_media'), timeout=60, interval=0.2)
        latency = time.monotonic() - t0
        states = [e['state'] for e in sysfs_extents(vm, R).values()
                  if e['offset'] == off]
        print(f'# general media record traced {latency:.1f}s after '
              f'injection, activation still running: {states}', flush=True)
        assert states == ['accepted'], states
        wait_for('active', lambda: [
            e['state'] for e in sysfs_extents(vm, R).values()
            if e['offset'] == off] == ['active'], timeout=60)
    finally:
        policy(vm, 'activate', 'ok')
    assert_agree(vm, R)


def test_policy_gives_back_a_group(vm):
    """A policy gives an active group back on its own, as a dax policy
    does when the user destroys a device: Release DC goes out in order
    with the device's records, the extent goes, and the policy is never
    called back for it."""
    held = device_extents(vm)
    off = next(o for o in range(0, G, 2 * M) if not any(
        d <= o < d + ln for d, ln in held))
    _offer(vm, [(off, 2 * M)])
    assert (off, 2 * M) in device_extents(vm)
    calls = sh(vm, f'cat {POLICY}/log').count('\n')
    policy(vm, 'give_back', f'"{R} {off:#x}"')
    wait_for('given back', lambda: (off, 2 * M) not in device_extents(vm))
    new = sh(vm, f'cat {POLICY}/log').splitlines()[calls:]
    assert new == [f'give_back {R} offset={off:#x}: 0'], new
    assert not [e for e in sysfs_extents(vm, R).values()
                if e['offset'] == off]
    assert_agree(vm, R)


UEVENTS = '/tmp/uevents'


def _bytes(vm):
    return {k: int(sh(vm, f'cat {DEV}/{R}/{k}_bytes'), 0)
            for k in ('accepted', 'active', 'release_pending')}


def _counters(vm):
    out = sh(vm, 'cd /sys/bus/cxl/devices/mem0/dc_stats && grep . *')
    return {k: int(v) for k, v in (ln.split(':') for ln in out.split())}


def _dc_uevents(vm):
    """The DC_* variables of each change uevent of the region so far."""
    out = sh(vm, f'cat {UEVENTS} 2>/dev/null; true')
    return [dict(kv.split('=', 1) for kv in ln.split() if '=' in kv)
            for ln in out.splitlines()
            if 'DC_STATE=' in ln and ln.split()[0].endswith(f'/{R}')]


def test_region_summary_counters_and_uevent(vm):
    """What an operator reads without debugfs: the region's bytes by
    state, memX/dc_stats counters for each rejection reason and release
    outcome (with a log line), and a change uevent that says which group
    changed and how."""
    held = device_extents(vm)
    off = next(o for o in range(0, G, 2 * M) if not any(
        d <= o < d + ln for d, ln in held))
    sh(vm, f"""cat > /tmp/uevent.sh <<'EOF'
#!/bin/sh
[ -n "$DC_STATE" ] && echo $DEVPATH $(env | grep ^DC_ | sort) >> {UEVENTS}
exit 0
EOF
        chmod +x /tmp/uevent.sh && echo /tmp/uevent.sh > /sys/kernel/uevent_helper""")
    try:
        b0, c0 = _bytes(vm), _counters(vm)
        _offer(vm, [(off, 2 * M)])
        b1 = _bytes(vm)
        assert b1['active'] - b0['active'] == 2 * M, (b0, b1)
        assert b1['accepted'] == b0['accepted'], (b0, b1)
        wait_for('uevent', lambda: _dc_uevents(vm))
        ev = _dc_uevents(vm)[-1]
        assert ev == {'DC_STATE': 'active', 'DC_OFFSET': f'{off:#x}',
                      'DC_LENGTH': f'{2 * M:#x}', 'DC_EXTENTS': '1',
                      'DC_TAG': '00000000-0000-0000-0000-000000000000'}, ev
        policy(vm, 'release', 'busy')
        qmp_ok(vm.release_capacity([(off, 2 * M)]))
        wait_for('release-pending', lambda: _bytes(vm)['release_pending']
                 == b0['release_pending'] + 2 * M)
        wait_for('uevent', lambda: _dc_uevents(vm)[-1]['DC_STATE'] ==
                 'release-pending')
        policy(vm, 'complete', 1)
        wait_for('released', lambda: (off, 2 * M) not in device_extents(vm))
        wait_for('uevent', lambda: _dc_uevents(vm)[-1]['DC_STATE'] ==
                 'released')
        assert _bytes(vm) == b0
        sh(vm, 'dmesg -c > /dev/null')
        policy(vm, 'validate', 'reject')
        _offer(vm, [(off, 2 * M)])
        c1 = _counters(vm)
        assert c1['released'] - c0['released'] == 1, (c0, c1)
        assert c1['rejected_policy'] - c0['rejected_policy'] == 1, (c0, c1)
        assert {k for k in c1 if c1[k] != c0[k]} == {
            'released', 'rejected_policy'}, (c0, c1)
        assert f'DC extent DPA {off:#x}+{2 * M:#x} rejected: policy ' \
               f'rejected' in sh(vm, 'dmesg'), sh(vm, 'dmesg')
    finally:
        policy(vm, 'validate', 'accept')
        policy(vm, 'release', 'ok')
        sh(vm, 'echo > /sys/kernel/uevent_helper')
    assert_agree(vm, R)


TIMEOUT = '/sys/module/cxl_core/parameters/dc_chain_timeout_ms'


def test_chain_cut_by_log_overflow_rejected_at_once(vm):
    """QEMU's DC event log holds 8 records: an offer of 9 overflows it and
    the record with More=0 never arrives.  The drain sees the log's
    overflow flag and rejects the offer whole with one response at once,
    long before the chain timer (set to 10 minutes here) would."""
    old = sh(vm, f'cat {TIMEOUT}').strip()
    sh(vm, f'echo 600000 > {TIMEOUT}')
    try:
        before = device_extents(vm)
        trace_on(vm, *DC_EVENTS)
        qmp_ok(vm.add_capacity([(800 * M + i * 2 * M, 2 * M)
                                for i in range(9)]))
        wait_for('overflow response', lambda: _responses(vm), timeout=60)
        rsp = _responses(vm)
        assert [(r['offered'], r['accepted']) for r in rsp] == [('8', '0')]
        rej = trace_records(vm, 'cxl_dc_reject')
        assert len(rej) == 8 and all(r['reason'] == 'event log overflowed'
                                     for r in rej), rej
        assert device_extents(vm) == before
        # The device's pending group was consumed: QEMU takes a new offer
        # over the same range (aligned to the granularity set above).
        recs = _offer(vm, [(768 * M, 256 * M)])
        assert [r for r in recs if r['event'] == 'cxl_dc_accept'], recs
        assert_agree(vm, R)
    finally:
        sh(vm, f'echo {old} > {TIMEOUT}')


def test_offer_answered_when_device_goes_away(vm):
    """An offer of 9 overflows the log; cxl_pci is unbound well within the
    chain timeout and bound again: every offer was answered, so QEMU has
    nothing pending and takes a new offer of that capacity (its QMP
    command fails while an offer of the range is pending).  Last: the
    region loses its device."""
    sh(vm, f'echo 20000 > {TIMEOUT}')
    pci = sh(vm, 'basename $(dirname $(readlink -f /sys/bus/cxl/devices/mem0))'
             ).strip()
    drv = '/sys/bus/pci/drivers/cxl_pci'
    held = device_extents(vm)
    start = next(o for o in range(0, G - 18 * M, 2 * M) if not any(
        d < o + 18 * M and o < d + ln for d, ln in held))
    ext = [(start + i * 2 * M, 2 * M) for i in range(9)]
    trace_on(vm, *DC_EVENTS)
    qmp_ok(vm.add_capacity(ext))
    sh(vm, f'echo {pci} > {drv}/unbind && echo {pci} > {drv}/bind', 120)
    wait_for('memdev back', lambda: vm.run(
        'ls /sys/bus/cxl/devices/mem*/dynamic_ram_1')[0] == 0, timeout=60)
    trace_on(vm, *DC_EVENTS)
    qmp_ok(vm.add_capacity(ext[:8]))
    wait_for('response', lambda: _responses(vm), timeout=60)
    assert [r['offered'] for r in _responses(vm)] == ['8']
