// SPDX-License-Identifier: GPL-2.0-only
/* Copyright(c) 2026 The CXL DCD project authors. */
#include <linux/debugfs.h>
#include <linux/device.h>
#include <linux/mempool.h>
#include <linux/module.h>
#include <linux/numa.h>
#include <linux/rbtree.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/workqueue.h>
#include <kunit/visibility.h>
#include "dc_extent.h"
#include "core.h"
#include "trace.h"

/**
 * DOC: Dynamic Capacity extent library
 *
 * The library owns the conversation with a Dynamic Capacity Device and has
 * no policy of its own; this file is its state machine and entry points
 * (the internals below list the other files).  The event log drain hands it
 * Dynamic Capacity event records; it gathers the records of one offer (a
 * *chain*: every record up to and including the first with the More flag
 * clear), checks every extent as untrusted data, groups the extents by tag,
 * asks the region's policy (&struct cxl_dc_policy_ops) about each group,
 * and answers the chain with exactly one Add Dynamic Capacity Response
 * listing the accepted extents in offered order.  Only then does the policy
 * put the groups to use.  Release requests run the other way: the policy
 * lets go, then the library sends Release Dynamic Capacity.  A release,
 * forced or not, takes every group it touches as a whole; after a forced
 * release the device gets back, once the policy let go, whatever it still
 * holds of the group.
 *
 * Rules (each rejection is traced with its reason, see &enum dc_reject):
 *
 * - A chain longer than %CXL_DC_CHAIN_MAX records, still open
 *   ``dc_chain_timeout_ms`` after its first record, or open when the event
 *   log reports an overflow (its end was lost) is rejected whole; it still
 *   gets its one response.  No response is sent while no offer is pending.
 *   Responses go out first-in first-out.  When the device goes away, every
 *   offer it still waits for is answered first.  The response payload is
 *   allocated once per device, so no offer goes unanswered for want of
 *   memory.
 * - A tagged group is accepted or rejected whole.  A tag live anywhere on
 *   the host rejects a new group with that tag; the tag is claimed in the
 *   same step as it is checked, so two devices cannot both take it.
 *   Sequence numbers of a
 *   sharable group must be exactly 0..n-1; other groups are numbered in
 *   arrival order.  The region's tag mode filters tagged and untagged
 *   extents.
 * - An extent must be non-empty, not wrap, lie in the dynamic_ram_1
 *   partition and in one committed, non-interleaved region, be aligned to
 *   the device block size and to the policy's granularity, and overlap no
 *   live extent nor another extent of the same offer.  A group may not span
 *   regions.  An offer for a region with no policy is rejected.
 * - When a policy registers, extents the device already has as accepted
 *   are read back with Get DC Extent List and handed to it without being
 *   acknowledged again; events arriving meanwhile wait.  Each recovered
 *   group is checked like an offer (tag mode, granularity, a tag live
 *   elsewhere, ``validate``); one that fails, or whose activation fails,
 *   is *kept*: accepted on the device, shown as ``accepted``, used by
 *   nobody, and given back only when the device asks.  Capacity the device
 *   asked for whose Release DC failed when its policy unbound is never
 *   recovered; the device's next request gets it.
 * - A release record is checked for length and wrap, and clamped to each
 *   region it touches: every group in the range goes as a whole, through
 *   its policy while one uses it.  Where no group lies, whatever the
 *   device still holds is given back (a forced release took it already).
 *   A Release DC that failed is retried from the device's own list of
 *   what it still holds, never by resending what it may have taken.
 * - A Region Configuration Updated record, in turn with the others, has the
 *   configuration read again and checked as at probe.  The partition keeps
 *   the layout it got at probe; later offers are checked against the length
 *   the device now maps and its block size.  Whatever the host holds past
 *   that length goes out of use through the forced path, logged as
 *   critical.  A configuration that cannot be read, or is not valid, has
 *   every offer declined until a valid one is read, and changes nothing
 *   else.
 *
 * Lock order, outermost first::
 *
 *   cxl_dc_region.policy_lock       one policy callback per region at a time
 *   cxl_dc_dev.process_lock         one processor of device work at a time
 *     cxl_rwsem.region (read)       region <-> decoder mapping
 *       cxl_rwsem.dpa (read)        decoder <-> DPA mapping
 *         cxl_dc_dev.lock           queued work, extents, groups
 *           cxl_dc_tags_lock        host-wide tag registry
 *
 * The two outermost locks are never held together.  The event log drain
 * hands records over under its log_lock, taking only cxl_dc_dev.lock
 * inside it to queue them; the device's records are processed on its
 * ordered workqueue, in the order the device sent them, so the event
 * interrupt thread never waits for a policy.  What that processing asks
 * of a policy, ``activate``, ``release`` and ``force_release`` (they
 * hot-plug, offline and may wait), is queued per region and run by the
 * region's own worker under its policy_lock only, in order: so a slow
 * activation in one region holds up neither the device's records nor a
 * forced release in another region, and a release waits for the
 * activation of its group.  A policy must not wait for Dynamic Capacity
 * events inside a callback.  Unregistering a policy takes policy_lock, so
 * it waits for the callback in flight, and drops the ones queued.
 * ``validate`` runs under every lock above but the tag registry and
 * policy_lock: a policy must not take, in ``validate``, a lock it holds
 * while it calls into the library.  Lockdep checks that without help:
 * every entry point a policy calls takes cxl_dc_dev.lock, which
 * ``validate`` runs under, so such a lock closes a cycle the first time
 * both paths run.  kobject_uevent() runs under no lock of this file.
 */

VISIBLE_IF_KUNIT unsigned int cxl_dc_chain_timeout_ms = 20000;
EXPORT_SYMBOL_IF_KUNIT(cxl_dc_chain_timeout_ms);
module_param_named(dc_chain_timeout_ms, cxl_dc_chain_timeout_ms, uint, 0644);
MODULE_PARM_DESC(dc_chain_timeout_ms,
		 "Close an offer whose last record has not arrived after this long (ms, 100..600000)");

/* An offer is always closed in the end: the timeout cannot be turned off. */
static unsigned int dc_chain_timeout_clamped(void)
{
	return clamp(READ_ONCE(cxl_dc_chain_timeout_ms), 100U, 600000U);
}

/*
 * Count a rejected extent, and say so in the log (rate limited: a hostile
 * device must not flood it); the trace has every one.  Context: dcd->lock.
 */
static void dc_count_reject(struct cxl_dc_dev *dcd, enum dc_reject why,
			    u64 dpa, u64 len)
{
	lockdep_assert_held(&dcd->lock);
	dcd->rejected[why]++;
	if (why != DC_REJECT_TEARDOWN)
		dev_info_ratelimited(dcd->mds->cxlds.dev,
				     "DC extent DPA %#llx+%#llx rejected: %s\n",
				     dpa, len, cxl_dc_reject_str[why]);
}

/* Context: dcd->lock held. */
static void dc_count(struct cxl_dc_dev *dcd, enum dc_outcome what,
		     unsigned long n)
{
	lockdep_assert_held(&dcd->lock);
	dcd->outcome[what] += n;
}

/* Host-wide registry of live tags: tag -> group, see the lock order. */
static DEFINE_MUTEX(cxl_dc_tags_lock);
static struct rb_root cxl_dc_tags = RB_ROOT;

/* --- the host-wide tag registry ---------------------------------------- */

static struct cxl_dc_group *dc_tag_find(const uuid_t *tag)
{
	struct rb_node *n = cxl_dc_tags.rb_node;

	lockdep_assert_held(&cxl_dc_tags_lock);
	while (n) {
		struct cxl_dc_group *g = rb_entry(n, struct cxl_dc_group, tag_node);
		int c = memcmp(tag, &g->tag, sizeof(*tag));

		if (!c)
			return g;
		n = c < 0 ? n->rb_left : n->rb_right;
	}
	return NULL;
}

static void dc_tag_insert(struct cxl_dc_group *group)
{
	struct rb_node **link = &cxl_dc_tags.rb_node, *parent = NULL;

	lockdep_assert_held(&cxl_dc_tags_lock);
	while (*link) {
		struct cxl_dc_group *g = rb_entry(*link, struct cxl_dc_group,
						  tag_node);

		parent = *link;
		if (memcmp(&group->tag, &g->tag, sizeof(g->tag)) < 0)
			link = &parent->rb_left;
		else
			link = &parent->rb_right;
	}
	rb_link_node(&group->tag_node, parent, link);
	rb_insert_color(&group->tag_node, &cxl_dc_tags);
}

/*
 * List a group's tag, unless the tag is live already (anywhere on the
 * host).  Checking and listing are one step, so two devices cannot both
 * take a tag.  An untagged group needs nothing.
 */
VISIBLE_IF_KUNIT bool cxl_dc_tag_claim(struct cxl_dc_group *group)
{
	if (uuid_is_null(&group->tag) || group->tag_listed)
		return true;
	guard(mutex)(&cxl_dc_tags_lock);
	if (dc_tag_find(&group->tag))
		return false;
	dc_tag_insert(group);
	group->tag_listed = true;
	return true;
}
EXPORT_SYMBOL_IF_KUNIT(cxl_dc_tag_claim);

VISIBLE_IF_KUNIT void cxl_dc_tag_drop(struct cxl_dc_group *group)
{
	if (!group->tag_listed)
		return;
	guard(mutex)(&cxl_dc_tags_lock);
	rb_erase(&group->tag_node, &cxl_dc_tags);
	group->tag_listed = false;
}
EXPORT_SYMBOL_IF_KUNIT(cxl_dc_tag_drop);

/*
 * A tagged group whose tag is live elsewhere on the host is rejected whole
 * (recovery checks it later, when it claims the tag).  Context: dcd->lock.
 */
VISIBLE_IF_KUNIT void cxl_dc_check_tags_live(struct dc_offer_ext *oe, int n)
{
	guard(mutex)(&cxl_dc_tags_lock);
	for (int i = 0; i < n; i++) {
		if (oe[i].first != i || oe[i].why != DC_OK ||
		    !dc_is_tagged(oe[i].raw))
			continue;
		if (dc_tag_find((const uuid_t *)oe[i].raw->tag))
			cxl_dc_reject_group(oe, i, DC_REJECT_TAG_LIVE);
	}
}
EXPORT_SYMBOL_IF_KUNIT(cxl_dc_check_tags_live);

/* --- groups --------------------------------------------------------------- */

static void dc_trace_group(struct cxl_dc_dev *dcd, struct cxl_dc_group *group,
			   bool released)
{
	for (int i = 0; i < group->nr; i++) {
		struct cxl_dc_extent *e = group->ext[i];

		if (released)
			trace_cxl_dc_released(dc_memdev(dcd), dcr_name(group->dcr),
					      e->dpa, e->len, &group->tag,
					      e->seq, group->forced ? "forced" : "");
		else
			trace_cxl_dc_release(dc_memdev(dcd), dcr_name(group->dcr),
					     e->dpa, e->len, &group->tag,
					     e->seq, group->forced ? "forced" : "");
	}
}

static void dc_set_state(struct cxl_dc_group *group, enum cxl_dc_extent_state s)
{
	group->state = s;
	for (int i = 0; i < group->nr; i++)
		WRITE_ONCE(group->ext[i]->state, s);
}

/* Free a group that never went live (its extents are in no tree). */
static void dc_group_free(struct cxl_dc_group *group)
{
	cxl_dc_tag_drop(group);
	for (int i = 0; i < group->nr; i++)
		if (group->ext[i])
			kobject_put(&group->ext[i]->kobj);
	kfree(group);
}

/*
 * Make an accepted group live: extents in the tree and in sysfs (its tag
 * was claimed when it was checked).  Cannot fail.
 */
