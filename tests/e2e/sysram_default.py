"""cxl_core.dc_default_policy: a host that wants no userspace step names a
default policy at boot; a DC region then binds to it without an override,
and its offers go straight to System RAM.  RAM regions keep cxl_region."""
from cxl import (DEV, G, M, SYSRAM, create_dc_region, device_extents,
                 driver_of, meminfo, qmp_ok, read, sh, wait_for)

VM_ARGS = {'extra_append': f'cxl_core.dc_default_policy={SYSRAM}'}
R = 'region0'


def test_default_policy_binds_dc_region(vm):
    assert read(vm, '/sys/module/cxl_core/parameters/dc_default_policy') \
        == SYSRAM
    assert create_dc_region(vm, G) == R
    sh(vm, f'echo {R} > /sys/bus/cxl/drivers_probe')
    assert driver_of(vm, R) == SYSRAM
    assert read(vm, f'{DEV}/{R}/driver_override') == '(null)'


def test_offer_goes_online_without_userspace_step(vm):
    before = meminfo(vm)
    qmp_ok(vm.add_capacity([(0, 256 * M)]))
    wait_for('MemTotal grows', lambda: meminfo(vm) - before == 256 * M)
    qmp_ok(vm.release_capacity([(0, 256 * M)]))
    wait_for('released', lambda: device_extents(vm) == [], timeout=120)
    assert meminfo(vm) == before


def test_override_still_wins(vm):
    sh(vm, f'echo {R} > /sys/bus/cxl/drivers/{SYSRAM}/unbind')
    sh(vm, f'echo cxl_region > {DEV}/{R}/driver_override && '
           f'echo {R} > /sys/bus/cxl/drivers_probe')
    assert driver_of(vm, R) == 'cxl_region'
