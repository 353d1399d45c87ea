"""cxl_region_dax against tools/testing/cxl's mock DCDs: tag groups become
device-dax instances claimed by tag (issue #10, must-show 1 and the
release and forced-release rules).  The mock sends what QEMU cannot:
tags, the sequences of a sharable partition, forced release.  The mock's
addresses are not memory that holds data, so these tests stay at the dax
bus's sysfs, which is where the claim happens; one binds device_dax and
maps a device only to see a forced release take the mapping away
(must-show 5).  After each test the mock has seen no protocol violation
and agrees with the guest."""
import uuid

from cxl import (DEV, M, Skip, bind, read, sh, sysfs_extents, unbind,
                 wait_for)
from cxl_mock import (PLAT, T, agree, chain, dax_avail as avail,
                      dax_view as view, discover, eq, kmemleak_armed,
                      kmemleak_clear, kmemleak_leaks, knob, mock_extents,
                      mock_stats, offer, rec, shared_and_plain_regions)

VM_ARGS = {'mock': True}
FAILSLAB = '/sys/kernel/debug/failslab'
DAX = 'cxl_region_dax'
NULL = '00000000-0000-0000-0000-000000000000'
DAXBUS = '/sys/bus/dax/devices'


def seed(vm, d):
    return read(vm, f'{view(d)}/dax_region/seed')


def write(vm, path, value):
    """Write to sysfs; return the errno name ('' on success)."""
    rc, out = vm.run(f'{{ echo {value} > {path}; }} 2>&1')
    if rc == 0:
        return ''
    for name in ('No such file', 'Device or resource busy',
                 'Operation not supported', 'No space left',
                 'Invalid argument', 'Permission denied'):
        if name in out:
            return name
    return out.strip()


def claim(vm, d, tag):
    """Claim into the current seed; returns (device, errno name)."""
    dev = seed(vm, d)
    return dev, write(vm, f'{DAXBUS}/{dev}/uuid', tag)


def mappings(vm, dev):
    """The device's ranges in page-offset order, as (start, length)."""
    out = sh(vm, f'cd {DAXBUS}/{dev} && for m in mapping*; do '
                 'echo $(cat $m/page_offset) $(cat $m/start) $(cat $m/end); '
                 'done 2>/dev/null; true')
    rows = sorted(tuple(int(x, 0) for x in ln.split())
                  for ln in out.splitlines() if ln.strip())
    return [(s, e - s + 1) for _, s, e in rows]


def delete(vm, d, dev):
    """Delete a 0-sized device; the region's first (daxZ.0) stays, as
    upstream keeps it so that /sys/bus/dax is never empty."""
    err = write(vm, f'{view(d)}/dax_region/delete', dev)
    want = 'Device or resource busy' if dev.endswith('.0') else ''
    assert err == want, (dev, err)


def size(vm, dev):
    return int(read(vm, f'{DAXBUS}/{dev}/size'))


def hpa(vm, d, dpa):
    return int(read(vm, f'{DEV}/{d["region"]}/resource'), 0) + dpa - d['dpa']


def claimed_pair(vm, d, off):
    """Offer a group of two 2 MiB extents at DC offset off of region d
    under a new tag, claim it; returns (device, tag, DPA of the group)."""
    tag = str(uuid.uuid4())
    base = d['dpa'] + off
    offer(vm, 'plain', chain([(base, 2 * M), (base + 2 * M, 2 * M)], tag))
    wait_for('free capacity', lambda: avail(vm, d) == 4 * M)
    dev, err = claim(vm, d, tag)
    eq(err, '')
    return dev, tag, base


def test_setup(vm):
    T.clear()
    mems = discover(vm)
    assert 'cxl_mem.2' in mems, mems
    a, b = shared_and_plain_regions(vm, mems, 256 * M)
    T['shared'], T['plain'] = a, b
    for d in (a, b):
        eq(bind(vm, d['region'], DAX), DAX)


def test_view_is_an_empty_sparse_dax_region(vm):
    d = T['plain']
    z = d['region'][len('region'):]
    eq(read(vm, f'{view(d)}/dax_region/id'), z)
    eq(avail(vm, d), 0)
    s = seed(vm, d)
    assert s == f'dax{z}.0', s
    eq(size(vm, s), 0)
    eq(read(vm, f'{DAXBUS}/{s}/uuid'), NULL)
    # Nothing to claim: no device can be made, the seed claims nothing.
    eq(write(vm, f'{view(d)}/dax_region/create', 1), 'No space left')
    eq(claim(vm, d, 0)[1], 'No such file')
    eq(size(vm, s), 0)


