// SPDX-License-Identifier: GPL-2.0-only
/* Copyright(c) 2026 The CXL DCD project authors. */
#include <linux/cdev.h>
#include <linux/device.h>
#include <linux/fs.h>
#include <linux/io.h>
#include <linux/ioport.h>
#include <linux/maple_tree.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/sizes.h>
#include <linux/uaccess.h>
#include <uapi/linux/cxl_virtio.h>
#include <cxl/dc_lib.h>
#include "cxl.h"

/**
 * DOC: cxl_region_virtio - Dynamic Capacity for one virtual machine monitor
 *
 * A region driver of the CXL region family, picked per region with
 * ``regionZ/driver_override``, for hosts that pass dynamic capacity to
 * their guests.  The memory becomes neither System RAM nor a device any
 * process may map: one VMM opens ``/dev/cxl/virtio_regionZ`` (the child
 * device ``virtio_regionZ`` of the region), learns of groups through
 * events, maps their ranges as guest memory, and takes part in giving
 * them back.  The user API is ``include/uapi/linux/cxl_virtio.h``.
 *
 * It is the extent library's policy for the region.  Every accepted group
 * (the extents of one tag, one guest's allocation, or one untagged extent)
 * becomes *active*: its ranges can be mapped, and the open file gets an
 * ``ADD`` event.  Mappings are raw page frames (``VM_PFNMAP``, no struct
 * page, no page cache), inserted at fault time as 1 GiB, 2 MiB or 4 KiB
 * entries, the largest the addresses allow.  Each active extent is mapped
 * write-back for the kernel too (memremap()), which is what makes the
 * user mappings cacheable where the architecture tracks memory types.
 * The region's whole physical range is claimed exclusively, so that
 * ``/dev/mem`` cannot reach it.
 *
 * A release the device asks for becomes a ``RELEASE`` event, and the group
 * stays mapped until the VMM acknowledges it; then every mapping of the
 * group is zapped (the file's mapping covers every process the file was
 * passed to) and the library confirms the release.  With no open file
 * there is no mapping and the release is confirmed at once; closing the
 * file confirms those still waiting.  Active groups stay active across a
 * close: a VMM that restarts lists them and maps them again.  A forced
 * release zaps the group's mappings at once, so that the next access
 * faults with SIGBUS, and sends a ``FORCED`` event.  The VMM gives a group
 * back on its own with an ioctl: it is zapped and returned through
 * cxl_dc_give_back().
 *
 * Unbinding zaps every mapping and ends the event stream (poll says
 * ``EPOLLHUP``); the groups stay accepted on the device for the next
 * policy.  The open file outlives the driver and fails what it is asked.
 *
 * Lock order: the mm's locks (a fault holds the mmap lock or the VMA's
 * lock), the library's per-region policy_lock (around ``activate``,
 * ``release`` and ``force_release``), &virtio_region.lock, then the
 * mapping's i_mmap lock (unmap_mapping_range()) or the library's device
 * lock (cxl_dc_give_back()).  Nothing copies to or from user memory under
 * &virtio_region.lock: a buffer could be a mapping of this very file.
 * ``validate`` is not used.
 */

#define VIRTIO_DRIVER "cxl_region_virtio"
/* PMD mappings at least; the library adds the device block size. */
#define VIRTIO_ALIGN SZ_2M

static dev_t virtio_devt;
static DEFINE_IDA(virtio_minor_ida);

/**
 * struct virtio_region - the policy's state for one region
 * @dev: ``virtio_regionZ``, the character device's device; its reference
 *	count keeps this structure
 * @cdev: ``/dev/cxl/virtio_regionZ``
 * @hpa: the region's physical range
 * @lock: protects the fields below and every &struct virtio_group
 * @extents: region offset -> &struct virtio_extent, for the ranges of
 *	active groups (what may be mapped)
 * @groups: the groups the policy holds, oldest first
 * @next_id: id of the next group
 * @opener: the open file, NULL when none
 * @events: events the open file has not read, oldest first
 * @wq: readers and pollers wait here for @events or @dying
 * @dying: the driver is unbinding or gone: nothing is mapped any more
 */
struct virtio_region {
	struct device dev;
	struct cdev cdev;
	struct range hpa;
	struct mutex lock; /* see above and the DOC block's lock order */
	struct maple_tree extents;
	struct list_head groups;
	u64 next_id;
	struct file *opener;
	struct list_head events;
	wait_queue_head_t wq;
	bool dying;
};

