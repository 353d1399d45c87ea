/* SPDX-License-Identifier: GPL-2.0-only */
/* Copyright(c) 2026 The CXL DCD project authors. */
#ifndef __CXL_DC_LIB_H__
#define __CXL_DC_LIB_H__

#include <linux/minmax.h>
#include <linux/range.h>
#include <linux/uuid.h>

/**
 * DOC: Dynamic Capacity region policy interface
 *
 * A region driver (a *policy*: System RAM, device-dax, VMM) registers
 * &struct cxl_dc_policy on a Dynamic Capacity region when it binds.
 * From then on the extent library in the CXL core hands it *groups*: the
 * extents of one offer that share a tag (a tagged group), or a single
 * untagged extent.  The library owns the conversation with the device; a
 * policy only decides what an accepted group becomes and when it stops
 * using it.
 *
 * Offers are two-phase.  ``validate`` may reject a group but must have no
 * side effects; the device is then told which extents the host takes, and
 * only after it agreed does ``activate`` put the group to use.  If
 * ``activate`` fails, the library gives the extents back to the device.
 *
 * When a policy registers, the groups the device already has as accepted
 * are recovered and go through the same ``validate`` and ``activate``; one
 * the policy refuses or fails to activate is kept accepted on the device,
 * unused (nobody asked for it back), and the policy never hears of it
 * again.
 *
 * ``release`` asks the policy to stop using a group the device wants back.
 * It returns 0 once the memory is no longer touched, or -EBUSY when that
 * takes time; the policy then calls cxl_dc_release_done() later, from any
 * context that may sleep, and the library confirms the release to the
 * device.
 *
 * ``force_release`` tells the policy the device took the group, or part of
 * it, back already: it must stop using all of the group at once.  It
 * answers like ``release``: 0 when nothing touches the memory any more, or
 * -EBUSY and cxl_dc_release_done() later; it must answer -EBUSY while it
 * still owes cxl_dc_release_done() for an earlier ``release``.  Whatever
 * the device still holds of the group then goes back with Release DC, so
 * capacity the device did not take is never lost.
 *
 * Any error other than -EBUSY from ``release`` or ``force_release`` is
 * taken as -EBUSY: the memory stays held, and nothing goes back to the
 * device, until the policy calls cxl_dc_release_done().
 *
 * A policy may also give an active group back on its own, when it no
 * longer uses it (a dax device destroyed, a VMM that shrinks):
 * cxl_dc_give_back() sends Release DC for it in order with the device's
 * records, or answers -EBUSY when the device asked for the group first.
 * A policy that must let go of a group whose memory stays in use anyway
 * (a driver below it left the memory online) *strands* it with
 * cxl_dc_strand(): the capacity stays accepted on the device, is never
 * given back and never recovered, until reboot.
 *
 * Group lifetime: a group handed to a policy stays valid, and the policy
 * may use it and its data, until the policy has *answered* it: ``release``
 * or ``force_release`` returned 0, the policy called
 * cxl_dc_release_done(), cxl_dc_give_back() returned 0, it called
 * cxl_dc_strand(), or cxl_dc_unregister_policy() returned.  From
 * then on the library never calls back for that group and the policy never
 * touches it again.  The one overlap: ``force_release`` may be called for a
 * group whose cxl_dc_release_done() the policy is making at that moment;
 * the group stays valid until ``force_release`` returns, and a policy that
 * finds it answered the group already (it clears its per-group data with
 * cxl_dc_group_set_data() before calling cxl_dc_release_done()) returns 0.
 *
 * Context: ``activate``, ``release`` and ``force_release`` run in process
 * context on the region's own worker (an unbound workqueue), one at a
 * time per region and in the order the device's records asked for them;
 * a release waits for its group's activation.  They may hot plug, offline
 * or sleep.  They hold up neither the event interrupt thread (which also
 * drains the device's other event logs), nor the device's next Dynamic
 * Capacity record, nor callbacks for another region; only the region's
 * own later callbacks wait.  They must not wait for a Dynamic Capacity
 * event.  cxl_dc_register_policy() returns once the recovered groups'
 * ``activate`` calls did, so a policy creates what ``activate`` needs
 * before it registers.  cxl_dc_unregister_policy() waits for the callback
 * in flight and drops the ones still queued.
 * ``validate`` runs under the CXL region and DPA rwsems and the library's
 * device lock: it must not sleep for long nor take a lock that the policy
 * holds while it calls into the library.  cxl_dc_release_done() may be
 * called from any context that may sleep and holds no such lock.
 */

struct kobject;
struct cxl_region;
struct cxl_dc_group;

/**
 * enum cxl_dc_tag_mode - which extents a region accepts
 * @CXL_DC_TAG_UNTAGGED: only extents with the null tag
 * @CXL_DC_TAG_TAGGED: only extents with a non-null tag
 * @CXL_DC_TAG_ANY: both
 */
enum cxl_dc_tag_mode {
	CXL_DC_TAG_UNTAGGED,
	CXL_DC_TAG_TAGGED,
	CXL_DC_TAG_ANY,
};

/**
 * enum cxl_dc_extent_state - where an extent is in its life
 * @CXL_DC_EXTENT_ACCEPTED: the device has it as accepted, not in use yet
 * @CXL_DC_EXTENT_ACTIVE: the policy uses it
 * @CXL_DC_EXTENT_RELEASE_PENDING: the device wants it back, the policy
 *	has not let go yet
 */
