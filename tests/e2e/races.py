"""Two regions, on two QEMU DCDs, driven at once (issue 12, item 2).  The
emulated host bridge has one HDM decoder, so one region per host bridge:
the VM has two DCDs, each behind a host bridge and a window of its own
(VM.start(dcds=2)), and one region on each, bound to the test policy.
QMP offers and releases for both are sent back to back, without waiting
for the host in between.  QEMU's event log holds 8 records (DESIGN.md
section 6), so each round sends four commands (an offer and a release per
device) and the next round starts once the host answered them; within a
round the host drains, answers and releases while the commands arrive.
After every round each device's own list (Get DC Extent List) equals its
region's extent directories."""
from cxl import (DEV, M, dc_region_script, dc_stats, qmp_ok, read, sh,
                 sysfs_extents, tp_bind, wait_for)

VM_ARGS = {'dcds': 2}
SIZE = 512 * M
ROUNDS = 12
S = []          # per QEMU device: dict(dev, mem, pci, region, dpa)


def _device_extents(vm, d):
    out = sh(vm, f'cat /sys/kernel/debug/cxl/{d["pci"]}/dc_extents')
    return sorted((int(a, 0), int(b, 0)) for a, b, *_ in
                  (ln.split() for ln in out.splitlines() if ln.strip()))


def _agree(vm, d):
    dev = _device_extents(vm, d)
    ext = sysfs_extents(vm, d['region']).values()
    assert all(e['dpa'] == d['dpa'] + e['offset'] for e in ext), ext
    guest = sorted((e['dpa'], e['length']) for e in ext)
    assert dev == guest, f'{d["mem"]}: device {dev} != sysfs {guest}'
    return dev


def test_setup(vm):
    sh(vm, 'insmod /bin/cxl_dc_test_policy.ko')
    # Each endpoint: its memdev, its host bridge (pci0000:XX, XX the bus
    # number QEMU's pxb-cxl got: 12 + 10 * N for cxl-dcdN), the root
    # decoder whose target is that bridge.
    out = sh(vm, f"""cd {DEV}
        for e in endpoint*; do
            hb=$(basename $(readlink -f $(dirname $(readlink -f $e))/uport))
            echo $e $(basename $(readlink -f $e/uport)) $hb \
                $(basename $(dirname $(readlink -f $e/uport)))
        done
        for r in decoder0.*; do echo $r $(cat $r/target_list); done""")
    roots = {}
    eps = []
    for ln in out.splitlines():
        f = ln.split()
        if f[0].startswith('decoder0.'):
            roots[int(f[1])] = f[0]
        else:
            eps.append(f)
    assert len(eps) == 2 and len(roots) == 2, out
    for ep, mem, hb, pci in sorted(eps, key=lambda e: e[2]):
        bus = int(hb.split(':')[1], 16)
        root, dec = roots[bus], f'decoder{ep[len("endpoint"):]}.0'
        region = read(vm, f'{DEV}/{root}/create_dynamic_ram_1_region')
        sh(vm, dc_region_script(region, SIZE, root, dec))
        sh(vm, tp_bind(region))
        S.append(dict(dev=(bus - 12) // 10, mem=mem, pci=pci, region=region,
                      dpa=int(read(vm, f'{DEV}/{dec}/dpa_resource'), 0)))
    assert sorted(d['dev'] for d in S) == [0, 1], S
    for d in S:
        assert _agree(vm, d) == []


def test_concurrent_offers_and_releases_on_two_regions(vm):
    st0 = {d['pci']: dc_stats(vm, d['pci']) for d in S}
    held = {}
    for i in range(ROUNDS):
        new = {d['dev']: (i * 4 * M, 2 * M) for d in S}
        cmds = []
        for d in S:
            cmds.append(vm.add_capacity([new[d['dev']]], dev=d['dev']))
            if d['dev'] in held:
                cmds.append(vm.release_capacity([held[d['dev']]],
                                                dev=d['dev']))
        for c in cmds:
            qmp_ok(c)

        def answered(d):
            s, s0 = dc_stats(vm, d['pci']), st0[d['pci']]
            return (s['responses'] == s0['responses'] + i + 1 and
                    s['release_records'] == s0['release_records'] + i)
        for d in S:
            wait_for(f'round {i} on {d["mem"]}', lambda: answered(d), 60)
            want = [(d['dpa'] + new[d['dev']][0], 2 * M)]
            wait_for(f'round {i} settled on {d["mem"]}',
                     lambda: _device_extents(vm, d) == want, 60)
            assert _agree(vm, d) == want
        held = new
    for d in S:
        s, s0 = dc_stats(vm, d['pci']), st0[d['pci']]
        assert s['releases'] - s0['releases'] == ROUNDS - 1, (s0, s)
        assert all(e['state'] == 'active'
                   for e in sysfs_extents(vm, d['region']).values())