/**
 * struct virtio_extent - one range of an active group
 * @offset: region offset
 * @len: bytes
 * @phys: physical address
 * @wb: the kernel's write-back mapping (memremap())
 */
struct virtio_extent {
	u64 offset;
	u64 len;
	phys_addr_t phys;
	void *wb;
};

/* An event, queued to the open file or kept ready by its group. */
struct virtio_event {
	struct list_head node;
	struct cxl_virtio_event ev;	/* ranges follow */
};

enum {
	VIRTIO_EV_ADD,
	VIRTIO_EV_RELEASE,
	VIRTIO_EV_FORCED,
	VIRTIO_EV_NR,
};

static const u16 virtio_ev_type[VIRTIO_EV_NR] = {
	[VIRTIO_EV_ADD] = CXL_VIRTIO_EVENT_ADD,
	[VIRTIO_EV_RELEASE] = CXL_VIRTIO_EVENT_RELEASE,
	[VIRTIO_EV_FORCED] = CXL_VIRTIO_EVENT_FORCED,
};

/**
 * struct virtio_group - what the policy keeps per group
 * @node: on &virtio_region.groups
 * @group: the library's group (valid until this policy answers it)
 * @id: what the VMM calls it
 * @mapped: the ranges are in &virtio_region.extents
 * @asked: the device wants it back: answered at the VMM's acknowledgment
 * @ev: each event this group may send, allocated when it became active,
 *	so that sending one never fails; NULL once queued (the queue owns it)
 * @nr: number of @ext
 * @ext: the extents in sequence order
 */
struct virtio_group {
	struct list_head node;
	struct cxl_dc_group *group;
	u64 id;
	bool mapped;
	bool asked;
	struct virtio_event *ev[VIRTIO_EV_NR];
	int nr;
	struct virtio_extent ext[] __counted_by(nr);
};

static struct virtio_region *to_virtio_region(struct device *dev)
{
	return container_of(dev, struct virtio_region, dev);
}

static size_t virtio_event_size(int nr)
{
	return struct_size_t(struct cxl_virtio_event, ranges, nr);
}

static void virtio_event_fill(struct cxl_virtio_event *ev,
			      const struct virtio_group *vg, int type)
{
	int i;

	ev->size = virtio_event_size(vg->nr);
	ev->type = type;
	ev->nr_ranges = vg->nr;
	ev->group = vg->id;
	export_uuid(ev->tag, cxl_dc_group_tag(vg->group));
	ev->flags = 0;
	ev->reserved = 0;
	for (i = 0; i < vg->nr; i++) {
		ev->ranges[i].offset = vg->ext[i].offset;
		ev->ranges[i].length = vg->ext[i].len;
	}
}

/* Hand @vg's event @which (VIRTIO_EV_*) to the open file, if any. */
static void virtio_send(struct virtio_region *vr, struct virtio_group *vg,
			int which)
{
	struct virtio_event *e = vg->ev[which];

	lockdep_assert_held(&vr->lock);
	if (!vr->opener || !e || vr->dying)
		return;
	virtio_event_fill(&e->ev, vg, virtio_ev_type[which]);
	list_add_tail(&e->node, &vr->events);
	vg->ev[which] = NULL;
	wake_up_interruptible(&vr->wq);
}

static void virtio_drop_events(struct virtio_region *vr)
{
	struct virtio_event *e, *next;

	list_for_each_entry_safe(e, next, &vr->events, node) {
		list_del(&e->node);
		kfree(e);
	}
}

/* --- making a group mappable, and taking it out of reach --------------------- */

static int virtio_map(struct virtio_region *vr, struct virtio_group *vg)
{
	int i, rc;

	lockdep_assert_held(&vr->lock);
	for (i = 0; i < vg->nr; i++) {
		struct virtio_extent *ext = &vg->ext[i];

		rc = mtree_store_range(&vr->extents, ext->offset,
				       ext->offset + ext->len - 1, ext,
				       GFP_KERNEL);
		if (rc) {
			while (i--)
				mtree_erase(&vr->extents, vg->ext[i].offset);
			return rc;
		}
	}
	vg->mapped = true;
	return 0;
}

/*
 * No fault finds @vg's ranges any more, and no process maps them: faults
 * look the range up under &virtio_region.lock, so what they inserted
 * before is zapped here, and they find nothing afterwards.
 */
