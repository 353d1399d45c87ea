// SPDX-License-Identifier: GPL-2.0-only
/* Copyright(c) 2026 The CXL DCD project authors. */
#include <linux/device.h>
#include <linux/ioport.h>
#include <linux/list.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/sizes.h>
#include <cxl/dc_lib.h>
#include <cxl/dc_unplug.h>
#include "cxl.h"
#include "../dax/bus.h"
#include "../dax/dax-private.h"

/**
 * DOC: cxl_region_dax - Dynamic Capacity tag groups as device-dax instances
 *
 * A region driver of the CXL region family, picked per region with
 * ``regionZ/driver_override``, for shared memory and for users who want a
 * device or a file system (FAMFS over ``fsdev_dax``) rather than System
 * RAM.  It is the extent library's policy for the region: every accepted
 * group (the extents of one tag, or one untagged extent) becomes free
 * capacity of the region's device-dax view, ``regionZ/dax_regionZ``, a
 * *sparse* dax region whose ``available_size`` is the capacity of its free
 * groups.
 *
 * A device of that dax region takes a group whole by *claim*: writing a tag
 * to the 0-sized ``daxZ.N/uuid`` gives it every extent of that tag, laid
 * out in sequence order (the order every host sharing the memory agrees
 * on), or nothing; writing ``0`` gives it one free untagged extent.  A new
 * 0-sized seed appears after a claim of the seed.  Writing 0 to
 * ``daxZ.N/size`` (``daxctl destroy-device``) gives the claim up.  The
 * claimed device binds to ``device_dax``, ``kmem`` or ``fsdev_dax`` like
 * any dax device.
 *
 * Release: a group no device holds goes back to the device at once.  One
 * that a device holds stays in use, ``release-pending``, until the device
 * gives the claim up; then the library confirms the release.  A group the
 * user gives up without being asked stays free for another claim;
 * ``regionZ/give_back`` returns free groups to the pool.  A forced release
 * of a held group revokes the device at once: its driver is unbound, which
 * tells an fs-dax holder and zaps every mapping (the next access faults
 * with SIGBUS), and the device is deleted.  A device bound to ``kmem`` has
 * its memory unplugged first, all of it or none; while that fails (pages
 * that cannot move), the device stays and the revoke is retried with
 * growing pauses, and the library gives the rest back once it succeeds.
 * Memory that is still System RAM is never answered for: a device whose
 * memory some driver left online (kmem unbound by hand with its memory
 * online) leaves its group *stranded* (cxl_dc_strand()): accepted on the
 * device, in use and never given back nor recovered until reboot.
 *
 * Unbinding first revokes every device holding a group (kmem unplugs,
 * waiting for pinned memory as ``cxl_region_sysram`` does, killably: a
 * killed unbind leaves such memory online and strands its group), then tears
 * the dax view down, then the library forgets the groups; they stay
 * accepted on the device for the next policy.
 *
 * Lock order: the library's per-region policy_lock (around ``activate``,
 * ``release`` and ``force_release``), the device lock of ``dax_regionZ``,
 * a dax device's device lock, the dax core's region and device rwsems,
 * &dax_dc.lock, the library's device lock.  The claim runs under the dax
 * rwsems and looks its tag up with cxl_dc_find_group(); ``validate`` is
 * not used, so the library never waits for a lock of this file.
 */

#define DAX_DC_DRIVER "cxl_region_dax"
#define DAX_DC_VIEW_DRIVER "cxl_region_dax_view"

/**
 * struct dax_dc - the policy's state for one region
 * @cxlr: the region
 * @view: the region's ``dax_regionZ`` device once its driver probed (a
 *	reference is held)
 * @retry: revokes again what a forced release could not revoke yet
 * @lock: protects the fields below and every &struct dax_dc_group
 * @groups: the active groups, oldest first
 * @tries: failed revoke attempts in a row, for the retry's pause
 * @dying: unbinding: no claim, no retry
 * @unplug: bounds each revoke of a device whose memory kmem has online
 */