def test_tagged_group_claims_in_sequence_order(vm):
    """Offered in DPA order 2, 0, 1: the device follows the sequence the
    group has (arrival order on a non-sharable device), not DPA order."""
    d = T['plain']
    tag = str(uuid.uuid4())
    base = d['dpa']
    dpas = [base + i * 2 * M for i in (2, 0, 1)]
    _, n = offer(vm, 'plain', chain([(x, 2 * M) for x in dpas], tag))
    eq(n, 1)
    wait_for('free capacity', lambda: avail(vm, d) == 6 * M)
    ext = sysfs_extents(vm, d['region'])
    seq = sorted((e['seq'], e['dpa']) for e in ext.values())
    assert [x for _, x in seq] == dpas, seq
    dev, err = claim(vm, d, tag)
    assert err == '', err
    eq(size(vm, dev), 6 * M)
    assert mappings(vm, dev) == [(hpa(vm, d, x), 2 * M) for x in dpas]
    eq(read(vm, f'{DAXBUS}/{dev}/uuid'), tag)
    eq(avail(vm, d), 0)
    # A new seed for the next claim.
    assert seed(vm, d) not in ('', dev)
    T['claimed'], T['tag'] = dev, tag
    agree(vm, 'plain')


def test_claim_errors(vm):
    d = T['plain']
    dev, tag = T['claimed'], T['tag']
    # Twice: busy, nothing changes.
    before = mappings(vm, dev)
    assert write(vm, f'{DAXBUS}/{dev}/uuid', tag) == \
        'Device or resource busy'
    assert write(vm, f'{DAXBUS}/{dev}/uuid', str(uuid.uuid4())) == \
        'Device or resource busy'
    assert mappings(vm, dev) == before and size(vm, dev) == 6 * M
    # The tag is held: another device cannot claim it.
    s, err = claim(vm, d, tag)
    assert err == 'No such file' and size(vm, s) == 0
    # No such tag; malformed tags.
    eq(claim(vm, d, str(uuid.uuid4()))[1], 'No such file')
    eq(claim(vm, d, 'not-a-uuid')[1], 'Invalid argument')
    # Sizes other than 0 cannot be written; align is read-only.
    assert write(vm, f'{DAXBUS}/{dev}/size', 2 * M) == \
        'Operation not supported'
    eq(write(vm, f'{DAXBUS}/{dev}/align', 2 * M), 'Permission denied')
    eq(size(vm, s), 0)


def test_untagged_claim_takes_one_extent(vm):
    d = T['plain']
    base = d['dpa'] + 16 * M
    offer(vm, 'plain', [rec(base, 2 * M)])
    offer(vm, 'plain', [rec(base + 4 * M, 4 * M)])
    wait_for('free capacity', lambda: avail(vm, d) == 6 * M)
    dev, err = claim(vm, d, 0)
    eq(err, '')
    eq(read(vm, f'{DAXBUS}/{dev}/uuid'), NULL)
    assert mappings(vm, dev) == [(hpa(vm, d, base), 2 * M)]
    eq(avail(vm, d), 4 * M)
    T['untagged'] = dev
    agree(vm, 'plain')


def test_release_of_free_group_is_immediate(vm):
    d = T['plain']
    before = mock_stats(vm, 'plain')['releases']
    knob(vm, 'plain', 'dc_del_extent', f'{d["dpa"] + 20 * M:#x}:{4 * M:#x}:0')
    wait_for('release', lambda: mock_stats(vm, 'plain')['releases'] > before)
    eq(avail(vm, d), 0)
    agree(vm, 'plain')


