// SPDX-License-Identifier: GPL-2.0-only
/* Copyright(c) 2026 The CXL DCD project authors. */
#include <linux/debugfs.h>
#include <linux/device.h>
#include <linux/module.h>
#include <linux/numa.h>
#include <linux/rbtree.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/workqueue.h>
#include <kunit/visibility.h>
#include <cxl/dc_lib.h>
#include <cxlmem.h>
#include <dcd.h>
#include "core.h"
#include "trace.h"

/**
 * DOC: Dynamic Capacity extent library
 *
 * This file owns the conversation with a Dynamic Capacity Device and has no
 * policy of its own.  The event log drain hands it Dynamic Capacity event
 * records; it gathers the records of one offer (a *chain*: every record up
 * to and including the first with the More flag clear), checks every
 * extent as untrusted data, groups the extents by tag, asks the region's
 * policy (&struct cxl_dc_policy_ops) about each group, and answers the chain
 * with exactly one Add Dynamic Capacity Response listing the accepted
 * extents in offered order.  Only then does the policy put the groups to
 * use.  Release requests run the other way: the policy lets go, then the
 * library sends Release Dynamic Capacity.  A release, forced or not, takes
 * every group it touches as a whole; after a forced release the device
 * gets back, once the policy let go, whatever it still holds of the group.
 *
 * Rules (each rejection is traced with its reason, see &enum dc_reject):
 *
 * - A chain longer than %CXL_DC_CHAIN_MAX records, still open
 *   %dc_chain_timeout_ms after its first record, or open when the event
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

/*
 * Policy callbacks a group waits for on its region's worker: activation
 * (of a recovered group: %DC_OP_RECOVERED too), or a release the device
 * asked for, forced or not.
 */
#define DC_OP_ACTIVATE		BIT(0)
#define DC_OP_RECOVERED		BIT(1)
#define DC_OP_RELEASE		BIT(2)
#define DC_OP_FORCE		BIT(3)

/* Work queued by cxl_dc_give_back(), among the device's own records. */
#define DC_HOST_GIVE_BACK	0xff

/* The most records one chain may carry before it is rejected whole. */
#define CXL_DC_CHAIN_MAX	512

static unsigned int dc_chain_timeout_ms = 20000;
module_param(dc_chain_timeout_ms, uint, 0644);
MODULE_PARM_DESC(dc_chain_timeout_ms,
		 "Close an offer whose last record has not arrived after this long (ms, 100..600000)");

/* An offer is always closed in the end: the timeout cannot be turned off. */
static unsigned int dc_chain_timeout_clamped(void)
{
	return clamp(READ_ONCE(dc_chain_timeout_ms), 100U, 600000U);
}

/**
 * enum dc_reject - why an extent was not accepted
 * @DC_OK: accepted
 * @DC_REJECT_LENGTH: zero length or wraps the DPA space
 * @DC_REJECT_PARTITION: outside the dynamic_ram_1 partition's usable length
 * @DC_REJECT_BLOCK: not aligned to the device's block size
 * @DC_REJECT_NO_REGION: no committed region maps it
 * @DC_REJECT_SPANS: crosses the end of its region's mapping
 * @DC_REJECT_INTERLEAVE: the region is interleaved
 * @DC_REJECT_NO_POLICY: no policy is bound to the region
 * @DC_REJECT_GRANULARITY: not aligned to the policy's granularity
 * @DC_REJECT_OVERLAP: overlaps a live extent or another of the offer
 * @DC_REJECT_TAG_MODE: tagged or untagged, against the region's tag mode
 * @DC_REJECT_TAG_LIVE: the tag is live elsewhere on the host
 * @DC_REJECT_SEQUENCE: sharable group without sequence 0..n-1
 * @DC_REJECT_GROUP: another extent of the group was rejected
 * @DC_REJECT_GROUP_REGIONS: the group spans regions
 * @DC_REJECT_POLICY: the policy's validate() said no
 * @DC_REJECT_CHAIN_CAP: the offer was longer than %CXL_DC_CHAIN_MAX
 * @DC_REJECT_CHAIN_TIMEOUT: the offer did not end in time
 * @DC_REJECT_NOMEM: the host ran out of memory
 * @DC_REJECT_RESPONSE: the device failed the response
 * @DC_REJECT_OVERFLOW: the event log overflowed while the offer was open
 * @DC_REJECT_TEARDOWN: the device went away before the offer was decided
 * @DC_REJECT_MAX: number of reasons
 */
enum dc_reject {
	DC_OK,
	DC_REJECT_LENGTH,
	DC_REJECT_PARTITION,
	DC_REJECT_BLOCK,
	DC_REJECT_NO_REGION,
	DC_REJECT_SPANS,
	DC_REJECT_INTERLEAVE,
	DC_REJECT_NO_POLICY,
	DC_REJECT_GRANULARITY,
	DC_REJECT_OVERLAP,
	DC_REJECT_TAG_MODE,
	DC_REJECT_TAG_LIVE,
	DC_REJECT_SEQUENCE,
	DC_REJECT_GROUP,
	DC_REJECT_GROUP_REGIONS,
	DC_REJECT_POLICY,
	DC_REJECT_CHAIN_CAP,
	DC_REJECT_CHAIN_TIMEOUT,
	DC_REJECT_NOMEM,
	DC_REJECT_RESPONSE,
	DC_REJECT_OVERFLOW,
	DC_REJECT_TEARDOWN,
	DC_REJECT_MAX
};

static const char *const dc_reject_str[DC_REJECT_MAX] = {
	[DC_OK] = "accepted",
	[DC_REJECT_LENGTH] = "bad length",
	[DC_REJECT_PARTITION] = "outside DC partition",
	[DC_REJECT_BLOCK] = "not block aligned",
	[DC_REJECT_NO_REGION] = "no committed region",
	[DC_REJECT_SPANS] = "spans region end",
	[DC_REJECT_INTERLEAVE] = "interleaved region",
	[DC_REJECT_NO_POLICY] = "no policy bound",
	[DC_REJECT_GRANULARITY] = "not policy aligned",
	[DC_REJECT_OVERLAP] = "overlaps live extent",
	[DC_REJECT_TAG_MODE] = "wrong tag kind for region",
	[DC_REJECT_TAG_LIVE] = "tag already live",
	[DC_REJECT_SEQUENCE] = "bad sequence",
	[DC_REJECT_GROUP] = "group member rejected",
	[DC_REJECT_GROUP_REGIONS] = "group spans regions",
	[DC_REJECT_POLICY] = "policy rejected",
	[DC_REJECT_CHAIN_CAP] = "offer too long",
	[DC_REJECT_CHAIN_TIMEOUT] = "offer timed out",
	[DC_REJECT_NOMEM] = "out of memory",
	[DC_REJECT_RESPONSE] = "response failed",
	[DC_REJECT_OVERFLOW] = "event log overflowed",
	[DC_REJECT_TEARDOWN] = "device going away",
};

/**
 * enum dc_outcome - what became of capacity that left the host, or of a
 *	release request (counted in memX/dc_stats/<name>)
 * @DC_RELEASED: extents given back with Release DC
 * @DC_GIVEN_BACK: groups a policy gave back on its own
 * @DC_FORCED: forced release records obeyed
 * @DC_NOT_HELD: release records for capacity no group held
 * @DC_HELD: releases a policy failed: the memory stays held
 * @DC_RELEASE_FAILED: Release DC commands the device failed
 * @DC_BAD_RECORD: release records with a bad length, ignored
 * @DC_KEPT: recovered groups kept accepted and unused
 * @DC_OUTCOME_MAX: number of outcomes
 */
enum dc_outcome {
	DC_RELEASED,
	DC_GIVEN_BACK,
	DC_FORCED,
	DC_NOT_HELD,
	DC_HELD,
	DC_RELEASE_FAILED,
	DC_BAD_RECORD,
	DC_KEPT,
	DC_OUTCOME_MAX
};

const char *cxl_dc_reject_reason(int reason)
{
	if (reason < 0 || reason >= DC_REJECT_MAX)
		return "unknown";
	return dc_reject_str[reason];
}
EXPORT_SYMBOL_IF_KUNIT(cxl_dc_reject_reason);