struct dax_dc {
	struct cxl_region *cxlr;
	struct device *view;
	struct delayed_work retry;
	struct mutex lock; /* see above and the DOC block's lock order */
	struct list_head groups;
	unsigned int tries;
	bool dying;
	struct cxl_dc_unplug unplug;
};

/**
 * struct dax_dc_group - what the policy keeps per active group
 * @node: on &dax_dc.groups
 * @group: the library's group (valid until this policy answers it)
 * @owner: the dax device holding the group, or NULL while it is free
 * @size: capacity of the group
 * @asked: the device wants the group back: answered when @owner lets go
 * @forced: a forced release is revoking @owner
 * @owed: the forced release could not revoke @owner at once and answered
 *	-EBUSY: answered when @owner lets go
 */
struct dax_dc_group {
	struct list_head node;
	struct cxl_dc_group *group;
	struct dev_dax *owner;
	u64 size;
	bool asked;
	bool forced;
	bool owed;
};

static bool dax_dc_group_free(const struct dax_dc_group *dg)
{
	return !dg->owner && !dg->forced;
}

/* The policy answered the group: forget it. */
static void dax_dc_forget(struct dax_dc_group *dg)
{
	list_del(&dg->node);
	cxl_dc_group_set_data(dg->group, NULL);
	kfree(dg);
}

/* --- the claim, from the dax core ------------------------------------------- */

static struct dax_dc_group *dax_dc_free_untagged(struct dax_dc *dd)
{
	struct dax_dc_group *dg;

	list_for_each_entry(dg, &dd->groups, node)
		if (dax_dc_group_free(dg) &&
		    uuid_is_null(cxl_dc_group_tag(dg->group)))
			return dg;
	return NULL;
}

/* The library's tag registry finds the group: no second index here. */
static struct dax_dc_group *dax_dc_free_tagged(struct dax_dc *dd,
					       const uuid_t *tag)
{
	struct cxl_dc_group *group = cxl_dc_find_group(dd->cxlr, tag);
	struct dax_dc_group *dg = group ? cxl_dc_group_data(group) : NULL;

	return dg && dax_dc_group_free(dg) ? dg : NULL;
}

static int dax_dc_claim(struct dax_region *dax_region, struct dev_dax *dev_dax,
			const uuid_t *tag)
{
	struct dax_dc *dd = dax_sparse_region_data(dax_region);
	struct cxl_dc_extent_info info;
	struct dax_dc_group *dg;
	int i, rc;

	guard(mutex)(&dd->lock);
	if (dd->dying)
		return -ENXIO;
	if (uuid_is_null(tag))
		dg = dax_dc_free_untagged(dd);
	else
		dg = dax_dc_free_tagged(dd, tag);
	if (!dg)
		return -ENOENT;
	/* Sequence order: the device's page offsets follow it. */
	for (i = 0; i < cxl_dc_group_nr_extents(dg->group); i++) {
		cxl_dc_group_extent(dg->group, i, &info);
		rc = dax_sparse_add_range(dev_dax, &info.hpa);
		if (rc)
			return rc;	/* the dax core drops what was added */
	}
	dg->owner = dev_dax;
	return 0;
}

static struct dax_dc_group *dax_dc_owned_by(struct dax_dc *dd,
					    struct dev_dax *dev_dax)
{
	struct dax_dc_group *dg;

	list_for_each_entry(dg, &dd->groups, node)
		if (dg->owner == dev_dax)
			return dg;
	return NULL;
}

/*
 * kmem unplugs before it unbinds (see dax_sparse_revoke()), but it leaves
 * memory it cannot remove at unbind online: never hand that out again.
 */
