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


class Skip(Exception):
    """Raised by a test that cannot run on this kernel or guest; the
    message says why, and the runner prints it on a SKIP line."""


def sh(vm, cmd, timeout=60):
    """Run cmd in the guest, fail the test on a non-zero exit."""
    rc, out = vm.run(cmd, timeout=timeout)
    if rc:
        raise AssertionError(f'guest command failed ({rc}): {cmd}\n{out}')
    return out


def read(vm, path):
    return sh(vm, f'cat {path}').strip()


def dc_region_script(region, size, root, endpoint):
    """The sysfs steps a user takes to create, size, target and commit a
    one-way dynamic_ram_1 region (shell, stops at the first failure)."""
    return f'''
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
    '''


def create_dc_region(vm, size=G, root='decoder0.0', endpoint='decoder2.0'):
    """Create and commit a one-way dynamic_ram_1 region the way a user
    does it through sysfs; returns the region's name."""
    region = read(vm, f'{DEV}/{root}/create_dynamic_ram_1_region')
    sh(vm, dc_region_script(region, size, root, endpoint))
    return region


def create_ram_region(vm, size=G, root='decoder0.0', endpoint='decoder2.0'):
    """The same for a static RAM region (the device's 'ram' partition, see
    VM.start(ram_size=...)); committed, not probed yet."""
    region = read(vm, f'{DEV}/{root}/create_ram_region')
    sh(vm, f'''
        set -e
        cd {DEV}
        echo {region} > {root}/create_ram_region
        cat {root}/interleave_granularity > {region}/interleave_granularity
        echo 1 > {region}/interleave_ways
        echo {size:#x} > {region}/size
        echo ram > {endpoint}/mode
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
        for k, v in re.findall(r'(\w+)=("[^"]*"|\S+)', m.group(2)):
            rec[k] = v.strip('"')
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


POLICY = '/sys/kernel/debug/cxl_dc_test'
TEST_POLICY = 'cxl_dc_test_policy'


def tp_bind(region):
    """Shell words that bind the test policy to region, as a user binds a
    real one: driver_override, then a probe; fails unless it bound."""
    return (f'echo {TEST_POLICY} > {DEV}/{region}/driver_override && '
            f'echo {region} > /sys/bus/cxl/drivers_probe && '
            f'[ -e /sys/bus/cxl/drivers/{TEST_POLICY}/{region} ]')


def tp_unbind(region):
    """Shell words that unbind the test policy from region."""
    return f'echo {region} > /sys/bus/cxl/drivers/{TEST_POLICY}/unbind'


def policy(vm, knob, value):
    """Tell the test policy (tools/testing/cxl/dc_policy) what to do."""
    sh(vm, f'echo {value} > {POLICY}/{knob}')


def device_extents(vm):
    """The device's own accepted-extent list (Get DC Extent List), as
    [(dpa, len)] in the device's order."""
    out = sh(vm, 'cat /sys/kernel/debug/cxl/*/dc_extents')
    return [(int(a, 0), int(b, 0)) for a, b, *_ in
            (ln.split() for ln in out.splitlines() if ln.strip())]


def sysfs_extents(vm, region):
    """regionZ/extentZ.N as {name: dict(offset, dpa, length, uuid, seq,
    state)}, read by one grep (hundreds of extents on the debug kernel)."""
    out = sh(vm, f'cd {DEV}/{region} && grep -H . extent*/offset '
                 'extent*/dpa extent*/length extent*/uuid extent*/seq '
                 'extent*/state 2>/dev/null; true', timeout=300)
    raw = {}
    for ln in out.splitlines():
        path, _, val = ln.partition(':')
        name, _, attr = path.partition('/')
        if attr:
            raw.setdefault(name, {})[attr] = val.strip()
    ext = {}
    for name, a in raw.items():
        if len(a) < 6:  # went away while it was read
            continue
        ext[name] = dict(offset=int(a['offset'], 0), dpa=int(a['dpa'], 0),
                         length=int(a['length'], 0), uuid=a['uuid'],
                         seq=int(a['seq']), state=a['state'])
    return ext


def assert_agree(vm, region, dpa_base=0):
    """The device's list and the guest's extent directories agree."""
    dev = sorted(device_extents(vm))
    ext = sysfs_extents(vm, region).values()
    guest = sorted((e['dpa'], e['length']) for e in ext)
    assert dev == guest, f'device {dev} != sysfs {guest}'
    assert all(e['dpa'] == e['offset'] + dpa_base for e in ext), ext
    return dev


def dc_stats(vm, dev='*'):
    """The extent library's counters for a device (debugfs, named by the
    device's parent: a PCI address, or cxl_mem.N for a mock)."""
    out = sh(vm, f'cat /sys/kernel/debug/cxl/{dev}/dc_stats')
    return {k: int(v) for k, v in (ln.split() for ln in out.splitlines())}


DC_EVENTS = ('cxl_dynamic_capacity', 'cxl_dc_response', 'cxl_dc_offer',
             'cxl_dc_accept', 'cxl_dc_reject', 'cxl_dc_release',
             'cxl_dc_released')


# -- System RAM policy (cxl_region_sysram) ------------------------------------

SYSRAM = 'cxl_region_sysram'
MEMORY = '/sys/devices/system/memory'


def bind(vm, region, driver):
    """Pick the region's driver with driver_override and probe it."""
    sh(vm, f'echo {driver} > {DEV}/{region}/driver_override && '
           f'echo {region} > /sys/bus/cxl/drivers_probe')
    return driver_of(vm, region)


def unbind(vm, region, timeout=120):
    drv = driver_of(vm, region)
    sh(vm, f'echo {region} > /sys/bus/cxl/drivers/{drv}/unbind', timeout)


def driver_of(vm, region):
    """Name of the driver bound to the region, '' when none."""
    rc, out = vm.run(f'basename "$(readlink {DEV}/{region}/driver)"')
    return out.strip() if rc == 0 and 'driver' not in out else ''


def meminfo(vm, key='MemTotal'):
    """A /proc/meminfo field in bytes."""
    out = sh(vm, f"grep '^{key}:' /proc/meminfo")
    return int(out.split()[1]) * 1024


def block_size(vm):
    return int(read(vm, f'{MEMORY}/block_size_bytes'), 16)


def region_base(vm, region):
    return int(read(vm, f'{DEV}/{region}/resource'), 0)


def memory_blocks(vm, start, size):
    """{block number: state} of the memory blocks present in
    [start, start + size)."""
    bs = block_size(vm)
    first, last = start // bs, (start + size - 1) // bs
    out = sh(vm, f'cd {MEMORY} && for b in memory*; do '
                 '[ -f $b/state ] && echo "${b#memory} $(cat $b/state)"; '
                 'done; true')
    blocks = {}
    for ln in out.splitlines():
        n, state = ln.split()
        if first <= int(n) <= last:
            blocks[int(n)] = state
    return blocks


def iomem(vm, name):
    """[(start, end)] of the /proc/iomem lines naming name."""
    out = sh(vm, 'cat /proc/iomem')
    res = []
    for ln in out.splitlines():
        rng, _, what = ln.strip().partition(' : ')
        if what == name:
            a, b = rng.split('-')
            res.append((int(a, 16), int(b, 16)))
    return res


def node_of_block(vm, n):
    out = sh(vm, f'ls -d {MEMORY}/memory{n}/node*')
    return int(out.strip().rsplit('node', 1)[1])


def bind_dax(vm, dev, drv):
    """Bind a dax device to a dax driver as daxctl does: new_id lets kmem
    or fsdev_dax take a device whose type is device_dax."""
    bus = '/sys/bus/dax'
    sh(vm, f'echo {dev} > {bus}/drivers/{drv}/new_id; '
           f'[ -e {bus}/devices/{dev}/driver ] || '
           f'echo {dev} > {bus}/drivers/{drv}/bind')
    got = sh(vm, f'basename $(readlink {bus}/devices/{dev}/driver)').strip()
    assert got == drv, (dev, got, drv)
