#!/usr/bin/env python3
"""QEMU test bed for CXL Dynamic Capacity: owns booting a guest (kernel +
initramfs from scripts/mkinitramfs.sh) under TCG with one CXL type-3 DCD,
running shell commands in it over a virtio console (the loop in tests/guest/init),
talking QMP, and offering / releasing dynamic capacity.

Library:
    with VM() as vm:
        vm.start()                       # or start(kernel, initrd, ...)
        rc, out = vm.run('ls /sys/bus/cxl/devices')
        vm.add_capacity([(0, 128 << 20)], region=0)
        print(vm.console())

CLI:
    scripts/vm.py run 'cmd1' 'cmd2'      boot, run each command, print, stop
    scripts/vm.py shell                  boot, read commands from stdin
Kernel/initrd: --kernel/--initrd, else $VM_KERNEL/$VM_INITRD, else
out/bzImage and out/initramfs.cpio.gz under the repository root.
"""
import argparse
import json
import math
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_KERNEL = os.path.join(TOP, 'out', 'bzImage')
DEFAULT_INITRD = os.path.join(TOP, 'out', 'initramfs.cpio.gz')
DCD_PATH = '/machine/peripheral/cxl-dcd0'


def dcd_path(n=0):
    """QOM path of the n-th QEMU DCD (VM.start(dcds=...))."""
    return f'/machine/peripheral/cxl-dcd{n}'
# mock_real_ram: guest RAM kept from the kernel for cxl_test's first window
# (1 GiB), with room past its end so that the window nests in it.
MOCK_RAM_BASE = 4 << 30
MOCK_RAM_RESERVE = 1280 << 20
# How much longer than its own timeout a command's answer may take
STALL_GRACE = 120
# Seconds of silence on the command channel before a nudge (_read_until).
NUDGE_S = 10
READY = b'\x1fREADY\n'


def _mib(size):
    """'3G' or '512M' in MiB."""
    units = {'M': 1, 'G': 1024}
    return int(size[:-1]) * units[size[-1].upper()]


class VMError(Exception):
    pass


class ChannelStall(VMError):
    """A command got no answer even long after the guest's own timeout:
    the command channel, not the command, is stuck."""