/**
 * struct cxl_dc_extent - one live extent
 * @node: entry in &cxl_dc_region.extents, keyed by @dpa
 * @kobj: the regionZ/extentZ.N directory
 * @group: the group the extent belongs to
 * @dpa: first device physical address
 * @len: length in bytes
 * @hpa: first host physical address
 * @id: N of extentZ.N
 * @seq: position in the group
 * @state: &enum cxl_dc_extent_state
 */
struct cxl_dc_extent {
	struct rb_node node;
	struct kobject kobj;
	struct cxl_dc_group *group;
	u64 dpa;
	u64 len;
	u64 hpa;
	int id;
	u16 seq;
	u8 state;
};

/**
 * struct cxl_dc_group - extents accepted and released together
 * @node: entry in &cxl_dc_region.groups
 * @tag_node: entry in the host-wide tag registry (tagged groups only)
 * @dcr: the region the group lives in
 * @policy: the policy that owns the group, NULL when the group is kept
 * @tag: the tag, null for an untagged extent
 * @data: the policy's per-group data
 * @state: &enum cxl_dc_extent_state of the whole group; a group with no
 *	@policy is *kept*: accepted on the device, used by nobody (a recovered
 *	group the policy refused, or one whose Release DC failed at unbind)
 * @forced: the device took (some of) the memory back already; what it
 *	still holds of the group goes back with Release DC at the end
 * @recheck: a Release DC of the group failed, perhaps after the device
 *	took part of it: the next one sends only what the device still holds
 * @tag_listed: the group's tag is in the host-wide tag registry
 * @owed: the policy answered -EBUSY and owes cxl_dc_release_done()
 * @forcing: a forced release is calling the policy; it ends the group
 * @done: cxl_dc_release_done() came while @forcing
 * @collected: already picked by the range walk in progress (under lock)
 * @activating: the region's worker is in the policy's ``activate`` for it
 * @ops: policy callbacks waiting on the region's worker (%DC_OP_*)
 * @todo: entry in &cxl_dc_region.todo while @ops is not empty
 * @nr: number of extents
 * @ext: the extents, in sequence order
 */
struct cxl_dc_group {
	struct list_head node;
	struct rb_node tag_node;
	struct cxl_dc_region *dcr;
	const struct cxl_dc_policy *policy;
	uuid_t tag;
	void *data;
	u8 state;
	/* One byte: every flag changes under &cxl_dc_dev.lock only. */
	bool forced:1;
	bool recheck:1;
	bool tag_listed:1;
	bool owed:1;
	bool forcing:1;
	bool done:1;
	bool collected:1;
	bool activating:1;
	u8 ops;
	struct list_head todo;
	int nr;
	struct cxl_dc_extent *ext[] __counted_by(nr);
};

/**
 * struct cxl_dc_region - Dynamic Capacity state of one region
 * @cxlr: the region
 * @dcd: the (single) device behind the region
 * @policy: the bound policy, NULL when none
 * @data: the policy's data
 * @tag_mode: &enum cxl_dc_tag_mode in force
 * @tag_mode_set: a user chose @tag_mode; a policy's default does not apply
 * @extents: live extents by DPA (under &cxl_dc_dev.lock)
 * @groups: live groups, oldest first (under &cxl_dc_dev.lock)
 * @nr_extents: number of live extents
 * @next_id: N of the next extentZ.N
 * @policy_lock: held across every policy callback for the region, so that
 *	they run one at a time, in order, and unregistering waits for them
 * @todo: groups with policy callbacks waiting, oldest first (under
 *	&cxl_dc_dev.lock)
 * @work: the region's worker, on &cxl_dc_dev.policy_wq: runs @todo
 */
struct cxl_dc_region {
	struct cxl_region *cxlr;
	struct cxl_dc_dev *dcd;
	const struct cxl_dc_policy *policy;
	void *data;
	enum cxl_dc_tag_mode tag_mode;
	bool tag_mode_set;
	struct rb_root extents;
	struct list_head groups;
	int nr_extents;
	int next_id;
	struct mutex policy_lock; /* see the lock order at the top */
	struct list_head todo;
	struct work_struct work;
};

/**
 * struct cxl_dc_chain - work from the device waiting to be processed: an
 *	offer (being gathered, or closed and waiting for its answer) or one
 *	release request
 * @node: entry in &cxl_dc_dev.closed
 * @type: %CXL_DC_EVENT_ADD_CAPACITY, _RELEASE_CAPACITY, _FORCED_RELEASE,
 *	or %DC_HOST_GIVE_BACK
 * @nr: records kept in @ext
 * @alloc: room in @ext
 * @why: non-zero when the whole offer is rejected (cap, timeout, memory)
 * @deadline: when an offer still open is closed (jiffies)
 * @ext: the offered extents, in offered order
 */
struct cxl_dc_chain {
	struct list_head node;
	u8 type;
	int nr;
	int alloc;
	enum dc_reject why;
	unsigned long deadline;
	struct cxl_dc_extent_raw *ext;
};

/**
 * struct cxl_dc_dev - extent library state of one memory device
 * @mds: the device
 * @process_lock: one processor of device work at a time, so that answers
 *	leave in the order the offers came
 * @lock: protects every field below and the extents and groups of every
 *	region on the device
 * @open: the offer being gathered, NULL between offers
 * @closed: offers whose last record arrived, oldest first, not yet answered
 * @timeout: closes @open when its last record does not come
 * @wq: the device's ordered workqueue, where @work runs
 * @work: processes @closed, see dc_process_work()
 * @policy_wq: where the regions' workers run policy callbacks, unbound so
 *	that one region's slow callback holds up no other region
 * @payload: the one Add DC Response / Release DC payload, so that an offer
 *	is answered even when the host is out of memory
 * @dying: the device is going away; nothing new is queued
 * @overflowed: the event log lost records during the current drain
 * @withheld: DPA ranges the device asked for whose Release DC failed when
 *	their policy unbound; never recovered, given back on the next request
 * @responses: Add DC Responses sent
 * @releases: Release DC commands sent
 * @offered: extents offered
 * @offer_ns: time spent deciding, answering and activating offers
 * @release_records: release records handled
 * @release_ns: time spent handling release records
 * @rejected: extents rejected, by &enum dc_reject
 * @outcome: release outcomes, by &enum dc_outcome
 * @debugfs: the device's debugfs directory
 */
struct cxl_dc_dev {
	struct cxl_memdev_state *mds;
	struct mutex process_lock; /* see the lock order at the top */
	struct mutex lock; /* see the lock order at the top */
	struct cxl_dc_chain *open;
	struct list_head closed;
	struct delayed_work timeout;
	struct workqueue_struct *wq;
	struct work_struct work;
	struct workqueue_struct *policy_wq;
	struct cxl_mbox_dc_response *payload;
	bool dying;
	bool overflowed;
	struct list_head withheld;
	unsigned long responses;
	unsigned long releases;
	unsigned long offered;
	u64 offer_ns;
	unsigned long release_records;
	u64 release_ns;
	unsigned long rejected[DC_REJECT_MAX];
	unsigned long outcome[DC_OUTCOME_MAX];
	struct dentry *debugfs;
};

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
				     dpa, len, dc_reject_str[why]);
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

static struct device *dc_dev(struct cxl_dc_dev *dcd)
{
	return dcd->mds->cxlds.dev;
}

static struct cxl_memdev *dc_memdev(struct cxl_dc_dev *dcd)
{
	return dcd->mds->cxlds.cxlmd;
}

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
static bool dc_tag_claim(struct cxl_dc_group *group)
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

static void dc_tag_drop(struct cxl_dc_group *group)
{
	if (!group->tag_listed)
		return;
	guard(mutex)(&cxl_dc_tags_lock);
	rb_erase(&group->tag_node, &cxl_dc_tags);
	group->tag_listed = false;
}

/* --- live extents of a region, by DPA ------------------------------------ */

/* The live extent with the highest start at or below @dpa, if any. */
static struct cxl_dc_extent *dc_extent_floor(struct cxl_dc_region *dcr, u64 dpa)
{
	struct rb_node *n = dcr->extents.rb_node;
	struct cxl_dc_extent *best = NULL;