static void dc_group_link(struct cxl_dc_region *dcr, struct cxl_dc_group *group)
{
	lockdep_assert_held(&dcr->dcd->lock);

	group->dcr = dcr;
	for (int i = 0; i < group->nr; i++) {
		group->ext[i]->group = group;
		cxl_dc_extent_insert(dcr, group->ext[i]);
		cxl_dc_extent_publish(dcr, group->ext[i]);
	}
	list_add_tail(&group->node, &dcr->groups);
	dc_set_state(group, CXL_DC_EXTENT_ACCEPTED);
	group->policy = dcr->policy;
}

/* Forget a live group: the device no longer has it, or nobody uses it. */
static void dc_group_unlink(struct cxl_dc_group *group)
{
	struct cxl_dc_region *dcr = group->dcr;

	lockdep_assert_held(&dcr->dcd->lock);

	for (int i = 0; i < group->nr; i++) {
		rb_erase(&group->ext[i]->node, &dcr->extents);
		dcr->nr_extents--;
		cxl_dc_extent_unpublish(dcr, group->ext[i]);
	}
	list_del(&group->node);
	/* Gone from the device: no callback for it is due any more. */
	list_del(&group->todo);
	dc_group_free(group);
}

static struct cxl_dc_group *dc_group_alloc(int nr, const uuid_t *tag)
{
	struct cxl_dc_group *group = kzalloc_flex(*group, ext, nr);

	if (!group)
		return NULL;
	group->nr = nr;
	uuid_copy(&group->tag, tag);
	INIT_LIST_HEAD(&group->todo);
	return group;
}

/*
 * Release DC for what the device still holds of a group: after it took
 * part of the group by force, or after a Release DC split over several
 * commands failed part way (the device kept what the failed command named
 * and may have taken the rest).
 */
static int dc_group_give_back_rest(struct cxl_dc_dev *dcd,
				   struct cxl_dc_group *group)
{
	struct range *r __free(kvfree) = NULL;
	int n = cxl_dc_group_still_held(dcd, group, &r);

	if (n <= 0)
		return n;
	if (group->forced)
		dev_warn(&group->dcr->cxlr->dev,
			 "giving back %d range(s) the device left of a group it took by force\n",
			 n);
	return cxl_dc_send_list(dcd, CXL_MBOX_OP_RELEASE_DC, n, cxl_dc_range_get, r) ?:
	       n;
}

/*
 * Has the device taken part of @group by force in a record the host read
 * but has not handled yet?  The device forgot that capacity when it sent
 * the record: a Release DC naming it would be refused.
 */
static bool dc_force_queued(struct cxl_dc_dev *dcd, struct cxl_dc_group *group)
{
	struct cxl_dc_chain *c;

	lockdep_assert_held(&dcd->lock);
	list_for_each_entry(c, &dcd->closed, node) {
		u64 dpa = le64_to_cpu(c->ext[0].start_dpa);
		u64 len = le64_to_cpu(c->ext[0].length);

		if (c->type != CXL_DC_EVENT_FORCED_RELEASE)
			continue;
		for (int i = 0; i < group->nr; i++)
			if (dpa < group->ext[i]->dpa + group->ext[i]->len &&
			    group->ext[i]->dpa < dpa + len)
				return true;
	}
	return false;
}

/*
 * Give a live group back to the device and forget it.  On failure the
 * group stays, release-pending, and the next release request for it
 * retries with what the device still holds then.  What the device took
 * by force, handled or not yet, is not named: only what it still holds.
 */
static int dc_group_give_back(struct cxl_dc_dev *dcd, struct cxl_dc_group *group)
{
	int rc;

	lockdep_assert_held(&dcd->lock);
	if (group->forced || group->recheck || dc_force_queued(dcd, group))
		rc = dc_group_give_back_rest(dcd, group);
	else
		rc = cxl_dc_send_list(dcd, CXL_MBOX_OP_RELEASE_DC, group->nr,
				      cxl_dc_group_get, group) ?: group->nr;
	if (rc < 0) {
		dev_err(dc_dev(dcd),
			"Release DC of %d extent(s) failed: %d; retried when the device asks again\n",
			group->nr, rc);
		dc_count(dcd, DC_RELEASE_FAILED, 1);
		group->recheck = true;
		dc_set_state(group, CXL_DC_EXTENT_RELEASE_PENDING);
		return rc;
	}
	if (rc) {
		dcd->releases++;
		dc_count(dcd, DC_RELEASED, rc);
	}
	dc_trace_group(dcd, group, true);
	dc_group_unlink(group);
	return 0;
}

/* --- capacity the device asked for, not given back yet ------------------ */

struct dc_withheld {
	struct list_head node;
	struct range r;
	bool stranded;
};

/*
 * Remember a release-pending group's ranges when its group goes away, or
 * a stranded group's: in use until reboot, never given back.
 */
static void dc_withhold(struct cxl_dc_dev *dcd, struct cxl_dc_group *group)
{
	lockdep_assert_held(&dcd->lock);
	for (int i = 0; i < group->nr; i++) {
		struct dc_withheld *w = kzalloc_obj(*w);

		/* Without memory the next bind takes it up: logged. */
		if (!w) {
			dev_err(dc_dev(dcd), "forgetting a %s\n",
				group->stranded ? "stranded extent" :
						  "pending release");
			return;
		}
		w->r = (struct range) { group->ext[i]->dpa,
					group->ext[i]->dpa + group->ext[i]->len - 1 };
		w->stranded = group->stranded;
		list_add_tail(&w->node, &dcd->withheld);
	}
}

/*
 * Take the stranded ranges out of the @n ranges at @r (room for @room):
 * what is left may be given back.  Returns the new count.
 */
static int dc_stranded_clip(struct cxl_dc_dev *dcd, struct range *r, int n,
			    int room)
{
	struct dc_withheld *w;

	lockdep_assert_held(&dcd->lock);
	list_for_each_entry(w, &dcd->withheld, node) {
		if (!w->stranded)
			continue;
		for (int i = 0; i < n; i++) {
			struct range cut = r[i];

			if (!range_overlaps(&cut, &w->r))
				continue;
			/* At most one piece each side of the stranded one. */
			if (cut.start < w->r.start && cut.end > w->r.end &&
			    n < room) {
				r[n++] = (struct range) { w->r.end + 1, cut.end };
				cut.end = w->r.start - 1;
			} else if (cut.start < w->r.start) {
				cut.end = w->r.start - 1;
			} else if (cut.end > w->r.end) {
				cut.start = w->r.end + 1;
			} else {
				/* Wholly stranded: drop it. */
				r[i--] = r[--n];
				continue;
			}
			r[i] = cut;
		}
	}
	return n;
}

static bool dc_withheld_overlaps(struct cxl_dc_dev *dcd, u64 dpa, u64 len)
{
	struct range r = { dpa, dpa + len - 1 };
	struct dc_withheld *w;

	list_for_each_entry(w, &dcd->withheld, node)
		if (range_overlaps(&w->r, &r))
			return true;
	return false;
}

/*
 * [@start, @end] went back to the device, or it took it.  A stranded range
 * goes only when the device took it (@forced), memory the host still uses.
 */
static void dc_withheld_clear(struct cxl_dc_dev *dcd, u64 start, u64 end,
			      bool forced)
{
	struct dc_withheld *w, *n;

	list_for_each_entry_safe(w, n, &dcd->withheld, node) {
		if (w->r.start >= start && w->r.end <= end &&
		    (!w->stranded || forced)) {
			if (w->stranded)
				dev_crit(dc_dev(dcd),
					 "device took stranded DPA %#llx-%#llx, still in use\n",
					 w->r.start, w->r.end);
			list_del(&w->node);
			kfree(w);
		}
	}
}

/* --- gathering offers --------------------------------------------------------- */

VISIBLE_IF_KUNIT void cxl_dc_chain_free(struct cxl_dc_chain *chain)
{
	if (!chain)
		return;
	if (chain->pool) {
		mempool_free(chain, chain->pool);
		return;
	}
	kvfree(chain->ext);
	kfree(chain);
}
EXPORT_SYMBOL_IF_KUNIT(cxl_dc_chain_free);

VISIBLE_IF_KUNIT void cxl_dc_chain_add(struct cxl_dc_dev *dcd,
				       const struct cxl_event_dcd *rec)
{
	struct cxl_dc_chain *chain = dcd->open;

	lockdep_assert_held(&dcd->lock);
	if (!chain) {
		chain = kzalloc_obj(*chain);
		if (!chain) {
			/* Remember that an offer is pending, if nothing else. */
			dev_err(dc_dev(dcd), "no memory for a DC offer\n");
			return;
		}
		dcd->open = chain;
		chain->deadline = jiffies +
				  msecs_to_jiffies(dc_chain_timeout_clamped());
		mod_delayed_work(system_dfl_wq, &dcd->timeout,
				 chain->deadline - jiffies);
	}
	chain->type = CXL_DC_EVENT_ADD_CAPACITY;
	if (chain->why)
		return;
	if (chain->nr == CXL_DC_CHAIN_MAX) {
		chain->why = DC_REJECT_CHAIN_CAP;
		return;
	}
	if (chain->nr == chain->alloc) {
		int alloc = min(CXL_DC_CHAIN_MAX, max(8, 2 * chain->alloc));
		void *ext = kvrealloc(chain->ext, alloc * sizeof(*chain->ext),
				      GFP_KERNEL);

		if (!ext) {
			chain->why = DC_REJECT_NOMEM;
			return;
		}
		chain->ext = ext;
		chain->alloc = alloc;
	}
	chain->ext[chain->nr++] = rec->extent;
}
EXPORT_SYMBOL_IF_KUNIT(cxl_dc_chain_add);

VISIBLE_IF_KUNIT void cxl_dc_chain_close(struct cxl_dc_dev *dcd)
{
	lockdep_assert_held(&dcd->lock);
	if (!dcd->open) {
		/* The first record found no memory: answer it anyway. */
		dcd->open = kzalloc_obj(*dcd->open);
		if (!dcd->open)
			return;
		dcd->open->type = CXL_DC_EVENT_ADD_CAPACITY;
		dcd->open->why = DC_REJECT_NOMEM;
	}
	cancel_delayed_work(&dcd->timeout);
	list_add_tail(&dcd->open->node, &dcd->closed);
	dcd->open = NULL;
}
EXPORT_SYMBOL_IF_KUNIT(cxl_dc_chain_close);

/* Let the device's work run.  Context: dcd->lock held. */
static void dc_kick(struct cxl_dc_dev *dcd)
{
	lockdep_assert_held(&dcd->lock);
	if (!dcd->dying && !list_empty(&dcd->closed))
		queue_work(dcd->wq, &dcd->work);
}

VISIBLE_IF_KUNIT void cxl_dc_chain_timeout(struct work_struct *work)
{
	struct cxl_dc_dev *dcd = container_of(to_delayed_work(work),
					      struct cxl_dc_dev, timeout);

	scoped_guard(mutex, &dcd->lock) {
		if (!dcd->open)
			return;
		/*
		 * Armed for an offer that closed meanwhile: the one open now
		 * has its own deadline.
		 */
		if (time_before(jiffies, dcd->open->deadline)) {
			mod_delayed_work(system_dfl_wq, &dcd->timeout,
					 dcd->open->deadline - jiffies);
			return;
		}
		dev_warn(dc_dev(dcd), "DC offer not finished after %u ms: rejected\n",
			 dc_chain_timeout_clamped());
		/*
		 * Records lost to an event log overflow never come, so the
		 * next record starts a new offer.  A device that merely was
		 * slow sends its late tail as a new offer, which is then
		 * answered too: the device refuses the answer, which is
		 * logged, and nothing is accepted twice.
		 */
		dcd->open->why = DC_REJECT_CHAIN_TIMEOUT;
		cxl_dc_chain_close(dcd);
		dc_kick(dcd);
	}
}
EXPORT_SYMBOL_IF_KUNIT(cxl_dc_chain_timeout);

