// SPDX-License-Identifier: GPL-2.0-only
/* Copyright(c) 2026 The CXL DCD project authors. */
#include <linux/bitmap.h>
#include <linux/export.h>
#include <linux/gfp.h>
#include <linux/memory.h>
#include <linux/memory_hotplug.h>
#include <linux/mm.h>
#include <linux/moduleparam.h>
#include <linux/page_ref.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <cxl/dc_unplug.h>
#include "dc_trace.h"

/**
 * DOC: bounded removal of hot-plugged region memory
 *
 * Memory that a region policy hot-plugged (``cxl_region_sysram`` itself,
 * ``cxl_region_dax`` through ``kmem``) must come out when the device wants
 * its capacity back, but offline_pages() waits for every page in use to
 * migrate, and a pinned page never does: offlining then loops until a
 * fatal signal that a worker never gets.  cxl_dc_unplug() bounds an
 * attempt the way virtio-mem does.  It first takes the pages of every
 * online memory block of the ranges away from the page allocator with
 * alloc_contig_range(), a block at a time, in a few tries at most (five in
 * ZONE_MOVABLE, which should always move, one elsewhere), and marks them
 * PageOffline: they are *fake-offline*, held by the attempt.  That fails
 * rather than waits on a page it cannot move.  Only then does the caller's
 * ``remove`` take the memory out (offline_and_remove_memory_ranges(),
 * directly or through a driver such as kmem): as each block goes offline
 * the memory notifier drops the attempt's page references, so offlining
 * finds no page to migrate; if offlining is cancelled it takes them again.
 * An attempt that fails gives every page it took back to the allocator
 * and leaves every block as it was, for the caller to retry later.
 *
 * A block of ZONE_MOVABLE whose pages are all free has nothing that could
 * hold offlining up: it is not taken, and costs only its offlining (see
 * dc_take_all()).  That is the common case of capacity nobody used, and
 * takes the cost of a release down to the kernel's own offline+remove.
 *
 * While an attempt runs, nobody but the task making it may online or
 * offline the attempt's blocks (-EBUSY), and an attempt does not start
 * while one of them is on its way on- or offline.  Only memory blocks that
 * lie wholly inside a range count: memory is hot-plugged a block at a time.
 *
 * Memory added with MHP_MEMMAP_ON_MEMORY holds its own memmap in the first
 * pages of each block (PageVmemmapSelfHosted): those are never the page
 * allocator's, so an attempt takes only the pages after them, which are
 * the ones the block's memory notifier events cover.
 *
 * Context: process context, no memory hot-plug lock held.
 */

static bool dc_hold_free_blocks;
module_param(dc_hold_free_blocks, bool, 0644);
MODULE_PARM_DESC(dc_hold_free_blocks,
		 "Take free ZONE_MOVABLE memory blocks fake-offline too before offlining them (slower releases)");

/* alloc_contig_range() tries per block in ZONE_MOVABLE, which should move. */
#define DC_UNPLUG_MOVABLE_TRIES	5
/* &cxl_dc_unplug.changing when no block is on its way on- or offline. */
#define DC_UNPLUG_NO_PFN	ULONG_MAX

static unsigned long dc_block_pages(void)
{
	return PHYS_PFN(memory_block_size_bytes());
}

/* The memory blocks wholly inside @r, as [*start, *end) in pfns. */
static unsigned long dc_blocks_in(const struct range *r, unsigned long *start,
				  unsigned long *end)
{
	unsigned long per = dc_block_pages();

	*start = ALIGN(PHYS_PFN(r->start), per);
	*end = ALIGN_DOWN(PHYS_PFN(r->end + 1), per);
	return *end > *start ? (*end - *start) / per : 0;
}

static int dc_nr_blocks(const struct range *range, int nr)
{
	unsigned long start, end, n = 0;

	for (int i = 0; i < nr; i++)
		n += dc_blocks_in(&range[i], &start, &end);
	return n;
}

/* Which block of the attempt holds @pfn, or -1 when none does. */
static int dc_block_of(const struct cxl_dc_unplug *u, unsigned long pfn)
{
	unsigned long start, end;
	int b = 0;

	lockdep_assert_held(&u->lock);
	for (int i = 0; u->range && i < u->nr; i++) {
		unsigned long n = dc_blocks_in(&u->range[i], &start, &end);

		if (pfn >= start && pfn < end)
			return b + (pfn - start) / dc_block_pages();
		b += n;
	}
	return -1;
}