	while (n) {
		struct cxl_dc_extent *e = rb_entry(n, struct cxl_dc_extent, node);

		if (e->dpa <= dpa) {
			best = e;
			n = n->rb_right;
		} else {
			n = n->rb_left;
		}
	}
	return best;
}

static bool dc_overlaps_live(struct cxl_dc_region *dcr, u64 dpa, u64 len)
{
	struct cxl_dc_extent *e = dc_extent_floor(dcr, dpa + len - 1);

	return e && e->dpa + e->len > dpa;
}

static void dc_extent_insert(struct cxl_dc_region *dcr, struct cxl_dc_extent *ext)
{
	struct rb_node **link = &dcr->extents.rb_node, *parent = NULL;

	while (*link) {
		parent = *link;
		if (ext->dpa < rb_entry(parent, struct cxl_dc_extent, node)->dpa)
			link = &parent->rb_left;
		else
			link = &parent->rb_right;
	}
	rb_link_node(&ext->node, parent, link);
	rb_insert_color(&ext->node, &dcr->extents);
	dcr->nr_extents++;
}

/* --- regionZ/extentZ.N --------------------------------------------------- */

static const char *const dc_state_str[] = {
	[CXL_DC_EXTENT_ACCEPTED] = "accepted",
	[CXL_DC_EXTENT_ACTIVE] = "active",
	[CXL_DC_EXTENT_RELEASE_PENDING] = "release-pending",
};

#define to_dc_extent(k) container_of(k, struct cxl_dc_extent, kobj)

static ssize_t offset_show(struct kobject *kobj, struct kobj_attribute *attr,
			   char *buf)
{
	struct cxl_dc_extent *ext = to_dc_extent(kobj);
	struct cxl_region *cxlr = ext->group->dcr->cxlr;

	return sysfs_emit(buf, "%#llx\n", ext->hpa - cxlr->params.res->start);
}

static ssize_t dpa_show(struct kobject *kobj, struct kobj_attribute *attr,
			char *buf)
{
	return sysfs_emit(buf, "%#llx\n", to_dc_extent(kobj)->dpa);
}

static ssize_t length_show(struct kobject *kobj, struct kobj_attribute *attr,
			   char *buf)
{
	return sysfs_emit(buf, "%#llx\n", to_dc_extent(kobj)->len);
}

static ssize_t uuid_show(struct kobject *kobj, struct kobj_attribute *attr,
			 char *buf)
{
	return sysfs_emit(buf, "%pUb\n", &to_dc_extent(kobj)->group->tag);
}

static ssize_t seq_show(struct kobject *kobj, struct kobj_attribute *attr,
			char *buf)
{
	return sysfs_emit(buf, "%u\n", to_dc_extent(kobj)->seq);
}

static ssize_t state_show(struct kobject *kobj, struct kobj_attribute *attr,
			  char *buf)
{
	return sysfs_emit(buf, "%s\n",
			  dc_state_str[READ_ONCE(to_dc_extent(kobj)->state)]);
}

static struct kobj_attribute dc_offset_attr = __ATTR_RO(offset);
static struct kobj_attribute dc_dpa_attr = __ATTR_RO(dpa);
static struct kobj_attribute dc_length_attr = __ATTR_RO(length);
static struct kobj_attribute dc_uuid_attr = __ATTR_RO(uuid);
static struct kobj_attribute dc_seq_attr = __ATTR_RO(seq);
static struct kobj_attribute dc_state_attr = __ATTR_RO(state);

static struct attribute *dc_extent_attrs[] = {
	&dc_offset_attr.attr,
	&dc_dpa_attr.attr,
	&dc_length_attr.attr,
	&dc_uuid_attr.attr,
	&dc_seq_attr.attr,
	&dc_state_attr.attr,
	NULL,
};
ATTRIBUTE_GROUPS(dc_extent);

static void dc_extent_kobj_release(struct kobject *kobj)
{
	kfree(to_dc_extent(kobj));
}

static const struct kobj_type dc_extent_ktype = {
	.release = dc_extent_kobj_release,
	.sysfs_ops = &kobj_sysfs_ops,
	.default_groups = dc_extent_groups,
};

static struct cxl_dc_extent *dc_extent_alloc(u64 dpa, u64 len, u64 hpa, u16 seq)
{
	struct cxl_dc_extent *ext = kzalloc_obj(*ext);

	if (!ext)
		return NULL;
	kobject_init(&ext->kobj, &dc_extent_ktype);
	ext->dpa = dpa;
	ext->len = len;
	ext->hpa = hpa;
	ext->seq = seq;
	ext->id = -1;
	return ext;
}

/* A sysfs directory is a courtesy: failing to add one loses nothing. */
static void dc_extent_publish(struct cxl_dc_region *dcr,
			      struct cxl_dc_extent *ext)
{
	ext->id = dcr->next_id++;
	if (kobject_add(&ext->kobj, &dcr->cxlr->dev.kobj, "extent%d.%d",
			dcr->cxlr->id, ext->id))
		dev_warn(&dcr->cxlr->dev, "no sysfs entry for extent %d\n",
			 ext->id);
}

/* --- groups --------------------------------------------------------------- */

static const char *dcr_name(struct cxl_dc_region *dcr)
{
	return dcr ? dev_name(&dcr->cxlr->dev) : NULL;
}

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
	dc_tag_drop(group);
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
		dc_extent_insert(dcr, group->ext[i]);
		dc_extent_publish(dcr, group->ext[i]);
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
		/* Its directory may have failed to appear (publish) */
		if (group->ext[i]->kobj.state_in_sysfs)
			kobject_del(&group->ext[i]->kobj);
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

/* --- commands to the device ------------------------------------------------ */

/*
 * Send an extent list with Add DC Response or Release DC, split across
 * commands only when the mailbox payload forces it (More set on all but
 * the last).  @get fills in extent @i.
 */
static int dc_send_list(struct cxl_dc_dev *dcd, u16 opcode, int nr,
			void (*get)(void *ctx, int i, u64 *dpa, u64 *len),
			void *ctx)
{
	struct cxl_mailbox *cxl_mbox = &dcd->mds->cxlds.cxl_mbox;
	struct cxl_mbox_dc_response *rsp = dcd->payload;
	size_t room = (cxl_mbox->payload_size - sizeof(*rsp)) /
		      sizeof(struct cxl_dc_updated_extent);
	int done = 0;

	lockdep_assert_held(&dcd->lock);
	if (WARN_ON_ONCE(!room))
		return -ENXIO;

	do {
		int n = min_t(int, nr - done, room);
		struct cxl_mbox_cmd cmd = {
			.opcode = opcode,
			.payload_in = rsp,
			.size_in = struct_size(rsp, extent_list, n),
		};
		int rc;

		memset(rsp, 0, cmd.size_in);
		rsp->extent_list_size = cpu_to_le32(n);
		if (done + n < nr)
			rsp->flags = CXL_DC_RESPONSE_MORE;
		for (int i = 0; i < n; i++) {
			u64 dpa, len;

			get(ctx, done + i, &dpa, &len);
			rsp->extent_list[i].start_dpa = cpu_to_le64(dpa);
			rsp->extent_list[i].length = cpu_to_le64(len);
		}
		rc = cxl_internal_send_cmd(cxl_mbox, &cmd);
		if (rc)
			return rc;
		done += n;
	} while (done < nr);

	return 0;
}

static void dc_group_get(void *ctx, int i, u64 *dpa, u64 *len)
{
	struct cxl_dc_group *group = ctx;

	*dpa = group->ext[i]->dpa;
	*len = group->ext[i]->len;
}

static void dc_range_get(void *ctx, int i, u64 *dpa, u64 *len)
{
	struct range *r = ctx;

	*dpa = r[i].start;
	*len = range_len(&r[i]);
}

/* --- what the device has: Get DC Extent List ------------------------------------ */

/*
 * Read the device's whole accepted-extent list.  The generation number
 * must not change while the list is read in parts; a few retries, then
 * -EAGAIN.  Returns the number of extents in *@out (kvfree() it).
 */