enum cxl_dc_extent_state {
	CXL_DC_EXTENT_ACCEPTED,
	CXL_DC_EXTENT_ACTIVE,
	CXL_DC_EXTENT_RELEASE_PENDING,
};

/**
 * struct cxl_dc_extent_info - one extent of a group, as a policy sees it
 * @hpa: host physical range the extent occupies
 * @offset: offset of the extent from the start of the region
 * @seq: position in the group (sequence number, 0..nr-1)
 */
struct cxl_dc_extent_info {
	struct range hpa;
	u64 offset;
	u16 seq;
};

/**
 * struct cxl_dc_policy_ops - what a region policy decides
 * @validate: accept (0) or reject (negative errno) a group; no side effects
 * @activate: put an accepted group to use; on error the extents go back
 * @release: stop using a group; 0 when done, -EBUSY to finish later with
 *	cxl_dc_release_done()
 * @force_release: (some of) the memory is gone already; stop using the
 *	group at once; 0 or -EBUSY as for @release
 */
struct cxl_dc_policy_ops {
	int (*validate)(struct cxl_region *cxlr, struct cxl_dc_group *group);
	int (*activate)(struct cxl_region *cxlr, struct cxl_dc_group *group);
	int (*release)(struct cxl_region *cxlr, struct cxl_dc_group *group);
	int (*force_release)(struct cxl_region *cxlr,
			     struct cxl_dc_group *group);
};

/**
 * struct cxl_dc_region_facts - facts about a Dynamic Capacity region
 * @hpa: the region's host physical range
 * @nid: NUMA node of that range, %NUMA_NO_NODE when the firmware says none
 * @sharable: the device's DC partition is sharable: tag groups come with
 *	sequence numbers every sharing host agrees on
 * @tag_mode: the region's tag mode now
 */
struct cxl_dc_region_facts {
	struct range hpa;
	int nid;
	bool sharable;
	enum cxl_dc_tag_mode tag_mode;
};

int cxl_dc_region_facts(struct cxl_region *cxlr,
			struct cxl_dc_region_facts *info);
int cxl_dc_give_back(struct cxl_dc_group *group);
void cxl_dc_strand(struct cxl_dc_group *group);

/**
 * cxl_dc_retry_ms() - pause before trying again to free memory in use
 * @tries: failed attempts so far
 * @max_ms: the longest pause
 *
 * Policies retry memory that pinned pages keep in use on one schedule:
 * 0.5 s, doubling with each failure, at most @max_ms.
 *
 * Return: the pause in milliseconds.
 */
static inline unsigned int cxl_dc_retry_ms(unsigned int tries,
					   unsigned int max_ms)
{
	return min(500U << min(tries, 5U), max_ms);
}

struct cxl_dc_group *cxl_dc_find_group(struct cxl_region *cxlr,
				       const uuid_t *tag);
/* Called for each group by cxl_dc_walk_groups(); non-zero stops. */
typedef int (*cxl_dc_group_fn)(struct cxl_dc_group *group, void *arg);
int cxl_dc_walk_groups(struct cxl_region *cxlr, cxl_dc_group_fn fn,
		       void *arg);
int cxl_dc_mirror_extents(struct cxl_region *cxlr, struct kobject *dir);
/**
 * struct cxl_dc_policy - a region policy: what it is, and its decisions
 * @name: policy name for logs and trace records
 * @tag_mode: the region's tag mode when the policy binds, unless the user
 *	chose one it allows
 * @tag_modes: the tag modes (``BIT(CXL_DC_TAG_*)``) a user may pick in
 *	``regionZ/tag_mode`` while the policy is bound; 0 for all
 * @granularity: alignment, in bytes, every extent's HPA range must have
 *	(a power of 2, at least the device block size), or 0 for none
 * @ops: the decisions
 *
 * The data lives apart from the (constant) ops table, so that a policy
 * sets what it learns at load time (a memory block size) without copying
 * its ops.
 */
struct cxl_dc_policy {
	const char *name;
	enum cxl_dc_tag_mode tag_mode;
	unsigned long tag_modes;
	u64 granularity;
	const struct cxl_dc_policy_ops *ops;
};

int cxl_dc_register_policy(struct cxl_region *cxlr,
			   const struct cxl_dc_policy *policy, void *data);
void cxl_dc_unregister_policy(struct cxl_region *cxlr);
int devm_cxl_dc_register_policy(struct device *host, struct cxl_region *cxlr,
				const struct cxl_dc_policy *policy,
				void *data);
void *cxl_dc_policy_data(struct cxl_region *cxlr);
void cxl_dc_release_done(struct cxl_dc_group *group);

const uuid_t *cxl_dc_group_tag(const struct cxl_dc_group *group);
int cxl_dc_group_nr_extents(const struct cxl_dc_group *group);
void cxl_dc_group_extent(const struct cxl_dc_group *group, int i,
			 struct cxl_dc_extent_info *info);
void cxl_dc_group_set_data(struct cxl_dc_group *group, void *data);
void *cxl_dc_group_data(const struct cxl_dc_group *group);

#endif /* __CXL_DC_LIB_H__ */
