// SPDX-License-Identifier: GPL-2.0-only
/* Copyright(c) 2026 The CXL DCD project authors. */
#include <linux/bitmap.h>
#include <linux/gfp.h>
#include <linux/jiffies.h>
#include <linux/kthread.h>
#include <linux/memory.h>
#include <linux/memory_hotplug.h>
#include <linux/memory-tiers.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/notifier.h>
#include <linux/page_ref.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <cxl/dc_lib.h>
#include "cxl.h"

/**
 * DOC: cxl_region_sysram - region memory straight into System RAM
 *
 * A region driver of the CXL region family, picked per region with
 * ``regionZ/driver_override``.  It hot-plugs region memory as
 * ``System RAM (cxl_region_sysram)`` on the region's NUMA node, onlined as
 * ``regionZ/online_type`` says.  That starts, at each bind, from the
 * ``online_type`` module parameter (``online_movable`` unless set): a host
 * that binds regions with no userspace step, or re-binds a region whose
 * capacity the device still holds, picks it before any memory is added.
 * A write to ``regionZ/online_type`` applies to memory added afterwards.
 *
 * On a Dynamic Capacity region it is the extent library's policy: every
 * accepted group (one untagged extent, or every extent of one tag) is
 * added when the device agreed to the offer, in the region's dynamic
 * memory group, and removed when the device asks for it back.  Extents
 * must be aligned to the memory block size; the library rejects the
 * others before answering the device.  On a static RAM region the whole
 * region is added at bind.
 *
 * Removal never runs on the event path: one worker thread per region
 * takes memory out, one chunk (a group, or the static region) per
 * attempt.  An attempt first takes the pages of every online memory block
 * of the chunk away from the page allocator with alloc_contig_range(), a
 * block at a time and in a few tries at most (five in ZONE_MOVABLE, one
 * elsewhere), and marks them PageOffline: they are *fake-offline*, the
 * worker's own.  Blocks that are offline (``online_type=offline``) have
 * nothing to take.  Then offline_and_remove_memory_ranges() takes the
 * chunk out, all of it or nothing: as each block goes offline the
 * region's memory notifier drops the worker's page references, so
 * offlining finds no page to migrate and cannot hang on one held by
 * someone else; if offlining is cancelled it takes them again.  An
 * attempt that fails gives every page it took back to the allocator and
 * leaves every block as it was: the group stays plugged, shows
 * ``release-pending``, and is retried with growing pauses until it goes;
 * then the device gets its Release DC.  While an attempt runs, nobody but
 * the worker can online or offline the chunk's blocks (-EBUSY), and an
 * attempt does not start while one of them is on its way on- or offline.
 * A forced release is logged as critical and the memory is taken out of
 * use at once, as far as offlining allows; the library then gives back
 * whatever the device left of the group.
 *
 * Unbinding removes every group's memory first: a group the device did
 * not ask for stays accepted on the device and the next policy bound to
 * the region reads it back with Get DC Extent List.  The library requires
 * that nothing is in use when it forgets the groups, so unbinding waits
 * until memory held by pinned pages can go.  That wait cannot be killed:
 * once unbinding returns, the CXL core may give the capacity back to the
 * device (``delete_region``, or the library for a group the device asked
 * for), reset the decoders, or hand the groups to the next policy, so
 * memory still in use must not outlive the driver, and there is nowhere
 * safe to leave it.  The wait is idle (no load, no hung task report) and
 * warns every 30 seconds.
 *
 * Lock order: the library's per-region policy_lock (held around
 * activate, release and force_release), then &sysram.lock, then the
 * library's device lock (cxl_dc_release_done()) or the memory hot-plug
 * locks (the device hot-plug lock and mem_hotplug_lock, taken by adding,
 * onlining, offlining and removing memory), then &sysram.fo_lock.  The
 * memory notifier runs under the hot-plug locks, also when sysram_plug()
 * onlines memory under &sysram.lock, so it takes only &sysram.fo_lock, a
 * spinlock under which nothing else is called.  The worker calls
 * offline_and_remove_memory_ranges() holding no lock of this file.
 * ``validate`` runs under the library's device lock and takes no lock
 * here.
 */

static const char sysram_res_name[] = "System RAM (cxl_region_sysram)";

static int sysram_default_online_type = MMOP_ONLINE_MOVABLE;