def test_release_held_until_device_destroyed(vm):
    """The device asks for a claimed group: held (release-pending, the
    device still has it) until the claim is given up, then confirmed."""
    d = T['plain']
    dev = T['untagged']
    before = mock_stats(vm, 'plain')['releases']
    knob(vm, 'plain', 'dc_del_extent', f'{d["dpa"] + 16 * M:#x}:{2 * M:#x}:0')
    wait_for('release pending', lambda: any(
        e['state'] == 'release-pending'
        for e in sysfs_extents(vm, d['region']).values()))
    eq(mock_stats(vm, 'plain')['releases'], before)
    assert (d['dpa'] + 16 * M) in [a for a, *_ in mock_extents(vm, 'plain')]
    eq(size(vm, dev), 2 * M)
    # daxctl destroy-device: size 0, then delete.
    eq(write(vm, f'{DAXBUS}/{dev}/size', 0), '')
    wait_for('release', lambda: mock_stats(vm, 'plain')['releases'] > before)
    eq(write(vm, f'{view(d)}/dax_region/delete', dev), '')
    sh(vm, f'! test -e {DAXBUS}/{dev}')
    eq(avail(vm, d), 0)
    agree(vm, 'plain')


def test_user_destroy_keeps_group_free_then_give_back(vm):
    d = T['plain']
    dev, tag = T['claimed'], T['tag']
    eq(write(vm, f'{DAXBUS}/{dev}/size', 0), '')
    eq(read(vm, f'{DAXBUS}/{dev}/uuid'), NULL)
    eq(avail(vm, d), 6 * M)
    # Nobody asked for it: still on the device, free for another claim.
    dev2, err = claim(vm, d, tag)
    assert err == '' and size(vm, dev2) == 6 * M
    eq(write(vm, f'{DAXBUS}/{dev2}/size', 0), '')
    before = mock_stats(vm, 'plain')['releases']
    eq(write(vm, f'{DEV}/{d["region"]}/give_back', tag), '')
    wait_for('give back', lambda: mock_stats(vm, 'plain')['releases'] > before)
    eq(avail(vm, d), 0)
    eq(sysfs_extents(vm, d['region']), {})
    assert write(vm, f'{DEV}/{d["region"]}/give_back', 'all') == \
        'No such file'
    for x in (dev, dev2):
        delete(vm, d, x)
    agree(vm, 'plain')


def test_forced_release_revokes_claimed_device(vm):
    d = T['plain']
    dev, tag, base = claimed_pair(vm, d, 32 * M)
    before = mock_stats(vm, 'plain')
    knob(vm, 'plain', 'dc_force_del_extent', f'{base:#x}:{2 * M:#x}:{tag}')
    wait_for('device revoked', lambda: vm.run(
        f'test -e {DAXBUS}/{dev}')[0] != 0)
    st = mock_stats(vm, 'plain')
    assert st['forced'] - before['forced'] == 1, st
    # What the device left of the group went back with Release DC.
    eq(sysfs_extents(vm, d['region']), {})
    eq(avail(vm, d), 0)
    agree(vm, 'plain')


def test_forced_release_of_a_held_release(vm):
    """The device asks for a claimed group (held, release-pending), then
    takes part of it by force: the holder is revoked, the owed release is
    answered once, and what the device left goes back."""
    d = T['plain']
    dev, tag, base = claimed_pair(vm, d, 40 * M)
    before = mock_stats(vm, 'plain')
    knob(vm, 'plain', 'dc_del_extent', f'{base:#x}:{4 * M:#x}:{tag}')
    wait_for('release pending', lambda: [e['state'] for e in sysfs_extents(
        vm, d['region']).values()] == ['release-pending'] * 2)
    eq(mock_stats(vm, 'plain')['releases'], before['releases'])
    knob(vm, 'plain', 'dc_force_del_extent', f'{base:#x}:{2 * M:#x}:{tag}')
    wait_for('device revoked', lambda: vm.run(
        f'test -e {DAXBUS}/{dev}/uuid && '
        f'[ "$(cat {DAXBUS}/{dev}/size)" != 0 ]')[0] != 0)
    wait_for('all gone', lambda: sysfs_extents(vm, d['region']) == {})
    eq(mock_extents(vm, 'plain'), [])
    eq(avail(vm, d), 0)
    agree(vm, 'plain')


def test_forced_release_of_a_free_group(vm):
    d = T['plain']
    base = d['dpa'] + 48 * M
    offer(vm, 'plain', [rec(base, 2 * M)])
    wait_for('free capacity', lambda: avail(vm, d) == 2 * M)
    knob(vm, 'plain', 'dc_force_del_extent', f'{base:#x}:{2 * M:#x}:0')
    wait_for('gone', lambda: sysfs_extents(vm, d['region']) == {})
    eq(avail(vm, d), 0)
    # The seed claims nothing of it.
    eq(claim(vm, d, 0)[1], 'No such file')
    agree(vm, 'plain')