/* --- answering offers --------------------------------------------------------- */

static enum dc_reject dc_check_extent(struct cxl_dc_dev *dcd,
				      struct dc_offer_ext *oe)
{
	struct cxl_endpoint_decoder *cxled;
	struct cxl_region_params *p;
	struct cxl_region *cxlr;
	enum dc_reject why;

	lockdep_assert_held(&dcd->lock);
	if (dcd->config_bad)
		return DC_REJECT_PARTITION;
	why = cxl_dc_check_dpa(&dcd->mds->dc.config, oe->dpa, oe->len);
	if (why)
		return why;

	cxlr = cxl_dpa_to_region(dc_memdev(dcd), oe->dpa);
	if (!cxlr || !cxlr->dc || cxlr->params.state != CXL_CONFIG_COMMIT)
		return DC_REJECT_NO_REGION;
	oe->dcr = cxlr->dc;
	p = &cxlr->params;
	if (p->interleave_ways != 1)
		return DC_REJECT_INTERLEAVE;
	cxled = p->targets[0];
	if (!cxled || !cxled->dpa_res ||
	    oe->dpa + oe->len - 1 > cxled->dpa_res->end)
		return DC_REJECT_SPANS;
	if (!oe->dcr->policy)
		return DC_REJECT_NO_POLICY;

	oe->hpa = p->res->start + (oe->dpa - cxled->dpa_res->start);
	why = cxl_dc_check_policy(oe->dcr->tag_mode, oe->dcr->policy->granularity,
				  oe->hpa, oe->len, dc_is_tagged(oe->raw));
	if (why)
		return why;
	if (cxl_dc_overlaps_live(oe->dcr, oe->dpa, oe->len))
		return DC_REJECT_OVERLAP;
	return DC_OK;
}

/*
 * Build the group led by @first as objects; NULL (and the members
 * rejected) on failure.
 */
static struct cxl_dc_group *dc_build_group(struct dc_offer_ext *oe, int first)
{
	struct cxl_dc_group *group;
	int nr = 0;

	for (int i = first; i >= 0; i = oe[i].next) {
		if (oe[i].why != DC_OK)
			return NULL;
		nr++;
	}

	group = dc_group_alloc(nr, (const uuid_t *)oe[first].raw->tag);
	if (!group)
		goto nomem;
	group->dcr = oe[first].dcr;
	for (int i = first; i >= 0; i = oe[i].next) {
		group->ext[oe[i].seq] = cxl_dc_extent_alloc(oe[i].dpa, oe[i].len,
							oe[i].hpa, oe[i].seq);
		if (!group->ext[oe[i].seq])
			goto nomem;
		group->ext[oe[i].seq]->group = group;
	}
	return group;

nomem:
	if (group)
		dc_group_free(group);
	cxl_dc_reject_group(oe, first, DC_REJECT_NOMEM);
	return NULL;
}

/* Exactly one Add DC Response, accepted extents in offered order. */
static int dc_respond(struct cxl_dc_dev *dcd, struct dc_offer_ext *oe, int n)
{
	struct dc_offer_ext **acc __free(kvfree) =
		kvmalloc_array(max(n, 1), sizeof(*acc), GFP_KERNEL);
	int nacc = 0, rc;

	if (!acc) {
		/* Still answer: an empty response rejects the whole offer. */
		for (int i = 0; i < n; i++)
			oe[i].why = DC_REJECT_NOMEM;
	} else {
		for (int i = 0; i < n; i++)
			if (oe[i].why == DC_OK)
				acc[nacc++] = &oe[i];
	}
	rc = cxl_dc_send_list(dcd, CXL_MBOX_OP_ADD_DC_RESPONSE, nacc, cxl_dc_offer_get,
			      acc);
	trace_cxl_dc_response(dc_memdev(dcd), n, rc ? 0 : nacc, rc);
	if (rc) {
		for (int i = 0; i < n; i++)
			if (oe[i].why == DC_OK)
				oe[i].why = DC_REJECT_RESPONSE;
		/*
		 * A failed command changes nothing on the device: the offer
		 * is still pending there, and would take the answer meant
		 * for the next one.  Close it with an empty response, which
		 * names nothing the device could refuse.
		 */
		if (nacc && !cxl_dc_send_list(dcd, CXL_MBOX_OP_ADD_DC_RESPONSE, 0,
					      NULL, NULL)) {
			dev_err(dc_dev(dcd),
				"Add DC Response failed: %d; offer of %d extent(s) rejected\n",
				rc, n);
			trace_cxl_dc_response(dc_memdev(dcd), n, 0, 0);
		} else {
			dev_err(dc_dev(dcd), "Add DC Response failed: %d\n", rc);
		}
	}
	dcd->responses++;
	return rc;
}

/*
 * Reject a whole offer without deciding it (no memory, teardown): one
 * empty Add DC Response, which needs no allocation.  At teardown the
 * memdev the trace records name is gone already: the log says it.
 */
static void dc_answer_empty(struct cxl_dc_dev *dcd, struct cxl_dc_chain *chain,
			    enum dc_reject why)
{
	bool trace = why != DC_REJECT_TEARDOWN;
	int rc;

	lockdep_assert_held(&dcd->lock);
	for (int i = 0; i < chain->nr; i++) {
		u64 dpa = le64_to_cpu(chain->ext[i].start_dpa);
		u64 len = le64_to_cpu(chain->ext[i].length);

		dc_count_reject(dcd, why, dpa, len);
		if (trace)
			trace_cxl_dc_reject(dc_memdev(dcd), NULL, dpa, len,
					    (const uuid_t *)chain->ext[i].tag,
					    0, cxl_dc_reject_str[why]);
	}
	rc = cxl_dc_send_list(dcd, CXL_MBOX_OP_ADD_DC_RESPONSE, 0, NULL, NULL);
	if (trace)
		trace_cxl_dc_response(dc_memdev(dcd), chain->nr, 0, rc);
	if (rc)
		dev_err(dc_dev(dcd), "Add DC Response failed: %d\n", rc);
	else if (!trace)
		dev_info(dc_dev(dcd), "DC offer of %d extent(s) rejected: %s\n",
			 chain->nr, cxl_dc_reject_str[why]);
	dcd->responses++;
}

/**
 * struct dc_change - what a region's change uevent says about a group
 * @state: the group's state now: ``accepted``, ``active``,
 *	``release-pending``, ``released`` (gone), or ``unbound`` (the
 *	policy unbound; no group)
 * @offset: offset of the group's first extent in the region
 * @length: bytes in the group
 * @nr: extents in the group, 0 for none
 * @tag: the group's tag
 */
struct dc_change {
	const char *state;
	u64 offset;
	u64 length;
	int nr;
	uuid_t tag;
};

/* Context: dcd->lock held, the group still live. */
static void dc_change_of(struct dc_change *c, const struct cxl_dc_group *g,
			 bool gone)
{
	*c = (struct dc_change) {
		.state = gone ? "released" : cxl_dc_state_str[g->state],
		.offset = g->ext[0]->hpa - g->dcr->cxlr->params.res->start,
		.nr = g->nr,
		.tag = g->tag,
	};
	for (int i = 0; i < g->nr; i++)
		c->length += g->ext[i]->len;
}

/*
 * Give @group back and say so in @c: ``released``, or ``release-pending``
 * when the Release DC failed and the group stays.  Context: dcd->lock.
 */
static void dc_give_back_change(struct cxl_dc_dev *dcd,
				struct cxl_dc_group *group, struct dc_change *c)
{
	dc_change_of(c, group, true);
	if (dc_group_give_back(dcd, group))
		c->state = cxl_dc_state_str[CXL_DC_EXTENT_RELEASE_PENDING];
}

/*
 * Tell udev what changed in the region: DC_STATE, and for a group
 * DC_OFFSET, DC_LENGTH, DC_EXTENTS and DC_TAG.  Context: no lock of this
 * file held.
 */
static void dc_region_uevent(struct cxl_dc_region *dcr,
			     const struct dc_change *c)
{
	char state[32], offset[40], length[40], nr[24], tag[48];
	char *envp[6] = { state };

	snprintf(state, sizeof(state), "DC_STATE=%s", c->state);
	if (c->nr) {
		snprintf(offset, sizeof(offset), "DC_OFFSET=%#llx", c->offset);
		snprintf(length, sizeof(length), "DC_LENGTH=%#llx", c->length);
		snprintf(nr, sizeof(nr), "DC_EXTENTS=%d", c->nr);
		snprintf(tag, sizeof(tag), "DC_TAG=%pUb", &c->tag);
		envp[1] = offset;
		envp[2] = length;
		envp[3] = nr;
		envp[4] = tag;
	}
	kobject_uevent_env(&dcr->cxlr->dev.kobj, KOBJ_CHANGE, envp);
}

/*
 * Have the region's worker call the policy for @group (%DC_OP_*), once
 * dc_kick_regions() lets it run.  A forced release replaces an ordinary
 * one still waiting.  Context: dcd->lock held, a policy bound to the
 * group's region.
 */
static void dc_queue_op(struct cxl_dc_group *group, u8 op)
{
	struct cxl_dc_region *dcr = group->dcr;

	lockdep_assert_held(&dcr->dcd->lock);
	if (op & DC_OP_FORCE)
		group->ops &= ~DC_OP_RELEASE;
	group->ops |= op;
	if (list_empty(&group->todo))
		list_add_tail(&group->todo, &dcr->todo);
	if (list_empty(&dcr->kick_node))
		list_add_tail(&dcr->kick_node, &dcr->dcd->kick);
}

/*
 * Start the workers of the regions that got callbacks to run.  Called
 * once the device's work for a record is done (and timed): a worker that
 * preempted the device's work would be counted in both.
 */
static void dc_kick_regions(struct cxl_dc_dev *dcd)
{
	struct cxl_dc_region *dcr, *next;

	guard(mutex)(&dcd->lock);
	list_for_each_entry_safe(dcr, next, &dcd->kick, kick_node) {
		list_del_init(&dcr->kick_node);
		queue_work(dcd->policy_wq, &dcr->work);
	}
}

/*
 * Keep a group accepted on the device but used by nobody, visible as
 * ``accepted``: a recovered group the policy refused or could not use.
 * It goes back only when the device (or the region's deletion) asks.
 */
static void dc_group_keep(struct cxl_dc_dev *dcd, struct cxl_dc_group *group,
			  const char *why)
{
	lockdep_assert_held(&dcd->lock);
	group->policy = NULL;
	dc_set_state(group, CXL_DC_EXTENT_ACCEPTED);
	dc_count(dcd, DC_KEPT, 1);
	for (int i = 0; i < group->nr; i++)
		trace_cxl_dc_reject(dc_memdev(dcd), dcr_name(group->dcr),
				    group->ext[i]->dpa, group->ext[i]->len,
				    &group->tag, group->ext[i]->seq, why);
	dev_info(&group->dcr->cxlr->dev,
		 "kept %d recovered extent(s) (DPA %#llx) accepted and unused: %s\n",
		 group->nr, group->ext[0]->dpa, why);
}

/*
 * Put an accepted group to use.  Context: the region's worker, under its
 * policy_lock only.  If the policy fails, a new offer's extents go back to
 * the device; a recovered group stays accepted, unused (nobody asked for
 * it back), unless the device asked for it meanwhile.
 */