static int online_type_param_set(const char *val, const struct kernel_param *kp)
{
	int type = mhp_online_type_from_str(val);

	if (type < 0)
		return type;
	WRITE_ONCE(sysram_default_online_type, type);
	return 0;
}

static int online_type_param_get(char *buf, const struct kernel_param *kp)
{
	int type = READ_ONCE(sysram_default_online_type);

	return sysfs_emit(buf, "%s\n", mhp_online_type_to_str(type));
}

static const struct kernel_param_ops online_type_param_ops = {
	.set = online_type_param_set,
	.get = online_type_param_get,
};
module_param_cb(online_type, &online_type_param_ops, NULL, 0644);
MODULE_PARM_DESC(online_type,
		 "regionZ/online_type of a region at bind (default: online_movable)");

/* Pause before retrying memory that could not be offlined, at most. */
#define SYSRAM_RETRY_MAX_MS	8000U
/* alloc_contig_range() tries per block in ZONE_MOVABLE, which should move. */
#define SYSRAM_MOVABLE_TRIES	5
/* &sysram.changing when no block is on its way on- or offline. */
#define SYSRAM_NO_PFN		ULONG_MAX

/**
 * struct sysram_chunk - memory added as one unit
 * @node: entry in &sysram.plugged or &sysram.releasing
 * @group: the library's group, NULL for a static region or once
 *	unbinding took the memory out
 * @give_back: the device asked for it: confirm with cxl_dc_release_done()
 * @tries: failed unplug attempts so far
 * @next_try: when the worker tries again (jiffies)
 * @nr: number of ranges
 * @range: host physical ranges, memory block aligned; their blocks are
 *	numbered from 0 in this order for &sysram.held
 */
struct sysram_chunk {
	struct list_head node;
	struct cxl_dc_group *group;
	bool give_back;
	unsigned int tries;
	unsigned long next_try;
	int nr;
	struct range range[] __counted_by(nr);
};

/**
 * struct sysram - one bound region
 * @cxlr: the region
 * @nid: NUMA node the memory goes to
 * @mtype: the node's memory type (tier), as kmem sets it for dax memory
 * @mgid: memory group of the region
 * @online_type: &enum mmop for memory added from now on
 * @lock: protects @plugged, @releasing, @kick and @dying
 * @plugged: chunks in use as System RAM
 * @releasing: chunks to take out, oldest first
 * @kick: the worker has new work
 * @dying: the driver is unbinding: no new memory
 * @worker: the thread that offlines and removes memory
 * @wq: where @worker waits for work
 * @drained: where unbinding waits for @releasing to empty
 * @mem_nb: the region's memory notifier, see sysram_memory_cb()
 * @fo_lock: protects @out, @held, @dropped and @changing; a spinlock, as
 *	the memory notifier takes it under the memory hot-plug locks
 * @out: the chunk an unplug attempt is on, NULL between attempts.  One
 *	worker makes one attempt at a time, so this is the whole list of
 *	chunks with fake-offline pages.
 * @held: blocks of @out whose pages @worker holds fake-offline, a bit per
 *	block as &sysram_chunk.range numbers them
 * @dropped: the notifier dropped @worker's references to the pages of
 *	the block being offlined now
 * @changing: first pfn of the memory block being onlined or offlined
 *	now (the memory hot-plug lock lets one through at a time), or
 *	%SYSRAM_NO_PFN
 */
struct sysram {
	struct cxl_region *cxlr;
	int nid;
	struct memory_dev_type *mtype;
	int mgid;
	int online_type;
	struct mutex lock; /* see above and the DOC block's lock order */
	struct list_head plugged;
	struct list_head releasing;
	bool kick;
	bool dying;
	struct task_struct *worker;
	wait_queue_head_t wq;
	wait_queue_head_t drained;
	struct notifier_block mem_nb;
	spinlock_t fo_lock; /* innermost, see the DOC block's lock order */
	struct sysram_chunk *out;
	unsigned long *held;
	bool dropped;
	unsigned long changing;
};

/* --- memory blocks of a chunk --------------------------------------------- */

static unsigned long sysram_block_pages(void)
{
	return PHYS_PFN(memory_block_size_bytes());
}

static int sysram_nr_blocks(const struct sysram_chunk *c)
{
	unsigned long n = 0;

	for (int i = 0; i < c->nr; i++)
		n += PHYS_PFN(range_len(&c->range[i])) / sysram_block_pages();
	return n;
}