static bool dax_dc_still_ram(struct dax_dc_group *dg)
{
	struct cxl_dc_extent_info info;
	int i;

	for (i = 0; i < cxl_dc_group_nr_extents(dg->group); i++) {
		cxl_dc_group_extent(dg->group, i, &info);
		if (region_intersects(info.hpa.start, range_len(&info.hpa),
				      IORESOURCE_SYSTEM_RAM,
				      IORES_DESC_NONE) != REGION_DISJOINT)
			return true;
	}
	return false;
}

/*
 * The device gave its claim up (size 0, revoked, or unregistered).  A
 * group the device asked for, or one a forced release owes an answer, is
 * answered now; one being revoked is answered by force_release; any other
 * is free again.
 */
static void dax_dc_unclaim(struct dax_region *dax_region,
			   struct dev_dax *dev_dax)
{
	struct dax_dc *dd = dax_sparse_region_data(dax_region);
	struct cxl_dc_group *group;
	struct dax_dc_group *dg;

	guard(mutex)(&dd->lock);
	dg = dax_dc_owned_by(dd, dev_dax);
	if (WARN_ON_ONCE(!dg))
		return;
	dg->owner = NULL;
	group = dg->group;
	if (dax_dc_still_ram(dg)) {
		dev_crit(&dd->cxlr->dev, "%s let go of memory still online\n",
			 dev_name(&dev_dax->dev));
		dax_dc_forget(dg);
		cxl_dc_strand(group);
		return;
	}
	if (dg->owed || (!dg->forced && dg->asked)) {
		dax_dc_forget(dg);
		cxl_dc_release_done(group);
	}
}

/* Read on available_size and create, not on the claim: a walk is fine. */
static resource_size_t dax_dc_available(struct dax_region *dax_region)
{
	struct dax_dc *dd = dax_sparse_region_data(dax_region);
	struct dax_dc_group *dg;
	resource_size_t free = 0;

	guard(mutex)(&dd->lock);
	list_for_each_entry(dg, &dd->groups, node)
		if (dax_dc_group_free(dg))
			free += dg->size;
	return free;
}

static const struct dax_sparse_ops dax_dc_sparse_ops = {
	.claim = dax_dc_claim,
	.unclaim = dax_dc_unclaim,
	.available = dax_dc_available,
};

/* --- the extent library's policy ------------------------------------------------ */

static int dax_dc_activate(struct cxl_region *cxlr, struct cxl_dc_group *group)
{
	struct dax_dc *dd = cxl_dc_policy_data(cxlr);
	struct cxl_dc_extent_info info;
	struct dax_dc_group *dg;
	int i;

	dg = kzalloc_obj(*dg);
	if (!dg)
		return -ENOMEM;
	dg->group = group;
	for (i = 0; i < cxl_dc_group_nr_extents(group); i++) {
		cxl_dc_group_extent(group, i, &info);
		dg->size += range_len(&info.hpa);
	}
	guard(mutex)(&dd->lock);
	list_add_tail(&dg->node, &dd->groups);
	cxl_dc_group_set_data(group, dg);
	return 0;
}

static int dax_dc_release(struct cxl_region *cxlr, struct cxl_dc_group *group)
{
	struct dax_dc *dd = cxl_dc_policy_data(cxlr);
	struct dax_dc_group *dg;

	guard(mutex)(&dd->lock);
	dg = cxl_dc_group_data(group);
	if (WARN_ON_ONCE(!dg))
		return 0;
	if (dg->owner) {
		/* Held by a device: answered when the device lets go. */
		dg->asked = true;
		return -EBUSY;
	}
	dax_dc_forget(dg);
	return 0;
}

/* Pause before the next revoke attempt: 0.5 s, doubling, at most 10 s. */
#define DAX_DC_RETRY_MAX_MS 10000U

static unsigned long dax_dc_retry_delay(unsigned int tries)
{
	return msecs_to_jiffies(cxl_dc_retry_ms(tries, DAX_DC_RETRY_MAX_MS));
}

