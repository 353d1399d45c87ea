#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# Make the test guest look like the host ndctl's CXL tests expect (run
# once, in a guest booted with cxl_modules=none; installed as
# /opt/ndctl/env.sh by scripts/ndctl.sh):
#
# - kmod's modprobe, depmod, rmmod, insmod, lsmod and modinfo, and
#   coreutils' mktemp in place of busybox's applets, bash as /bin/bash, and
#   /dev/fd for bash's process substitution;
# - a depmod'ed /lib/modules/$(uname -r): tools/testing/cxl's cxl_test set
#   in extra/, and the kernel's own modules it does not replace (dax_cxl,
#   cxl_pci, ...) in kernel/, as `make -C tools/testing/cxl install` and a
#   distribution kernel leave them;
# - a uevent helper that loads drivers by MODALIAS, as udev does (the test
#   kernel has no networking, so no netlink and no udevd), `udevadm settle`
#   that waits for it, and a modprobe.d rule that loads cxl_test, loads
#   the drivers of its devices and settles;
# - `journalctl -k` over the kernel log since the current test began
#   (the runner writes "ndctl-test: begin NAME" to /dev/kmsg before each).
set -eu
krel=$(uname -r)
for t in modprobe depmod rmmod insmod lsmod modinfo; do
	ln -sf /usr/bin/kmod /sbin/$t
done
ln -sf /usr/bin/bash /bin/bash
ln -sf /usr/bin/mktemp /bin/mktemp	# busybox's wants six X's, ndctl uses four
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd

mods=/lib/modules/$krel
mkdir -p "$mods/extra" "$mods/kernel"
cp /lib/modules/mock/*.ko "$mods/extra/"
for m in /lib/modules/real/*.ko; do
	[ -e "$mods/extra/${m##*/}" ] || cp "$m" "$mods/kernel/"
done
# By path: busybox sh runs its own applet for a bare name.
/sbin/depmod -a

# udev's contract, kept small: every uevent numbered after this point goes
# to /bin/uevent-helper (tests/guest/uevent-helper.c), which loads the
# driver for a new device's MODALIAS and then marks the event's number
# done; settle waits until every number the kernel has used is done.
mkdir -p /run/uevent
cat /sys/kernel/uevent_seqnum >/run/uevent/settled
echo /bin/uevent-helper >/proc/sys/kernel/hotplug

cat >/usr/bin/udevadm <<'EOF2'
#!/bin/sh
# udevadm settle: wait until the helper has finished every uevent so far.
[ "${1:-}" = settle ] || { echo "udevadm: only 'settle' here" >&2; exit 1; }
seq=$(cat /run/uevent/settled)
end=$(($(date +%s) + 120))
while [ "$(date +%s)" -lt $end ]; do
	last=$(cat /sys/kernel/uevent_seqnum)
	while [ "$seq" -lt "$last" ] && [ -e /run/uevent/done.$((seq + 1)) ]; do
		seq=$((seq + 1))
		rm -f /run/uevent/done.$seq
	done
	echo "$seq" >/run/uevent/settled
	[ "$seq" = "$last" ] && [ "$last" = "$(cat /sys/kernel/uevent_seqnum)" ] && exit 0
	sleep 0.1
done
echo "udevadm: uevent $((seq + 1)) of $last still not handled after 120 s" >&2
exit 1
EOF2
chmod 755 /usr/bin/udevadm

# Loading cxl_test makes some 900 uevents; one helper process each costs a
# minute on the debug kernel under TCG.  So modprobe of cxl_test loads it
# with the helper off, then does what `udevadm trigger` does for devices
# that exist already (their drivers by MODALIAS, each alias once), with
# the helper back on for anything that appears later, and settles: it
# returns once the drivers of cxl_test's devices are in, as it does where
# udev keeps up (cxl-topology.sh looks for the auto-assembled region right
# after modprobe).
cat >/usr/sbin/cxl-test-load <<'EOF2'
#!/bin/sh
trigger() {	# only bus devices have drivers
	cat /sys/bus/*/devices/*/modalias 2>/dev/null | sort -u |
		xargs -r /sbin/modprobe -a -q -b
}
echo >/proc/sys/kernel/hotplug
/sbin/modprobe --ignore-install cxl_test "$@" || exit
# Until the drivers' own devices bring no new driver
n=0
while [ $n -lt 5 ] && [ "$(cat /proc/modules)" != "${mods:-}" ]; do
	mods=$(cat /proc/modules)
	trigger
	n=$((n + 1))
done
echo /bin/uevent-helper >/proc/sys/kernel/hotplug
cat /sys/kernel/uevent_seqnum >/run/uevent/settled
trigger		# what appeared while the helper was off
/usr/bin/udevadm settle
EOF2
chmod 755 /usr/sbin/cxl-test-load
mkdir -p /etc/modprobe.d
echo 'install cxl_test /usr/sbin/cxl-test-load $CMDLINE_OPTS' >/etc/modprobe.d/cxl_test.conf

cat >/usr/bin/journalctl <<'EOF'
#!/bin/sh
# journalctl -k [-r] [--since ...]: the kernel log since the current test
# began (its "ndctl-test: begin" line), newest first with -r.  That is at
# least as much as "--since -${SECONDS}s" asks for in ndctl's check_dmesg.
rev=
for a in "$@"; do
	case $a in
	-r|--reverse) rev=1 ;;
	-k|--dmesg|--since|--since=*|-*s) ;;
	*) echo "journalctl: unsupported argument '$a'" >&2; exit 1 ;;
	esac
done
dmesg | awk '/ndctl-test: begin / { n = 0 } { l[n++] = $0 }
	END { for (i = 0; i < n; i++) print l[i] }' |
	if [ -n "$rev" ]; then tac; else cat; fi
EOF
chmod 755 /usr/bin/journalctl
echo "ndctl-env: ready, $(ls "$mods"/extra | wc -l) cxl_test modules, $(ls "$mods"/kernel | wc -l) others"