/* --- fake-offline: a block's pages taken from the page allocator --------- */

/*
 * The pages at the start of a block that hold its own memmap (memory added
 * with MHP_MEMMAP_ON_MEMORY): not the page allocator's, never taken.
 */
static unsigned long dc_block_memmap(unsigned long pfn, unsigned long nr)
{
	unsigned long i = 0;

	while (i < nr && PageVmemmapSelfHosted(pfn_to_page(pfn + i)))
		i++;
	return i;
}

/*
 * Whether every page of the block at @pfn after its own memmap is free in
 * the page allocator, read chunk by chunk of its buddy order (a few dozen
 * reads for a free block).  Read without the zone lock: a hint that holds
 * for a moment only, see dc_take_all().
 */
static bool dc_block_free(unsigned long pfn, unsigned long nr)
{
	unsigned long end = pfn + nr;

	for (pfn += dc_block_memmap(pfn, nr); pfn < end;) {
		struct page *page = pfn_to_page(pfn);
		unsigned long order;

		if (!PageBuddy(page))
			return false;
		/* A free page's order is its private field (buddy_order()). */
		order = READ_ONCE(page->private);
		if (order > MAX_PAGE_ORDER)
			return false;
		pfn += 1UL << order;
	}
	return true;
}

/*
 * Take every page of the online block at @pfn away from the page
 * allocator.  alloc_contig_range() migrates what is in use and fails
 * (-EBUSY) on what it cannot move rather than waiting for it; that may be
 * a passing reference, so ZONE_MOVABLE gets a few tries.  The pages then
 * count as neither free nor managed: they are the attempt's, with one
 * reference each, until dc_return_block().  Returns 0, or an errno with
 * nothing taken.
 */