def test_forced_release_of_a_mapped_device(vm):
    """Must-show 5: a process maps a claimed device (bound to device_dax)
    and touches it; the device takes the whole group back by force.  The
    mapping is zapped: the process's next access gets SIGBUS, the device
    is gone, the mock holds none of it and nothing went back with Release
    DC, and kmemleak (on the debug kernel) finds nothing.  The mock's
    addresses are not RAM: daxmap -t reads one byte a page and checks no
    data."""
    d = T['plain']
    leakcheck = kmemleak_armed(vm)
    if leakcheck:
        kmemleak_clear(vm)
    dev, tag, base = claimed_pair(vm, d, 56 * M)
    eq(size(vm, dev), 4 * M)
    sh(vm, f'echo {dev} > /sys/bus/dax/drivers/device_dax/bind')
    eq(sh(vm, f'basename $(readlink {DAXBUS}/{dev}/driver)').strip(),
       'device_dax')
    go, log = '/tmp/touch.go', '/tmp/touch.out'

    def said(*words):
        out = sh(vm, f'cat {log}; true')
        return any(w in out for w in words) and out

    sh(vm, f'rm -f {go} {log}; '
           f'(daxmap -t {go} /dev/{dev}; echo "exit $?") >{log} 2>&1 '
           '</dev/null &')
    try:
        out = wait_for('mapped', lambda: said('MAPPED', 'exit'), 60)
        assert out.startswith(f'MAPPED {4 * M} '), out
        before = mock_stats(vm, 'plain')
        live = mock_extents(vm, 'plain')
        knob(vm, 'plain', 'dc_force_del_extent',
             f'{base:#x}:{4 * M:#x}:{tag}')
        # Gone; the region's first device (daxZ.0) stays, as upstream
        # keeps it, but driverless, with size 0 and nothing claimed.
        gone = (f'[ "$(cat {DAXBUS}/{dev}/size)" = 0 ] && '
                f'! test -e {DAXBUS}/{dev}/driver' if dev.endswith('.0')
                else f'! test -e {DAXBUS}/{dev}')
        wait_for('device revoked', lambda: vm.run(gone)[0] == 0)
    finally:
        # The process touches its mapping again (and never waits on).
        sh(vm, f'touch {go}')
    out = wait_for('daxmap done', lambda: said('exit'), 60)
    lines = out.splitlines()
    assert lines[-1] == 'exit 3' and lines[-2].startswith('SIGBUS at '), out
    if dev.endswith('.0'):
        eq(read(vm, f'{DAXBUS}/{dev}/uuid'), NULL)
    else:
        sh(vm, f'! test -e /dev/{dev}')
    # The mock: both extents taken by force, nothing given back with
    # Release DC (nothing was left), nothing of the group left accepted.
    st = mock_stats(vm, 'plain')
    eq(st['forced'] - before['forced'], 2)
    eq(st['releases'], before['releases'])
    eq(st['live'], before['live'] - 2)
    eq(mock_extents(vm, 'plain'),
       [e for e in live if not base <= e[0] < base + 4 * M])
    eq(sysfs_extents(vm, d['region']), {})
    eq(avail(vm, d), 0)
    agree(vm, 'plain')
    if leakcheck:
        leaks = kmemleak_leaks(vm)
        assert not leaks, leaks[:4000]


def test_sharable_group_claims_in_sequence_order(vm):
    d = T['shared']
    tag = str(uuid.uuid4())
    base = d['dpa']
    dpas = [base + i * 2 * M for i in (1, 3, 0, 2)]
    seqs = [2, 0, 3, 1]
    _, n = offer(vm, 'shared', chain([(x, 2 * M) for x in dpas], tag, seqs),
                 'dc_inject_shared_extent')
    eq(n, 1)
    wait_for('free capacity', lambda: avail(vm, d) == 8 * M)
    dev, err = claim(vm, d, tag)
    eq(err, '')
    by_seq = [x for _, x in sorted(zip(seqs, dpas))]
    assert mappings(vm, dev) == [(hpa(vm, d, x), 2 * M) for x in by_seq]
    eq(write(vm, f'{DAXBUS}/{dev}/size', 0), '')
    delete(vm, d, dev)
    agree(vm, 'shared')