static int dc_read_extents(struct cxl_dc_dev *dcd,
			   struct cxl_dc_extent_raw **out)
{
	struct cxl_mailbox *cxl_mbox = &dcd->mds->cxlds.cxl_mbox;
	size_t max = (cxl_mbox->payload_size -
		      sizeof(struct cxl_mbox_get_dc_extent_out)) /
		     sizeof(struct cxl_dc_extent_raw);
	struct cxl_mbox_get_dc_extent_out *rsp __free(kvfree) =
		kvmalloc(cxl_mbox->payload_size, GFP_KERNEL);

	if (!rsp || !max)
		return -ENOMEM;

	for (int tries = 0; tries < 5; tries++) {
		struct cxl_dc_extent_raw *all = NULL;
		u32 total = 0, got = 0, gen = 0;
		bool moved = false;

		do {
			struct cxl_mbox_get_dc_extent_in in = {
				.extent_cnt = cpu_to_le32(max),
				.start_extent_index = cpu_to_le32(got),
			};
			struct cxl_mbox_cmd cmd = {
				.opcode = CXL_MBOX_OP_GET_DC_EXTENT_LIST,
				.payload_in = &in,
				.size_in = sizeof(in),
				.payload_out = rsp,
				.size_out = cxl_mbox->payload_size,
				.min_out = sizeof(*rsp),
			};
			u32 n;
			int rc = cxl_internal_send_cmd(cxl_mbox, &cmd);

			if (rc) {
				kvfree(all);
				return rc;
			}
			n = le32_to_cpu(rsp->returned_extent_count);
			if (!got) {
				total = le32_to_cpu(rsp->total_extent_count);
				gen = le32_to_cpu(rsp->generation_num);
				if (total > dcd->mds->dc.config.extents_supported) {
					dev_err(dc_dev(dcd),
						"device lists %u extents, supports %u\n",
						total,
						dcd->mds->dc.config.extents_supported);
					return -EIO;
				}
				all = kvcalloc(max_t(u32, total, 1),
					       sizeof(*all), GFP_KERNEL);
				if (!all)
					return -ENOMEM;
			} else if (gen != le32_to_cpu(rsp->generation_num)) {
				moved = true;
				break;
			}
			if (n > total - got ||
			    struct_size(rsp, extent, n) > cmd.size_out ||
			    (!n && got < total)) {
				kvfree(all);
				dev_err(dc_dev(dcd), "malformed DC extent list\n");
				return -EIO;
			}
			memcpy(&all[got], rsp->extent, n * sizeof(*all));
			got += n;
		} while (got < total);

		if (!moved) {
			*out = all;
			return total;
		}
		kvfree(all);
	}
	return -EAGAIN;
}

/*
 * Put in @r (room for @room) the parts of [@start, @last] the device still
 * holds, by its list @raw of @total extents (malformed entries skipped; a
 * device whose list overlaps itself cannot overrun @r).  Returns how many.
 */
static int dc_clip_held(const struct cxl_dc_extent_raw *raw, int total,
			u64 start, u64 last, struct range *r, int room)
{
	int n = 0;

	for (int j = 0; j < total && n < room; j++) {
		u64 s = le64_to_cpu(raw[j].start_dpa), e;

		if (!raw[j].length ||
		    check_add_overflow(s, le64_to_cpu(raw[j].length) - 1, &e))
			continue;
		s = max(s, start);
		e = min(e, last);
		if (s <= e)
			r[n++] = (struct range) { s, e };
	}
	return n;
}

/*
 * What the device still holds of @group, after it took part of it by
 * force: the group's extents cut down to the device's own extent list.
 * Returns the number of DPA ranges in *@out (kvfree() it).
 */
static int dc_group_still_held(struct cxl_dc_dev *dcd,
			       struct cxl_dc_group *group, struct range **out)
{
	struct cxl_dc_extent_raw *raw __free(kvfree) = NULL;
	int total, n = 0;
	struct range *r;

	total = dc_read_extents(dcd, &raw);
	if (total < 0)
		return total;
	/* Two sets of disjoint ranges cut each other in fewer pieces. */
	r = kvcalloc(group->nr + total, sizeof(*r), GFP_KERNEL);
	if (!r)
		return -ENOMEM;
	for (int i = 0; i < group->nr; i++) {
		struct cxl_dc_extent *e = group->ext[i];

		n += dc_clip_held(raw, total, e->dpa, e->dpa + e->len - 1,
				  r + n, group->nr + total - n);
	}
	*out = r;
	return n;
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
	int n = dc_group_still_held(dcd, group, &r);

	if (n <= 0)
		return n;
	if (group->forced)
		dev_warn(&group->dcr->cxlr->dev,
			 "giving back %d range(s) the device left of a group it took by force\n",
			 n);
	return dc_send_list(dcd, CXL_MBOX_OP_RELEASE_DC, n, dc_range_get, r) ?:
	       n;
}

/*
 * Give a live group back to the device and forget it.  On failure the
 * group stays, release-pending, and the next release request for it
 * retries with what the device still holds then.
 */
static int dc_group_give_back(struct cxl_dc_dev *dcd, struct cxl_dc_group *group)
{
	int rc;

	lockdep_assert_held(&dcd->lock);
	if (group->forced || group->recheck)
		rc = dc_group_give_back_rest(dcd, group);
	else
		rc = dc_send_list(dcd, CXL_MBOX_OP_RELEASE_DC, group->nr,
				  dc_group_get, group) ?: group->nr;
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
};

/* Remember a release-pending group's ranges when its group goes away. */
static void dc_withhold(struct cxl_dc_dev *dcd, struct cxl_dc_group *group)
{
	lockdep_assert_held(&dcd->lock);
	for (int i = 0; i < group->nr; i++) {
		struct dc_withheld *w = kzalloc_obj(*w);

		/* Without memory the next bind takes it up: logged. */
		if (!w) {
			dev_err(dc_dev(dcd), "forgetting a pending release\n");
			return;
		}
		w->r = (struct range) { group->ext[i]->dpa,
					group->ext[i]->dpa + group->ext[i]->len - 1 };
		list_add_tail(&w->node, &dcd->withheld);
	}
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

/* [@start, @end] went back to the device, or it took it. */
static void dc_withheld_clear(struct cxl_dc_dev *dcd, u64 start, u64 end)
{
	struct dc_withheld *w, *n;

	list_for_each_entry_safe(w, n, &dcd->withheld, node) {
		if (w->r.start >= start && w->r.end <= end) {
			list_del(&w->node);
			kfree(w);
		}
	}
}

/* --- gathering offers --------------------------------------------------------- */

static void dc_chain_free(struct cxl_dc_chain *chain)
{
	if (!chain)
		return;
	kvfree(chain->ext);
	kfree(chain);
}

static void dc_chain_add(struct cxl_dc_dev *dcd, const struct cxl_event_dcd *rec)
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

static void dc_chain_close(struct cxl_dc_dev *dcd)
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

/* Let the device's work run.  Context: dcd->lock held. */
static void dc_kick(struct cxl_dc_dev *dcd)
{
	lockdep_assert_held(&dcd->lock);
	if (!dcd->dying && !list_empty(&dcd->closed))
		queue_work(dcd->wq, &dcd->work);
}

static void dc_chain_timeout(struct work_struct *work)
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
		dc_chain_close(dcd);
		dc_kick(dcd);
	}
}

/* --- answering offers --------------------------------------------------------- */

/**
 * struct dc_offer_ext - one offered extent while its offer is decided
 * @raw: the extent as the device described it
 * @dpa: first DPA
 * @len: length
 * @hpa: first HPA, once a region maps it
 * @dcr: the region that maps it, if any
 * @why: &enum dc_reject, DC_OK while still acceptable
 * @first: index of its group's first member
 * @next: index of the next member of its group, -1 after the last
 * @seq: position in its group
 */
struct dc_offer_ext {
	const struct cxl_dc_extent_raw *raw;
	u64 dpa;
	u64 len;
	u64 hpa;
	struct cxl_dc_region *dcr;
	enum dc_reject why;
	int first;
	int next;
	u16 seq;
};

static bool dc_is_tagged(const struct cxl_dc_extent_raw *raw)
{
	return !!memchr_inv(raw->tag, 0, UUID_SIZE);
}