static void virtio_unmap(struct virtio_region *vr, struct virtio_group *vg)
{
	int i;

	lockdep_assert_held(&vr->lock);
	if (!vg->mapped)
		return;
	vg->mapped = false;
	for (i = 0; i < vg->nr; i++) {
		mtree_erase(&vr->extents, vg->ext[i].offset);
		/* With no open file nothing maps the region. */
		if (vr->opener)
			unmap_mapping_range(vr->opener->f_mapping,
					    vg->ext[i].offset, vg->ext[i].len,
					    1);
	}
}

static void virtio_group_free(struct virtio_group *vg)
{
	int i;

	for (i = 0; i < vg->nr; i++)
		if (vg->ext[i].wb)
			memunmap(vg->ext[i].wb);
	for (i = 0; i < VIRTIO_EV_NR; i++)
		kfree(vg->ev[i]);
	kfree(vg);
}

/* The policy answers the group: unmapped, and no longer the region's. */
static void virtio_forget(struct virtio_region *vr, struct virtio_group *vg)
{
	virtio_unmap(vr, vg);
	list_del(&vg->node);
	cxl_dc_group_set_data(vg->group, NULL);
}

/* Confirm the releases of @done, groups forgotten and unmapped. */
static void virtio_answer(struct list_head *done)
{
	struct virtio_group *vg, *next;

	list_for_each_entry_safe(vg, next, done, node) {
		struct cxl_dc_group *group = vg->group;

		virtio_group_free(vg);
		cxl_dc_release_done(group);
	}
}

static struct virtio_group *virtio_find(struct virtio_region *vr, u64 id)
{
	struct virtio_group *vg;

	list_for_each_entry(vg, &vr->groups, node)
		if (vg->id == id)
			return vg;
	return NULL;
}

/* --- the extent library's policy ---------------------------------------------- */

static struct virtio_group *virtio_group_alloc(struct cxl_dc_group *group)
{
	int i, nr = cxl_dc_group_nr_extents(group);
	struct cxl_dc_extent_info info;
	struct virtio_group *vg;

	vg = kzalloc_flex(*vg, ext, nr);
	if (!vg)
		return NULL;
	vg->nr = nr;
	vg->group = group;
	for (i = 0; i < VIRTIO_EV_NR; i++) {
		vg->ev[i] = kzalloc(sizeof(*vg->ev[i]) + nr *
				    sizeof(struct cxl_virtio_range), GFP_KERNEL);
		if (!vg->ev[i])
			goto err;
	}
	for (i = 0; i < nr; i++) {
		struct virtio_extent *ext = &vg->ext[i];

		cxl_dc_group_extent(group, i, &info);
		ext->offset = info.offset;
		ext->len = range_len(&info.hpa);
		ext->phys = info.hpa.start;
		ext->wb = memremap(ext->phys, ext->len, MEMREMAP_WB);
		if (!ext->wb)
			goto err;
	}
	return vg;
err:
	virtio_group_free(vg);
	return NULL;
}

static int virtio_activate(struct cxl_region *cxlr, struct cxl_dc_group *group)
{
	struct virtio_region *vr = cxl_dc_policy_data(cxlr);
	struct virtio_group *vg;
	int rc;

	vg = virtio_group_alloc(group);
	if (!vg)
		return -ENOMEM;

	guard(mutex)(&vr->lock);
	/* Unbinding: kept by the policy, never mapped, accepted for the next. */
	if (!vr->dying) {
		rc = virtio_map(vr, vg);
		if (rc) {
			virtio_group_free(vg);
			return rc;
		}
	}
	vg->id = vr->next_id++;
	list_add_tail(&vg->node, &vr->groups);
	cxl_dc_group_set_data(group, vg);
	virtio_send(vr, vg, VIRTIO_EV_ADD);
	return 0;
}

static int virtio_release(struct cxl_region *cxlr, struct cxl_dc_group *group)
{
	struct virtio_region *vr = cxl_dc_policy_data(cxlr);
	struct virtio_group *vg;

	scoped_guard(mutex, &vr->lock) {
		vg = cxl_dc_group_data(group);
		if (WARN_ON_ONCE(!vg))
			return 0;
		if (vr->opener && vg->mapped) {
			/* Answered at the VMM's acknowledgment, or its close. */
			vg->asked = true;
			virtio_send(vr, vg, VIRTIO_EV_RELEASE);
			return -EBUSY;
		}
		virtio_forget(vr, vg);
	}
	virtio_group_free(vg);
	return 0;
}

