// SPDX-License-Identifier: GPL-2.0-only
/* Copyright(c) 2026 The CXL DCD project authors. */
#include <linux/gfp.h>
#include <linux/jiffies.h>
#include <linux/kthread.h>
#include <linux/memory.h>
#include <linux/memory_hotplug.h>
#include <linux/memory-tiers.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <cxl/dc_lib.h>
#include <cxl/dc_unplug.h>
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
 * With the ``memmap_on_memory`` module parameter (and the memory hot-plug
 * one of that name), the memmap of added memory is placed on that memory,
 * as kmem does for a dax device: adding 1 GiB then takes no 16 MiB from
 * memory already online, which a host short of memory may not have.
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
 * attempt.  An attempt is bounded (cxl_dc_unplug(), the way virtio-mem
 * does it): it first takes the pages of every online memory block of the
 * chunk from the page allocator with alloc_contig_range() in a few tries
 * (*fake-offline*), failing rather than waiting on a pinned page, and
 * only then offline_and_remove_memory_ranges() takes the chunk out, all of
 * it or nothing, with no page left to migrate.  An attempt that fails
 * gives every page back and leaves every block as it was: the group stays
 * plugged, shows ``release-pending``, and is retried with growing pauses
 * until it goes; then the device gets its Release DC.  While an attempt
 * runs, nobody but the worker can online or offline the chunk's blocks
 * (-EBUSY).
 * A forced release is logged as critical and the memory is taken out of
 * use at once, as far as offlining allows; the library then gives back
 * whatever the device left of the group.
 *
 * Unbinding removes every group's memory first: a group the device did
 * not ask for stays accepted on the device and the next policy bound to
 * the region reads it back with Get DC Extent List.  The library requires
 * that nothing is in use when it forgets the groups, so unbinding waits
 * until memory held by pinned pages can go, warning every 30 seconds: the
 * memory comes back once the pins drop.  The wait is killable.  Killing
 * the task that unbinds gives that memory up instead: it stays online
 * until reboot, as kmem leaves memory it cannot remove, and each of its
 * groups is *stranded* (cxl_dc_strand()): accepted on the device and never
 * given back, recovered or confirmed released, so the capacity is never
 * handed to anyone while the host still uses it.  Its memory blocks keep
 * the region's memory group, resource name and memory type, leaked on
 * purpose.  Deleting the region afterwards is the administrator's
 * choice, as with kmem: the decoders then stop mapping memory the host
 * still has.
 *
 * Lock order: the library's per-region policy_lock (held around
 * activate, release and force_release), then &sysram.lock, then the
 * library's device lock (cxl_dc_release_done()) or the memory hot-plug
 * locks (the device hot-plug lock and mem_hotplug_lock, taken by adding,
 * onlining, offlining and removing memory), then the lock of
 * &sysram.unplug.  Its memory notifier runs under the hot-plug locks, also
 * when sysram_plug() onlines memory under &sysram.lock, and takes only that
 * spinlock, under which nothing else is called.  The worker calls
 * offline_and_remove_memory_ranges() holding no lock of this file.
 * ``validate`` runs under the library's device lock and takes no lock
 * here.
 */

/* Copied per region: memory left online outlives the module. */
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

static bool memmap_on_memory;
module_param(memmap_on_memory, bool, 0644);
MODULE_PARM_DESC(memmap_on_memory,
		 "Place the memmap of added memory on that memory, as kmem's memmap_on_memory does (needs memory_hotplug.memmap_on_memory)");

/* Pause before retrying memory that could not be offlined, at most. */
#define SYSRAM_RETRY_MAX_MS	8000U