static void dc_activate(struct cxl_dc_dev *dcd, struct cxl_dc_group *group,
			bool recovered)
{
	const struct cxl_dc_policy *policy = group->policy;
	struct cxl_dc_region *dcr = group->dcr;
	struct dc_change c;
	int rc;

	lockdep_assert_held(&dcr->policy_lock);
	rc = policy->ops->activate ?
	     policy->ops->activate(dcr->cxlr, group) : 0;

	scoped_guard(mutex, &dcd->lock) {
		group->activating = false;
		if (!rc) {
			dc_set_state(group, CXL_DC_EXTENT_ACTIVE);
			dc_change_of(&c, group, false);
		} else if (recovered && !group->ops) {
			dev_warn(&dcr->cxlr->dev, "%s could not use %d extent(s): %d\n",
				 policy->name, group->nr, rc);
			dc_group_keep(dcd, group, "activation failed");
			dc_change_of(&c, group, false);
		} else {
			dev_warn(&dcr->cxlr->dev,
				 "%s could not use %d extent(s): %d, giving them back\n",
				 policy->name, group->nr, rc);
			dc_give_back_change(dcd, group, &c);
		}
	}
	dc_region_uevent(dcr, &c);
}

static void dc_process_offer(struct cxl_dc_dev *dcd, struct cxl_dc_chain *chain)
{
	int n = chain->nr;
	struct dc_offer_ext *oe __free(kvfree) =
		kvcalloc(max(n, 1), sizeof(*oe), GFP_KERNEL);
	struct cxl_dc_group **live __free(kvfree) =
		kvcalloc(max(n, 1), sizeof(*live), GFP_KERNEL);
	int nlive = 0;

	lockdep_assert_held(&dcd->process_lock);
	if (!oe || !live) {
		guard(mutex)(&dcd->lock);
		dev_err(dc_dev(dcd), "no memory to decide a DC offer\n");
		dc_answer_empty(dcd, chain, DC_REJECT_NOMEM);
		return;
	}

	scoped_guard(rwsem_read, &cxl_rwsem.region)
	scoped_guard(rwsem_read, &cxl_rwsem.dpa)
	scoped_guard(mutex, &dcd->lock) {
		for (int i = 0; i < n; i++) {
			oe[i].raw = &chain->ext[i];
			oe[i].dpa = le64_to_cpu(oe[i].raw->start_dpa);
			oe[i].len = le64_to_cpu(oe[i].raw->length);
			oe[i].why = chain->why ?: dc_check_extent(dcd, &oe[i]);
			trace_cxl_dc_offer(dc_memdev(dcd), dcr_name(oe[i].dcr),
					   oe[i].dpa, oe[i].len,
					   (const uuid_t *)oe[i].raw->tag,
					   le16_to_cpu(oe[i].raw->shared_extn_seq),
					   "");
		}
		if (cxl_dc_check_offer_overlap(oe, n))
			for (int i = 0; i < n; i++)
				oe[i].why = DC_REJECT_NOMEM;
		cxl_dc_form_groups(oe, n, dc_sharable(dcd));
		cxl_dc_check_tags_live(oe, n);

		for (int gi = 0; gi < n; gi++) {
			struct cxl_dc_group *group;
			struct cxl_dc_region *dcr;

			if (oe[gi].first != gi)
				continue;
			group = dc_build_group(oe, gi);
			if (!group)
				continue;
			dcr = group->dcr;
			if (dcr->policy->ops->validate &&
			    dcr->policy->ops->validate(dcr->cxlr, group)) {
				cxl_dc_reject_group(oe, gi, DC_REJECT_POLICY);
				dc_group_free(group);
				continue;
			}
			if (!cxl_dc_tag_claim(group)) {
				/* Another device took the tag meanwhile. */
				cxl_dc_reject_group(oe, gi, DC_REJECT_TAG_LIVE);
				dc_group_free(group);
				continue;
			}
			live[nlive++] = group;
		}

		if (dc_respond(dcd, oe, n)) {
			while (nlive)
				dc_group_free(live[--nlive]);
		}
		for (int i = 0; i < n; i++) {
			if (oe[i].why == DC_OK)
				trace_cxl_dc_accept(dc_memdev(dcd),
						    dcr_name(oe[i].dcr), oe[i].dpa,
						    oe[i].len,
						    (const uuid_t *)oe[i].raw->tag,
						    oe[i].seq, "");
			else
				trace_cxl_dc_reject(dc_memdev(dcd),
						    dcr_name(oe[i].dcr), oe[i].dpa,
						    oe[i].len,
						    (const uuid_t *)oe[i].raw->tag,
						    oe[i].seq,
						    cxl_dc_reject_str[oe[i].why]);
			if (oe[i].why != DC_OK)
				dc_count_reject(dcd, oe[i].why, oe[i].dpa,
						oe[i].len);
		}
		/* Each region's worker activates its own, in offer order. */
		for (int i = 0; i < nlive; i++) {
			dc_group_link(live[i]->dcr, live[i]);
			dc_queue_op(live[i], DC_OP_ACTIVATE);
		}
	}
}

/* --- releasing ------------------------------------------------------------------ */

/*
 * The device asked for @group: from here the policy owes its release,
 * unless it gave the group back meanwhile (then there is nothing to ask).
 * Context: dcd->lock held.
 */
static bool dc_begin_release(struct cxl_dc_dev *dcd, struct cxl_dc_group *group)
{
	lockdep_assert_held(&dcd->lock);
	if (group->state != CXL_DC_EXTENT_ACTIVE)
		return false;
	dc_set_state(group, CXL_DC_EXTENT_RELEASE_PENDING);
	dc_trace_group(dcd, group, false);
	group->owed = true;
	return true;
}

/*
 * Ask the policy to let go of @group (dc_begin_release() made it owed).
 * Context: the region's worker, under its policy_lock only.
 */
static void dc_start_release(struct cxl_dc_dev *dcd, struct cxl_dc_group *group)
{
	const struct cxl_dc_policy *policy = group->policy;
	struct cxl_dc_region *dcr = group->dcr;
	struct dc_change c;
	int rc;

	/* Owed: the group stays until the policy answers. */
	scoped_guard(mutex, &dcd->lock)
		dc_change_of(&c, group, false);
	dc_region_uevent(dcr, &c);

	rc = policy->ops->release ?
	     policy->ops->release(dcr->cxlr, group) : 0;
	if (rc && rc != -EBUSY) {
		/*
		 * The policy may still use the memory: it stays held, as
		 * for -EBUSY, until the policy calls cxl_dc_release_done().
		 */
		dev_err(&dcr->cxlr->dev,
			"%s failed to release %d extent(s): %d; held until it lets go\n",
			policy->name, group->nr, rc);
		scoped_guard(mutex, &dcd->lock)
			dc_count(dcd, DC_HELD, 1);
	}
	if (!rc)
		cxl_dc_release_done(group);
}

/**
 * cxl_dc_release_done() - the policy no longer touches a group's memory
 * @group: a group whose release the policy answered with -EBUSY
 *
 * Sends Release Dynamic Capacity for the group and forgets it.  The policy
 * must not use @group afterwards.  When the device took part of the group
 * back by force meanwhile, only what it still holds is sent; when it took
 * all of it, nothing is.  Also ends a group whose @force_release answered
 * -EBUSY.
 *
 * Context: process context, no lock held that the library takes.
 */
void cxl_dc_release_done(struct cxl_dc_group *group)
{
	struct cxl_dc_region *dcr = group->dcr;
	struct cxl_dc_dev *dcd = dcr->dcd;
	struct dc_change c;

	scoped_guard(mutex, &dcd->lock) {
		group->owed = false;
		if (group->forcing) {
			/* dc_force_release() ends it when the policy returns. */
			group->done = true;
			return;
		}
		dc_give_back_change(dcd, group, &c);
	}
	dc_region_uevent(dcr, &c);
}
EXPORT_SYMBOL_NS_GPL(cxl_dc_release_done, "CXL");

/*
 * No live group lies in [@dpa, @end]: whatever the device still holds there
 * is used by nobody on the host (accepted while no policy was bound, or not
 * recovered), so a release request gets it back.  A forced release took it.
 */
static void dc_release_unheld(struct cxl_dc_dev *dcd, struct cxl_dc_region *dcr,
			      u64 dpa, u64 end, const uuid_t *tag, bool forced,
			      struct dc_device_list *list)
{
	struct range *r __free(kvfree) = NULL;
	int n;

	lockdep_assert_held(&dcd->lock);
	trace_cxl_dc_release(dc_memdev(dcd), dcr_name(dcr), dpa, end - dpa + 1,
			     tag, 0, forced ? "forced, not held" : "not held");
	dc_count(dcd, DC_NOT_HELD, 1);
	if (forced) {
		dc_withheld_clear(dcd, dpa, end, true);
		return;
	}
	if (list->total < 0)
		list->total = cxl_dc_read_extents(dcd, &list->raw);
	if (list->total <= 0)
		return;
	/* Room for a stranded range splitting each one in two. */
	r = kvcalloc(2 * list->total, sizeof(*r), GFP_KERNEL);
	if (!r)
		return;
	n = cxl_dc_clip_held(list->raw, list->total, dpa, end, r, list->total);
	n = dc_stranded_clip(dcd, r, n, 2 * list->total);
	if (n && cxl_dc_send_list(dcd, CXL_MBOX_OP_RELEASE_DC, n, cxl_dc_range_get, r))
		return;
	dc_withheld_clear(dcd, dpa, end, false);
	if (!n)
		return;
	dcd->releases++;
	dc_count(dcd, DC_RELEASED, n);
	for (int i = 0; i < n; i++)
		trace_cxl_dc_released(dc_memdev(dcd), dcr_name(dcr), r[i].start,
				      range_len(&r[i]), tag, 0, "not held");
}

/*
 * The device took back @group, or part of it, by force: the policy stops
 * using all of it at once (a group is one unit).  When the policy says it
 * is out of use, or later calls cxl_dc_release_done(), the device gets back
 * whatever it still holds of the group, and the group is forgotten.
 * Context: the region's worker, under its policy_lock only;
 * dc_process_release() set @forcing.
 */
static void dc_force_release(struct cxl_dc_dev *dcd, struct cxl_dc_group *group)
{
	struct cxl_dc_region *dcr = group->dcr;
	struct dc_change c;
	int rc = 0;

	dev_warn(&dcr->cxlr->dev,
		 "device took back %d extent(s) by force (DPA %#llx)\n",
		 group->nr, group->ext[0]->dpa);
	if (group->policy->ops->force_release)
		rc = group->policy->ops->force_release(dcr->cxlr, group);
	if (rc && rc != -EBUSY)
		/* As for release(): any error leaves the memory held. */
		dev_err(&dcr->cxlr->dev,
			"%s: force_release: %d; held until it lets go\n",
			group->policy->name, rc);
	scoped_guard(mutex, &dcd->lock) {
		if (rc && rc != -EBUSY)
			dc_count(dcd, DC_HELD, 1);
		group->forcing = false;
		if (group->stranded) {
			/* The policy let go of it in use: never given back. */
			return;
		} else if ((rc || group->owed) && !group->done) {
			/* Still in use: cxl_dc_release_done() ends it. */
			group->owed = true;
			dc_set_state(group, CXL_DC_EXTENT_RELEASE_PENDING);
			dc_change_of(&c, group, false);
		} else {
			dc_give_back_change(dcd, group, &c);
		}
	}
	dc_region_uevent(dcr, &c);
}

struct dc_segment_ctx {
	u64 dpa;
	struct cxl_endpoint_decoder *hit;
	u64 next;
};