/* Rules on the DPA range alone: length, partition, device block size. */
static enum dc_reject dc_check_dpa(const struct cxl_dc_config *cfg, u64 dpa,
				   u64 len)
{
	const struct cxl_dc_region_info *r0 = &cfg->region[0];
	u64 end;

	if (!len || check_add_overflow(dpa, len - 1, &end))
		return DC_REJECT_LENGTH;
	if (!cfg->nr_regions || dpa < r0->base || end >= r0->base + r0->len)
		return DC_REJECT_PARTITION;
	if (!IS_ALIGNED(dpa | len, r0->block_size))
		return DC_REJECT_BLOCK;
	return DC_OK;
}

/* Rules a region's policy sets: HPA granularity and tag mode. */
static enum dc_reject dc_check_policy(enum cxl_dc_tag_mode mode, u64 gran,
				      u64 hpa, u64 len, bool tagged)
{
	if (gran && !IS_ALIGNED(hpa | len, gran))
		return DC_REJECT_GRANULARITY;
	if ((tagged && mode == CXL_DC_TAG_UNTAGGED) ||
	    (!tagged && mode == CXL_DC_TAG_TAGGED))
		return DC_REJECT_TAG_MODE;
	return DC_OK;
}

static enum dc_reject dc_check_extent(struct cxl_dc_dev *dcd,
				      struct dc_offer_ext *oe)
{
	struct cxl_endpoint_decoder *cxled;
	struct cxl_region_params *p;
	struct cxl_region *cxlr;
	enum dc_reject why;

	lockdep_assert_held(&dcd->lock);
	why = dc_check_dpa(&dcd->mds->dc.config, oe->dpa, oe->len);
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
	why = dc_check_policy(oe->dcr->tag_mode, oe->dcr->policy->granularity,
			      oe->hpa, oe->len, dc_is_tagged(oe->raw));
	if (why)
		return why;
	if (dc_overlaps_live(oe->dcr, oe->dpa, oe->len))
		return DC_REJECT_OVERLAP;
	return DC_OK;
}

static int dc_cmp_dpa(const void *a, const void *b)
{
	const struct dc_offer_ext *x = *(const struct dc_offer_ext **)a;
	const struct dc_offer_ext *y = *(const struct dc_offer_ext **)b;

	return x->dpa < y->dpa ? -1 : x->dpa > y->dpa;
}

/* Extents of one offer may not overlap each other: both are rejected. */
static int dc_check_offer_overlap(struct dc_offer_ext *oe, int n)
{
	struct dc_offer_ext **by_dpa __free(kvfree) =
		kvmalloc_array(n, sizeof(*by_dpa), GFP_KERNEL);

	if (!by_dpa)
		return -ENOMEM;
	for (int i = 0; i < n; i++)
		by_dpa[i] = &oe[i];
	sort(by_dpa, n, sizeof(*by_dpa), dc_cmp_dpa, NULL);
	for (int i = 1; i < n; i++) {
		struct dc_offer_ext *a = by_dpa[i - 1], *b = by_dpa[i];

		if (!a->len || !b->len || a->dpa + a->len <= b->dpa)
			continue;
		if (a->why == DC_OK)
			a->why = DC_REJECT_OVERLAP;
		if (b->why == DC_OK)
			b->why = DC_REJECT_OVERLAP;
	}
	return 0;
}

/* Apply @why to every still-acceptable member of the group led by @first. */
static void dc_reject_group(struct dc_offer_ext *oe, int first,
			    enum dc_reject why)
{
	for (int i = first; i >= 0; i = oe[i].next)
		if (oe[i].why == DC_OK)
			oe[i].why = why;
}

/*
 * Rules for a whole group of @nr members led by @first: one region, a tag
 * not live elsewhere, sequences 0..nr-1 when sharable.  Numbers the
 * members (@seq) as a side effect.
 */
static void dc_check_group(struct cxl_dc_dev *dcd, struct dc_offer_ext *oe,
			   int first, int nr, bool recovering)
{
	unsigned long *seen __free(bitmap) = bitmap_zalloc(nr, GFP_KERNEL);
	bool sharable = dcd->mds->dc.config.region[0].sharable;
	enum dc_reject why = DC_OK;
	int k = 0;

	if (!seen) {
		dc_reject_group(oe, first, DC_REJECT_NOMEM);
		return;
	}
	for (int i = first; i >= 0; i = oe[i].next) {
		if (oe[i].why != DC_OK && why == DC_OK)
			why = DC_REJECT_GROUP;
		if (oe[i].dcr != oe[first].dcr)
			why = DC_REJECT_GROUP_REGIONS;
		oe[i].seq = k++;
		if (sharable && dc_is_tagged(oe[first].raw)) {
			u16 seq = le16_to_cpu(oe[i].raw->shared_extn_seq);

			if (seq >= nr || test_and_set_bit(seq, seen))
				why = DC_REJECT_SEQUENCE;
			else
				oe[i].seq = seq;
		}
	}
	if (why == DC_OK && !recovering && dc_is_tagged(oe[first].raw)) {
		guard(mutex)(&cxl_dc_tags_lock);
		if (dc_tag_find((const uuid_t *)oe[first].raw->tag))
			why = DC_REJECT_TAG_LIVE;
	}
	if (why != DC_OK)
		dc_reject_group(oe, first, why);
}

/* By tag, then by place in the offer. */
static int dc_cmp_tag(const void *a, const void *b)
{
	const struct dc_offer_ext *x = *(const struct dc_offer_ext **)a;
	const struct dc_offer_ext *y = *(const struct dc_offer_ext **)b;
	int c = memcmp(x->raw->tag, y->raw->tag, UUID_SIZE);

	if (c)
		return c;
	return x < y ? -1 : x > y;
}

/*
 * Group the extents of an offer by tag; an untagged extent is a group.
 * Each member gets its group's leader (@first, the member offered first)
 * and the next member in offered order (@next).  O(n log n): sorted by tag, not compared in
 * pairs, so that recovering 65536 extents stays cheap.
 */
static void dc_form_groups(struct cxl_dc_dev *dcd, struct dc_offer_ext *oe,
			   int n, bool recovering)
{
	struct dc_offer_ext **by_tag __free(kvfree) =
		kvmalloc_array(max(n, 1), sizeof(*by_tag), GFP_KERNEL);
	for (int i = 0; i < n; i++) {
		oe[i].first = i;
		oe[i].next = -1;
		if (by_tag)
			by_tag[i] = &oe[i];
		else if (oe[i].why == DC_OK)
			oe[i].why = DC_REJECT_NOMEM;
	}
	if (by_tag) {
		sort(by_tag, n, sizeof(*by_tag), dc_cmp_tag, NULL);
		for (int i = 1; i < n; i++) {
			struct dc_offer_ext *prev = by_tag[i - 1], *e = by_tag[i];

			if (!dc_is_tagged(e->raw) ||
			    memcmp(prev->raw->tag, e->raw->tag, UUID_SIZE))
				continue;
			prev->next = e - oe;
			e->first = prev->first;
		}
	}
	for (int i = 0; i < n; i++) {
		int nr = 0;

		if (oe[i].first != i)
			continue;
		for (int j = i; j >= 0; j = oe[j].next)
			nr++;
		dc_check_group(dcd, oe, i, nr, recovering);
	}
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
		group->ext[oe[i].seq] = dc_extent_alloc(oe[i].dpa, oe[i].len,
							oe[i].hpa, oe[i].seq);
		if (!group->ext[oe[i].seq])
			goto nomem;
		group->ext[oe[i].seq]->group = group;
	}
	return group;

nomem:
	if (group)
		dc_group_free(group);
	dc_reject_group(oe, first, DC_REJECT_NOMEM);
	return NULL;
}