/* Which block of @c holds @pfn, or -1 when none does. */
static int sysram_block_of(const struct sysram_chunk *c, unsigned long pfn)
{
	unsigned long per = sysram_block_pages();
	int b = 0;

	for (int i = 0; i < c->nr; i++) {
		unsigned long start = PHYS_PFN(c->range[i].start);
		unsigned long n = PHYS_PFN(range_len(&c->range[i]));

		if (pfn >= start && pfn - start < n)
			return b + (pfn - start) / per;
		b += n / per;
	}
	return -1;
}

/* --- fake-offline: a block's pages taken from the page allocator --------- */

/*
 * Take every page of the online block at @pfn away from the page
 * allocator.  alloc_contig_range() migrates what is in use and fails
 * (-EBUSY) on what it cannot move rather than waiting for it; that may be
 * a passing reference, so ZONE_MOVABLE, which should always move, gets a
 * few tries.  The pages then count as neither free nor managed: they are
 * the worker's, with one reference each, until sysram_return_block().
 * @nr is the whole block: memory is added without MHP_MEMMAP_ON_MEMORY,
 * so none of it holds its own memmap, and the memory notifier's events
 * cover the same pages.  Returns 0, or an errno with nothing taken.
 */
static int sysram_take_block(unsigned long pfn, unsigned long nr)
{
	int tries = is_zone_movable_page(pfn_to_page(pfn)) ?
		    SYSRAM_MOVABLE_TRIES : 1;
	unsigned long i;
	int rc;

	do {
		rc = alloc_contig_range(pfn, pfn + nr, ACR_FLAGS_NONE,
					GFP_KERNEL);
	} while (rc && rc != -ENOMEM && --tries);
	if (rc)
		return rc;

	/* Walkers that read page contents skip PageOffline pages. */
	page_offline_begin();
	for (i = 0; i < nr; i++)
		__folio_set_offline(pfn_folio(pfn + i));
	page_offline_end();
	adjust_managed_page_count(pfn_to_page(pfn), -(long)nr);
	return 0;
}

/* Undo sysram_take_block(): the pages are free memory again. */
static void sysram_return_block(unsigned long pfn, unsigned long nr)
{
	unsigned long i;

	for (i = 0; i < nr; i++)
		__folio_clear_offline(pfn_folio(pfn + i));
	free_contig_range(pfn, nr);
	adjust_managed_page_count(pfn_to_page(pfn), nr);
}

/*
 * Fake-offline every online block of @c, marking each in &sysram.held by
 * its number: blocks count from 0 through the ranges in order.  Stops at
 * the first block that cannot be taken; the caller gives back what was
 * taken.  Offline blocks hold nothing in use.
 */
static int sysram_take_chunk(struct sysram *sr, struct sysram_chunk *c)
{
	unsigned long per = sysram_block_pages();
	int b = 0, rc;

	for (int i = 0; i < c->nr; i++) {
		unsigned long pfn = PHYS_PFN(c->range[i].start);
		unsigned long end = PHYS_PFN(c->range[i].end + 1);

		for (; pfn < end; pfn += per, b++) {
			if (!pfn_to_online_page(pfn))
				continue;
			rc = sysram_take_block(pfn, per);
			if (rc)
				return rc;
			scoped_guard(spinlock, &sr->fo_lock)
				__set_bit(b, sr->held);
			cond_resched();
		}
	}
	return 0;
}

/*
 * After a failed attempt: give back the pages of every block still held.
 * Blocks that went offline meanwhile are no longer held (see
 * sysram_notified()), and one that offline_and_remove_memory_ranges()
 * put back online came back with pages of the page allocator's own.
 */
static void sysram_return_chunk(struct sysram *sr, struct sysram_chunk *c)
{
	unsigned long per = sysram_block_pages();
	int b = 0;

	for (int i = 0; i < c->nr; i++) {
		unsigned long pfn = PHYS_PFN(c->range[i].start);
		unsigned long end = PHYS_PFN(c->range[i].end + 1);

		for (; pfn < end; pfn += per, b++) {
			bool held = false;

			scoped_guard(spinlock, &sr->fo_lock)
				held = __test_and_clear_bit(b, sr->held);
			if (held)
				sysram_return_block(pfn, per);
		}
	}
}

/* --- the memory notifier -------------------------------------------------- */

enum sysram_pages {
	SYSRAM_PAGES_KEEP,	/* nothing to do */
	SYSRAM_PAGES_REFUSE,	/* not while an attempt is on the block */
	SYSRAM_PAGES_DROP,	/* drop the worker's page references */
	SYSRAM_PAGES_RETAKE,	/* take them again */
};