static int dc_segment_match(struct device *dev, void *arg)
{
	struct dc_segment_ctx *ctx = arg;
	struct cxl_endpoint_decoder *cxled;
	struct resource *res;

	if (!is_endpoint_decoder(dev))
		return 0;
	cxled = to_cxl_endpoint_decoder(dev);
	res = cxled->dpa_res;
	if (!res || !resource_size(res))
		return 0;
	if (ctx->dpa >= res->start && ctx->dpa <= res->end) {
		ctx->hit = cxled;
		return 1;
	}
	if (res->start > ctx->dpa)
		ctx->next = min(ctx->next, res->start);
	return 0;
}

/*
 * The part of [@dpa, @end] from @dpa on that one endpoint decoder maps, or
 * that none maps: its last DPA in *@last, and the DC state of the region
 * it belongs to, if any.  Context: cxl_rwsem.dpa held.
 */
static struct cxl_dc_region *dc_segment(struct cxl_dc_dev *dcd, u64 dpa,
					u64 end, u64 *last)
{
	struct cxl_memdev *cxlmd = dc_memdev(dcd);
	struct dc_segment_ctx ctx = { .dpa = dpa, .next = U64_MAX };
	struct cxl_region *cxlr;

	lockdep_assert_held(&cxl_rwsem.dpa);
	if (cxlmd && cxlmd->dev.driver && cxlmd->endpoint)
		device_for_each_child(&cxlmd->endpoint->dev, &ctx,
				      dc_segment_match);
	if (!ctx.hit) {
		*last = ctx.next <= end ? ctx.next - 1 : end;
		return NULL;
	}
	*last = min(end, ctx.hit->dpa_res->end);
	cxlr = ctx.hit->cxld.region;
	return cxlr ? cxlr->dc : NULL;
}

/*
 * A policy has the group: active, being activated, or it still owes its
 * release.  A group whose activation has not started is not in use yet.
 */
static bool dc_group_in_use(const struct cxl_dc_group *group)
{
	return group->state == CXL_DC_EXTENT_ACTIVE || group->activating ||
	       group->owed;
}

/*
 * The device asked for [dpa, dpa + len) back, or took it by force.  The
 * record is clamped to each region it touches; every group with an extent
 * in it goes as a whole, through its policy while one uses it.
 */
static void dc_process_release(struct cxl_dc_dev *dcd,
			       const struct cxl_dc_extent_raw *raw, bool forced)
{
	u64 dpa = le64_to_cpu(raw->start_dpa), len = le64_to_cpu(raw->length);
	const uuid_t *tag = (const uuid_t *)raw->tag;
	struct cxl_dc_group **groups __free(kvfree) = NULL;
	struct dc_device_list list = { .total = -1 };
	int nr = 0, room;
	u64 end, at, last;

	lockdep_assert_held(&dcd->process_lock);
	if (!len || check_add_overflow(dpa, len - 1, &end)) {
		dev_warn_ratelimited(dc_dev(dcd),
				     "DC release record %#llx+%#llx: bad length, ignored\n",
				     dpa, len);
		trace_cxl_dc_release(dc_memdev(dcd), NULL, dpa, len, tag, 0,
				     "bad length");
		scoped_guard(mutex, &dcd->lock)
			dc_count(dcd, DC_BAD_RECORD, 1);
		return;
	}

	scoped_guard(rwsem_read, &cxl_rwsem.region)
	scoped_guard(rwsem_read, &cxl_rwsem.dpa)
	scoped_guard(mutex, &dcd->lock) {
		if (forced)
			dc_count(dcd, DC_FORCED, 1);
		/* Room for every group: at most one per extent in the range. */
		for (at = dpa; ; at = last + 1) {
			struct cxl_dc_region *dcr = dc_segment(dcd, at, end, &last);

			if (dcr)
				nr += cxl_dc_groups_in_range(dcr, at, last - at + 1,
							 NULL, INT_MAX);
			if (last == end)
				break;
		}
		if (nr) {
			groups = kvmalloc_array(nr, sizeof(*groups), GFP_KERNEL);
			if (!groups) {
				/* The device asks again, or forced it already. */
				dev_err(dc_dev(dcd), "no memory for a DC release\n");
				return;
			}
		}
		room = nr;
		nr = 0;
		for (at = dpa; ; at = last + 1) {
			struct cxl_dc_region *dcr = dc_segment(dcd, at, end, &last);
			int got = 0;

			if (dcr && room > nr)
				got = cxl_dc_groups_in_range(dcr, at, last - at + 1,
							     groups + nr, room - nr);
			if (!got)
				dc_release_unheld(dcd, dcr, at, last, tag, forced,
						  &list);
			nr += got;
			if (last == end)
				break;
		}
		for (int i = 0; i < nr; i++) {
			struct cxl_dc_group *g = groups[i];

			if (g->stranded) {
				struct device *dev = &g->dcr->cxlr->dev;

				/* In use until reboot: never given back. */
				if (forced)
					dev_crit_ratelimited(dev, "forced release of stranded DPA %#llx: in use\n",
							     g->ext[0]->dpa);
				else
					dev_warn_ratelimited(dev, "release of stranded DPA %#llx: kept\n",
							     g->ext[0]->dpa);
				continue;
			}
			if (!dc_group_in_use(g)) {
				/*
				 * Kept unused, not activated yet, or the
				 * policy answered and a Release DC failed:
				 * never call a policy, give back (after a
				 * forced release, what is left).
				 */
				g->forced |= forced;
				dc_group_give_back(dcd, g);
				continue;
			}
			if (forced) {
				g->forced = true;
				g->forcing = true;
				g->done = false;
			} else if (g->state == CXL_DC_EXTENT_RELEASE_PENDING) {
				/* Still owed: cxl_dc_release_done() ends it. */
				continue;
			}
			/* After an activation in progress, if there is one. */
			dc_queue_op(g, forced ? DC_OP_FORCE : DC_OP_RELEASE);
		}
	}
	kvfree(list.raw);
}

/*
 * Region Configuration Updated: the device's DC configuration is read
 * again and checked as at probe.  The partition was laid out at probe and
 * stays as it is; of region 0, what changes is the length the device maps
 * (up to the partition's end) and its block size, which later offers are
 * checked against.  Capacity past the new length is no longer mapped by
 * the device: whatever the host has there (live groups, kept groups,
 * withheld ranges) is taken out of use through the forced path, as if the
 * device had sent a Forced Release record for it, and what the device
 * still lists of it goes back with Release DC.  A configuration that cannot
 * be read or is not valid declines every offer until a valid one is read;
 * live extents stay in use, since nothing says the device dropped them.
 */
static void dc_process_config(struct cxl_dc_dev *dcd, unsigned int index)
{
	struct cxl_dc_region_info *r0 = &dcd->mds->dc.config.region[0];
	struct cxl_dc_region_info *now = &dcd->reread.region[0];
	struct device *dev = dc_dev(dcd);
	struct cxl_dc_extent_raw gone = {};
	const char *why = "";
	u64 len = 0, old_len;
	int rc;

	lockdep_assert_held(&dcd->process_lock);
	if (!dcd->mds->dc.config.nr_regions) {
		dev_info(dev, "DC region %u configuration updated: Dynamic Capacity is disabled since probe\n",
			 index);
		return;
	}
	scoped_guard(mutex, &dcd->lock) {
		/* The payload is the device's one: under its lock. */
		rc = cxl_dc_config_reread(dcd->mds, &dcd->reread, dcd->payload,
					  &why);
		dcd->config_bad = !!rc;
		old_len = r0->len;
		if (!rc) {
			len = min(now->len, r0->decode_len);
			r0->len = len;
			r0->block_size = now->block_size;
			dcd->mds->dc.config.extents_supported =
				dcd->reread.extents_supported;
			dcd->mds->dc.config.tags_supported =
				dcd->reread.tags_supported;
		}
	}
	if (rc) {
		dev_err(dev, "DC region %u configuration updated but not usable (%s): offers are declined until it is\n",
			index, why);
		return;
	}
	if (now->decode_len > r0->decode_len)
		dev_info(dev, "DC region 0 grew to %#llx bytes; past %#llx it is usable once the memdev is probed again\n",
			 now->decode_len, r0->decode_len);
	dev_info(dev, "DC region %u configuration updated: region 0 maps %#llx bytes (was %#llx), block size %#llx\n",
		 index, len, old_len, now->block_size);
	if (len >= old_len)
		return;
	dev_crit(dev, "DC region 0 shrank under DPA %#llx-%#llx: what the host holds there is taken out of use\n",
		 r0->base + len, r0->base + old_len - 1);
	gone.start_dpa = cpu_to_le64(r0->base + len);
	gone.length = cpu_to_le64(old_len - len);
	dc_process_release(dcd, &gone, true);
}

/*
 * A region's policy callbacks, one at a time, in the order they were
 * queued.  Each region has its own worker on the device's unbound
 * policy_wq, so an activation that takes long (onlining many GiB, a VMM
 * that must answer) holds up neither the device's records nor a forced
 * release in another region.
 */
static void dc_region_work(struct work_struct *work)
{
	struct cxl_dc_region *dcr = container_of(work, struct cxl_dc_region,
						 work);

	guard(mutex)(&dcr->policy_lock);
	for (;;) {
		struct cxl_dc_dev *dcd = dcr->dcd;
		struct cxl_dc_group *group;
		u64 t0;
		u8 ops;

		scoped_guard(mutex, &dcd->lock) {
			group = list_first_entry_or_null(&dcr->todo,
							 struct cxl_dc_group,
							 todo);
			if (!group)
				return;
			ops = group->ops;
			if (ops & DC_OP_ACTIVATE) {
				/* A release waits for the activation. */
				ops &= DC_OP_ACTIVATE | DC_OP_RECOVERED;
				group->activating = true;
			}
			group->ops &= ~ops;
			if (!group->ops)
				list_del_init(&group->todo);
			/*
			 * Activating, forcing or owed: in use, so nothing but
			 * the callback below ends the group.
			 */
			if (ops == DC_OP_RELEASE && !dc_begin_release(dcd, group))
				ops = 0;
		}
		if (!ops)
			continue;
		t0 = ktime_get_ns();
		if (ops & DC_OP_ACTIVATE)
			dc_activate(dcd, group, ops & DC_OP_RECOVERED);
		else if (ops & DC_OP_FORCE)
			dc_force_release(dcd, group);
		else
			dc_start_release(dcd, group);
		/* The cost of an offer or a release includes the policy's. */
		t0 = ktime_get_ns() - t0;
		scoped_guard(mutex, &dcd->lock) {
			if (!(ops & DC_OP_ACTIVATE))
				dcd->release_ns += t0;
			else if (!(ops & DC_OP_RECOVERED))
				dcd->offer_ns += t0;
		}
	}
}

/*
 * A policy gave back the group with an extent at @raw's DPA: unless the
 * device took or asked for it meanwhile (the group is gone, or a policy
 * owes its release), send Release DC for it.
 */
static void dc_process_give_back(struct cxl_dc_dev *dcd,
				 const struct cxl_dc_extent_raw *raw)
{
	u64 dpa = le64_to_cpu(raw->start_dpa), last;
	struct cxl_dc_region *dcr;
	struct cxl_dc_extent *e;

	guard(rwsem_read)(&cxl_rwsem.region);
	guard(rwsem_read)(&cxl_rwsem.dpa);
	guard(mutex)(&dcd->lock);
	dcr = dc_segment(dcd, dpa, dpa, &last);
	e = dcr ? cxl_dc_extent_floor(dcr, dpa) : NULL;
	if (!e || e->dpa != dpa || dc_group_in_use(e->group))
		return;
	dc_group_give_back(dcd, e->group);
}