static void dc_offer_get(void *ctx, int i, u64 *dpa, u64 *len)
{
	struct dc_offer_ext **acc = ctx;

	*dpa = acc[i]->dpa;
	*len = acc[i]->len;
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
	rc = dc_send_list(dcd, CXL_MBOX_OP_ADD_DC_RESPONSE, nacc, dc_offer_get,
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
		if (nacc && !dc_send_list(dcd, CXL_MBOX_OP_ADD_DC_RESPONSE, 0,
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
					    0, dc_reject_str[why]);
	}
	rc = dc_send_list(dcd, CXL_MBOX_OP_ADD_DC_RESPONSE, 0, NULL, NULL);
	if (trace)
		trace_cxl_dc_response(dc_memdev(dcd), chain->nr, 0, rc);
	if (rc)
		dev_err(dc_dev(dcd), "Add DC Response failed: %d\n", rc);
	else if (!trace)
		dev_info(dc_dev(dcd), "DC offer of %d extent(s) rejected: %s\n",
			 chain->nr, dc_reject_str[why]);
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
		.state = gone ? "released" : dc_state_str[g->state],
		.offset = g->ext[0]->hpa - g->dcr->cxlr->params.res->start,
		.nr = g->nr,
		.tag = g->tag,
	};
	for (int i = 0; i < g->nr; i++)
		c->length += g->ext[i]->len;
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
 * Have the region's worker call the policy for @group (%DC_OP_*).  A
 * forced release replaces an ordinary one still waiting.  Context:
 * dcd->lock held, a policy bound to the group's region.
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
	queue_work(dcr->dcd->policy_wq, &dcr->work);
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
			dc_change_of(&c, group, true);
			if (dc_group_give_back(dcd, group))
				c.state = dc_state_str[CXL_DC_EXTENT_RELEASE_PENDING];
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
		if (dc_check_offer_overlap(oe, n))
			for (int i = 0; i < n; i++)
				oe[i].why = DC_REJECT_NOMEM;
		dc_form_groups(dcd, oe, n, false);

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
				dc_reject_group(oe, gi, DC_REJECT_POLICY);
				dc_group_free(group);
				continue;
			}
			if (!dc_tag_claim(group)) {
				/* Another device took the tag meanwhile. */
				dc_reject_group(oe, gi, DC_REJECT_TAG_LIVE);
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
						    dc_reject_str[oe[i].why]);
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
		dc_change_of(&c, group, true);
		if (dc_group_give_back(dcd, group))
			c.state = dc_state_str[CXL_DC_EXTENT_RELEASE_PENDING];
	}
	dc_region_uevent(dcr, &c);
}
EXPORT_SYMBOL_NS_GPL(cxl_dc_release_done, "CXL");

/*
 * Collect the live groups with an extent overlapping [@dpa, @dpa + @len),
 * each once, into @out (room for @max); with @out NULL, count the extents
 * in the range instead (a bound on the number of groups).
 */
static int dc_groups_in_range(struct cxl_dc_region *dcr, u64 dpa, u64 len,
			      struct cxl_dc_group **out, int max)
{
	struct cxl_dc_extent *e = dc_extent_floor(dcr, dpa);
	struct rb_node *n;
	int nr = 0;

	if (!e)
		n = rb_first(&dcr->extents);
	else if (e->dpa + e->len <= dpa)
		n = rb_next(&e->node);
	else
		n = &e->node;
	for (; n && nr < max; n = rb_next(n)) {
		struct cxl_dc_group *g;

		e = rb_entry(n, struct cxl_dc_extent, node);
		if (e->dpa >= dpa + len)
			break;
		if (e->dpa + e->len <= dpa)
			continue;
		if (!out) {
			nr++;
			continue;
		}
		g = e->group;
		if (!g->collected) {
			g->collected = true;
			out[nr++] = g;
		}
	}
	/* Marks only dedupe within this walk: O(extents in the range). */
	for (int i = 0; out && i < nr; i++)
		out[i]->collected = false;
	return nr;
}

/*
 * The device's extent list, read once per release record, the first time
 * a part of it that no group holds needs it (@total < 0 until then).
 */