/*
 * Retry and unbind pick a group before they take &dax_dc.lock to revoke
 * it; meanwhile its device may have let go and the group gone.
 */
static bool dax_dc_listed(struct dax_dc *dd, struct dax_dc_group *dg)
{
	struct dax_dc_group *pos;

	lockdep_assert_held(&dd->lock);
	list_for_each_entry(pos, &dd->groups, node)
		if (pos == dg)
			return true;
	return false;
}

static int dax_dc_revoke_owner(void *owner)
{
	return dax_sparse_revoke(owner);
}

/*
 * Take @dg's device out of use, under the view's device lock, which keeps
 * the dax region and the holder (only the region's delete frees it) in
 * place.  A device bound to kmem may have memory online: the revoke is a
 * bounded attempt (cxl_dc_unplug()) that takes the pages of its online
 * blocks first and fails rather than waiting on a pinned one, so that
 * kmem's unplug never waits for pinned pages (that would hold up the
 * region's worker until they drop).  Returns 0 once nobody holds @dg, or
 * an error with the device as it was.
 */
static int dax_dc_revoke(struct dax_dc *dd, struct dax_dc_group *dg)
{
	struct dev_dax *owner;
	struct range *r;
	int nr, rc;

	guard(device)(dd->view);
	scoped_guard(mutex, &dd->lock) {
		if (!dax_dc_listed(dd, dg) || !dg->owner)
			return 0;
		nr = cxl_dc_group_nr_extents(dg->group);
		r = kcalloc(nr, sizeof(*r), GFP_KERNEL);
		if (!r)
			return -ENOMEM;
		for (int i = 0; i < nr; i++) {
			struct cxl_dc_extent_info info;

			cxl_dc_group_extent(dg->group, i, &info);
			r[i] = info.hpa;
		}
		owner = dg->owner;
		get_device(&owner->dev);
	}
	rc = cxl_dc_unplug(&dd->unplug, r, nr, dax_dc_revoke_owner, owner);
	put_device(&owner->dev);
	kfree(r);
	return rc;
}

/* The first group a device holds (all: also those not owed). */
static struct dax_dc_group *dax_dc_next_held(struct dax_dc *dd, bool all)
{
	struct dax_dc_group *dg;

	guard(mutex)(&dd->lock);
	list_for_each_entry(dg, &dd->groups, node)
		if (dg->owner && (all || dg->owed))
			return dg;
	return NULL;
}

/* Revoke again what a forced release owes, until it goes. */
static void dax_dc_retry(struct work_struct *work)
{
	struct dax_dc *dd = container_of(work, struct dax_dc, retry.work);
	struct dax_dc_group *dg;
	bool again = false;

	/* Unbinding cancels this work before it revokes everything. */
	while ((dg = dax_dc_next_held(dd, false))) {
		/* Answered by dax_dc_unclaim() when it works. */
		if (dax_dc_revoke(dd, dg)) {
			again = true;
			break;
		}
	}
	guard(mutex)(&dd->lock);
	if (!again) {
		dd->tries = 0;
		return;
	}
	if (!dd->dying)
		schedule_delayed_work(&dd->retry,
				      dax_dc_retry_delay(dd->tries++));
}

/*
 * The device took the capacity back.  A free group is simply forgotten; a
 * held one is revoked first.  Once @forced is set nobody else answers the
 * group until this returns, and giving the claim up only clears @owner.
 * When the revoke fails (kmem could not unplug), the group is @owed, the
 * answer is -EBUSY, and the retry work revokes again until it goes.
 */
static int dax_dc_force_release(struct cxl_region *cxlr,
				struct cxl_dc_group *group)
{
	struct dax_dc *dd = cxl_dc_policy_data(cxlr);
	struct dax_dc_group *dg;
	bool asked;
	int rc;