/*
 * What a memory block event at @pfn means for the attempt in progress.
 * During an attempt on &sysram.out only the worker itself, inside
 * offline_and_remove_memory_ranges(), onlines or offlines its blocks:
 * offlining, or onlining again what it offlined when a later block
 * failed.  Anyone else could offline a block sysram_take_chunk() is
 * working on, or online one with pages that are not held, and offlining
 * it would wait for them to migrate.  Events come a memory block at a
 * time, so @pfn, its first pfn, says which.  Context: &sysram.fo_lock
 * held.
 */
static enum sysram_pages sysram_notified(struct sysram *sr,
					 unsigned long action,
					 unsigned long pfn)
{
	int b = sr->out ? sysram_block_of(sr->out, pfn) : -1;
	bool dropped = sr->dropped;

	lockdep_assert_held(&sr->fo_lock);
	switch (action) {
	case MEM_GOING_ONLINE:
	case MEM_GOING_OFFLINE:
		if (b >= 0 && current != sr->worker)
			return SYSRAM_PAGES_REFUSE;
		sr->changing = pfn;
		if (b < 0 || action != MEM_GOING_OFFLINE ||
		    !test_bit(b, sr->held))
			return SYSRAM_PAGES_KEEP;
		sr->dropped = true;
		return SYSRAM_PAGES_DROP;
	case MEM_ONLINE:
	case MEM_CANCEL_ONLINE:
	case MEM_OFFLINE:
	case MEM_CANCEL_OFFLINE:
		/* Each ends the one change in progress, whoever started it. */
		sr->changing = SYSRAM_NO_PFN;
		sr->dropped = false;
		if (!dropped || WARN_ON_ONCE(b < 0))
			return SYSRAM_PAGES_KEEP;
		if (action == MEM_CANCEL_OFFLINE)
			return SYSRAM_PAGES_RETAKE;
		/* Offline: the pages went with the block. */
		__clear_bit(b, sr->held);
		return SYSRAM_PAGES_KEEP;
	default:
		return SYSRAM_PAGES_KEEP;
	}
}

/*
 * One notifier per bound region, registered for as long as its worker
 * runs: what it looks at (&sysram.out and &sysram.held) is that worker's,
 * under the region's own &sysram.fo_lock, and a block of another region
 * costs it one spinlock.  A block going offline that the worker holds
 * fake-offline has no other user: dropping the references lets
 * offline_pages() skip its pages (PageOffline with no reference).  The
 * page loops run without the lock: the worker is in
 * offline_and_remove_memory_ranges(), so nothing else touches the block.
 */
static int sysram_memory_cb(struct notifier_block *nb, unsigned long action,
			    void *arg)
{
	struct sysram *sr = container_of(nb, struct sysram, mem_nb);
	const struct memory_notify *mhp = arg;
	enum sysram_pages todo;
	struct page *page;
	unsigned long i;

	scoped_guard(spinlock, &sr->fo_lock)
		todo = sysram_notified(sr, action, mhp->start_pfn);

	switch (todo) {
	case SYSRAM_PAGES_REFUSE:
		return notifier_from_errno(-EBUSY);
	case SYSRAM_PAGES_DROP:
		for (i = 0; i < mhp->nr_pages; i++) {
			page = pfn_to_page(mhp->start_pfn + i);
			/* A reference taken in passing: offlining waits. */
			if (WARN_ON_ONCE(!page_ref_dec_and_test(page)))
				dump_page(page, "sysram: held page in use");
		}
		break;
	case SYSRAM_PAGES_RETAKE:
		for (i = 0; i < mhp->nr_pages; i++)
			page_ref_inc(pfn_to_page(mhp->start_pfn + i));
		break;
	default:
		break;
	}
	return NOTIFY_OK;
}

/* --- the worker ----------------------------------------------------------- */

/*
 * One attempt to take @c out.  All of it or nothing: on failure every
 * page taken goes back and every block is as it was.  Fails with -EBUSY
 * at once if one of its blocks is on its way on- or offline: the retry
 * comes soon enough.  Context: the worker thread, no lock held.
 */
