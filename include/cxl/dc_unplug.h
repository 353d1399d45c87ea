/* SPDX-License-Identifier: GPL-2.0-only */
/* Copyright(c) 2026 The CXL DCD project authors. */
#ifndef __CXL_DC_UNPLUG_H__
#define __CXL_DC_UNPLUG_H__

#include <linux/notifier.h>
#include <linux/range.h>
#include <linux/spinlock.h>

struct task_struct;

/**
 * struct cxl_dc_unplug - bounded removal of hot-plugged region memory
 * @nb: the memory notifier, registered from cxl_dc_unplug_init() on
 * @lock: protects the rest; a spinlock, as the notifier takes it under the
 *	memory hot-plug locks
 * @range: the ranges of the attempt in progress, NULL between attempts
 * @nr: how many
 * @held: blocks of @range whose pages the attempt holds fake-offline, a
 *	bit per memory block, counted from 0 through the ranges in order
 * @task: the task making the attempt: the only one that may online or
 *	offline its blocks meanwhile
 * @dropped: the notifier dropped the references to the pages of the block
 *	being offlined now
 * @changing: first pfn of the memory block being onlined or offlined now
 *	(the memory hot-plug lock lets one through at a time), or ULONG_MAX
 * @span: all the memory the user may ever add (its region): the notifier
 *	traces each change of a block in it (tracepoint cxl_dc_memory)
 *
 * One per user (a bound region), for one attempt at a time.  Embed it and
 * treat it as opaque.
 */
struct cxl_dc_unplug {
	struct notifier_block nb;
	spinlock_t lock; /* innermost: under the memory hot-plug locks */
	const struct range *range;
	int nr;
	unsigned long *held;
	struct task_struct *task;
	bool dropped;
	unsigned long changing;
	struct range span;
};

/* Takes the memory out once every online block's pages are held. */
typedef int (*cxl_dc_unplug_fn)(void *arg);

#if IS_ENABLED(CONFIG_MEMORY_HOTREMOVE) && IS_ENABLED(CONFIG_CONTIG_ALLOC)
int cxl_dc_unplug_init(struct cxl_dc_unplug *u, const struct range *span);
void cxl_dc_unplug_exit(struct cxl_dc_unplug *u);
int cxl_dc_unplug(struct cxl_dc_unplug *u, const struct range *range, int nr,
		  cxl_dc_unplug_fn remove, void *arg);
#else
static inline int cxl_dc_unplug_init(struct cxl_dc_unplug *u,
				     const struct range *span)
{
	return 0;
}

static inline void cxl_dc_unplug_exit(struct cxl_dc_unplug *u)
{
}

/* Without memory hot-remove nothing was plugged: nothing to hold. */
static inline int cxl_dc_unplug(struct cxl_dc_unplug *u,
				const struct range *range, int nr,
				cxl_dc_unplug_fn remove, void *arg)
{
	return remove(arg);
}
#endif

#endif /* __CXL_DC_UNPLUG_H__ */