static int virtio_force_release(struct cxl_region *cxlr,
				struct cxl_dc_group *group)
{
	struct virtio_region *vr = cxl_dc_policy_data(cxlr);
	struct virtio_group *vg;
	bool asked;

	scoped_guard(mutex, &vr->lock) {
		vg = cxl_dc_group_data(group);
		if (!vg)
			return 0;	/* answered already, and unmapped */
		if (vg->mapped)
			dev_crit(&cxlr->dev,
				 "group %llu taken back by force: unmapping it\n",
				 vg->id);
		virtio_unmap(vr, vg);
		virtio_send(vr, vg, VIRTIO_EV_FORCED);
		asked = vg->asked;
		virtio_forget(vr, vg);
	}
	virtio_group_free(vg);
	/* A release asked for earlier is still owed: answer it now. */
	if (asked) {
		cxl_dc_release_done(group);
		return -EBUSY;
	}
	return 0;
}

static const struct cxl_dc_policy_ops virtio_ops = {
	.activate = virtio_activate,
	.release = virtio_release,
	.force_release = virtio_force_release,
};

static const struct cxl_dc_policy virtio_policy = {
	.name = VIRTIO_DRIVER,
	/* A tag set is one allocation for one guest. */
	.tag_mode = CXL_DC_TAG_TAGGED,
	.granularity = VIRTIO_ALIGN,
	.ops = &virtio_ops,
};

/* --- mappings ------------------------------------------------------------------- */

static vm_fault_t virtio_huge_fault(struct vm_fault *vmf, unsigned int order)
{
	struct vm_area_struct *vma = vmf->vma;
	struct virtio_region *vr = vma->vm_file->private_data;
	unsigned long size = PAGE_SIZE << order;
	unsigned long addr = ALIGN_DOWN(vmf->address, size);
	bool write = vmf->flags & FAULT_FLAG_WRITE;
	struct virtio_extent *ext;
	unsigned long pfn;
	u64 off;

	if (addr < vma->vm_start || addr + size > vma->vm_end)
		return VM_FAULT_FALLBACK;
	off = ((u64)vma->vm_pgoff << PAGE_SHIFT) + (addr - vma->vm_start);

	guard(mutex)(&vr->lock);
	ext = mtree_load(&vr->extents, off);
	if (!ext)
		return VM_FAULT_SIGBUS;
	if (off + size > ext->offset + ext->len ||
	    !IS_ALIGNED(ext->phys + (off - ext->offset), size))
		return order ? VM_FAULT_FALLBACK : VM_FAULT_SIGBUS;
	pfn = PHYS_PFN(ext->phys + (off - ext->offset));

	switch (order) {
	case 0:
		return vmf_insert_pfn(vma, addr, pfn);
#ifdef CONFIG_ARCH_SUPPORTS_PMD_PFNMAP
	case PMD_ORDER:
		return vmf_insert_pfn_pmd(vmf, pfn, write);
#endif
#ifdef CONFIG_ARCH_SUPPORTS_PUD_PFNMAP
	case PUD_ORDER:
		return vmf_insert_pfn_pud(vmf, pfn, write);
#endif
	default:
		return VM_FAULT_FALLBACK;
	}
}

static vm_fault_t virtio_fault(struct vm_fault *vmf)
{
	return virtio_huge_fault(vmf, 0);
}

static const struct vm_operations_struct virtio_vm_ops = {
	.fault = virtio_fault,
	.huge_fault = virtio_huge_fault,
};

/* Every page of [@off, @off + @len) lies in an active range. */
static bool virtio_all_mapped(struct virtio_region *vr, u64 off, u64 len)
{
	struct virtio_extent *ext;
	u64 end = off + len;

	while (off < end) {
		ext = mtree_load(&vr->extents, off);
		if (!ext)
			return false;
		off = ext->offset + ext->len;
	}
	return true;
}

static int virtio_mmap(struct file *filp, struct vm_area_struct *vma)
{
	struct virtio_region *vr = filp->private_data;
	u64 off = (u64)vma->vm_pgoff << PAGE_SHIFT;
	u64 len = vma->vm_end - vma->vm_start;

	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	if (off >= range_len(&vr->hpa) || len > range_len(&vr->hpa) - off)
		return -EINVAL;

	guard(mutex)(&vr->lock);
	if (vr->dying)
		return -ENODEV;
	if (!virtio_all_mapped(vr, off, len))
		return -ENXIO;
	vm_flags_set(vma, VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP);
	vma->vm_ops = &virtio_vm_ops;
	return 0;
}