static int sysram_unplug(struct sysram *sr, struct sysram_chunk *c)
{
	int n = sysram_nr_blocks(c);
	unsigned long *held = bitmap_zalloc(n, GFP_KERNEL);
	bool busy;
	int rc;

	if (!held)
		return -ENOMEM;
	scoped_guard(spinlock, &sr->fo_lock) {
		busy = sysram_block_of(c, sr->changing) >= 0;
		if (!busy) {
			sr->out = c;
			sr->held = held;
		}
	}
	if (busy) {
		bitmap_free(held);
		return -EBUSY;
	}

	rc = sysram_take_chunk(sr, c);
	if (!rc)
		rc = offline_and_remove_memory_ranges(c->range, c->nr);
	/* All or nothing: what offlining left online is given back. */
	if (rc)
		sysram_return_chunk(sr, c);

	scoped_guard(spinlock, &sr->fo_lock) {
		/* Removed: every held block went offline, and was let go. */
		WARN_ON_ONCE(!bitmap_empty(held, n));
		sr->out = NULL;
		sr->held = NULL;
	}
	bitmap_free(held);
	return rc;
}

/* After an attempt on @c: forget it, or plan the next try. */
static bool sysram_done(struct sysram *sr, struct sysram_chunk *c, int rc)
{
	lockdep_assert_held(&sr->lock);
	if (rc) {
		unsigned int ms = min(500U << min(c->tries, 5U),
				      SYSRAM_RETRY_MAX_MS);

		if (!c->tries++)
			dev_info(&sr->cxlr->dev,
				 "%pra in use (%d), release pending, retrying\n",
				 &c->range[0], rc);
		c->next_try = jiffies + msecs_to_jiffies(ms);
		return false;
	}
	if (c->tries)
		dev_info(&sr->cxlr->dev, "%pra released after %u retries\n",
			 &c->range[0], c->tries);
	list_del(&c->node);
	/* Under the lock: unbinding may clear @group concurrently. */
	if (c->group) {
		struct cxl_dc_group *group = c->group;

		/*
		 * Answered: a forced release racing this one, or one that
		 * comes after a failed Release DC, finds no chunk and
		 * answers 0.  Taken out for unbind (no give_back), the
		 * group lives on in the library until unregister.
		 */
		cxl_dc_group_set_data(group, NULL);
		c->group = NULL;
		if (c->give_back)
			cxl_dc_release_done(group);
	}
	return true;
}

/* The chunk due first, and how long until it is due. */
static struct sysram_chunk *sysram_next(struct sysram *sr, long *wait)
{
	struct sysram_chunk *c, *first = NULL;

	lockdep_assert_held(&sr->lock);
	list_for_each_entry(c, &sr->releasing, node)
		if (!first || time_before(c->next_try, first->next_try))
			first = c;
	*wait = MAX_SCHEDULE_TIMEOUT;
	if (first && time_after(first->next_try, jiffies)) {
		*wait = first->next_try - jiffies;
		return NULL;
	}
	return first;
}

static int sysram_worker(void *data)
{
	struct sysram *sr = data;

	while (!kthread_should_stop()) {
		struct sysram_chunk *c;
		bool freed = false;
		long wait;
		int rc;

		scoped_guard(mutex, &sr->lock) {
			sr->kick = false;
			c = sysram_next(sr, &wait);
		}
		if (!c) {
			wait_event_idle_timeout(sr->wq, READ_ONCE(sr->kick) ||
						kthread_should_stop(), wait);
			continue;
		}
		rc = sysram_unplug(sr, c);
		scoped_guard(mutex, &sr->lock)
			freed = sysram_done(sr, c, rc);
		if (freed) {
			kfree(c);
			wake_up_all(&sr->drained);
		}
	}
	return 0;
}

/* Queue @c for removal.  Context: &sysram.lock held. */
static void sysram_queue(struct sysram *sr, struct sysram_chunk *c)
{
	lockdep_assert_held(&sr->lock);
	list_move_tail(&c->node, &sr->releasing);
	c->next_try = jiffies;
	sr->kick = true;
	wake_up(&sr->wq);
}

/*
 * Add the memory of @c as System RAM.  Context: probe or the library's
 * activate, &sysram.lock held.  Returns 0 when at least the first range
 * went in, else an errno with nothing added.
 */
