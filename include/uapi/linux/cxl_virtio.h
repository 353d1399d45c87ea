/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/* Copyright(c) 2026 The CXL DCD project authors. */
#ifndef _UAPI_LINUX_CXL_VIRTIO_H
#define _UAPI_LINUX_CXL_VIRTIO_H

#include <linux/ioctl.h>
#include <linux/types.h>

/**
 * DOC: cxl_region_virtio user API
 *
 * ``/dev/cxl/virtio_regionZ`` gives the Dynamic Capacity of CXL region Z to
 * one virtual machine monitor.  Capacity comes and goes in *groups*: the
 * extents of one tag, or one untagged extent.  Each group has an id that
 * stays the same as long as the region's driver stays bound, and its
 * *ranges*, given as offsets into the region (the file offset of mmap())
 * in the group's sequence order.
 *
 * One open file at a time: a second open() fails with ``EBUSY``.  A file
 * descriptor passed on (``SCM_RIGHTS``, fork()) is the same open file.
 *
 * read() returns whole &struct cxl_virtio_event records, as many as fit;
 * it fails with ``EINVAL`` when the next one does not fit at all.  It
 * blocks unless the file is non-blocking; poll() says ``EPOLLIN`` when an
 * event waits, and ``EPOLLHUP`` once the driver was unbound (read() then
 * fails with ``ENODEV``).  Events start at open(): a client lists the
 * groups with %CXL_VIRTIO_LIST_GROUPS after it opens, and may then read an
 * ``ADD`` event for a group it listed already.
 *
 * mmap() maps ranges of active groups, shared, at their region offsets.
 * Mappings use 2 MiB and 1 GiB page table entries where the physical
 * address and the virtual address allow it.
 *
 * Giving memory back, asked by the device: the client gets a
 * %CXL_VIRTIO_EVENT_RELEASE event, stops using the group, and answers with
 * %CXL_VIRTIO_ACK_RELEASE.  Every mapping of the group, in every process,
 * is then zapped, and only then does the device get it back.  A later
 * access faults with ``SIGBUS``.  Closing the file (its last reference,
 * mappings included) acknowledges every release asked for.
 *
 * Taken by force: the group's mappings are zapped at once and a
 * %CXL_VIRTIO_EVENT_FORCED event says so.
 *
 * Given back by the client: %CXL_VIRTIO_GIVE_BACK zaps the group's
 * mappings and returns the group to the device.
 *
 * Every ioctl argument starts with ``argsz``, the size the caller knows;
 * later versions add fields at the end.  Bytes the kernel does not know
 * must be zero.
 */

#define CXL_VIRTIO_API_VERSION 1

/**
 * enum cxl_virtio_event_type - what happened to a group
 * @CXL_VIRTIO_EVENT_ADD: the group is active: its ranges may be mapped
 * @CXL_VIRTIO_EVENT_RELEASE: the device asks for the group back; answer
 *	with %CXL_VIRTIO_ACK_RELEASE once it is no longer used
 * @CXL_VIRTIO_EVENT_FORCED: the device took the group back: its mappings
 *	are gone already
 */
enum cxl_virtio_event_type {
	CXL_VIRTIO_EVENT_ADD = 1,
	CXL_VIRTIO_EVENT_RELEASE = 2,
	CXL_VIRTIO_EVENT_FORCED = 3,
};

/**
 * struct cxl_virtio_range - one extent of a group
 * @offset: offset in the region, and mmap() file offset
 * @length: bytes
 */
struct cxl_virtio_range {
	__u64 offset;
	__u64 length;
};

/**
 * struct cxl_virtio_event - one event, as read() returns it
 * @size: bytes of this record, @ranges included: the next one starts there
 * @type: &enum cxl_virtio_event_type
 * @nr_ranges: entries of @ranges
 * @group: the group's id
 * @tag: the group's tag (a UUID), all zeros for an untagged extent
 * @flags: zero
 * @reserved: zero
 * @ranges: the group's extents in sequence order
 */
struct cxl_virtio_event {
	__u32 size;
	__u16 type;
	__u16 nr_ranges;
	__u64 group;
	__u8 tag[16];
	__u32 flags;
	__u32 reserved;
	struct cxl_virtio_range ranges[];
};

/**
 * struct cxl_virtio_info - the region, for %CXL_VIRTIO_GET_INFO
 * @argsz: in: bytes of this structure the caller knows
 * @version: out: %CXL_VIRTIO_API_VERSION
 * @size: out: the region's size: offsets lie below it
 * @align: out: every range's offset and length are multiples of it
 * @nr_groups: out: active groups now
 * @flags: out: zero
 */
struct cxl_virtio_info {
	__u32 argsz;
	__u32 version;
	__u64 size;
	__u64 align;
	__u32 nr_groups;
	__u32 flags;
};

/**
 * struct cxl_virtio_list - the active groups, for %CXL_VIRTIO_LIST_GROUPS
 * @argsz: in: bytes of this structure the caller knows
 * @flags: in: zero
 * @buf: in: user address of a buffer for the records
 * @buf_size: in: bytes at @buf; out: bytes the list takes
 * @nr_groups: out: records written
 * @reserved: zero
 *
 * One &struct cxl_virtio_event per group, oldest first: type
 * %CXL_VIRTIO_EVENT_ADD, or %CXL_VIRTIO_EVENT_RELEASE while the device's
 * request to release it waits for %CXL_VIRTIO_ACK_RELEASE.  When the list
 * does not fit, nothing is written, @buf_size says what it needs and the
 * call fails with ``ENOSPC``.
 */
struct cxl_virtio_list {
	__u32 argsz;
	__u32 flags;
	__u64 buf;
	__u64 buf_size;
	__u32 nr_groups;
	__u32 reserved;
};

/**
 * struct cxl_virtio_group_op - one group, for %CXL_VIRTIO_ACK_RELEASE and
 *	%CXL_VIRTIO_GIVE_BACK
 * @argsz: in: bytes of this structure the caller knows
 * @flags: in: zero
 * @group: in: the group's id
 */
struct cxl_virtio_group_op {
	__u32 argsz;
	__u32 flags;
	__u64 group;
};

/*
 * The numbers carry no size: @argsz does, so that a structure can grow
 * without a new number.
 */
#define CXL_VIRTIO_IOC 0xCE
#define CXL_VIRTIO_GET_INFO _IO(CXL_VIRTIO_IOC, 0x20)
#define CXL_VIRTIO_LIST_GROUPS _IO(CXL_VIRTIO_IOC, 0x21)
/* ENOENT: no such group; EINVAL: no release was asked for */
#define CXL_VIRTIO_ACK_RELEASE _IO(CXL_VIRTIO_IOC, 0x22)
/* ENOENT: no such group; EBUSY: the device asked for it: acknowledge */
#define CXL_VIRTIO_GIVE_BACK _IO(CXL_VIRTIO_IOC, 0x23)

#endif /* _UAPI_LINUX_CXL_VIRTIO_H */