/*
 * Virtual addresses congruent to the physical ones modulo the largest
 * page the length allows, so that faults can map 1 GiB or 2 MiB at once.
 */
static unsigned long virtio_get_unmapped_area(struct file *filp,
					      unsigned long addr,
					      unsigned long len,
					      unsigned long pgoff,
					      unsigned long flags)
{
	struct virtio_region *vr = filp->private_data;
	unsigned long align, padded, found;
	phys_addr_t phys;

	if (addr || len < PMD_SIZE)
		goto plain;
	align = len >= PUD_SIZE ? PUD_SIZE : PMD_SIZE;
	padded = len + align;
	if (padded < len)
		goto plain;
	found = mm_get_unmapped_area(filp, 0, padded, pgoff, flags);
	if (IS_ERR_VALUE(found))
		goto plain;
	phys = vr->hpa.start + ((phys_addr_t)pgoff << PAGE_SHIFT);
	return found + ((phys - found) & (align - 1));
plain:
	return mm_get_unmapped_area(filp, addr, len, pgoff, flags);
}

/* --- the character device ------------------------------------------------------ */

static int virtio_open(struct inode *inode, struct file *filp)
{
	struct virtio_region *vr = container_of(inode->i_cdev,
						struct virtio_region, cdev);

	guard(mutex)(&vr->lock);
	if (vr->dying)
		return -ENODEV;
	if (vr->opener)
		return -EBUSY;
	/* Held until release: the file outlives an unbind. */
	get_device(&vr->dev);
	vr->opener = filp;
	filp->private_data = vr;
	return 0;
}

/*
 * The last reference to the open file is gone, mappings included: the
 * releases the device asked for are confirmed now.
 */
static int virtio_close(struct inode *inode, struct file *filp)
{
	struct virtio_region *vr = filp->private_data;
	struct virtio_group *vg, *next;
	LIST_HEAD(done);

	scoped_guard(mutex, &vr->lock) {
		vr->opener = NULL;
		virtio_drop_events(vr);
		list_for_each_entry_safe(vg, next, &vr->groups, node) {
			if (!vg->asked)
				continue;
			virtio_forget(vr, vg);
			list_add_tail(&vg->node, &done);
		}
	}
	virtio_answer(&done);
	put_device(&vr->dev);
	return 0;
}

/*
 * The file's size is the region's: a VMM that asks (QEMU's
 * memory-backend-file does) checks its offset and size against it.
 * read() takes no position.
 */
static loff_t virtio_llseek(struct file *filp, loff_t offset, int whence)
{
	struct virtio_region *vr = filp->private_data;

	return fixed_size_llseek(filp, offset, whence, range_len(&vr->hpa));
}

/* The oldest event if it fits in @room, off the queue; or why not. */
static struct virtio_event *virtio_next_event(struct virtio_region *vr,
					      size_t room, int *err)
{
	struct virtio_event *e;

	guard(mutex)(&vr->lock);
	e = list_first_entry_or_null(&vr->events, struct virtio_event, node);
	if (!e) {
		*err = vr->dying ? -ENODEV : -EAGAIN;
		return NULL;
	}
	if (e->ev.size > room) {
		*err = -EINVAL;
		return NULL;
	}
	list_del(&e->node);
	return e;
}

static bool virtio_readable(struct virtio_region *vr)
{
	guard(mutex)(&vr->lock);
	return !list_empty(&vr->events) || vr->dying;
}

static ssize_t virtio_read(struct file *filp, char __user *buf, size_t count,
			   loff_t *ppos)
{
	struct virtio_region *vr = filp->private_data;
	struct virtio_event *e;
	size_t done = 0;
	int err, rc;

	for (;;) {
		e = virtio_next_event(vr, count - done, &err);
		if (!e) {
			if (done)
				return done;
			if (err != -EAGAIN || (filp->f_flags & O_NONBLOCK))
				return err;
			rc = wait_event_interruptible(vr->wq,
						      virtio_readable(vr));
			if (rc)
				return rc;
			continue;
		}
		/* Not under the lock: @buf may be a mapping of this file. */
		if (copy_to_user(buf + done, &e->ev, e->ev.size)) {
			scoped_guard(mutex, &vr->lock)
				list_add(&e->node, &vr->events);
			return done ?: -EFAULT;
		}
		done += e->ev.size;
		kfree(e);
	}
}