/**
 * struct sysram_chunk - memory added as one unit
 * @node: entry in &sysram.plugged or &sysram.releasing
 * @group: the library's group, NULL for a static region or once
 *	unbinding took the memory out
 * @give_back: the device asked for it: confirm with cxl_dc_release_done()
 * @tries: failed unplug attempts so far
 * @next_try: when the worker tries again (jiffies)
 * @nr: number of ranges
 * @range: host physical ranges, memory block aligned
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
 * @res_name: name of its System RAM resources, a copy of sysram_res_name
 * @online_type: &enum mmop for memory added from now on
 * @lock: protects @plugged, @releasing, @kick and @dying
 * @plugged: chunks in use as System RAM
 * @releasing: chunks to take out, oldest first
 * @kick: the worker has new work
 * @dying: the driver is unbinding: no new memory
 * @stranded: unbinding was killed and left memory online: its memory
 *	group, resource name and memory type stay until reboot
 * @worker: the thread that offlines and removes memory
 * @wq: where @worker waits for work
 * @drained: where unbinding waits for @releasing to empty
 * @unplug: @worker's bounded attempts, and their memory notifier
 */
struct sysram {
	struct cxl_region *cxlr;
	int nid;
	struct memory_dev_type *mtype;
	int mgid;
	const char *res_name;
	int online_type;
	struct mutex lock; /* see above and the DOC block's lock order */
	struct list_head plugged;
	struct list_head releasing;
	bool kick;
	bool dying;
	bool stranded;
	struct task_struct *worker;
	wait_queue_head_t wq;
	wait_queue_head_t drained;
	struct cxl_dc_unplug unplug;
};

/* --- the worker ----------------------------------------------------------- */

static int sysram_remove(void *arg)
{
	struct sysram_chunk *c = arg;

	return offline_and_remove_memory_ranges(c->range, c->nr);
}

/*
 * One attempt to take @c out, bounded (see the DOC block): all of it or
 * nothing.  Fails with -EBUSY at once if one of its blocks is on its way
 * on- or offline: the retry comes soon enough.  Context: the worker
 * thread, no lock held.
 */
static int sysram_unplug(struct sysram *sr, struct sysram_chunk *c)
{
	return cxl_dc_unplug(&sr->unplug, c->range, c->nr, sysram_remove, c);
}