/**
 * cxl_dc_give_back() - the host gives an active group back to the device
 * @group: a group the policy activated and no longer uses
 *
 * For a dax device the user destroys or a VMM that shrinks: the group goes
 * back with Release DC, on the device's workqueue, in order with the
 * device's own records.  On success the policy has answered the group
 * and must not touch it again; the library will not call back for it.
 *
 * Context: process context; the policy may hold its own locks, as long as
 * ``validate`` does not take them.
 * Return: 0; -EBUSY when the device asked for the group meanwhile (the
 * policy answers that request through ``release`` or ``force_release``
 * instead); -ENOMEM.
 */
int cxl_dc_give_back(struct cxl_dc_group *group)
{
	struct cxl_dc_region *dcr = group->dcr;
	struct cxl_dc_dev *dcd = dcr->dcd;
	struct cxl_dc_chain *item = kzalloc_obj(*item);
	struct dc_change c;

	if (item)
		item->ext = kvzalloc(sizeof(*item->ext), GFP_KERNEL);
	if (!item || !item->ext) {
		cxl_dc_chain_free(item);
		return -ENOMEM;
	}
	scoped_guard(mutex, &dcd->lock) {
		if (group->state != CXL_DC_EXTENT_ACTIVE || group->owed ||
		    group->forcing || group->ops || group->stranded ||
		    dcd->dying) {
			cxl_dc_chain_free(item);
			return -EBUSY;
		}
		/* Not in use any more: a device request now just confirms. */
		dc_set_state(group, CXL_DC_EXTENT_RELEASE_PENDING);
		dc_count(dcd, DC_GIVEN_BACK, 1);
		dc_trace_group(dcd, group, false);
		item->type = DC_HOST_GIVE_BACK;
		item->nr = 1;
		item->ext[0].start_dpa = cpu_to_le64(group->ext[0]->dpa);
		item->ext[0].length = cpu_to_le64(group->ext[0]->len);
		list_add_tail(&item->node, &dcd->closed);
		dc_kick(dcd);
		dc_change_of(&c, group, false);
	}
	dc_region_uevent(dcr, &c);
	return 0;
}
EXPORT_SYMBOL_NS_GPL(cxl_dc_give_back, "CXL");

/**
 * cxl_dc_strand() - a policy lets go of a group whose memory stays in use
 * @group: an active group of the calling policy
 *
 * For memory the host cannot stop using and no longer controls: a driver
 * below the policy left it online (kmem's unbind leaves memory it cannot
 * remove "stuck online until reboot").  The group is *stranded*: its
 * extents stay accepted on the device and show ``stranded``; a release
 * the device asks for is never confirmed, no Release DC names them
 * (``delete_region`` included), and no later bind recovers them.  Only a
 * reboot ends it.  The policy has answered the group: the library never
 * calls back for it and the policy never touches it again.
 *
 * Context: process context, no lock held that the library takes.
 */
void cxl_dc_strand(struct cxl_dc_group *group)
{
	struct cxl_dc_region *dcr = group->dcr;
	struct cxl_dc_dev *dcd = dcr->dcd;

	guard(mutex)(&dcd->lock);
	dev_crit(&dcr->cxlr->dev,
		 "%d extent(s) at DPA %#llx stranded: in use until reboot, never given back\n",
		 group->nr, group->ext[0]->dpa);
	group->stranded = true;
	group->ops = 0;
	list_del_init(&group->todo);
	for (int i = 0; i < group->nr; i++)
		WRITE_ONCE(group->ext[i]->state, CXL_DC_EXTENT_STRANDED);
}
EXPORT_SYMBOL_NS_GPL(cxl_dc_strand, "CXL");

/* --- the event drain's entry points -------------------------------------------- */

/*
 * An item for a release request.  The request must not be lost: the
 * device waits for its answer and does not ask again.  When memory is
 * short the item comes from the device's reserve; when the reserve is
 * empty too (more requests in one drain of the event log than it holds),
 * the device's work is started, which gives items back as it handles
 * them, and this waits for one.  NULL only when the device goes away.
 */
/* Release request items kept in reserve per device. */
#define DC_RELEASE_RESERVE	16

static struct cxl_dc_chain *dc_release_item(struct cxl_dc_dev *dcd)
{
	struct cxl_dc_chain *one;

	while (!(one = mempool_alloc(dcd->release_pool,
				     GFP_NOWAIT | __GFP_NOWARN))) {
		scoped_guard(mutex, &dcd->lock) {
			if (dcd->dying)
				return NULL;
			dc_kick(dcd);
		}
		schedule_timeout_uninterruptible(1);
	}
	*one = (struct cxl_dc_chain) {
		.pool = dcd->release_pool,
		.ext = &one->one,
	};
	return one;
}

/**
 * cxl_dc_handle_event() - take in one Dynamic Capacity event record
 * @mds: the device the record came from
 * @rec: the record, as read from the Dynamic Capacity event log
 *
 * Only queues the record; cxl_dc_events_drained() acts on it.
 *
 * Context: the event log drain, under the event log lock.
 */
void cxl_dc_handle_event(struct cxl_memdev_state *mds,
			 const struct cxl_event_dcd *rec)
{
	struct cxl_dc_dev *dcd = mds->dc.dcd;
	struct cxl_dc_chain *one = NULL;

	trace_cxl_dynamic_capacity(mds->cxlds.cxlmd, rec);
	if (!dcd)
		return;

	if (rec->event_type == CXL_DC_EVENT_RELEASE_CAPACITY ||
	    rec->event_type == CXL_DC_EVENT_FORCED_RELEASE ||
	    rec->event_type == CXL_DC_EVENT_REGION_CONFIG_UPDATED) {
		one = dc_release_item(dcd);
		if (!one)
			return;		/* the device goes away */
	}
	guard(mutex)(&dcd->lock);
	if (dcd->dying) {
		cxl_dc_chain_free(one);
		return;
	}
	switch (rec->event_type) {
	case CXL_DC_EVENT_ADD_CAPACITY:
		cxl_dc_chain_add(dcd, rec);
		if (!(rec->flags & CXL_DC_EVENT_MORE))
			cxl_dc_chain_close(dcd);
		return;
	case CXL_DC_EVENT_RELEASE_CAPACITY:
	case CXL_DC_EVENT_FORCED_RELEASE:
		one->type = rec->event_type;
		one->nr = 1;
		one->one = rec->extent;
		list_add_tail(&one->node, &dcd->closed);
		return;
	case CXL_DC_EVENT_REGION_CONFIG_UPDATED:
		/* Read again in turn with the records around it. */
		one->type = rec->event_type;
		one->one = (struct cxl_dc_extent_raw) {
			.shared_extn_seq = cpu_to_le16(rec->region_index),
		};
		list_add_tail(&one->node, &dcd->closed);
		return;
	case CXL_DC_EVENT_ADD_RESPONSE:
	case CXL_DC_EVENT_CAPACITY_RELEASED:
		/* What other hosts of a shared device did: nothing to do */
		return;
	default:
		dev_warn_ratelimited(mds->cxlds.dev,
				     "DC event record of unknown type %#x ignored\n",
				     rec->event_type);
		return;
	}
}

/**
 * cxl_dc_log_overflow() - the Dynamic Capacity event log lost records
 * @mds: the device
 *
 * The records lost are the newest: if they held the end of the offer
 * being gathered, it never comes.  Once the log is drained, that offer is
 * closed and rejected at once (cxl_dc_events_drained()), rather than when
 * its timer runs out.
 *
 * Context: the event log drain, under the event log lock.
 */
void cxl_dc_log_overflow(struct cxl_memdev_state *mds)
{
	struct cxl_dc_dev *dcd = mds->dc.dcd;

	if (!dcd)
		return;
	guard(mutex)(&dcd->lock);
	dcd->overflowed = true;
}

/*
 * The device's Dynamic Capacity work, in the order the device sent it:
 * answer closed offers and handle release requests.  Runs on the device's
 * ordered workqueue, so that policy callbacks (hot-plug, offline, a VMM's
 * answer) never hold up the event interrupt thread, which also drains the
 * device's Fatal and Failure logs.
 */
static void dc_process_work(struct work_struct *work)
{
	struct cxl_dc_dev *dcd = container_of(work, struct cxl_dc_dev, work);

	guard(mutex)(&dcd->process_lock);
	for (;;) {
		struct cxl_dc_chain *chain;
		u64 t0;

		scoped_guard(mutex, &dcd->lock) {
			chain = list_first_entry_or_null(&dcd->closed,
							 struct cxl_dc_chain,
							 node);
			if (chain)
				list_del(&chain->node);
		}
		if (!chain)
			return;
		t0 = ktime_get_ns();
		if (chain->type == CXL_DC_EVENT_ADD_CAPACITY) {
			dc_process_offer(dcd, chain);
			t0 = ktime_get_ns() - t0;
			guard(mutex)(&dcd->lock);
			dcd->offered += chain->nr;
			dcd->offer_ns += t0;
		} else if (chain->type == DC_HOST_GIVE_BACK) {
			dc_process_give_back(dcd, &chain->ext[0]);
		} else if (chain->type == CXL_DC_EVENT_REGION_CONFIG_UPDATED) {
			dc_process_config(dcd,
					  le16_to_cpu(chain->one.shared_extn_seq));
		} else {
			dc_process_release(dcd, &chain->ext[0],
					   chain->type == CXL_DC_EVENT_FORCED_RELEASE);
			t0 = ktime_get_ns() - t0;
			guard(mutex)(&dcd->lock);
			dcd->release_records++;
			dcd->release_ns += t0;
		}
		cxl_dc_chain_free(chain);
		dc_kick_regions(dcd);
	}
}

/**
 * cxl_dc_events_drained() - act on everything the device sent so far
 * @mds: the device
 *
 * Closes an offer cut short by an event log overflow and queues the
 * device's work (answers to closed offers, release requests), which then
 * runs in the order the device sent it, on the device's own workqueue.
 *
 * Context: process context after the event logs were drained; no event log
 * lock held.
 */
void cxl_dc_events_drained(struct cxl_memdev_state *mds)
{
	struct cxl_dc_dev *dcd = mds->dc.dcd;

	if (!dcd)
		return;

	guard(mutex)(&dcd->lock);
	if (dcd->overflowed && dcd->open && !dcd->dying) {
		dev_warn(dc_dev(dcd),
			 "DC event log overflowed with an offer open: rejected\n");
		dcd->open->why = DC_REJECT_OVERFLOW;
		cxl_dc_chain_close(dcd);
	}
	dcd->overflowed = false;
	dc_kick(dcd);
}

/**
 * cxl_dc_flush() - wait until the device's queued work is done
 * @mds: the device
 *
 * For the mock device of cxl_test, whose knobs return once the host has
 * acted on what they injected.
 *
 * Context: process context, no CXL lock held.
 */
void cxl_dc_flush(struct cxl_memdev_state *mds)
{
	struct cxl_dc_dev *dcd = mds->dc.dcd;

	if (dcd) {
		flush_work(&dcd->work);
		flush_workqueue(dcd->policy_wq);
	}
}
EXPORT_SYMBOL_NS_GPL(cxl_dc_flush, "CXL");

/*
 * Hand the extents the device already has for @dcr to its new policy,
 * without answering anything.  Each recovered group is checked like an
 * offer (tag mode, granularity, a tag live elsewhere, ``validate``); one
 * that fails is kept accepted and unused.  Extents the host already
 * tracks (kept groups) are left as they are.  The others are queued for
 * activation on the region's worker.  Out of memory, nothing changes and
 * the bind fails.  Context: process_lock, region and dpa rwsems and
 * dcd->lock held.
 */
