"""Guest-side helpers shared by the end-to-end suites: what a user types in
sysfs to create a Dynamic Capacity region, and how the suites read the
kernel's trace records back.  Everything here runs shell in the guest
through scripts/vm.py's VM.run()."""
import re
import time

M = 1 << 20
G = 1 << 30
DEV = '/sys/bus/cxl/devices'
TRACE = '/sys/kernel/tracing'


def sh(vm, cmd, timeout=60):
    """Run cmd in the guest, fail the test on a non-zero exit."""
    rc, out = vm.run(cmd, timeout=timeout)
    if rc:
        raise AssertionError(f'guest command failed ({rc}): {cmd}\n{out}')
    return out


def read(vm, path):
    return sh(vm, f'cat {path}').strip()


def create_dc_region(vm, size=G, root='decoder0.0', endpoint='decoder2.0'):
    """Create, size, target and commit a one-way dynamic_ram_1 region the
    way a user does it through sysfs; returns the region's name."""
    region = read(vm, f'{DEV}/{root}/create_dynamic_ram_1_region')
    sh(vm, f'''
        set -e
        cd {DEV}
        echo {region} > {root}/create_dynamic_ram_1_region
        cat {root}/interleave_granularity > {region}/interleave_granularity
        echo 1 > {region}/interleave_ways
        echo {size:#x} > {region}/size
        echo dynamic_ram_1 > {endpoint}/mode
        echo {size:#x} > {endpoint}/dpa_size
        echo {endpoint} > {region}/target0
        echo 1 > {region}/commit
    ''')
    return region


def trace_on(vm, *events):
    """Enable cxl tracepoints and empty the trace buffer."""
    cmds = [f'echo 1 > {TRACE}/events/cxl/{e}/enable' for e in events]
    sh(vm, ' && '.join(cmds + [f'echo > {TRACE}/trace']))


_REC = re.compile(r'\s(cxl_\w+): (.*)$')


def trace_records(vm, event=None):
    """Parse the trace buffer: a list of dicts with 'event' and each
    key=value of the record, in the order they were written."""
    out = []
    for line in sh(vm, f'cat {TRACE}/trace').splitlines():
        m = _REC.search(line)
        if not m or (event and m.group(1) != event):
            continue
        rec = {'event': m.group(1)}
        for k, v in re.findall(r'(\w+)=(\S+)', m.group(2)):
            rec[k] = v
        out.append(rec)
    return out


def wait_for(what, fn, timeout=30, interval=0.5):
    """Poll fn() until it returns something true; fail after timeout."""
    end = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError(f'timed out waiting for {what}')
        time.sleep(interval)


def qmp_ok(resp):
    if 'error' in resp:
        raise AssertionError(f'QMP error: {resp["error"]}')
    return resp