	scoped_guard(mutex, &dd->lock) {
		dg = cxl_dc_group_data(group);
		if (!dg)
			return 0;	/* answered already */
		if (!dg->owner) {
			dax_dc_forget(dg);
			return 0;
		}
		dg->forced = true;
		dev_crit(&cxlr->dev,
			 "capacity of %s taken back by force: revoking it\n",
			 dev_name(&dg->owner->dev));
	}

	/* Held: a claim needs the view, so it is there. */
	rc = dax_dc_revoke(dd, dg);

	scoped_guard(mutex, &dd->lock) {
		/* Stranded as its device let go: never answered. */
		if (cxl_dc_group_data(group) != dg)
			return -EBUSY;
		if (dg->owner) {
			/* Still in use: answered when the device lets go. */
			dev_crit(&cxlr->dev, "%s still in use (%d): retrying\n",
				 dev_name(&dg->owner->dev), rc);
			dg->owed = true;
			if (!dd->dying)
				mod_delayed_work(system_wq, &dd->retry,
						 dax_dc_retry_delay(0));
			return -EBUSY;
		}
		asked = dg->asked;
		dax_dc_forget(dg);
	}
	/* A release asked for earlier is still owed: answer it now. */
	if (asked) {
		cxl_dc_release_done(group);
		return -EBUSY;
	}
	return 0;
}

static const struct cxl_dc_policy_ops dax_dc_ops = {
	.activate = dax_dc_activate,
	.release = dax_dc_release,
	.force_release = dax_dc_force_release,
};

static const struct cxl_dc_policy dax_dc_policy = {
	.name = DAX_DC_DRIVER,
	.tag_mode = CXL_DC_TAG_ANY,
	/* PMD mappings; the library adds the device block size. */
	.granularity = SZ_2M,
	.ops = &dax_dc_ops,
};

/* --- the device-dax view: regionZ/dax_regionZ -------------------------------------- */

static int cxl_region_dax_view_probe(struct device *dev)
{
	struct cxl_dax_region *cxlr_dax = to_cxl_dax_region(dev);
	struct dax_dc *dd = cxl_dc_policy_data(cxlr_dax->cxlr);
	int nid = phys_to_target_node(cxlr_dax->hpa_range.start);
	struct dax_region *dax_region;

	if (!dd)
		return -ENXIO;
	if (nid == NUMA_NO_NODE)
		nid = memory_add_physaddr_to_nid(cxlr_dax->hpa_range.start);
	/* Before any claim: force_release takes the view's device lock. */
	if (!dd->view)
		dd->view = get_device(dev);
	dax_region = alloc_dax_sparse_region(dev, cxlr_dax->cxlr->id,
					     &cxlr_dax->hpa_range, nid, PMD_SIZE,
					     &dax_dc_sparse_ops, dd);
	if (!dax_region)
		return -ENOMEM;
	/*
	 * ndctl's cxl list -N looks for the extents in dax_regionZ, where
	 * the in-flight series puts them: links there to regionZ/extentZ.N
	 * show them without a second object per extent.  A courtesy.
	 */
	if (cxl_dc_mirror_extents(cxlr_dax->cxlr, &dev->kobj))
		dev_warn(dev, "extents not shown here\n");
	return 0;
}

static struct cxl_driver cxl_region_dax_view_driver = {
	.name = DAX_DC_VIEW_DRIVER,
	.probe = cxl_region_dax_view_probe,
	.id = CXL_DEVICE_DAX_REGION,
	.drv = {
		.suppress_bind_attrs = true,
	},
};

/* --- binding ------------------------------------------------------------------------ */

/*
 * Unbinding, before the view goes: no more claims, and every device lets
 * go of its group through a revoke, so that kmem unplugs its memory
 * rather than leave it online.  Memory that cannot go yet (pinned pages)
 * is waited for, idly, as cxl_region_sysram's unbind waits: once unbinding
 * returns, the capacity may go back to the device.
 */