static int dc_recover(struct cxl_dc_dev *dcd, struct cxl_dc_region *dcr)
{
	struct cxl_dc_extent_raw *raw __free(kvfree) = NULL;
	struct dc_offer_ext *oe __free(kvfree) = NULL;
	struct cxl_dc_group **groups __free(kvfree) = NULL;
	enum dc_reject *why __free(kvfree) = NULL;
	struct cxl_region_params *p = &dcr->cxlr->params;
	struct cxl_endpoint_decoder *cxled = p->targets[0];
	int total, n = 0, nr = 0, nkept = 0;
	u64 t0 = ktime_get_ns();

	total = cxl_dc_read_extents(dcd, &raw);
	if (total < 0)
		return total;
	oe = kvcalloc(max(total, 1), sizeof(*oe), GFP_KERNEL);
	if (!oe)
		return -ENOMEM;

	for (int i = 0; i < total; i++) {
		u64 dpa = le64_to_cpu(raw[i].start_dpa);
		u64 len = le64_to_cpu(raw[i].length);

		if (!len || dpa < cxled->dpa_res->start ||
		    len - 1 > cxled->dpa_res->end - dpa ||
		    cxl_dc_overlaps_live(dcr, dpa, len) ||
		    dc_withheld_overlaps(dcd, dpa, len))
			continue;
		oe[n] = (struct dc_offer_ext) {
			.raw = &raw[i], .dpa = dpa, .len = len, .dcr = dcr,
			.hpa = p->res->start + (dpa - cxled->dpa_res->start),
		};
		oe[n].why = cxl_dc_check_policy(dcr->tag_mode, dcr->policy->granularity,
						oe[n].hpa, len, dc_is_tagged(&raw[i]));
		n++;
	}
	cxl_dc_form_groups(oe, n, dc_sharable(dcd));

	/*
	 * Every group is built before any goes live: out of memory, the bind
	 * fails with nothing changed, rather than leave an extent the device
	 * holds out of the region's view.
	 */
	groups = kvcalloc(max(n, 1), sizeof(*groups), GFP_KERNEL);
	why = kvcalloc(max(n, 1), sizeof(*why), GFP_KERNEL);
	if (!groups || !why)
		return -ENOMEM;
	for (int first = 0; first < n; first++) {
		if (oe[first].first != first)
			continue;
		for (int i = first; i >= 0; i = oe[i].next)
			if (oe[i].why != DC_OK)
				why[nr] = why[nr] ?: oe[i].why;
		/* A kept group is built whole, numbered in the device's order. */
		for (int i = first, k = 0; why[nr] && i >= 0; i = oe[i].next) {
			oe[i].why = DC_OK;
			oe[i].seq = k++;
		}
		groups[nr] = dc_build_group(oe, first);
		if (!groups[nr]) {
			while (nr--)
				dc_group_free(groups[nr]);
			return -ENOMEM;
		}
		nr++;
	}

	for (int g = 0; g < nr; g++) {
		struct cxl_dc_group *group = groups[g];

		dc_group_link(dcr, group);
		if (why[g] == DC_OK && dcr->policy->ops->validate &&
		    dcr->policy->ops->validate(dcr->cxlr, group))
			why[g] = DC_REJECT_POLICY;
		if (!cxl_dc_tag_claim(group) && why[g] == DC_OK)
			why[g] = DC_REJECT_TAG_LIVE;
		if (why[g] != DC_OK) {
			dc_group_keep(dcd, group, cxl_dc_reject_str[why[g]]);
			nkept++;
			continue;
		}
		for (int i = 0; i < group->nr; i++)
			trace_cxl_dc_accept(dc_memdev(dcd), dcr_name(dcr),
					    group->ext[i]->dpa,
					    group->ext[i]->len, &group->tag,
					    group->ext[i]->seq, "recovered");
		dc_queue_op(group, DC_OP_ACTIVATE | DC_OP_RECOVERED);
	}
	dcd->recovered += n;
	dcd->recover_ns += ktime_get_ns() - t0;
	if (n)
		dev_info(&dcr->cxlr->dev,
			 "recovered %d accepted extent(s), %d group(s) kept unused\n",
			 n, nkept);
	return 0;
}

/* --- policies ---------------------------------------------------------------------- */

struct cxl_dc_dev *cxl_dc_region_dev(struct cxl_region *cxlr)
{
	struct cxl_endpoint_decoder *cxled = cxlr->params.targets[0];
	struct cxl_memdev_state *mds;

	lockdep_assert_held(&cxl_rwsem.region);
	if (!cxled || cxlr->params.state != CXL_CONFIG_COMMIT)
		return NULL;
	mds = to_cxl_memdev_state(cxled_to_memdev(cxled)->cxlds);
	return mds ? mds->dc.dcd : NULL;
}

/**
 * cxl_dc_register_policy() - bind a policy to a Dynamic Capacity region
 * @cxlr: a committed dynamic_ram_1 region with one target
 * @policy: the policy
 * @data: the policy's data, see cxl_dc_policy_data()
 *
 * Extents the device already has as accepted for the region are read back
 * and activated through @policy before this returns; events arriving
 * meanwhile wait for it.  So a policy creates whatever its ``activate``
 * needs (its own devices, say) before it registers, and, with
 * devm_cxl_dc_register_policy(), it is unregistered before those go.
 *
 * Context: process context, no CXL lock held.
 * Return: 0, -ENXIO (not a usable DC region), -EBUSY (a policy is bound),
 * or an error reading the device's extent list.
 */
int cxl_dc_register_policy(struct cxl_region *cxlr,
			   const struct cxl_dc_policy *policy, void *data)
{
	struct cxl_dc_region *dcr = cxlr->dc;
	struct cxl_dc_dev *dcd;
	int rc;

	if (!dcr)
		return -ENXIO;

	scoped_guard(rwsem_read, &cxl_rwsem.region)
		dcd = cxl_dc_region_dev(cxlr);
	if (!dcd)
		return -ENXIO;

	scoped_guard(mutex, &dcd->process_lock)
	scoped_guard(rwsem_read, &cxl_rwsem.region)
	scoped_guard(rwsem_read, &cxl_rwsem.dpa)
	scoped_guard(mutex, &dcd->lock) {
		if (cxl_dc_region_dev(cxlr) != dcd)
			return -ENXIO;
		if (cxlr->params.interleave_ways != 1)
			return -EOPNOTSUPP;
		if (dcr->policy)
			return -EBUSY;
		dcr->dcd = dcd;
		dcr->policy = policy;
		dcr->data = data;
		if (!dcr->tag_mode_set ||
		    !dc_tag_mode_allowed(policy, dcr->tag_mode))
			dcr->tag_mode = policy->tag_mode;
		rc = dc_recover(dcd, dcr);
		if (rc) {
			dcr->policy = NULL;
			dcr->data = NULL;
			dcr->dcd = NULL;
			return rc;
		}
	}
	/* The recovered groups are in use when this returns. */
	dc_kick_regions(dcd);
	flush_work(&dcr->work);
	return 0;
}
EXPORT_SYMBOL_NS_GPL(cxl_dc_register_policy, "CXL");

/**
 * cxl_dc_unregister_policy() - unbind the policy of a Dynamic Capacity region
 * @cxlr: the region
 *
 * The policy must have stopped using every group already (its own teardown
 * runs first).  Groups the device asked for are given back now; the others
 * stay accepted on the device and are recovered by the next policy.
 *
 * Context: process context, no CXL lock held.
 */
void cxl_dc_unregister_policy(struct cxl_region *cxlr)
{
	struct cxl_dc_region *dcr = cxlr->dc;
	struct cxl_dc_dev *dcd = dcr ? dcr->dcd : NULL;
	struct cxl_dc_group *group, *next;

	if (!dcd)
		return;

	/* Waits for the policy callback in flight; none starts after. */
	scoped_guard(mutex, &dcr->policy_lock)
	scoped_guard(mutex, &dcd->lock) {
		dcr->policy = NULL;
		list_del_init(&dcr->kick_node);
		list_for_each_entry_safe(group, next, &dcr->groups, node) {
			bool asked;

			/* In use until reboot: never recovered, never given back. */
			if (group->stranded) {
				dc_withhold(dcd, group);
				dc_group_unlink(group);
				continue;
			}
			asked = group->state == CXL_DC_EXTENT_RELEASE_PENDING ||
				group->forced ||
				(group->ops & (DC_OP_RELEASE | DC_OP_FORCE));

			/*
			 * The device asked for it: give it back.  If that
			 * fails, remember it as withheld, so that the next
			 * bind does not take it up again and the device's next
			 * request retries.  A group still waiting for its
			 * activation stays accepted for the next policy.
			 */
			if (asked && !dc_group_give_back(dcd, group))
				continue;
			if (asked)
				dc_withhold(dcd, group);
			dc_group_unlink(group);
		}
		cxl_dc_mirror_drop(dcr);
		dcr->data = NULL;
	}
	/* The worker may still be on its way to an empty list. */
	cancel_work_sync(&dcr->work);
	/* Nothing reaches the device through the region until a rebind. */
	dcr->dcd = NULL;
	dc_region_uevent(dcr, &(struct dc_change) { .state = "unbound" });
}
EXPORT_SYMBOL_NS_GPL(cxl_dc_unregister_policy, "CXL");

static void dc_policy_devres_release(struct device *host, void *res)
{
	cxl_dc_unregister_policy(*(struct cxl_region **)res);
}

/**
 * devm_cxl_dc_register_policy() - cxl_dc_register_policy() undone on unbind
 * @host: the policy driver's device (usually &cxlr->dev)
 * @cxlr: the region
 * @policy: the policy
 * @data: the policy's data
 *
 * The undo is allocated first: once the policy is registered (and may have
 * put recovered groups to use), nothing can fail and unregister it behind
 * the policy's back.
 *
 * Return: as cxl_dc_register_policy().
 */
int devm_cxl_dc_register_policy(struct device *host, struct cxl_region *cxlr,
				const struct cxl_dc_policy *policy, void *data)
{
	struct cxl_region **dr = devres_alloc(dc_policy_devres_release,
					      sizeof(*dr), GFP_KERNEL);
	int rc;

	if (!dr)
		return -ENOMEM;
	rc = cxl_dc_register_policy(cxlr, policy, data);
	if (rc) {
		devres_free(dr);
		return rc;
	}
	*dr = cxlr;
	devres_add(host, dr);
	return 0;
}
EXPORT_SYMBOL_NS_GPL(devm_cxl_dc_register_policy, "CXL");

/**
 * cxl_dc_region_facts() - what a policy may need to know about its region
 * @cxlr: a Dynamic Capacity region
 * @info: filled in
 *
 * Return: 0, or -ENXIO when @cxlr is not a Dynamic Capacity region.
 */
int cxl_dc_region_facts(struct cxl_region *cxlr,
			struct cxl_dc_region_facts *info)
{
	struct cxl_dc_region *dcr = cxlr->dc;
	struct cxl_dc_dev *dcd;

	if (!dcr)
		return -ENXIO;
	guard(rwsem_read)(&cxl_rwsem.region);
	if (!cxlr->params.res)
		return -ENXIO;
	dcd = cxl_dc_region_dev(cxlr);
	*info = (struct cxl_dc_region_facts) {
		.hpa = { cxlr->params.res->start, cxlr->params.res->end },
		.nid = phys_to_target_node(cxlr->params.res->start),
		.sharable = dcd && dcd->mds->dc.config.region[0].sharable,
		.tag_mode = READ_ONCE(dcr->tag_mode),
	};
	return 0;
}
EXPORT_SYMBOL_NS_GPL(cxl_dc_region_facts, "CXL");