static __poll_t virtio_poll(struct file *filp, poll_table *wait)
{
	struct virtio_region *vr = filp->private_data;
	__poll_t mask = 0;

	poll_wait(filp, &vr->wq, wait);
	guard(mutex)(&vr->lock);
	if (!list_empty(&vr->events))
		mask |= EPOLLIN | EPOLLRDNORM;
	if (vr->dying)
		mask |= EPOLLHUP | EPOLLERR;
	return mask;
}

/* An argument that starts with its size: copy what both sides know. */
static int virtio_get_arg(void *karg, size_t ksize, size_t minsz,
			  void __user *uarg)
{
	u32 argsz;

	if (get_user(argsz, (u32 __user *)uarg))
		return -EFAULT;
	if (argsz < minsz)
		return -EINVAL;
	return copy_struct_from_user(karg, ksize, uarg, argsz);
}

static long virtio_get_info(struct virtio_region *vr, void __user *uarg)
{
	struct cxl_virtio_info info;
	struct virtio_group *vg;
	int rc;

	rc = virtio_get_arg(&info, sizeof(info), sizeof(info), uarg);
	if (rc)
		return rc;
	info = (struct cxl_virtio_info) {
		.argsz = sizeof(info),
		.version = CXL_VIRTIO_API_VERSION,
		.size = range_len(&vr->hpa),
		.align = VIRTIO_ALIGN,
	};
	scoped_guard(mutex, &vr->lock) {
		if (vr->dying)
			return -ENODEV;
		list_for_each_entry(vg, &vr->groups, node)
			info.nr_groups += vg->mapped;
	}
	return copy_to_user(uarg, &info, sizeof(info)) ? -EFAULT : 0;
}

/*
 * The records of the active groups, written to @buf as far as they fit in
 * @size; returns the size of them all.
 */
static size_t virtio_list_locked(struct virtio_region *vr, void *buf,
				 size_t size, u32 *nr)
{
	struct virtio_group *vg;
	size_t need = 0;

	lockdep_assert_held(&vr->lock);
	*nr = 0;
	list_for_each_entry(vg, &vr->groups, node) {
		size_t sz = virtio_event_size(vg->nr);

		if (!vg->mapped)
			continue;
		if (buf && need + sz <= size) {
			virtio_event_fill(buf + need, vg, vg->asked ?
					  CXL_VIRTIO_EVENT_RELEASE :
					  CXL_VIRTIO_EVENT_ADD);
			(*nr)++;
		}
		need += sz;
	}
	return need;
}

static long virtio_list(struct virtio_region *vr, void __user *uarg)
{
	struct cxl_virtio_list list;
	size_t need, cap = 0;
	void *kbuf = NULL;
	u32 nr;
	int rc;

	rc = virtio_get_arg(&list, sizeof(list), sizeof(list), uarg);
	if (rc)
		return rc;
	if (list.flags)
		return -EINVAL;
	/* Size it, then fill it; groups may come meanwhile: again. */
	for (;;) {
		scoped_guard(mutex, &vr->lock) {
			if (vr->dying) {
				kvfree(kbuf);
				return -ENODEV;
			}
			need = virtio_list_locked(vr, kbuf, cap, &nr);
		}
		if (need <= cap || need > list.buf_size)
			break;
		kvfree(kbuf);
		cap = need;
		kbuf = kvzalloc(cap, GFP_KERNEL);
		if (!kbuf)
			return -ENOMEM;
	}
	list.nr_groups = 0;
	if (need > list.buf_size) {
		rc = -ENOSPC;
	} else if (need && copy_to_user(u64_to_user_ptr(list.buf), kbuf,
					need)) {
		rc = -EFAULT;
	} else {
		list.nr_groups = nr;
	}
	kvfree(kbuf);
	list.buf_size = need;
	if (copy_to_user(uarg, &list, sizeof(list)))
		return -EFAULT;
	return rc;
}