static int dc_take_block(unsigned long pfn, unsigned long nr)
{
	unsigned long i = dc_block_memmap(pfn, nr);
	int tries;
	int rc;

	pfn += i;
	nr -= i;
	if (!nr)
		return 0;
	tries = is_zone_movable_page(pfn_to_page(pfn)) ?
		DC_UNPLUG_MOVABLE_TRIES : 1;
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

/* Undo dc_take_block(): the pages are free memory again. */
static void dc_return_block(unsigned long pfn, unsigned long nr)
{
	unsigned long i = dc_block_memmap(pfn, nr);

	pfn += i;
	nr -= i;
	for (i = 0; i < nr; i++)
		__folio_clear_offline(pfn_folio(pfn + i));
	free_contig_range(pfn, nr);
	adjust_managed_page_count(pfn_to_page(pfn), nr);
}

/*
 * Fake-offline every online block of the attempt, marking each in
 * &cxl_dc_unplug.held.  Stops at the first block that cannot be taken;
 * the caller gives back what was taken.  Offline blocks hold nothing in
 * use.
 *
 * A block of ZONE_MOVABLE whose pages are all free is left to offlining
 * as it is: taking its pages would cost as much as offlining it again,
 * and offlining has nothing to migrate there.  A page allocated there in
 * the moment between is movable and cannot be pinned for long (long-term
 * pins migrate out of ZONE_MOVABLE first), so offlining it stays bounded
 * in practice; a block in use, or in another zone, is always taken, and
 * so is every block with cxl_core.dc_hold_free_blocks set.
 */
static int dc_take_all(struct cxl_dc_unplug *u)
{
	unsigned long per = dc_block_pages();
	unsigned long pfn, start, end;
	int b = 0, rc;

	for (int i = 0; i < u->nr; i++) {
		dc_blocks_in(&u->range[i], &start, &end);
		for (pfn = start; pfn < end; pfn += per, b++) {
			if (!pfn_to_online_page(pfn))
				continue;
			if (!READ_ONCE(dc_hold_free_blocks) &&
			    is_zone_movable_page(pfn_to_page(pfn)) &&
			    dc_block_free(pfn, per))
				continue;
			rc = dc_take_block(pfn, per);
			if (rc)
				return rc;
			scoped_guard(spinlock, &u->lock)
				__set_bit(b, u->held);
			cond_resched();
		}
	}
	return 0;
}

/*
 * Give back the pages of every block still held.  Blocks that went
 * offline meanwhile are no longer held (see dc_notified()), and one that
 * offlining put back online came back with pages of the page allocator's
 * own.
 */
static void dc_return_all(struct cxl_dc_unplug *u)
{
	unsigned long per = dc_block_pages();
	unsigned long pfn, start, end;
	int b = 0;

	for (int i = 0; i < u->nr; i++) {
		dc_blocks_in(&u->range[i], &start, &end);
		for (pfn = start; pfn < end; pfn += per, b++) {
			bool held;

			scoped_guard(spinlock, &u->lock)
				held = __test_and_clear_bit(b, u->held);
			if (held)
				dc_return_block(pfn, per);
		}
	}
}

/* --- the memory notifier -------------------------------------------------- */

enum dc_unplug_pages {
	DC_PAGES_KEEP,		/* nothing to do */
	DC_PAGES_REFUSE,	/* not while an attempt is on the block */
	DC_PAGES_DROP,		/* drop the attempt's page references */
	DC_PAGES_RETAKE,	/* take them again */
};

/*
 * What a memory block event at @pfn means for the attempt in progress.
 * During an attempt only its own task, inside ``remove``, onlines or
 * offlines its blocks: offlining, or onlining again what it offlined when
 * a later block failed.  Anyone else could offline a block dc_take_all()
 * is working on, or online one with pages that are not held, and
 * offlining it would wait for them to migrate.  Events come a memory
 * block at a time, so @pfn, its first pfn, says which.
 */
static enum dc_unplug_pages dc_notified(struct cxl_dc_unplug *u,
					unsigned long action,
					unsigned long pfn)
{
	int b = dc_block_of(u, pfn);
	bool dropped = u->dropped;

	lockdep_assert_held(&u->lock);
	switch (action) {
	case MEM_GOING_ONLINE:
	case MEM_GOING_OFFLINE:
		if (b >= 0 && current != u->task)
			return DC_PAGES_REFUSE;
		u->changing = pfn;
		if (b < 0 || action != MEM_GOING_OFFLINE ||
		    !test_bit(b, u->held))
			return DC_PAGES_KEEP;
		u->dropped = true;
		return DC_PAGES_DROP;
	case MEM_ONLINE:
	case MEM_CANCEL_ONLINE:
	case MEM_OFFLINE:
	case MEM_CANCEL_OFFLINE:
		/* Each ends the one change in progress, whoever started it. */
		u->changing = DC_UNPLUG_NO_PFN;
		u->dropped = false;
		if (!dropped || WARN_ON_ONCE(b < 0))
			return DC_PAGES_KEEP;
		if (action == MEM_CANCEL_OFFLINE)
			return DC_PAGES_RETAKE;
		/* Offline: the pages went with the block. */
		__clear_bit(b, u->held);
		return DC_PAGES_KEEP;
	default:
		return DC_PAGES_KEEP;
	}
}

/*
 * What the notifier looks at is its own user's, under its own lock, and a
 * block of another user costs it one spinlock.  A block going offline
 * whose pages the attempt holds has no other user: dropping the
 * references lets offline_pages() skip its pages (PageOffline with no
 * reference).  The page loops run without the lock: the attempt's task
 * is in ``remove``, so nothing else touches the block.
 */
static int dc_memory_cb(struct notifier_block *nb, unsigned long action,
			void *arg)
{
	struct cxl_dc_unplug *u = container_of(nb, struct cxl_dc_unplug, nb);
	const struct memory_notify *mhp = arg;
	enum dc_unplug_pages todo;
	struct page *page;
	unsigned long i;

	if (PFN_PHYS(mhp->start_pfn) >= u->span.start &&
	    PFN_PHYS(mhp->start_pfn) <= u->span.end)
		trace_cxl_dc_memory(action, mhp->start_pfn, mhp->nr_pages);
	scoped_guard(spinlock, &u->lock)
		todo = dc_notified(u, action, mhp->start_pfn);

	switch (todo) {
	case DC_PAGES_REFUSE:
		return notifier_from_errno(-EBUSY);
	case DC_PAGES_DROP:
		for (i = 0; i < mhp->nr_pages; i++) {
			page = pfn_to_page(mhp->start_pfn + i);
			/* A reference taken in passing: offlining waits. */
			if (WARN_ON_ONCE(!page_ref_dec_and_test(page)))
				dump_page(page, "cxl: held page in use");
		}
		break;
	case DC_PAGES_RETAKE:
		for (i = 0; i < mhp->nr_pages; i++)
			page_ref_inc(pfn_to_page(mhp->start_pfn + i));
		break;
	default:
		break;
	}
	return NOTIFY_OK;
}

/**
 * cxl_dc_unplug_init() - get ready to take memory out
 * @u: embedded in the user's state, zeroed or not
 * @span: all the memory the user may add, for the tracepoint
 *
 * Registers the memory notifier: before any memory of the user is added,
 * so that it sees every change of the user's blocks.
 *
 * Return: 0 or the notifier chain's error.
 */
int cxl_dc_unplug_init(struct cxl_dc_unplug *u, const struct range *span)
{
	*u = (struct cxl_dc_unplug) {
		.nb.notifier_call = dc_memory_cb,
		.changing = DC_UNPLUG_NO_PFN,
		.span = *span,
	};
	spin_lock_init(&u->lock);
	return register_memory_notifier(&u->nb);
}
EXPORT_SYMBOL_NS_GPL(cxl_dc_unplug_init, "CXL");

/**
 * cxl_dc_unplug_exit() - undo cxl_dc_unplug_init()
 * @u: no attempt in progress
 */
void cxl_dc_unplug_exit(struct cxl_dc_unplug *u)
{
	WARN_ON_ONCE(u->range);
	unregister_memory_notifier(&u->nb);
}
EXPORT_SYMBOL_NS_GPL(cxl_dc_unplug_exit, "CXL");

/**
 * cxl_dc_unplug() - one bounded attempt to take memory out
 * @u: the user's state, one attempt at a time
 * @range: host physical ranges whose memory blocks go
 * @nr: how many
 * @remove: takes the memory out, once every online block's pages are held;
 *	returns 0 or an errno with the memory as it was (all or nothing, as
 *	offline_and_remove_memory_ranges() does)
 * @arg: for @remove
 *
 * Return: 0 when @remove took the memory out; -EBUSY at once when a block
 * of @range is on its way on- or offline, or another attempt runs; the
 * error of alloc_contig_range() when a page cannot move; or @remove's.
 * On error every page taken is back with the page allocator: retry later.
 */
int cxl_dc_unplug(struct cxl_dc_unplug *u, const struct range *range, int nr,
		  cxl_dc_unplug_fn remove, void *arg)
{
	int nr_blocks = dc_nr_blocks(range, nr);
	unsigned long *held = bitmap_zalloc(max(nr_blocks, 1), GFP_KERNEL);
	bool busy;
	int rc;

	if (!held)
		return -ENOMEM;
	scoped_guard(spinlock, &u->lock) {
		busy = u->range;
		if (!busy) {
			u->range = range;
			u->nr = nr;
			busy = dc_block_of(u, u->changing) >= 0;
			if (busy)
				u->range = NULL;
		}
		if (!busy) {
			u->held = held;
			u->task = current;
		}
	}
	if (busy) {
		bitmap_free(held);
		return -EBUSY;
	}

	trace_cxl_dc_unplug("start", PHYS_PFN(range[0].start),
			    nr_blocks * dc_block_pages(), 0);
	rc = dc_take_all(u);
	if (!rc) {
		trace_cxl_dc_unplug("held", PHYS_PFN(range[0].start), 0, 0);
		rc = remove(arg);
	}
	trace_cxl_dc_unplug(rc ? "failed" : "removed",
			    PHYS_PFN(range[0].start), 0, rc);
	/* All or nothing: what is still held goes back. */
	dc_return_all(u);

	scoped_guard(spinlock, &u->lock) {
		u->range = NULL;
		u->nr = 0;
		u->held = NULL;
		u->task = NULL;
	}
	bitmap_free(held);
	return rc;
}
EXPORT_SYMBOL_NS_GPL(cxl_dc_unplug, "CXL");