/* After an attempt on @c: forget it, or plan the next try. */
static bool sysram_done(struct sysram *sr, struct sysram_chunk *c, int rc)
{
	lockdep_assert_held(&sr->lock);
	if (rc) {
		unsigned int ms = cxl_dc_retry_ms(c->tries, SYSRAM_RETRY_MAX_MS);

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
	mhp_t flags = MHP_NID_IS_MGID;
	int i, rc = 0;

	lockdep_assert_held(&sr->lock);
	/*
	 * The memmap of the new memory comes from that memory itself, not
	 * from memory already online: 16 MiB per GiB a host that is short of
	 * memory, when a fabric manager adds some, may not have.  Where the
	 * memory block layout allows it (mhp_supports_memmap_on_memory()).
	 */
	if (READ_ONCE(memmap_on_memory)) {
		if (mhp_supports_memmap_on_memory())
			flags |= MHP_MEMMAP_ON_MEMORY;
		else
			dev_info_once(&sr->cxlr->dev,
				      "memmap_on_memory: not possible here, see memory_hotplug.memmap_on_memory\n");
	}
	/*
	 * Otherwise the memmap comes from memory already online.  When the
	 * host has not that much available, adding would take its last free
	 * pages before failing, and the OOM killer would end tasks meanwhile:
	 * fail now, the offer goes back to the device.
	 */
	if (!(flags & MHP_MEMMAP_ON_MEMORY)) {
		unsigned long need = 0;
		long avail = si_mem_available();

		for (i = 0; i < c->nr; i++)
			need += DIV_ROUND_UP(PHYS_PFN(range_len(&c->range[i])) *
					     sizeof(struct page), PAGE_SIZE);
		if (avail < 0 || need > avail) {
			dev_warn(&sr->cxlr->dev,
				 "%pra: its memmap needs %lu KiB, %ld KiB available: not added (see memmap_on_memory)\n",
				 &c->range[0], need << (PAGE_SHIFT - 10),
				 avail << (PAGE_SHIFT - 10));
			return -ENOMEM;
		}
	}
	for (i = 0; i < c->nr; i++) {
		rc = __add_memory_driver_managed(sr->mgid, c->range[i].start,
						 range_len(&c->range[i]),
						 sr->res_name, flags,
						 online_type);
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
 * Unbinding was killed with memory still in use: leave it online until
 * reboot and strand its groups (see the DOC block).  The worker stops
 * first; its attempts are bounded, and once it is gone no page is held
 * fake-offline.
 */
static void sysram_strand_all(struct sysram *sr)
{
	struct sysram_chunk *c, *next;

	kthread_stop(sr->worker);
	sr->worker = NULL;
	guard(mutex)(&sr->lock);
	list_for_each_entry_safe(c, next, &sr->releasing, node) {
		dev_crit(&sr->cxlr->dev,
			 "unbind killed: %pra in use stays online until reboot\n",
			 &c->range[0]);
		if (c->group) {
			cxl_dc_group_set_data(c->group, NULL);
			cxl_dc_strand(c->group);
		}
		list_del(&c->node);
		kfree(c);
		sr->stranded = true;
	}
}

/*
 * Unbinding: take every chunk out before the library forgets the groups.
 * Waits as long as pinned pages keep memory online, warning every 30
 * seconds, until the pins drop or the unbinding task is killed (see the
 * DOC block).  Each attempt of the worker is bounded; only this wait is
 * not.
 */
static void sysram_drain(void *data)
{
	struct sysram *sr = data;
	struct sysram_chunk *c, *next;
	long rc;

	scoped_guard(mutex, &sr->lock) {
		WRITE_ONCE(sr->dying, true);
		list_for_each_entry_safe(c, next, &sr->plugged, node)
			sysram_queue(sr, c);
	}
	for (;;) {
		rc = wait_event_killable_timeout(sr->drained,
						 list_empty_careful(&sr->releasing),
						 30 * HZ);
		if (rc > 0)
			return;
		if (rc < 0)
			break;
		dev_warn(&sr->cxlr->dev,
			 "unbind waits for memory still in use to go offline; killing it leaves the memory online until reboot\n");
	}
	sysram_strand_all(sr);
}

static void sysram_stop(void *data)
{
	struct sysram *sr = data;

	if (sr->worker)
		kthread_stop(sr->worker);
	/* Only chunks that never got queued are left: none after a drain. */
	WARN_ON_ONCE(!list_empty(&sr->plugged) || !list_empty(&sr->releasing));
	/* No attempt after the worker's end: nothing is held fake-offline. */
	cxl_dc_unplug_exit(&sr->unplug);
	/* Memory left online still names them; kmem keeps its own the same way. */
	if (sr->stranded)
		return;
	memory_group_unregister(sr->mgid);
	clear_node_memory_type(sr->nid, sr->mtype);
	kfree(sr->res_name);
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

	sr->nid = phys_to_target_node(res->start);
	if (sr->nid == NUMA_NO_NODE)
		sr->nid = memory_add_physaddr_to_nid(res->start);
	sr->mtype = sysram_memory_type(sr->nid);
	if (IS_ERR(sr->mtype))
		return ERR_CAST(sr->mtype);
	sr->res_name = kstrdup(sysram_res_name, GFP_KERNEL);
	if (!sr->res_name)
		return ERR_PTR(-ENOMEM);
	sr->mgid = sysram_group(sr);
	if (sr->mgid < 0) {
		rc = sr->mgid;
		goto free_name;
	}
	/* Before any memory is added: it sees every change of its blocks. */
	rc = cxl_dc_unplug_init(&sr->unplug, &(struct range) {
					.start = res->start,
					.end = res->end,
				});
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
	cxl_dc_unplug_exit(&sr->unplug);
unregister_group:
	memory_group_unregister(sr->mgid);
free_name:
	kfree(sr->res_name);
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