static long virtio_group_op(struct virtio_region *vr, unsigned int cmd,
			    void __user *uarg)
{
	struct cxl_virtio_group_op op;
	struct cxl_dc_group *group;
	struct virtio_group *vg;
	int rc;

	rc = virtio_get_arg(&op, sizeof(op), sizeof(op), uarg);
	if (rc)
		return rc;
	if (op.flags)
		return -EINVAL;

	scoped_guard(mutex, &vr->lock) {
		if (vr->dying)
			return -ENODEV;
		vg = virtio_find(vr, op.group);
		if (!vg || !vg->mapped)
			return -ENOENT;
		group = vg->group;
		if (cmd == CXL_VIRTIO_ACK_RELEASE) {
			if (!vg->asked)
				return -EINVAL;
			virtio_forget(vr, vg);
			break;
		}
		/* CXL_VIRTIO_GIVE_BACK */
		if (vg->asked)
			return -EBUSY;
		virtio_unmap(vr, vg);
		/* The library may free the group once this succeeds. */
		cxl_dc_group_set_data(group, NULL);
		rc = cxl_dc_give_back(group);
		if (rc) {
			/* The device asked first: its release comes next. */
			cxl_dc_group_set_data(group, vg);
			virtio_map(vr, vg);
			return rc;
		}
		list_del(&vg->node);
	}
	virtio_group_free(vg);
	if (cmd == CXL_VIRTIO_ACK_RELEASE)
		cxl_dc_release_done(group);
	return 0;
}

static long virtio_ioctl(struct file *filp, unsigned int cmd,
			 unsigned long arg)
{
	struct virtio_region *vr = filp->private_data;
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case CXL_VIRTIO_GET_INFO:
		return virtio_get_info(vr, uarg);
	case CXL_VIRTIO_LIST_GROUPS:
		return virtio_list(vr, uarg);
	case CXL_VIRTIO_ACK_RELEASE:
	case CXL_VIRTIO_GIVE_BACK:
		return virtio_group_op(vr, cmd, uarg);
	default:
		return -ENOTTY;
	}
}

static const struct file_operations virtio_fops = {
	.owner = THIS_MODULE,
	.open = virtio_open,
	.release = virtio_close,
	.read = virtio_read,
	.poll = virtio_poll,
	.unlocked_ioctl = virtio_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.mmap = virtio_mmap,
	.get_unmapped_area = virtio_get_unmapped_area,
	.llseek = virtio_llseek,
};

/* --- binding ------------------------------------------------------------------- */

static char *virtio_devnode(const struct device *dev, umode_t *mode,
			    kuid_t *uid, kgid_t *gid)
{
	return kasprintf(GFP_KERNEL, "cxl/%s", dev_name(dev));
}

static void virtio_region_release(struct device *dev)
{
	struct virtio_region *vr = to_virtio_region(dev);

	virtio_drop_events(vr);
	mtree_destroy(&vr->extents);
	ida_free(&virtio_minor_ida, MINOR(dev->devt));
	kfree(vr);
}

static const struct device_type virtio_region_type = {
	.name = "cxl_virtio_region",
	.release = virtio_region_release,
	.devnode = virtio_devnode,
};

static void virtio_region_put(void *data)
{
	struct virtio_region *vr = data;

	put_device(&vr->dev);
}

static void virtio_region_unclaim(void *data)
{
	struct virtio_region *vr = data;

	release_mem_region(vr->hpa.start, range_len(&vr->hpa));
}

/*
 * Unbinding, before the policy is unregistered: no new open or mapping,
 * every mapping zapped, the reader told.  The groups stay with the policy
 * until the library forgot them (virtio_region_forget_all()).
 */
static void virtio_region_stop(void *data)
{
	struct virtio_region *vr = data;
	struct virtio_group *vg, *next;
	LIST_HEAD(done);

	cdev_device_del(&vr->cdev, &vr->dev);
	scoped_guard(mutex, &vr->lock) {
		vr->dying = true;
		list_for_each_entry_safe(vg, next, &vr->groups, node) {
			virtio_unmap(vr, vg);
			/* Asked for and unmapped now: answered here. */
			if (vg->asked) {
				virtio_forget(vr, vg);
				list_add_tail(&vg->node, &done);
			}
		}
	}
	wake_up_interruptible(&vr->wq);
	virtio_answer(&done);
}

/* The policy is unregistered: nothing calls back any more. */
static void virtio_region_forget_all(void *data)
{
	struct virtio_region *vr = data;
	struct virtio_group *vg, *next;
	LIST_HEAD(gone);

	scoped_guard(mutex, &vr->lock)
		list_splice_init(&vr->groups, &gone);
	list_for_each_entry_safe(vg, next, &gone, node)
		virtio_group_free(vg);
}