class VM:
    def __init__(self, workdir=None, qemu='qemu-system-x86_64'):
        """workdir: keep all files there (not deleted); default a temp dir."""
        self.workdir, self.keep, self.qemu = workdir, workdir is not None, qemu
        self.proc = self.ser = self.qmp_sock = None
        self.events = []            # QMP events seen, in order
        self.ready = False
        self.boot_time = None       # seconds from start() to the ready banner
        self.debug = False
        self._buf = b''
        self._seq = 0
        self._console_cache = ''

    # -- lifecycle ---------------------------------------------------------

    def start(self, kernel=None, initrd=None, mem='3G', debug=False,
              extra_append='', dc_size='2G', dc_regions=2, ram_size=None,
              boot_timeout=180, mock=False, modules=None, extra_initrd=None,
              mock_real_ram=False, dcds=1, smp=2):
        """extra_initrd: an archive appended to initrd (a name is looked up
        next to initrd), such as initramfs-qemu.cpio.gz.
        ram_size: also give the device static volatile capacity (its
        'ram' partition, ahead of the DC regions in DPA), e.g. '1G'.
        mock: no CXL hardware; the guest loads cxl_test's mock devices.
        modules: the CXL module set /init loads ('real', 'mock', or 'none'
        for a test that loads its own); by default the one mock says.
        smp: the guest's CPUs; each is a host thread under TCG.
        dcds: QEMU DCDs, each behind a host bridge and a window of its
        own (the emulated host bridge has one HDM decoder, so one region);
        the QMP helpers name one with dev=N, cxl-dcdN.
        mock_real_ram: (mock) put cxl_test's first window, 1 GiB at
        MOCK_RAM_BASE, on guest RAM that memmap= keeps from the kernel, so
        that regions in it hold data and can go online as memory."""
        kernel = kernel or os.environ.get('VM_KERNEL') or DEFAULT_KERNEL
        initrd = initrd or os.environ.get('VM_INITRD') or DEFAULT_INITRD
        for f in (kernel, initrd):
            if not os.path.exists(f):
                raise VMError(f'missing {f}')
        self.debug, self.boot_timeout = debug, boot_timeout
        self.dir = self.workdir or tempfile.mkdtemp(prefix='cxlvm-')
        os.makedirs(self.dir, exist_ok=True)
        if extra_initrd:
            extra = os.path.join(os.path.dirname(initrd), extra_initrd)
            both = os.path.join(self.dir, 'initrd.cpio.gz')
            with open(both, 'wb') as out:
                for f in (initrd, extra):
                    with open(f, 'rb') as part:
                        shutil.copyfileobj(part, out)
            initrd = both
        self.console_path = os.path.join(self.dir, 'console.log')
        ser_l = self._listen('cmd.sock')
        qmp_l = self._listen('qmp.sock')
        append = 'console=ttyS0 panic=-1 oops=panic'
        if debug:
            append += ' ignore_loglevel'
        # The guest's /init loads the real CXL modules against QEMU's DCD,
        # or (mock) tools/testing/cxl's cxl_test set against its mock
        # devices, on a machine without CXL hardware.
        append += ' cxl_modules=' + (modules or ('mock' if mock else 'real'))
        if mock and mock_real_ram:
            # 4G: 2G below 4 GiB, 2G above it, the reserved range in that.
            mem = '4G'
            append += (f' memmap={MOCK_RAM_RESERVE >> 20}M${MOCK_RAM_BASE:#x}'
                       f' cxl_test.ram_window_base={MOCK_RAM_BASE:#x}')
        append = (append + ' ' + extra_append).strip()
        self.mock = mock
        if mock:
            # cxl_test spreads its mock devices over NUMA nodes 0 and 1.
            half = f'{_mib(mem) // 2}M'
            machine, cxl = 'q35', [
                '-object', f'memory-backend-ram,id=m0,size={half}',
                '-object', f'memory-backend-ram,id=m1,size={half}',
                '-numa', 'node,nodeid=0,cpus='
                         + (f'0-{smp - 1}' if smp > 1 else '0') + ',memdev=m0',
                '-numa', 'node,nodeid=1,memdev=m1',
            ]
        else:
            machine = 'q35,cxl=on'
            cxl = [
                '-object',
                f'memory-backend-ram,id=dc0,size={dc_size},share=on',
                '-device', 'pxb-cxl,bus_nr=12,bus=pcie.0,id=cxl.1',
                '-device',
                'cxl-rp,port=0,bus=cxl.1,id=root_port13,chassis=0,slot=2',
                '-device', 'cxl-type3,bus=root_port13,volatile-dc-memdev=dc0,'
                           f'num-dc-regions={dc_regions},id=cxl-dcd0' +
                           (',volatile-memdev=vmem0' if ram_size else ''),
                '-M', 'cxl-fmw.0.targets.0=cxl.1,cxl-fmw.0.size=4G',
            ]
            for n in range(1, dcds):
                cxl += [
                    '-object',
                    f'memory-backend-ram,id=dc{n},size={dc_size},share=on',
                    '-device', f'pxb-cxl,bus_nr={12 + 10 * n},bus=pcie.0,'
                               f'id=cxl.{n + 1}',
                    '-device', f'cxl-rp,port=0,bus=cxl.{n + 1},'
                               f'id=root_port{13 + n},chassis=0,'
                               f'slot={2 + n}',
                    '-device', f'cxl-type3,bus=root_port{13 + n},'
                               f'volatile-dc-memdev=dc{n},'
                               f'num-dc-regions={dc_regions},id=cxl-dcd{n}',
                ]
                # QEMU takes every window in the one -M option.
                cxl[cxl.index('-M') + 1] += (f',cxl-fmw.{n}.targets.0='
                                             f'cxl.{n + 1},cxl-fmw.{n}.size=4G')
            if ram_size:
                cxl[:0] = ['-object', 'memory-backend-ram,id=vmem0,'
                                      f'size={ram_size},share=on']
        cmd = [
            self.qemu, '-machine', machine, '-accel', 'tcg', '-smp', str(smp),
            '-m', f'{mem},maxmem=8G,slots=4',
            '-display', 'none', '-nodefaults', '-no-reboot',
            '-kernel', kernel, '-initrd', initrd, '-append', append,
        ] + cxl + [
            '-chardev', f'file,id=con,path={self.console_path}',
            '-serial', 'chardev:con',
            '-chardev', f'socket,id=ser1,path={self.dir}/cmd.sock',
            '-device', 'virtio-serial-pci,id=vser0,bus=pcie.0',
            # A serial port, not a console: QEMU drops console output it
            # cannot write at once, and flow-controls only serial ports.
            '-device', 'virtserialport,chardev=ser1,bus=vser0.0,nr=1,'
                       'name=cxl.cmd',
            '-chardev', f'socket,id=qmp,path={self.dir}/qmp.sock',
            '-mon', 'chardev=qmp,mode=control',
        ]
        if debug:
            cmd += ['-gdb', f'unix:{self.dir}/gdb.sock,server=on,wait=off']
        with open(os.path.join(self.dir, 'qemu.cmd'), 'w') as f:
            f.write(' '.join(cmd) + '\n')
        self._t0 = time.monotonic()
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL,
            stdout=open(os.path.join(self.dir, 'qemu.log'), 'wb'),
            stderr=subprocess.STDOUT)
        try:
            self.ser = self._accept(ser_l)
            self.qmp_sock = self._accept(qmp_l)
        finally:
            ser_l.close()
            qmp_l.close()
        self.qmp_sock.settimeout(60)
        self._qmp_file = self.qmp_sock.makefile('rwb')
        greeting = self._qmp_read()
        if 'QMP' not in greeting:
            raise VMError(f'bad QMP greeting {greeting}')
        self.qmp('qmp_capabilities')
        return self

    def _listen(self, name):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(os.path.join(self.dir, name))
        s.listen(1)
        s.settimeout(0.2)
        return s

    def _accept(self, listener, timeout=30):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                return listener.accept()[0]
            except socket.timeout:
                if self.proc.poll() is not None:
                    break
        raise VMError('QEMU did not connect: ' + self._qemu_log())

    def stop(self, timeout=15):
        """Quit QEMU (QMP quit, then kill); returns its exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.qmp('quit')
            except (OSError, VMError, ValueError):
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for s in (self.ser, self.qmp_sock):
            if s:
                s.close()
        self._console_cache = self.console()
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)
        rc, self.proc = self.proc.returncode, None
        return rc

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    # -- kernel console (ttyS0) --------------------------------------------

    def console(self):
        """Kernel console log so far (kept after stop())."""
        if self.proc is None:
            return self._console_cache
        try:
            with open(self.console_path, 'rb') as f:
                return f.read().decode('utf-8', 'replace')
        except FileNotFoundError:
            return ''

    def wait_console(self, regex, timeout=60, start=0):
        """Wait until regex matches the console text from offset start."""
        end = time.monotonic() + timeout
        while True:
            m = re.compile(regex, re.M).search(self.console(), start)
            if m:
                return m
            if not self.alive():
                raise VMError(f'QEMU exited waiting for {regex!r}' +
                              self._tail())
            if time.monotonic() > end:
                raise TimeoutError(f'console: no {regex!r} in {timeout}s' +
                                   self._tail())
            time.sleep(0.2)

    def _tail(self, n=40):
        return '\n--- console tail ---\n' + \
            '\n'.join(self.console().splitlines()[-n:])

    def _qemu_log(self):
        try:
            with open(os.path.join(self.dir, 'qemu.log')) as f:
                return f.read()
        except OSError:
            return ''

    # -- guest commands (virtio console) ----------------------------------------

    def _read_until(self, pattern, timeout, nudge=False):
        """Read the command channel until pattern.  With nudge, every
        NUDGE_S of silence sends an empty line, which the guest's loop
        skips: new input for a channel that sits on data, and a probe for
        a stall report (QEMU's receive queue should move)."""
        rx = re.compile(pattern, re.S)
        end = time.monotonic() + timeout
        quiet = time.monotonic()
        while True:
            m = rx.search(self._buf)
            if m:
                return m
            now = time.monotonic()
            left = end - now
            if left <= 0:
                raise TimeoutError(f'command channel: no {pattern!r} in {timeout}s; '
                                   f'got {self._buf[-500:]!r}' + self._tail())
            if nudge and now - quiet >= NUDGE_S:
                quiet = now
                try:
                    self.ser.sendall(b'\n')
                except OSError:
                    pass
            if select.select([self.ser], [], [], min(left, 1.0))[0]:
                try:
                    data = self.ser.recv(65536)
                except ConnectionError:
                    data = b''
                if not data:
                    raise VMError('QEMU closed the command channel (guest died?)' +
                                  self._tail() + '\n--- QEMU says ---\n' +
                                  self._qemu_log()[-2000:])
                self._buf += data
                quiet = time.monotonic()

    def wait_ready(self, timeout=None):
        if self.ready:
            return
        m = self._read_until(re.escape(READY), timeout or self.boot_timeout)
        self._buf = self._buf[m.end():]
        self.ready = True
        self.boot_time = time.monotonic() - self._t0

    def run(self, cmd, timeout=60, check=False):
        """Run a sh script in the guest; returns (rc, stdout+stderr).
        The guest kills it after timeout seconds (rc 137)."""
        self.wait_ready()
        self._seq += 1
        tmo = max(1, math.ceil(timeout))
        # The script as it is, after a line with its length in lines.
        script = cmd if cmd.endswith('\n') else cmd + '\n'
        try:
            self.ser.sendall(f'{self._seq} {tmo} {script.count(chr(10))}\n'
                             .encode() + script.encode())
        except OSError as e:
            raise VMError(f'command channel send failed ({e}): QEMU gone?' + self._tail())
        end = rb'\x1fEND %d (\d+)\n' % self._seq
        try:
            m = self._read_until(end, tmo + 30, nudge=True)
        except TimeoutError:
            # The guest kills the command at tmo, so a late answer means
            # the guest or the channel stalled (seen now and then under
            # TCG, with no kernel report). Say so and
            # wait longer rather than misread the next command's output.
            print(f'[vm] command {self._seq}: no answer after {tmo + 30}s, '
                  f'waiting up to {STALL_GRACE}s more; channel queues: '
                  f'{self._channel_state()}', file=sys.stderr)
            try:
                m = self._read_until(end, STALL_GRACE, nudge=True)
            except TimeoutError as e:
                raise ChannelStall(str(e)) from None
            print(f'[vm] command {self._seq}: answered late', file=sys.stderr)
        out = self._buf[:m.start()].decode('utf-8', 'replace')
        self._buf = self._buf[m.end():]
        rc = int(m.group(1))
        if self.debug:
            print(f'[vm] $ {cmd}\n{out}[vm] rc={rc}', file=sys.stderr)
        if check and rc:
            raise VMError(f'{cmd!r} failed rc={rc}:\n{out}')
        return rc, out

    def _channel_state(self):
        """QEMU's view of the command channel's virtqueues (port 1: queue 4
        host to guest, queue 5 guest to host), for a stall report."""
        res = []
        for q in (4, 5):
            try:
                r = self.qmp('x-query-virtio-queue-status', queue=q,
                             path='/machine/peripheral/vser0/virtio-backend')
                r = r.get('return', r)
                res.append({k: r.get(k) for k in (
                    'last-avail-idx', 'shadow-avail-idx', 'used-idx',
                    'signalled-used', 'signalled-used-valid', 'inuse')})
            except Exception as e:  # a report only: never fail on it
                res.append(repr(e))
        return res

    # -- QMP ---------------------------------------------------------------

    def _qmp_read(self):
        line = self._qmp_file.readline()
        if not line:
            raise VMError('QMP connection closed' + self._tail())
        return json.loads(line)

    def qmp(self, execute, **arguments):
        """Send one QMP command, return its response dict ('return' or
        'error'); events that arrive meanwhile go to self.events.
        Hyphenated names: qmp('x', **{'host-id': 0})."""
        msg = {'execute': execute}
        if arguments:
            msg['arguments'] = arguments
        self._qmp_file.write(json.dumps(msg).encode() + b'\n')
        self._qmp_file.flush()
        while True:
            r = self._qmp_read()
            if 'event' in r:
                self.events.append(r)
                if self.debug:
                    print(f'[vm] event {r}', file=sys.stderr)
                continue
            if self.debug:
                print(f'[vm] qmp {msg} -> {r}', file=sys.stderr)
            return r

    @staticmethod
    def _extents(extents):
        return [e if isinstance(e, dict) else {'offset': e[0], 'len': e[1]}
                for e in extents]

    def add_capacity(self, extents, region=0, tag=None, dev=0):
        """Offer extents [(offset, len)] (offset relative to the DC region
        base) as one group; returns the QMP response."""
        args = {'path': dcd_path(dev), 'host-id': 0,
                'selection-policy': 'prescriptive', 'region': region,
                'extents': self._extents(extents)}
        if tag is not None:
            args['tag'] = tag
        return self.qmp('cxl-add-dynamic-capacity', **args)

    def release_capacity(self, extents, region=0, tag=None, dev=0):
        """Ask the guest to release extents [(offset, len)]."""
        args = {'path': dcd_path(dev), 'host-id': 0,
                'removal-policy': 'prescriptive', 'region': region,
                'extents': self._extents(extents)}
        if tag is not None:
            args['tag'] = tag
        return self.qmp('cxl-release-dynamic-capacity', **args)


# -- CLI -------------------------------------------------------------------

def _size(s):
    """'128M', '1G', '0x800000' or bytes -> int."""
    mult = {'K': 1 << 10, 'M': 1 << 20, 'G': 1 << 30}.get(s[-1:].upper())
    return int(s[:-1], 0) * mult if mult else int(s, 0)


SHELL_HELP = """each line is a guest shell command, or:
  :add [rN] OFF LEN [OFF LEN...]      cxl-add-dynamic-capacity (sizes: 128M, 1G)
  :release [rN] OFF LEN [OFF LEN...]  cxl-release-dynamic-capacity
  :qmp COMMAND [JSON-ARGS]            any QMP command
  :console [N]                        last N (20) console lines
  :events                             QMP events so far"""


def _shell_line(vm, line):
    words = line.split()
    if not line.startswith(':'):
        rc, out = vm.run(line, timeout=600)
        sys.stdout.write(out + (f'[rc={rc}]\n' if rc else ''))
    elif words[0] in (':add', ':release'):
        region = 0
        if len(words) > 1 and words[1].startswith('r'):
            region = int(words.pop(1)[1:])
        nums = [_size(w) for w in words[1:]]
        ext = list(zip(nums[0::2], nums[1::2]))
        fn = vm.add_capacity if words[0] == ':add' else vm.release_capacity
        print(fn(ext, region=region))
    elif words[0] == ':qmp':
        parts = line.split(None, 2)
        args = json.loads(parts[2]) if len(parts) > 2 else {}
        print(json.dumps(vm.qmp(parts[1], **args), indent=1))
    elif words[0] == ':console':
        n = int(words[1]) if len(words) > 1 else 20
        print('\n'.join(vm.console().splitlines()[-n:]))
    elif words[0] == ':events':
        for e in vm.events:
            print(e)
    else:
        print(SHELL_HELP)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                 epilog=SHELL_HELP,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument('--kernel')
    ap.add_argument('--initrd')
    ap.add_argument('--mem', default='3G')
    ap.add_argument('--append', default='', help='extra kernel command line')
    ap.add_argument('--debug', action='store_true',
                    help='ignore_loglevel, gdb stub at WORKDIR/gdb.sock, '
                         'trace commands/QMP to stderr')
    ap.add_argument('--workdir', help='keep console.log etc. here')
    ap.add_argument('--timeout', type=float, default=300,
                    help='per command (run mode)')
    ap.add_argument('--mock', action='store_true',
                    help='no CXL hardware: load cxl_test and its mock devices')
    ap.add_argument('mode', choices=['run', 'shell'])
    ap.add_argument('cmds', nargs='*')
    a = ap.parse_args()

    vm = VM(workdir=a.workdir)
    rc = 0
    try:
        vm.start(a.kernel, a.initrd, mem=a.mem, debug=a.debug,
                 extra_append=a.append, mock=a.mock)
        vm.wait_ready()
        print(f'[vm] guest ready after {vm.boot_time:.1f}s', file=sys.stderr)
        if a.mode == 'run':
            for c in a.cmds:
                r, out = vm.run(c, timeout=a.timeout)
                print(f'$ {c}\n{out}' + (f'[rc={r}]\n' if r else ''), end='')
                rc = rc or (1 if r else 0)
        else:
            tty = sys.stdin.isatty()
            while True:
                if tty:
                    print('guest# ', end='', flush=True)
                line = sys.stdin.readline()
                if not line:
                    break
                try:
                    if line.strip():
                        _shell_line(vm, line.strip())
                except (ValueError, IndexError) as e:
                    print(f'[vm] bad line: {e}\n{SHELL_HELP}')
                    sys.stdout.flush()
    except (VMError, TimeoutError) as e:
        print(f'[vm] error: {e}', file=sys.stderr)
        rc = 2
    finally:
        vm.stop()
    return rc


if __name__ == '__main__':
    sys.exit(main())