/*
 * Unbinding was killed while @dg's memory is in use: give it up as it is.
 * Unbinding the driver leaves the memory online (kmem: "stuck online
 * until reboot"), and giving the claim up then strands the group
 * (dax_dc_unclaim()).
 */
static void dax_dc_abandon(struct dax_dc *dd, struct dax_dc_group *dg)
{
	struct dev_dax *owner;

	guard(device)(dd->view);
	scoped_guard(mutex, &dd->lock) {
		owner = dax_dc_listed(dd, dg) ? dg->owner : NULL;
		if (owner)
			get_device(&owner->dev);
	}
	if (!owner)
		return;
	dev_crit(&dd->cxlr->dev,
		 "unbind killed: %s in use stays online until reboot\n",
		 dev_name(&owner->dev));
	device_release_driver(&owner->dev);
	/* Fails only if a driver bound again meanwhile: the caller retries. */
	dax_sparse_revoke(owner);
	put_device(&owner->dev);
}

/*
 * Unbinding: revoke every device.  Memory in use (kmem cannot unplug
 * pinned pages) is waited for with growing pauses, killably: killing the
 * task that unbinds leaves it online and its group stranded, as
 * cxl_region_sysram does.
 */
static void dax_dc_revoke_all(void *data)
{
	struct dax_dc *dd = data;
	unsigned int tries = 0, ms;
	struct dax_dc_group *dg;

	/* The links go before the view does. */
	cxl_dc_mirror_extents(dd->cxlr, NULL);
	scoped_guard(mutex, &dd->lock)
		dd->dying = true;
	cancel_delayed_work_sync(&dd->retry);
	while ((dg = dax_dc_next_held(dd, true))) {
		int rc;

		if (fatal_signal_pending(current)) {
			dax_dc_abandon(dd, dg);
			continue;
		}
		rc = dax_dc_revoke(dd, dg);
		if (!rc)
			continue;
		if (!tries)
			dev_warn(&dd->cxlr->dev,
				 "unbind waits for memory still in use (%d); killing it leaves the memory online until reboot\n",
				 rc);
		ms = cxl_dc_retry_ms(tries++, DAX_DC_RETRY_MAX_MS);
		schedule_timeout_killable(msecs_to_jiffies(ms));
	}
}

static void dax_dc_free(void *data)
{
	struct dax_dc *dd = data;

	/* The policy is unregistered: nothing calls back any more. */
	cancel_delayed_work_sync(&dd->retry);
	while (!list_empty(&dd->groups)) {
		struct dax_dc_group *dg = list_first_entry(&dd->groups,
						struct dax_dc_group, node);

		list_del(&dg->node);
		kfree(dg);
	}
	if (dd->view)
		put_device(dd->view);
	cxl_dc_unplug_exit(&dd->unplug);
	kfree(dd);
}

static int cxl_region_dax_probe(struct device *dev)
{
	struct cxl_region *cxlr = container_of(dev, struct cxl_region, dev);
	struct cxl_dax_region *cxlr_dax;
	struct dax_dc *dd;
	int rc;

	if (cxlr->mode != CXL_PARTMODE_DYNAMIC_RAM_1)
		return -ENXIO;
	rc = devm_cxl_region_enable(cxlr);
	if (rc)
		return rc;

	dd = kzalloc_obj(*dd);
	if (!dd)
		return -ENOMEM;
	dd->cxlr = cxlr;
	mutex_init(&dd->lock);
	INIT_LIST_HEAD(&dd->groups);
	INIT_DELAYED_WORK(&dd->retry, dax_dc_retry);
	/* Before any claim: kmem adds memory only to a claimed device. */
	rc = cxl_dc_unplug_init(&dd->unplug, &(struct range) {
					.start = cxlr->params.res->start,
					.end = cxlr->params.res->end,
				});
	if (rc) {
		kfree(dd);
		return rc;
	}
	/* Freed last: after the policy is unregistered. */
	rc = devm_add_action_or_reset(dev, dax_dc_free, dd);
	if (rc)
		return rc;
	dev_set_drvdata(dev, dd);

	/* The groups the device already has come back as free capacity. */
	rc = devm_cxl_dc_register_policy(dev, cxlr, &dax_dc_policy, dd);
	if (rc)
		return rc;

	/* Torn down first at unbind: every dax device lets go. */
	cxlr_dax = devm_cxl_add_dax_region_for(cxlr, DAX_DC_VIEW_DRIVER);
	if (IS_ERR(cxlr_dax))
		return PTR_ERR(cxlr_dax);
	/* The view's driver probed synchronously, unless it failed. */
	if (!device_is_bound(&cxlr_dax->dev)) {
		dev_err(dev, "%s did not come up\n", dev_name(&cxlr_dax->dev));
		return -ENXIO;
	}
	/* Run first at unbind: devices let go before the view goes. */
	return devm_add_action_or_reset(dev, dax_dc_revoke_all, dd);
}

