"""Helpers for the suites that drive cxl_region_virtio through its
reference client, tools/cxl/cxl_virtio_vmm, run in the guest in the
background: its log is one line per event or action, and it takes
commands through a FIFO."""
import re

from cxl import sh, wait_for

VIRTIO = 'cxl_region_virtio'
VMM = 'cxl_virtio_vmm'
LOG = '/tmp/vmm.log'
CTL = '/tmp/vmm.ctl'
T = 120


def node(region):
    return f'/dev/cxl/virtio_{region}'


def follow(vm, region, opts=''):
    """Start the client on region's device; returns its pid once it has
    listed the groups."""
    sh(vm, f'rm -f {LOG} {CTL}; mkfifo {CTL}')
    pid = sh(vm, f'{VMM} {node(region)} follow -c {CTL} {opts} >{LOG} '
                 '2>&1 </dev/null & echo $!').strip()
    wait_for('client listed', lambda: 'LIST ' in log(vm), T)
    return pid


def log(vm):
    return sh(vm, f'cat {LOG} 2>/dev/null; true')


def ctl(vm, cmd):
    sh(vm, f'echo "{cmd}" > {CTL}')


def saw(vm, pattern, timeout=T):
    """Wait until a line of the client's log matches pattern; returns the
    last match (its group, if the pattern has one)."""
    found = []

    def hit():
        found[:] = re.findall(pattern, log(vm), re.M)
        return found
    wait_for(pattern, hit, timeout)
    return found[-1]


def pids(vm):
    """The clients (and peers) running."""
    return sh(vm, f'pidof {VMM}; true').split()


def stop(vm, *which):
    """Kill clients (and peers; all when none is named) and wait until
    none is left."""
    for pid in which or pids(vm):
        vm.run(f'kill -9 {pid} 2>/dev/null; true')
    wait_for('client gone', lambda: pids(vm) == [], 30)
