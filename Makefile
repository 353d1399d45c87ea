# SPDX-License-Identifier: GPL-2.0-only
#
# CXL Dynamic Capacity Device support for Linux 7.3: build, demo, test.
# Every target installs what it needs (scripts/deps.sh) and builds
# incrementally in build/; results land in out/.

SHELL := /bin/bash
export BUILD ?= $(CURDIR)/build
export OUT ?= $(CURDIR)/out

ifeq ($(DEBUG),1)
FLAVOUR := debug
SFX := -debug
else
FLAVOUR := test
SFX :=
endif
KERNEL_IMAGE := $(OUT)/bzImage$(SFX)
INITRD := $(OUT)/initramfs$(SFX).cpio.gz

.PHONY: all deps kernel kernel-debug test demo bench stress check patches clean

all: kernel

deps:
	@scripts/deps.sh

# The test (or, with DEBUG=1, debug) kernel plus the guest initramfs with
# the test programs and the test modules built against that kernel, and
# upstream's user space: daxctl for the benchmark, ndctl's CXL test suite
# (scripts/ndctl.sh) with what its scripts run.
GUEST_TOOLS := daxctl bash jq kmod uuidgen keyctl mktemp
kernel: deps
	@scripts/kernel.sh build $(FLAVOUR)
	@scripts/build-guest.sh $(BUILD)/guest >/dev/null
	@scripts/ndctl.sh >/dev/null
	@MODSETS=$(OUT)/modules$(SFX) KBUILD_OBJ=$(BUILD)/obj$(SFX) \
		GUEST_TOOLS="$(GUEST_TOOLS)" GUEST_TREES=$(BUILD)/ndctl-stage \
		scripts/mkinitramfs.sh $(INITRD) \
		$(BUILD)/guest/* $(OUT)/modules$(SFX)/*.ko >/dev/null
	@scripts/mkinitramfs-qemu.sh $(OUT)/initramfs-qemu.cpio.gz >/dev/null

kernel-debug:
	@$(MAKE) --no-print-directory kernel DEBUG=1

# KUnit and the end-to-end suites, on the test kernel and on the debug
# kernel; the last line is 'N passed, N failed'.
test: deps
	@scripts/test.sh

demo: kernel
	@python3 scripts/demo.py --kernel $(KERNEL_IMAGE) --initrd $(INITRD)

# Benchmarks, one VM run each, printing ratios: against cxl_test mock
# devices, the extent library (cost per extent at 64 and 4096 live extents,
# memory per extent) and cxl_region_dax's claim (groups of 8 and of 64
# extents, 8 among 4096 live); the library at scale (cost per extent at 64
# and 65,536 live extents in three regions, memory per extent, a 512-record
# chain, recovery of 4,096 and 65,536 extents at bind); against QEMU's DCD,
# hot-plug timing of cxl_region_sysram, stage by stage, against dax+kmem
# and the kernel's own add+online and offline+remove, for a static RAM
# region and for the same DC offer through cxl_region_dax;
# cxl_region_virtio's event rate (mock) and the page faults and time to
# touch 1 GiB (QEMU).
bench: kernel
	@python3 scripts/bench_extent_lib.py --kernel $(KERNEL_IMAGE) --initrd $(INITRD)
	@python3 scripts/bench_scale.py --kernel $(KERNEL_IMAGE) --initrd $(INITRD)
	@python3 scripts/bench.py --kernel $(KERNEL_IMAGE) --initrd $(INITRD)
	@python3 scripts/bench_virtio.py --kernel $(KERNEL_IMAGE) --initrd $(INITRD)

# The randomized campaign of tests/dc_stress.py on the debug kernel:
# 10,000 valid and malformed DC records over two mock DCDs (regions under
# cxl_region_sysram and cxl_region_dax), host and device checked after
# every batch; prints the seed (SEED=N replays a run), the records per
# class, what each device saw, the wall time, and any kernel report.
stress: kernel-debug
	@python3 scripts/stress.py $(if $(SEED),--seed $(SEED)) \
		$(if $(RECORDS),--records $(RECORDS))

check: deps
	@scripts/check.sh

patches: deps
	@scripts/export-patches.sh

clean:
	rm -rf $(OUT) $(BUILD)/obj $(BUILD)/obj-debug $(BUILD)/guest
