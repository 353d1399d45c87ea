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
KERNEL_IMAGE := $(OUT)/bzImage-debug
else
FLAVOUR := test
KERNEL_IMAGE := $(OUT)/bzImage
endif

.PHONY: all deps kernel kernel-debug initramfs test demo check patches clean

all: kernel

deps:
	@scripts/deps.sh

# The test (or, with DEBUG=1, debug) kernel plus the guest initramfs.
kernel: deps initramfs
	@scripts/kernel.sh build $(FLAVOUR)

kernel-debug:
	@$(MAKE) --no-print-directory kernel DEBUG=1

initramfs: deps
	@scripts/build-guest.sh $(BUILD)/guest >/dev/null
	@scripts/mkinitramfs.sh $(OUT)/initramfs.cpio.gz $(BUILD)/guest/* >/dev/null

# KUnit and the end-to-end suites, on the test kernel and on the debug
# kernel; the last line is 'N passed, N failed'.
test: deps
	@scripts/test.sh

demo: kernel
	@python3 scripts/demo.py --kernel $(KERNEL_IMAGE)

check: deps
	@scripts/check.sh

patches: deps
	@scripts/export-patches.sh

clean:
	rm -rf $(OUT) $(BUILD)/obj $(BUILD)/obj-debug $(BUILD)/guest