static int sysram_plug(struct sysram *sr, struct sysram_chunk *c)
{
	int online_type = READ_ONCE(sr->online_type);
	int i, rc = 0;

	lockdep_assert_held(&sr->lock);
	for (i = 0; i < c->nr; i++) {
		rc = __add_memory_driver_managed(sr->mgid, c->range[i].start,
						 range_len(&c->range[i]),
						 sysram_res_name,
						 MHP_NID_IS_MGID, online_type);
		if (rc)
			break;
	}
	if (rc) {
		dev_warn(&sr->cxlr->dev, "could not add %pra: %d\n",
			 &c->range[i], rc);
		if (!i)
			return rc;
		/*
		 * Failing now would make the library give the whole group
		 * back while part of it is System RAM already, maybe in use.
		 * Keep what went in; the rest stays unused until the group
		 * is released as a whole.
		 */
		c->nr = i;
	}
	list_add_tail(&c->node, &sr->plugged);
	return 0;
}

static struct sysram_chunk *sysram_chunk_alloc(int nr)
{
	struct sysram_chunk *c = kzalloc_flex(*c, range, nr);

	if (!c)
		return NULL;
	c->nr = nr;
	INIT_LIST_HEAD(&c->node);
	return c;
}

/* --- the extent library's policy --------------------------------------- */

static int sysram_validate(struct cxl_region *cxlr, struct cxl_dc_group *group)
{
	struct sysram *sr = cxl_dc_policy_data(cxlr);
	u64 mbs = memory_block_size_bytes();

	/* Under the library's device lock: no lock of this file here. */
	if (READ_ONCE(sr->dying))
		return -ENODEV;
	for (int i = 0; i < cxl_dc_group_nr_extents(group); i++) {
		struct cxl_dc_extent_info info;

		cxl_dc_group_extent(group, i, &info);
		/* The library checked the granularity already. */
		if (WARN_ON_ONCE(!IS_ALIGNED(info.hpa.start, mbs) ||
				 !IS_ALIGNED(range_len(&info.hpa), mbs)))
			return -EINVAL;
	}
	return 0;
}

static int sysram_activate(struct cxl_region *cxlr, struct cxl_dc_group *group)
{
	struct sysram *sr = cxl_dc_policy_data(cxlr);
	int nr = cxl_dc_group_nr_extents(group);
	struct sysram_chunk *c = sysram_chunk_alloc(nr);
	int rc;

	if (!c)
		return -ENOMEM;
	for (int i = 0; i < nr; i++) {
		struct cxl_dc_extent_info info;

		cxl_dc_group_extent(group, i, &info);
		c->range[i] = info.hpa;
	}
	c->group = group;

	guard(mutex)(&sr->lock);
	rc = sr->dying ? -ENODEV : sysram_plug(sr, c);
	if (rc) {
		kfree(c);
		return rc;
	}
	cxl_dc_group_set_data(group, c);
	return 0;
}

static int sysram_release(struct cxl_region *cxlr, struct cxl_dc_group *group)
{
	struct sysram *sr = cxl_dc_policy_data(cxlr);
	struct sysram_chunk *c;

	guard(mutex)(&sr->lock);
	c = cxl_dc_group_data(group);
	/* Already taken out while unbinding: nothing uses the memory. */
	if (!c)
		return 0;
	c->give_back = true;
	/* Offlining can take long or fail for now: never on the event path. */
	sysram_queue(sr, c);
	return -EBUSY;
}

static int sysram_force_release(struct cxl_region *cxlr,
				struct cxl_dc_group *group)
{
	struct sysram *sr = cxl_dc_policy_data(cxlr);
	struct sysram_chunk *c;

	guard(mutex)(&sr->lock);
	c = cxl_dc_group_data(group);
	/* Already taken out while unbinding: nothing uses the memory. */
	if (!c)
		return 0;
	dev_crit(&cxlr->dev,
		 "device took %pra back by force: taking it out of use now\n",
		 &c->range[0]);
	/*
	 * Out of turn, at once, even if a release is retrying already; the
	 * library gives back what the device left of the group when done.
	 */
	c->give_back = true;
	c->tries = 0;
	sysram_queue(sr, c);
	return -EBUSY;
}

static const struct cxl_dc_policy_ops sysram_dc_ops = {
	.validate = sysram_validate,
	.activate = sysram_activate,
	.release = sysram_release,
	.force_release = sysram_force_release,
};

/* Granularity: the memory block size, known at load time. */
static struct cxl_dc_policy sysram_policy = {
	.name = "cxl_region_sysram",
	.tag_mode = CXL_DC_TAG_UNTAGGED,
	.ops = &sysram_dc_ops,
};

/* --- binding -------------------------------------------------------------- */

