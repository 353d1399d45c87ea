"""Foundation suite: the DC partition is visible, a DC region is created
and committed through sysfs, and a QMP offer is answered by exactly one
Add DC Response: QEMU then takes a new offer of the same range, which it
refuses while the first is still pending."""
import time

from cxl import (DEV, G, M, create_dc_region, qmp_ok, read, sh,
                 trace_on, trace_records, wait_for)

# scripts/vm.py's topology: a 2 GiB DC backend split into two regions.
DC_REGION_SIZE = G
# Every step here is also a step of extent_lib, which the debug kernel runs.
FLAVOURS = ('test',)
FLAVOURS_WHY = 'a subset of extent_lib, which runs on this kernel'


def test_dc_partition_matches_qemu(vm):
    size = int(read(vm, f'{DEV}/mem0/dynamic_ram_1/size'), 0)
    assert size == DC_REGION_SIZE, f'dynamic_ram_1/size {size:#x}'
    log = sh(vm, 'dmesg')
    assert 'DC region 1 (DPA 0x40000000, 0x40000000 bytes) left unused' in log


def test_root_decoder_can_host_dc(vm):
    """cap_dynamic_ram_1 on root decoders, like cap_ram: tools of the
    in-flight DCD series look for it."""
    for cap in ('cap_ram', 'cap_dynamic_ram_1'):
        assert read(vm, f'{DEV}/decoder0.0/{cap}') == '1', cap


def test_dc_region_commits(vm):
    region = create_dc_region(vm, DC_REGION_SIZE)
    assert read(vm, f'{DEV}/{region}/mode') == 'dynamic_ram_1'
    assert read(vm, f'{DEV}/{region}/commit') == '1'
    assert read(vm, f'{DEV}/decoder2.0/mode') == 'dynamic_ram_1'


def _responses(vm):
    return trace_records(vm, 'cxl_dc_response')


def test_offer_answered_once(vm):
    trace_on(vm, 'cxl_dynamic_capacity', 'cxl_dc_response')
    qmp_ok(vm.add_capacity([(0, 128 * M), (128 * M, 128 * M)]))
    wait_for('one response', lambda: _responses(vm))
    ev = trace_records(vm, 'cxl_dynamic_capacity')
    assert [(e['type'], e['more'], e['dpa']) for e in ev] == [
        ('add', '1', '0x0'), ('add', '0', '0x8000000')], ev
    rsp = _responses(vm)
    assert [(r['offered'], r['rc']) for r in rsp] == [('2', '0')], rsp

    # The device consumed the group: the same range can be offered again.
    qmp_ok(vm.add_capacity([(0, 128 * M), (128 * M, 128 * M)]))
    wait_for('second response', lambda: len(_responses(vm)) == 2)
    assert len(_responses(vm)) == 2
    log = sh(vm, 'dmesg')
    assert 'Add DC Response failed' not in log, log


def test_fifo_offers(vm):
    """Two offers in a row, each answered once, in order."""
    trace_on(vm, 'cxl_dynamic_capacity', 'cxl_dc_response')
    qmp_ok(vm.add_capacity([(256 * M, 2 * M)]))
    qmp_ok(vm.add_capacity([(512 * M, 2 * M), (514 * M, 2 * M)]))
    wait_for('two responses', lambda: len(_responses(vm)) == 2)
    assert [r['offered'] for r in _responses(vm)] == ['1', '2']
    assert [r['rc'] for r in _responses(vm)] == ['0', '0']


def test_release_of_unheld_range_refused(vm):
    """Nothing was accepted, so the device has nothing to take back."""
    r = vm.release_capacity([(0, 128 * M)])
    assert 'error' in r, r


def test_command_channel_ends_every_command_once(vm):
    """The guest's /init (tests/guest/init) runs each script in a subshell
    with a watchdog: a script past its timeout is killed with 137 and the
    next command is served, and timed, as usual; a script's exit status,
    stderr, backslashes and whitespace come back as they were; none of
    /init's variables, arguments or descriptors reach the script."""
    for _ in range(2):   # the second after the first's watchdog fired
        t0 = time.monotonic()
        rc, out = vm.run('echo early; sleep 30; echo late', timeout=2)
        assert (rc, out) == (137, 'early\n'), (rc, out)
        assert time.monotonic() - t0 < 25, 'the watchdog did not kill it'
        assert vm.run('echo after') == (0, 'after\n')
    assert vm.run('echo out; echo err >&2; exit 3') == (3, 'out\nerr\n')
    assert vm.run('set -e; false; echo not reached')[0] == 1
    line = r"a\\b  two  spaces	tab 'q' \"d\" $x"
    assert vm.run(f"cat <<'END'\n{line}\n\nEND") == (0, f'{line}\n\n')
    assert vm.run('echo "[$#][$seq][$tmo][$pid][$dog]"') == (0, '[0][][][][]\n')
    rc, fds = vm.run('ls /proc/self/fd')
    assert rc == 0 and '5' not in fds.split(), fds