/* --- regionZ/give_back ------------------------------------------------------------- */

/*
 * Free groups go back to the device: a tag gives back that tag's group,
 * 0 every free untagged extent, "all" every free group.  A group the
 * device asked for meanwhile is answered by the release path instead.
 */
static ssize_t give_back_store(struct device *dev,
			       struct device_attribute *attr,
			       const char *buf, size_t len)
{
	struct dax_dc *dd = dev_get_drvdata(dev);
	struct dax_dc_group *dg, *next;
	bool all = sysfs_streq(buf, "all");
	int n = 0, rc;
	uuid_t tag;

	if (!all && dax_sparse_parse_tag(buf, len, &tag))
		return -EINVAL;

	guard(mutex)(&dd->lock);
	list_for_each_entry_safe(dg, next, &dd->groups, node) {
		struct cxl_dc_group *group = dg->group;

		if (!dax_dc_group_free(dg))
			continue;
		if (!all && !uuid_equal(cxl_dc_group_tag(group), &tag))
			continue;
		/*
		 * Once cxl_dc_give_back() succeeds the library may free the
		 * group at any moment: forget it first.  A release that
		 * comes meanwhile waits for &dax_dc.lock.
		 */
		cxl_dc_group_set_data(group, NULL);
		rc = cxl_dc_give_back(group);
		if (rc) {
			cxl_dc_group_set_data(group, dg);
			if (rc == -EBUSY)
				continue;
			return rc;
		}
		list_del(&dg->node);
		kfree(dg);
		n++;
	}
	return n ? len : -ENOENT;
}
static DEVICE_ATTR_WO(give_back);

static struct attribute *cxl_region_dax_attrs[] = {
	&dev_attr_give_back.attr,
	NULL,
};
ATTRIBUTE_GROUPS(cxl_region_dax);

static struct cxl_driver cxl_region_dax_driver = {
	.name = DAX_DC_DRIVER,
	.probe = cxl_region_dax_probe,
	.id = CXL_DEVICE_REGION,
	.drv = {
		.dev_groups = cxl_region_dax_groups,
	},
};

static int __init cxl_region_dax_init(void)
{
	int rc;

	rc = cxl_driver_register(&cxl_region_dax_view_driver);
	if (rc)
		return rc;
	rc = cxl_driver_register(&cxl_region_dax_driver);
	if (rc)
		cxl_driver_unregister(&cxl_region_dax_view_driver);
	return rc;
}
module_init(cxl_region_dax_init);

static void __exit cxl_region_dax_exit(void)
{
	cxl_driver_unregister(&cxl_region_dax_driver);
	cxl_driver_unregister(&cxl_region_dax_view_driver);
}
module_exit(cxl_region_dax_exit);

MODULE_ALIAS_CXL(CXL_DEVICE_REGION);
MODULE_DESCRIPTION("CXL: Dynamic Capacity tag groups as device-dax instances");
MODULE_LICENSE("GPL");
MODULE_IMPORT_NS("CXL");