/**
 * cxl_dc_find_group() - the group a region's policy uses under a tag
 * @cxlr: a Dynamic Capacity region
 * @tag: a non-null tag
 *
 * For a policy that hands out its groups by tag (a dax device claimed by
 * tag): the host-wide tag registry answers, no second index is needed.
 * The group returned is valid as long as the group lifetime contract
 * says (until the policy answers it): the caller holds whatever lock of
 * its own its ``release`` and ``force_release`` take, so the group cannot
 * be answered meanwhile.
 *
 * Context: process context; takes the library's device lock.
 * Return: the group, or NULL when no group of @cxlr under @tag is active.
 */
struct cxl_dc_group *cxl_dc_find_group(struct cxl_region *cxlr,
				       const uuid_t *tag)
{
	struct cxl_dc_region *dcr = cxlr->dc;
	struct cxl_dc_dev *dcd = dcr ? dcr->dcd : NULL;
	struct cxl_dc_group *group;

	if (!dcd || uuid_is_null(tag))
		return NULL;
	guard(mutex)(&dcd->lock);
	scoped_guard(mutex, &cxl_dc_tags_lock)
		group = dc_tag_find(tag);
	if (!group || group->dcr != dcr || !group->policy ||
	    group->state != CXL_DC_EXTENT_ACTIVE)
		return NULL;
	return group;
}
EXPORT_SYMBOL_NS_GPL(cxl_dc_find_group, "CXL");

/**
 * cxl_dc_walk_groups() - visit the groups a region's policy uses
 * @cxlr: a Dynamic Capacity region
 * @fn: called for each active group, oldest first; a non-zero return
 *	stops the walk and is returned
 * @arg: passed to @fn
 *
 * The extents of a group are in sequence order already (see
 * cxl_dc_group_extent()).  @fn runs under the library's device lock: it
 * must not sleep for long, call into the library, or take a lock the
 * policy holds while it calls into the library (as for ``validate``).
 *
 * Return: 0, the first non-zero return of @fn, or -ENXIO when no policy
 * is bound.
 */
int cxl_dc_walk_groups(struct cxl_region *cxlr, cxl_dc_group_fn fn,
		       void *arg)
{
	struct cxl_dc_region *dcr = cxlr->dc;
	struct cxl_dc_dev *dcd = dcr ? dcr->dcd : NULL;
	struct cxl_dc_group *group;
	int rc;

	if (!dcd)
		return -ENXIO;
	guard(mutex)(&dcd->lock);
	if (!dcr->policy)
		return -ENXIO;
	list_for_each_entry(group, &dcr->groups, node) {
		if (!group->policy || group->state != CXL_DC_EXTENT_ACTIVE)
			continue;
		rc = fn(group, arg);
		if (rc)
			return rc;
	}
	return 0;
}
EXPORT_SYMBOL_NS_GPL(cxl_dc_walk_groups, "CXL");

void *cxl_dc_policy_data(struct cxl_region *cxlr)
{
	return cxlr->dc ? cxlr->dc->data : NULL;
}
EXPORT_SYMBOL_NS_GPL(cxl_dc_policy_data, "CXL");

const uuid_t *cxl_dc_group_tag(const struct cxl_dc_group *group)
{
	return &group->tag;
}
EXPORT_SYMBOL_NS_GPL(cxl_dc_group_tag, "CXL");

int cxl_dc_group_nr_extents(const struct cxl_dc_group *group)
{
	return group->nr;
}
EXPORT_SYMBOL_NS_GPL(cxl_dc_group_nr_extents, "CXL");

void cxl_dc_group_extent(const struct cxl_dc_group *group, int i,
			 struct cxl_dc_extent_info *info)
{
	const struct cxl_dc_extent *e = group->ext[i];

	*info = (struct cxl_dc_extent_info) {
		.hpa = { e->hpa, e->hpa + e->len - 1 },
		.offset = e->hpa - group->dcr->cxlr->params.res->start,
		.seq = e->seq,
	};
}
EXPORT_SYMBOL_NS_GPL(cxl_dc_group_extent, "CXL");

void cxl_dc_group_set_data(struct cxl_dc_group *group, void *data)
{
	group->data = data;
}
EXPORT_SYMBOL_NS_GPL(cxl_dc_group_set_data, "CXL");

void *cxl_dc_group_data(const struct cxl_dc_group *group)
{
	return group->data;
}
EXPORT_SYMBOL_NS_GPL(cxl_dc_group_data, "CXL");

/* --- regions ------------------------------------------------------------------- */

/**
 * cxl_dc_region_delete() - give a region's capacity back as it is deleted
 * @cxlr: a region the user deletes (``delete_region``), its driver unbound
 *
 * The user deletes the region, so nobody on the host will use what the
 * device still holds in its DPA range (kept groups, or extents left
 * accepted when the policy unbound): it goes back with Release DC.  Not
 * called when regions go away with their root decoder (driver unload):
 * their extents stay accepted for the next region over that capacity.
 *
 * Context: process context, no CXL lock held.
 */
void cxl_dc_region_delete(struct cxl_region *cxlr)
{
	struct cxl_dc_region *dcr = cxlr->dc;
	struct dc_device_list list = { .total = -1 };
	struct cxl_endpoint_decoder *cxled;
	struct cxl_memdev_state *mds;
	struct cxl_dc_dev *dcd;

	if (!dcr)
		return;
	/* Held throughout: the device cannot leave the region meanwhile. */
	guard(rwsem_read)(&cxl_rwsem.region);
	guard(rwsem_read)(&cxl_rwsem.dpa);
	cxled = cxlr->params.targets[0];
	if (!cxled || !cxled->dpa_res || !resource_size(cxled->dpa_res))
		return;
	mds = to_cxl_memdev_state(cxled_to_memdev(cxled)->cxlds);
	dcd = mds ? mds->dc.dcd : NULL;
	if (!dcd)
		return;
	guard(mutex)(&dcd->lock);
	if (dcr->policy || dcd->dying) {
		/* Someone bound a policy again meanwhile: it uses them. */
		dev_warn(&cxlr->dev, "deleted with a policy bound: extents kept\n");
		return;
	}
	dev_info(&cxlr->dev, "deleted: giving its capacity back\n");
	dc_release_unheld(dcd, NULL, cxled->dpa_res->start,
			  cxled->dpa_res->end, &uuid_null, false, &list);
	kvfree(list.raw);
}

/**
 * cxl_dc_region_alloc() - Dynamic Capacity state for a new region
 * @cxlr: a region being created in mode dynamic_ram_1
 *
 * Context: region creation, before the region is visible.
 * Return: 0 or -ENOMEM.
 */
int cxl_dc_region_alloc(struct cxl_region *cxlr)
{
	struct cxl_dc_region *dcr = kzalloc_obj(*dcr);

	if (!dcr)
		return -ENOMEM;
	dcr->cxlr = cxlr;
	dcr->extents = RB_ROOT;
	INIT_LIST_HEAD(&dcr->groups);
	mutex_init(&dcr->policy_lock);
	INIT_LIST_HEAD(&dcr->todo);
	INIT_LIST_HEAD(&dcr->kick_node);
	INIT_WORK(&dcr->work, dc_region_work);
	cxlr->dc = dcr;
	return 0;
}

/**
 * cxl_dc_region_free() - drop a region's Dynamic Capacity state
 * @cxlr: a region being released; no policy bound, no extent live
 */
void cxl_dc_region_free(struct cxl_region *cxlr)
{
	struct cxl_dc_region *dcr = cxlr->dc;

	if (!dcr)
		return;
	WARN_ON_ONCE(dcr->policy || dcr->nr_extents);
	cxlr->dc = NULL;
	mutex_destroy(&dcr->policy_lock);
	kfree(dcr);
}

/* --- per device ---------------------------------------------------------------------- */

/*
 * The device goes away: answer every offer it is still waiting for, so
 * that it does not keep the capacity pending (QEMU then refuses to offer
 * it again) and so that a later response does not answer the wrong offer.
 * Release requests still queued are not answered: the extents stay
 * accepted, the next probe reads them back, and the fabric manager asks
 * again.
 */
static void dc_dev_destroy(void *data)
{
	struct cxl_dc_dev *dcd = data;
	struct cxl_dc_chain *c, *n;

	debugfs_remove_recursive(dcd->debugfs);
	/* Nothing new is queued from here; what is queued runs first. */
	scoped_guard(mutex, &dcd->lock)
		dcd->dying = true;
	cancel_delayed_work_sync(&dcd->timeout);
	flush_work(&dcd->work);
	scoped_guard(mutex, &dcd->process_lock)
	scoped_guard(mutex, &dcd->lock) {
		if (dcd->open) {
			dcd->open->why = DC_REJECT_TEARDOWN;
			cxl_dc_chain_close(dcd);
		}
		list_for_each_entry_safe(c, n, &dcd->closed, node) {
			list_del(&c->node);
			if (c->type == CXL_DC_EVENT_ADD_CAPACITY)
				dc_answer_empty(dcd, c, DC_REJECT_TEARDOWN);
			cxl_dc_chain_free(c);
		}
	}
	destroy_workqueue(dcd->wq);
	destroy_workqueue(dcd->policy_wq);
	dcd->mds->dc.dcd = NULL;
	while (!list_empty(&dcd->withheld)) {
		struct dc_withheld *w = list_first_entry(&dcd->withheld,
							 struct dc_withheld,
							 node);

		list_del(&w->node);
		kfree(w);
	}
	mempool_destroy(dcd->release_pool);
	kvfree(dcd->payload);
}

/**
 * cxl_dc_dev_create() - start the extent library for a DC device
 * @mds: a device whose CEL lists the DC commands
 *
 * Context: probe.
 * Return: 0 or a negative errno.
 */
int cxl_dc_dev_create(struct cxl_memdev_state *mds)
{
	struct device *dev = mds->cxlds.dev;
	struct cxl_dc_dev *dcd = devm_kzalloc(dev, sizeof(*dcd), GFP_KERNEL);

	if (!dcd)
		return -ENOMEM;
	dcd->payload = kvzalloc(mds->cxlds.cxl_mbox.payload_size, GFP_KERNEL);
	if (!dcd->payload)
		return -ENOMEM;
	dcd->release_pool = mempool_create_kmalloc_pool(DC_RELEASE_RESERVE,
							sizeof(struct cxl_dc_chain));
	dcd->wq = alloc_ordered_workqueue("cxl_dc/%s", 0, dev_name(dev));
	dcd->policy_wq = alloc_workqueue("cxl_dc_policy/%s", WQ_UNBOUND, 0,
					 dev_name(dev));
	if (!dcd->release_pool || !dcd->wq || !dcd->policy_wq) {
		if (dcd->wq)
			destroy_workqueue(dcd->wq);
		if (dcd->policy_wq)
			destroy_workqueue(dcd->policy_wq);
		mempool_destroy(dcd->release_pool);
		kvfree(dcd->payload);
		return -ENOMEM;
	}
	dcd->mds = mds;
	mutex_init(&dcd->process_lock);
	mutex_init(&dcd->lock);
	INIT_LIST_HEAD(&dcd->closed);
	INIT_LIST_HEAD(&dcd->withheld);
	INIT_LIST_HEAD(&dcd->kick);
	INIT_DELAYED_WORK(&dcd->timeout, cxl_dc_chain_timeout);
	INIT_WORK(&dcd->work, dc_process_work);
	cxl_dc_debugfs_init(dcd, dev);
	mds->dc.dcd = dcd;
	return devm_add_action_or_reset(dev, dc_dev_destroy, dcd);
}