struct dc_device_list {
	struct cxl_dc_extent_raw *raw;
	int total;
};

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
		dc_withheld_clear(dcd, dpa, end);
		return;
	}
	if (list->total < 0)
		list->total = dc_read_extents(dcd, &list->raw);
	if (list->total <= 0)
		return;
	r = kvcalloc(list->total, sizeof(*r), GFP_KERNEL);
	if (!r)
		return;
	n = dc_clip_held(list->raw, list->total, dpa, end, r, list->total);
	if (n && dc_send_list(dcd, CXL_MBOX_OP_RELEASE_DC, n, dc_range_get, r))
		return;
	dc_withheld_clear(dcd, dpa, end);
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
		if ((rc || group->owed) && !group->done) {
			/* Still in use: cxl_dc_release_done() ends it. */
			group->owed = true;
			dc_set_state(group, CXL_DC_EXTENT_RELEASE_PENDING);
			dc_change_of(&c, group, false);
		} else {
			dc_change_of(&c, group, true);
			if (dc_group_give_back(dcd, group))
				c.state = dc_state_str[CXL_DC_EXTENT_RELEASE_PENDING];
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
				nr += dc_groups_in_range(dcr, at, last - at + 1,
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
				got = dc_groups_in_range(dcr, at, last - at + 1,
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
		if (ops & DC_OP_ACTIVATE)
			dc_activate(dcd, group, ops & DC_OP_RECOVERED);
		else if (ops & DC_OP_FORCE)
			dc_force_release(dcd, group);
		else
			dc_start_release(dcd, group);
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
	e = dcr ? dc_extent_floor(dcr, dpa) : NULL;
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
		dc_chain_free(item);
		return -ENOMEM;
	}
	scoped_guard(mutex, &dcd->lock) {
		if (group->state != CXL_DC_EXTENT_ACTIVE || group->owed ||
		    group->forcing || group->ops || dcd->dying) {
			dc_chain_free(item);
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

/* --- the event drain's entry points -------------------------------------------- */

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
	struct cxl_dc_chain *one;

	trace_cxl_dc_event(mds->cxlds.cxlmd, rec);
	if (!dcd)
		return;

	guard(mutex)(&dcd->lock);
	if (dcd->dying)
		return;
	switch (rec->event_type) {
	case CXL_DC_EVENT_ADD_CAPACITY:
		dc_chain_add(dcd, rec);
		if (!(rec->flags & CXL_DC_EVENT_MORE))
			dc_chain_close(dcd);
		return;
	case CXL_DC_EVENT_RELEASE_CAPACITY:
	case CXL_DC_EVENT_FORCED_RELEASE:
		one = kzalloc_obj(*one);
		if (one)
			one->ext = kvmalloc(sizeof(*one->ext), GFP_KERNEL);
		if (!one || !one->ext) {
			dev_err(mds->cxlds.dev, "no memory for a DC release\n");
			dc_chain_free(one);
			return;
		}
		one->type = rec->event_type;
		one->nr = 1;
		one->ext[0] = rec->extent;
		list_add_tail(&one->node, &dcd->closed);
		return;
	case CXL_DC_EVENT_REGION_CONFIG_UPDATED:
		dev_info(mds->cxlds.dev, "DC region %u configuration updated\n",
			 rec->region_index);
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
		} else {
			dc_process_release(dcd, &chain->ext[0],
					   chain->type == CXL_DC_EVENT_FORCED_RELEASE);
			t0 = ktime_get_ns() - t0;
			guard(mutex)(&dcd->lock);
			dcd->release_records++;
			dcd->release_ns += t0;
		}
		dc_chain_free(chain);
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
		dc_chain_close(dcd);
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
 * activation on the region's worker.  Context: process_lock, region and
 * dpa rwsems and dcd->lock held.
 */
static int dc_recover(struct cxl_dc_dev *dcd, struct cxl_dc_region *dcr)
{
	struct cxl_dc_extent_raw *raw __free(kvfree) = NULL;
	struct dc_offer_ext *oe __free(kvfree) = NULL;
	struct cxl_region_params *p = &dcr->cxlr->params;
	struct cxl_endpoint_decoder *cxled = p->targets[0];
	int total, n = 0, nkept = 0;

	total = dc_read_extents(dcd, &raw);
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
		    dc_overlaps_live(dcr, dpa, len) ||
		    dc_withheld_overlaps(dcd, dpa, len))
			continue;
		oe[n] = (struct dc_offer_ext) {
			.raw = &raw[i], .dpa = dpa, .len = len, .dcr = dcr,
			.hpa = p->res->start + (dpa - cxled->dpa_res->start),
		};
		oe[n].why = dc_check_policy(dcr->tag_mode, dcr->policy->granularity,
					    oe[n].hpa, len, dc_is_tagged(&raw[i]));
		n++;
	}
	dc_form_groups(dcd, oe, n, true);
	for (int first = 0; first < n; first++) {
		struct cxl_dc_group *group;
		enum dc_reject why = DC_OK;

		if (oe[first].first != first)
			continue;
		for (int i = first; i >= 0; i = oe[i].next)
			if (oe[i].why != DC_OK)
				why = why ?: oe[i].why;
		/* A kept group is built whole, numbered in the device's order. */
		for (int i = first, k = 0; why && i >= 0; i = oe[i].next) {
			oe[i].why = DC_OK;
			oe[i].seq = k++;
		}
		group = dc_build_group(oe, first);
		if (!group)
			continue;
		dc_group_link(dcr, group);
		if (why == DC_OK && dcr->policy->ops->validate &&
		    dcr->policy->ops->validate(dcr->cxlr, group))
			why = DC_REJECT_POLICY;
		if (!dc_tag_claim(group) && why == DC_OK)
			why = DC_REJECT_TAG_LIVE;
		if (why != DC_OK) {
			dc_group_keep(dcd, group, dc_reject_str[why]);
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
	if (n)
		dev_info(&dcr->cxlr->dev,
			 "recovered %d accepted extent(s), %d group(s) kept unused\n",
			 n, nkept);
	/* Extents not recovered (no memory) stay accepted, unused. */
	return 0;
}

/* --- policies ---------------------------------------------------------------------- */

/* A policy may limit the tag modes a user can pick (0: any). */
static bool dc_tag_mode_allowed(const struct cxl_dc_policy *policy,
				enum cxl_dc_tag_mode mode)
{
	return !policy || !policy->tag_modes || (policy->tag_modes & BIT(mode));
}

static struct cxl_dc_dev *dc_region_dev(struct cxl_region *cxlr)
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
		dcd = dc_region_dev(cxlr);
	if (!dcd)
		return -ENXIO;

	scoped_guard(mutex, &dcd->process_lock)
	scoped_guard(rwsem_read, &cxl_rwsem.region)
	scoped_guard(rwsem_read, &cxl_rwsem.dpa)
	scoped_guard(mutex, &dcd->lock) {
		if (dc_region_dev(cxlr) != dcd)
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
			return rc;
		}
	}
	/* The recovered groups are in use when this returns. */
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
		list_for_each_entry_safe(group, next, &dcr->groups, node) {
			bool asked = group->state == CXL_DC_EXTENT_RELEASE_PENDING ||
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
		dcr->data = NULL;
	}
	/* The worker may still be on its way to an empty list. */
	cancel_work_sync(&dcr->work);
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
	dcd = dc_region_dev(cxlr);
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

/* --- regionZ/tag_mode ------------------------------------------------------------ */

/* Only ever called on region devices: the group sits in region_groups[]. */
static struct cxl_region *dc_to_region(struct device *dev)
{
	return container_of(dev, struct cxl_region, dev);
}

static const char *const dc_tag_mode_str[] = {
	[CXL_DC_TAG_UNTAGGED] = "untagged",
	[CXL_DC_TAG_TAGGED] = "tagged",
	[CXL_DC_TAG_ANY] = "any",
};

static ssize_t tag_mode_show(struct device *dev, struct device_attribute *attr,
			     char *buf)
{
	struct cxl_dc_region *dcr = dc_to_region(dev)->dc;

	return sysfs_emit(buf, "%s\n", dc_tag_mode_str[READ_ONCE(dcr->tag_mode)]);
}

static ssize_t tag_mode_store(struct device *dev, struct device_attribute *attr,
			      const char *buf, size_t len)
{
	struct cxl_dc_region *dcr = dc_to_region(dev)->dc;
	int mode = sysfs_match_string(dc_tag_mode_str, buf);
	struct cxl_dc_dev *dcd;

	if (mode < 0)
		return mode;

	scoped_guard(rwsem_read, &cxl_rwsem.region)
		dcd = dc_region_dev(dcr->cxlr);
	if (!dcd) {
		/* No device yet, so no extent: nothing can race. */
		WRITE_ONCE(dcr->tag_mode, mode);
		dcr->tag_mode_set = true;
		return len;
	}
	guard(mutex)(&dcd->lock);
	if (dcr->nr_extents)
		return -EBUSY;
	if (!dc_tag_mode_allowed(dcr->policy, mode))
		return -EINVAL;
	WRITE_ONCE(dcr->tag_mode, mode);
	dcr->tag_mode_set = true;
	return len;
}
static DEVICE_ATTR_RW(tag_mode);

/* Bytes of the region's live extents in one state: a walk of the groups. */
static ssize_t dc_bytes_show(struct device *dev, char *buf,
			     enum cxl_dc_extent_state state)
{
	struct cxl_dc_region *dcr = dc_to_region(dev)->dc;
	struct cxl_dc_dev *dcd;
	struct cxl_dc_group *g;
	u64 bytes = 0;

	scoped_guard(rwsem_read, &cxl_rwsem.region)
		dcd = dc_region_dev(dcr->cxlr);
	if (dcd) {
		guard(mutex)(&dcd->lock);
		list_for_each_entry(g, &dcr->groups, node)
			for (int i = 0; g->state == state && i < g->nr; i++)
				bytes += g->ext[i]->len;
	}
	return sysfs_emit(buf, "%#llx\n", bytes);
}

static ssize_t accepted_bytes_show(struct device *dev,
				   struct device_attribute *attr, char *buf)
{
	return dc_bytes_show(dev, buf, CXL_DC_EXTENT_ACCEPTED);
}
static DEVICE_ATTR_RO(accepted_bytes);

static ssize_t active_bytes_show(struct device *dev,
				 struct device_attribute *attr, char *buf)
{
	return dc_bytes_show(dev, buf, CXL_DC_EXTENT_ACTIVE);
}
static DEVICE_ATTR_RO(active_bytes);

static ssize_t release_pending_bytes_show(struct device *dev,
					  struct device_attribute *attr,
					  char *buf)
{
	return dc_bytes_show(dev, buf, CXL_DC_EXTENT_RELEASE_PENDING);
}
static DEVICE_ATTR_RO(release_pending_bytes);

static struct attribute *cxl_dc_region_attrs[] = {
	&dev_attr_tag_mode.attr,
	&dev_attr_accepted_bytes.attr,
	&dev_attr_active_bytes.attr,
	&dev_attr_release_pending_bytes.attr,
	NULL,
};

static umode_t cxl_dc_region_visible(struct kobject *kobj, struct attribute *a,
				     int n)
{
	return dc_to_region(kobj_to_dev(kobj))->dc ? a->mode : 0;
}

const struct attribute_group cxl_dc_region_group = {
	.attrs = cxl_dc_region_attrs,
	.is_visible = cxl_dc_region_visible,
};

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
 * memX/dc_stats/: one counter per rejection reason and per release
 * outcome, readable where debugfs is not (lockdown).
 */
struct dc_stat_attr {
	struct device_attribute attr;
	bool outcome;
	int idx;
};

static ssize_t dc_stat_show(struct device *dev, struct device_attribute *attr,
			    char *buf)
{
	struct dc_stat_attr *sa = container_of(attr, struct dc_stat_attr, attr);
	struct cxl_memdev_state *mds =
		to_cxl_memdev_state(to_cxl_memdev(dev)->cxlds);
	struct cxl_dc_dev *dcd = mds ? mds->dc.dcd : NULL;

	if (!dcd)
		return -ENXIO;
	guard(mutex)(&dcd->lock);
	return sysfs_emit(buf, "%lu\n", sa->outcome ? dcd->outcome[sa->idx] :
						     dcd->rejected[sa->idx]);
}

#define DC_STAT(_name, _outcome, _idx)					\
	static struct dc_stat_attr dc_stat_##_name = {			\
		.attr = __ATTR(_name, 0444, dc_stat_show, NULL),	\
		.outcome = _outcome,					\
		.idx = _idx,						\
	}
#define DC_REJECTED(_name, _idx)	DC_STAT(rejected_##_name, false, _idx)

DC_REJECTED(length, DC_REJECT_LENGTH);
DC_REJECTED(partition, DC_REJECT_PARTITION);
DC_REJECTED(block, DC_REJECT_BLOCK);
DC_REJECTED(no_region, DC_REJECT_NO_REGION);
DC_REJECTED(spans, DC_REJECT_SPANS);
DC_REJECTED(interleave, DC_REJECT_INTERLEAVE);
DC_REJECTED(no_policy, DC_REJECT_NO_POLICY);
DC_REJECTED(granularity, DC_REJECT_GRANULARITY);
DC_REJECTED(overlap, DC_REJECT_OVERLAP);
DC_REJECTED(tag_mode, DC_REJECT_TAG_MODE);
DC_REJECTED(tag_live, DC_REJECT_TAG_LIVE);
DC_REJECTED(sequence, DC_REJECT_SEQUENCE);
DC_REJECTED(group, DC_REJECT_GROUP);
DC_REJECTED(group_regions, DC_REJECT_GROUP_REGIONS);
DC_REJECTED(policy, DC_REJECT_POLICY);
DC_REJECTED(chain_cap, DC_REJECT_CHAIN_CAP);
DC_REJECTED(chain_timeout, DC_REJECT_CHAIN_TIMEOUT);
DC_REJECTED(nomem, DC_REJECT_NOMEM);
DC_REJECTED(response, DC_REJECT_RESPONSE);
DC_REJECTED(overflow, DC_REJECT_OVERFLOW);
DC_REJECTED(teardown, DC_REJECT_TEARDOWN);
DC_STAT(released, true, DC_RELEASED);
DC_STAT(given_back, true, DC_GIVEN_BACK);
DC_STAT(forced, true, DC_FORCED);
DC_STAT(release_not_held, true, DC_NOT_HELD);
DC_STAT(release_held, true, DC_HELD);
DC_STAT(release_failed, true, DC_RELEASE_FAILED);
DC_STAT(release_bad_record, true, DC_BAD_RECORD);
DC_STAT(recovered_kept, true, DC_KEPT);

static struct attribute *cxl_dc_stats_attrs[] = {
	&dc_stat_rejected_length.attr.attr,
	&dc_stat_rejected_partition.attr.attr,
	&dc_stat_rejected_block.attr.attr,
	&dc_stat_rejected_no_region.attr.attr,
	&dc_stat_rejected_spans.attr.attr,
	&dc_stat_rejected_interleave.attr.attr,
	&dc_stat_rejected_no_policy.attr.attr,
	&dc_stat_rejected_granularity.attr.attr,
	&dc_stat_rejected_overlap.attr.attr,
	&dc_stat_rejected_tag_mode.attr.attr,
	&dc_stat_rejected_tag_live.attr.attr,
	&dc_stat_rejected_sequence.attr.attr,
	&dc_stat_rejected_group.attr.attr,
	&dc_stat_rejected_group_regions.attr.attr,
	&dc_stat_rejected_policy.attr.attr,
	&dc_stat_rejected_chain_cap.attr.attr,
	&dc_stat_rejected_chain_timeout.attr.attr,
	&dc_stat_rejected_nomem.attr.attr,
	&dc_stat_rejected_response.attr.attr,
	&dc_stat_rejected_overflow.attr.attr,
	&dc_stat_rejected_teardown.attr.attr,
	&dc_stat_released.attr.attr,
	&dc_stat_given_back.attr.attr,
	&dc_stat_forced.attr.attr,
	&dc_stat_release_not_held.attr.attr,
	&dc_stat_release_held.attr.attr,
	&dc_stat_release_failed.attr.attr,
	&dc_stat_release_bad_record.attr.attr,
	&dc_stat_recovered_kept.attr.attr,
	NULL,
};

static bool cxl_dc_stats_group_visible(struct kobject *kobj)
{
	struct cxl_memdev *cxlmd = to_cxl_memdev(kobj_to_dev(kobj));
	struct cxl_memdev_state *mds = to_cxl_memdev_state(cxlmd->cxlds);

	return mds && mds->dc.dcd;
}

DEFINE_SIMPLE_SYSFS_GROUP_VISIBLE(cxl_dc_stats);

const struct attribute_group cxl_memdev_dc_stats_group = {
	.name = "dc_stats",
	.attrs = cxl_dc_stats_attrs,
	.is_visible = SYSFS_GROUP_VISIBLE(cxl_dc_stats),
};

static int dc_extents_show(struct seq_file *m, void *unused)
{
	struct cxl_dc_dev *dcd = m->private;
	struct cxl_dc_extent_raw *raw __free(kvfree) = NULL;
	int n;

	/* Ask the device itself: this is what tests compare sysfs against. */
	scoped_guard(mutex, &dcd->lock)
		n = dc_read_extents(dcd, &raw);
	if (n < 0)
		return n;
	for (int i = 0; i < n; i++)
		seq_printf(m, "%#llx %#llx %pUb %u\n",
			   le64_to_cpu(raw[i].start_dpa),
			   le64_to_cpu(raw[i].length), raw[i].tag,
			   le16_to_cpu(raw[i].shared_extn_seq));
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(dc_extents);

static int dc_stats_show(struct seq_file *m, void *unused)
{
	struct cxl_dc_dev *dcd = m->private;

	guard(mutex)(&dcd->lock);
	seq_printf(m, "responses %lu\nreleases %lu\n", dcd->responses,
		   dcd->releases);
	seq_printf(m, "offered %lu\noffer_ns %llu\n", dcd->offered,
		   dcd->offer_ns);
	seq_printf(m, "release_records %lu\nrelease_ns %llu\n",
		   dcd->release_records, dcd->release_ns);
	/* What the library allocates per extent, and per one-extent group */
	seq_printf(m, "extent_bytes %zu\ngroup_bytes %zu\n",
		   kmalloc_size_roundup(sizeof(struct cxl_dc_extent)),
		   kmalloc_size_roundup(struct_size_t(struct cxl_dc_group, ext, 1)));
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(dc_stats);

/*
 * The device goes away: answer every offer it is still waiting for, so
 * that it does not keep the capacity pending (QEMU then refuses to offer
 * it again) and so that a later response does not answer the wrong offer.
 * Release requests are dropped: the device asks again.
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
			dc_chain_close(dcd);
		}
		list_for_each_entry_safe(c, n, &dcd->closed, node) {
			list_del(&c->node);
			if (c->type == CXL_DC_EVENT_ADD_CAPACITY)
				dc_answer_empty(dcd, c, DC_REJECT_TEARDOWN);
			dc_chain_free(c);
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
	dcd->wq = alloc_ordered_workqueue("cxl_dc/%s", 0, dev_name(dev));
	dcd->policy_wq = alloc_workqueue("cxl_dc_policy/%s", WQ_UNBOUND, 0,
					 dev_name(dev));
	if (!dcd->wq || !dcd->policy_wq) {
		if (dcd->wq)
			destroy_workqueue(dcd->wq);
		if (dcd->policy_wq)
			destroy_workqueue(dcd->policy_wq);
		kvfree(dcd->payload);
		return -ENOMEM;
	}
	dcd->mds = mds;
	mutex_init(&dcd->process_lock);
	mutex_init(&dcd->lock);
	INIT_LIST_HEAD(&dcd->closed);
	INIT_LIST_HEAD(&dcd->withheld);
	INIT_DELAYED_WORK(&dcd->timeout, dc_chain_timeout);
	INIT_WORK(&dcd->work, dc_process_work);
	dcd->debugfs = cxl_debugfs_create_dir(dev_name(dev));
	debugfs_create_file("dc_extents", 0400, dcd->debugfs, dcd,
			    &dc_extents_fops);
	debugfs_create_file("dc_stats", 0400, dcd->debugfs, dcd,
			    &dc_stats_fops);
	mds->dc.dcd = dcd;
	return devm_add_action_or_reset(dev, dc_dev_destroy, dcd);
}

#if IS_ENABLED(CONFIG_CXL_DC_KUNIT_TEST)
/* The table-driven tests need the static helpers above. */
#include "dc_extent_lib_kunit.c"
#endif
