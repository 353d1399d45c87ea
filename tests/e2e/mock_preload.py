"""The mock DCDs as tools written for the in-flight DCD series expect them
(module parameter cxl_mock_mem.dc_preload): every non-sharable mock
memdev starts with two extents accepted, an untagged one at DC offset
0x8000000 and one tagged deadbeef-cafe-baad-f00d-fedcba987654 at
0x10000000, 64 MiB each; the sharable memdev has serial 0xDCDC; release
knobs take the 3-field form <dpa>:<length>:<tag>.  Binding a policy reads
the preloaded extents back without a response."""
from cxl import (DEV, M, read, sh, sysfs_extents, tp_bind,
                 tp_unbind)
from cxl_mock import (T, agree, discover, first_region, knob, mock_extents,
                      mock_stats)

VM_ARGS = {'mock': True, 'extra_append': 'cxl_mock_mem.dc_preload=1'}
TAG = 'deadbeef-cafe-baad-f00d-fedcba987654'
NULL = '00000000-0000-0000-0000-000000000000'
PRE = {0x8000000: NULL, 0x10000000: TAG}


def test_sharable_memdev_serial(vm):
    mems = discover(vm)
    assert read(vm, f'{DEV}/{mems["cxl_mem.2"]["mem"]}/serial') == '0xdcdc'


def test_preloaded_extents_recovered_without_response(vm):
    sh(vm, 'insmod /bin/cxl_dc_test_policy.ko')
    T.clear()
    d = first_region(vm, discover(vm), 512 * M, skip=('cxl_mem.2',))
    assert d, 'no 512 MiB DC region on a non-sharable mock memdev'
    T['pre'] = d
    held = {e[0] - d['dpa']: (e[1], e[2]) for e in
            mock_extents(vm, 'pre')}
    assert held == {off: (64 * M, tag) for off, tag in PRE.items()}, held
    before = mock_stats(vm, 'pre')
    sh(vm, tp_bind(d["region"]))
    ext = sysfs_extents(vm, d['region']).values()
    assert sorted((e['offset'], e['uuid'], e['state']) for e in ext) == [
        (off, tag, 'active') for off, tag in sorted(PRE.items())], ext
    assert mock_stats(vm, 'pre')['responses'] == before['responses']
    agree(vm, 'pre')


def test_release_knobs_take_three_fields(vm):
    d = T['pre']
    before = mock_stats(vm, 'pre')
    knob(vm, 'pre', 'dc_del_extent', f'{d["dpa"] + 0x10000000:#x}:'
         f'{64 * M:#x}:{TAG}')
    knob(vm, 'pre', 'dc_force_del_extent', f'{d["dpa"] + 0x8000000:#x}:'
         f'{64 * M:#x}:0')
    assert sysfs_extents(vm, d['region']) == {}
    st = mock_stats(vm, 'pre')
    assert st['releases'] - before['releases'] == 1, st
    assert st['forced'] - before['forced'] == 1, st
    agree(vm, 'pre')
    sh(vm, tp_unbind(d["region"]))