/*
 * Unbinding: take every chunk out before the library forgets the groups.
 * Waits as long as pinned pages keep memory online, and not killably:
 * after unbinding the CXL core may give the capacity back to the device,
 * reset the decoders or hand the groups to the next policy, so no memory
 * may stay in use past it (see the DOC block).  Each attempt of the worker
 * is bounded; only this wait is not.
 */
static void sysram_drain(void *data)
{
	struct sysram *sr = data;
	struct sysram_chunk *c, *next;

	scoped_guard(mutex, &sr->lock) {
		WRITE_ONCE(sr->dying, true);
		list_for_each_entry_safe(c, next, &sr->plugged, node)
			sysram_queue(sr, c);
	}
	while (!wait_event_idle_timeout(sr->drained,
					list_empty_careful(&sr->releasing),
					30 * HZ))
		dev_warn(&sr->cxlr->dev,
			 "unbind waits for memory still in use to go offline\n");
}

static void sysram_stop(void *data)
{
	struct sysram *sr = data;

	kthread_stop(sr->worker);
	/* Only chunks that never got queued are left: none after a drain. */
	WARN_ON_ONCE(!list_empty(&sr->plugged) || !list_empty(&sr->releasing));
	/* No attempt after the worker's end: nothing is held fake-offline. */
	unregister_memory_notifier(&sr->mem_nb);
	memory_group_unregister(sr->mgid);
	clear_node_memory_type(sr->nid, sr->mtype);
}

/*
 * Memory types (tiers) by abstract distance, shared by every region this
 * driver binds and put at module exit, as kmem does: CXL memory is not
 * DRAM to demotion.
 */
static DEFINE_MUTEX(sysram_memory_types_lock);
static LIST_HEAD(sysram_memory_types);

/* Without better data, the distance kmem gives dax memory: 5x DRAM's. */
#define SYSRAM_DEFAULT_ADISTANCE	(MEMTIER_ADISTANCE_DRAM * 5)

static struct memory_dev_type *sysram_memory_type(int nid)
{
	int adist = SYSRAM_DEFAULT_ADISTANCE;

	/* The CXL core's algorithm uses the region's CDAT and HMAT data. */
	mt_calc_adistance(nid, &adist);
	guard(mutex)(&sysram_memory_types_lock);
	return mt_find_alloc_memory_type(adist, &sysram_memory_types);
}

static int sysram_group(struct sysram *sr)
{
	struct cxl_region *cxlr = sr->cxlr;
	unsigned long pages = PHYS_PFN(resource_size(cxlr->params.res));

	if (cxlr->mode == CXL_PARTMODE_RAM)
		return memory_group_register_static(sr->nid, pages);
	return memory_group_register_dynamic(sr->nid,
				PHYS_PFN(memory_block_size_bytes()));
}

static struct sysram *sysram_alloc(struct cxl_region *cxlr)
{
	struct resource *res = cxlr->params.res;
	struct sysram *sr;
	int rc;

	sr = devm_kzalloc(&cxlr->dev, sizeof(*sr), GFP_KERNEL);
	if (!sr)
		return ERR_PTR(-ENOMEM);
	sr->cxlr = cxlr;
	sr->online_type = READ_ONCE(sysram_default_online_type);
	mutex_init(&sr->lock);
	INIT_LIST_HEAD(&sr->plugged);
	INIT_LIST_HEAD(&sr->releasing);
	init_waitqueue_head(&sr->wq);
	init_waitqueue_head(&sr->drained);
	spin_lock_init(&sr->fo_lock);
	sr->changing = SYSRAM_NO_PFN;
	sr->mem_nb.notifier_call = sysram_memory_cb;

	sr->nid = phys_to_target_node(res->start);
	if (sr->nid == NUMA_NO_NODE)
		sr->nid = memory_add_physaddr_to_nid(res->start);
	sr->mtype = sysram_memory_type(sr->nid);
	if (IS_ERR(sr->mtype))
		return ERR_CAST(sr->mtype);
	sr->mgid = sysram_group(sr);
	if (sr->mgid < 0)
		return ERR_PTR(sr->mgid);
	/* Before any memory is added: it sees every change of its blocks. */
	rc = register_memory_notifier(&sr->mem_nb);
	if (rc)
		goto unregister_group;
	sr->worker = kthread_run(sysram_worker, sr, "cxl_sysram/%d", cxlr->id);
	if (IS_ERR(sr->worker)) {
		rc = PTR_ERR(sr->worker);
		goto unregister_notifier;
	}
	/* Before any memory comes online on the node: its tier is set then. */
	init_node_memory_type(sr->nid, sr->mtype);
	rc = devm_add_action_or_reset(&cxlr->dev, sysram_stop, sr);
	return rc ? ERR_PTR(rc) : sr;

unregister_notifier:
	unregister_memory_notifier(&sr->mem_nb);
unregister_group:
	memory_group_unregister(sr->mgid);
	return ERR_PTR(rc);
}