static struct virtio_region *virtio_region_alloc(struct cxl_region *cxlr)
{
	struct virtio_region *vr;
	int minor;

	vr = kzalloc_obj(*vr);
	if (!vr)
		return ERR_PTR(-ENOMEM);
	minor = ida_alloc_max(&virtio_minor_ida, MINORMASK, GFP_KERNEL);
	if (minor < 0) {
		kfree(vr);
		return ERR_PTR(minor);
	}
	mutex_init(&vr->lock);
	mt_init(&vr->extents);
	INIT_LIST_HEAD(&vr->groups);
	INIT_LIST_HEAD(&vr->events);
	init_waitqueue_head(&vr->wq);
	vr->next_id = 1;

	device_initialize(&vr->dev);
	vr->dev.parent = &cxlr->dev;
	vr->dev.type = &virtio_region_type;
	vr->dev.devt = MKDEV(MAJOR(virtio_devt), minor);
	cdev_init(&vr->cdev, &virtio_fops);
	vr->cdev.owner = THIS_MODULE;
	return vr;
}

static int cxl_region_virtio_probe(struct device *dev)
{
	struct cxl_region *cxlr = container_of(dev, struct cxl_region, dev);
	struct cxl_dc_region_facts facts;
	struct virtio_region *vr;
	int rc;

	if (cxlr->mode != CXL_PARTMODE_DYNAMIC_RAM_1)
		return -ENXIO;
	rc = devm_cxl_region_enable(cxlr);
	if (rc)
		return rc;
	rc = cxl_dc_region_facts(cxlr, &facts);
	if (rc)
		return rc;

	vr = virtio_region_alloc(cxlr);
	if (IS_ERR(vr))
		return PTR_ERR(vr);
	vr->hpa = facts.hpa;
	/* Freed with the last reference: the device's, or an open file's. */
	rc = devm_add_action_or_reset(dev, virtio_region_put, vr);
	if (rc)
		return rc;
	rc = dev_set_name(&vr->dev, "virtio_region%d", cxlr->id);
	if (rc)
		return rc;

	/* /dev/mem and every other driver keep out of the whole region. */
	if (!request_mem_region_exclusive(vr->hpa.start, range_len(&vr->hpa),
					  dev_name(&vr->dev))) {
		dev_err(dev, "cannot claim %#llx-%#llx\n", vr->hpa.start,
			vr->hpa.end);
		return -EBUSY;
	}
	rc = devm_add_action_or_reset(dev, virtio_region_unclaim, vr);
	if (rc)
		return rc;

	rc = devm_add_action_or_reset(dev, virtio_region_forget_all, vr);
	if (rc)
		return rc;
	/* The groups the device already has come back active. */
	rc = devm_cxl_dc_register_policy(dev, cxlr, &virtio_policy, vr);
	if (rc)
		return rc;

	rc = cdev_device_add(&vr->cdev, &vr->dev);
	if (rc)
		return rc;
	return devm_add_action_or_reset(dev, virtio_region_stop, vr);
}

static struct cxl_driver cxl_region_virtio_driver = {
	.name = VIRTIO_DRIVER,
	.probe = cxl_region_virtio_probe,
	.id = CXL_DEVICE_REGION,
};

static int __init cxl_region_virtio_init(void)
{
	int rc;

	rc = alloc_chrdev_region(&virtio_devt, 0, MINORMASK + 1,
				 "cxl_virtio");
	if (rc)
		return rc;
	rc = cxl_driver_register(&cxl_region_virtio_driver);
	if (rc)
		unregister_chrdev_region(virtio_devt, MINORMASK + 1);
	return rc;
}
module_init(cxl_region_virtio_init);

static void __exit cxl_region_virtio_exit(void)
{
	cxl_driver_unregister(&cxl_region_virtio_driver);
	unregister_chrdev_region(virtio_devt, MINORMASK + 1);
}
module_exit(cxl_region_virtio_exit);

MODULE_ALIAS_CXL(CXL_DEVICE_REGION);
MODULE_DESCRIPTION("CXL: Dynamic Capacity for one virtual machine monitor");
MODULE_LICENSE("GPL");
MODULE_IMPORT_NS("CXL");