def test_claim_racing_release_never_half_claimed(vm):
    """For a few seconds: offer a 4-extent group, race a claim against the
    device's release of it.  The device ends up with all of it or none."""
    d = T['plain']
    base = d['dpa'] + 64 * M
    plat = f'{PLAT}/{d["plat"]}'
    bus = f'{view(d)}/dax_region'
    out = sh(vm, f'''
        end=$(($(date +%s) + 6)); n=0; bad=0
        while [ $(date +%s) -lt $end ]; do
            tag=$(cat /proc/sys/kernel/random/uuid)
            for i in 0 1 2 3; do
                m=1; [ $i = 3 ] && m=0
                echo $(printf '%#x' $(({base} + i * 0x200000))):0x200000:$tag:$m \
                    > {plat}/dc_inject_extent
            done
            s=$(cat {bus}/seed)
            echo $(printf '%#x' {base}):0x800000:$tag > {plat}/dc_del_extent &
            echo $tag > {DAXBUS}/$s/uuid 2>/dev/null
            wait
            sz=$(cat {DAXBUS}/$s/size)
            case $sz in 0|8388608) ;; *) bad=$((bad + 1)) ;; esac
            if [ $sz != 0 ]; then
                echo 0 > {DAXBUS}/$s/size
                echo $s > {bus}/delete
            fi
            n=$((n + 1))
        done
        echo rounds=$n bad=$bad''', timeout=120)
    assert 'bad=0' in out, out
    rounds = int(out.split('rounds=')[1].split()[0])
    assert rounds >= 3, out
    wait_for('all released', lambda: sysfs_extents(vm, d['region']) == {})
    eq(avail(vm, d), 0)
    agree(vm, 'plain')


def test_release_request_survives_allocation_failure(vm):
    """A device's release request is never lost (#12 item 6): queueing one
    takes an item from a reserve when memory runs out.  Each allocation on
    the path of a release record, from the knob write to the queueing,
    fails in turn (fail-nth): every release of a free group is still given
    back, and none is logged as lost."""
    if vm.run(f'[ -e {FAILSLAB}/ignore-gfp-wait ] && '
              '[ -e /proc/self/fail-nth ]')[0]:
        raise Skip('kernel without CONFIG_FAILSLAB and '
                   'CONFIG_FAULT_INJECTION_DEBUG_FS')
    sh(vm, f'cd {FAILSLAB} && echo N > ignore-gfp-wait && '
           'echo 0 > probability && echo N > task-filter && '
           'echo 0 > verbose')
    d = T['plain']
    dpa = d['dpa'] + 200 * M
    rel = f'{dpa:#x}:{2 * M:#x}:0'
    path = f'{PLAT}/{d["plat"]}/dc_del_extent'
    for n in range(1, 11):
        offer(vm, 'plain', [rec(dpa, 2 * M)])
        wait_for('free', lambda: avail(vm, d) == 2 * M)
        rc, _ = vm.run(f'exec 3>{path} 4>/proc/self/fail-nth; '
                       f'echo {n} >&4; echo {rel} >&3; r=$?; '
                       'echo 0 >&4; exit $r')
        if rc:
            # The write failed: the device never made the request.
            knob(vm, 'plain', 'dc_del_extent', rel)
        wait_for(f'fail-nth {n}: given back', lambda: dpa not in [
            a for a, *_ in mock_extents(vm, 'plain')], 20)
    assert 'no memory for a DC release' not in sh(vm, 'dmesg')
    eq(avail(vm, d), 0)
    agree(vm, 'plain')


def test_unbind_keeps_extents_and_rebind_recovers_them(vm):
    d = T['plain']
    dev, tag, base = claimed_pair(vm, d, 96 * M)
    before = mock_stats(vm, 'plain')
    unbind(vm, d['region'])
    sh(vm, f'! test -e {view(d)}')
    eq(mock_stats(vm, 'plain')['releases'], before['releases'])
    eq(len(mock_extents(vm, 'plain')), 2)
    eq(bind(vm, d['region'], DAX), DAX)
    eq(avail(vm, d), 4 * M)
    eq(mock_stats(vm, 'plain')['responses'], before['responses'])
    dev, err = claim(vm, d, tag)
    assert err == '' and size(vm, dev) == 4 * M
    agree(vm, 'plain')


def test_no_violations_anywhere(vm):
    for name in ('plain', 'shared'):
        agree(vm, name)