/* A static RAM region: all of it, at once. */
static int sysram_plug_region(struct sysram *sr)
{
	struct sysram_chunk *c = sysram_chunk_alloc(1);
	int rc;

	if (!c)
		return -ENOMEM;
	c->range[0] = (struct range) {
		.start = sr->cxlr->params.res->start,
		.end = sr->cxlr->params.res->end,
	};
	scoped_guard(mutex, &sr->lock)
		rc = sysram_plug(sr, c);
	if (rc) {
		kfree(c);
		return rc;
	}
	return devm_add_action_or_reset(&sr->cxlr->dev, sysram_drain, sr);
}

static int cxl_region_sysram_probe(struct device *dev)
{
	struct cxl_region *cxlr = container_of(dev, struct cxl_region, dev);
	struct resource *res = cxlr->params.res;
	u64 mbs = memory_block_size_bytes();
	struct sysram *sr;
	int rc;

	if (cxlr->mode != CXL_PARTMODE_RAM &&
	    cxlr->mode != CXL_PARTMODE_DYNAMIC_RAM_1)
		return -ENXIO;
	rc = devm_cxl_region_enable(cxlr);
	if (rc)
		return rc;
	if (!IS_ALIGNED(res->start, mbs) || !IS_ALIGNED(resource_size(res), mbs)) {
		dev_err(dev, "%pr is not aligned to the memory block size %#llx\n",
			res, mbs);
		return -ENXIO;
	}

	sr = sysram_alloc(cxlr);
	if (IS_ERR(sr))
		return PTR_ERR(sr);
	dev_set_drvdata(dev, sr);

	if (cxlr->mode == CXL_PARTMODE_RAM)
		return sysram_plug_region(sr);

	/* Extents the device already has are read back and added now. */
	rc = devm_cxl_dc_register_policy(dev, cxlr, &sysram_policy, sr);
	if (rc)
		return rc;
	return devm_add_action_or_reset(dev, sysram_drain, sr);
}

static ssize_t online_type_show(struct device *dev,
				struct device_attribute *attr, char *buf)
{
	struct sysram *sr = dev_get_drvdata(dev);

	return sysfs_emit(buf, "%s\n",
			  mhp_online_type_to_str(READ_ONCE(sr->online_type)));
}

static ssize_t online_type_store(struct device *dev,
				 struct device_attribute *attr,
				 const char *buf, size_t len)
{
	struct sysram *sr = dev_get_drvdata(dev);
	int type = mhp_online_type_from_str(buf);

	if (type < 0)
		return type;
	WRITE_ONCE(sr->online_type, type);
	return len;
}
static DEVICE_ATTR_RW(online_type);

static struct attribute *cxl_region_sysram_attrs[] = {
	&dev_attr_online_type.attr,
	NULL,
};
ATTRIBUTE_GROUPS(cxl_region_sysram);

static struct cxl_driver cxl_region_sysram_driver = {
	.name = "cxl_region_sysram",
	.probe = cxl_region_sysram_probe,
	.id = CXL_DEVICE_REGION,
	.drv = {
		.dev_groups = cxl_region_sysram_groups,
	},
};

static int __init cxl_region_sysram_init(void)
{
	sysram_policy.granularity = memory_block_size_bytes();
	return cxl_driver_register(&cxl_region_sysram_driver);
}
module_init(cxl_region_sysram_init);

static void __exit cxl_region_sysram_exit(void)
{
	cxl_driver_unregister(&cxl_region_sysram_driver);
	guard(mutex)(&sysram_memory_types_lock);
	mt_put_memory_types(&sysram_memory_types);
}
module_exit(cxl_region_sysram_exit);

MODULE_ALIAS_CXL(CXL_DEVICE_REGION);
MODULE_DESCRIPTION("CXL: region memory as System RAM, hot-plugged per extent");
MODULE_LICENSE("GPL");
MODULE_IMPORT_NS("CXL");
