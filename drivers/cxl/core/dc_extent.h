/* SPDX-License-Identifier: GPL-2.0-only */
/* Copyright(c) 2026 The CXL DCD project authors. */
#ifndef __CXL_DC_EXTENT_H__
#define __CXL_DC_EXTENT_H__

#include <linux/kobject.h>
#include <linux/mempool.h>
#include <linux/mutex.h>
#include <linux/rbtree.h>
#include <linux/workqueue.h>
#include <cxl/dc_lib.h>
#include <cxlmem.h>
#include <dcd.h>

/**
 * DOC: Dynamic Capacity extent library internals
 *
 * What the files of the extent library share, and nothing else uses:
 *
 * - ``dc_extent_lib.c``: the state machine and the entry points (events,
 *   policies, regions, devices), with the lock order;
 * - ``dc_extent_rules.c``: the rules an offer is checked against and the
 *   extent tree, pure functions of their arguments (KUnit tests them);
 * - ``dc_extent_io.c``: the mailbox commands to the device;
 * - ``dc_extent_sysfs.c``: ``regionZ/extentZ.N``, the region's and the
 *   memdev's Dynamic Capacity attributes, and debugfs.
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
 * @stranded: the policy let go of the group with its memory still in use
 *	(cxl_dc_strand()): kept accepted until reboot, never given back
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
	bool stranded:1;
	u8 ops;
	struct list_head todo;
	int nr;
	struct cxl_dc_extent *ext[] __counted_by(nr);
};

/**
 * struct cxl_dc_region - Dynamic Capacity state of one region
 * @cxlr: the region
 * @dcd: the (single) device behind the region, while a policy is bound
 * @policy: the bound policy, NULL when none
 * @data: the policy's data
 * @tag_mode: &enum cxl_dc_tag_mode in force
 * @tag_mode_set: a user chose @tag_mode; a policy's default does not apply
 * @extents: live extents by DPA (under &cxl_dc_dev.lock)
 * @groups: live groups, oldest first (under &cxl_dc_dev.lock)
 * @nr_extents: number of live extents
 * @next_id: N of the next extentZ.N
 * @mirror: a directory of the policy's that shows every extentZ.N as a
 *	link too, see cxl_dc_mirror_extents() (under &cxl_dc_dev.lock)
 * @policy_lock: held across every policy callback for the region, so that
 *	they run one at a time, in order, and unregistering waits for them
 * @todo: groups with policy callbacks waiting, oldest first (under
 *	&cxl_dc_dev.lock)
 * @work: the region's worker, on &cxl_dc_dev.policy_wq: runs @todo
 * @kick_node: entry in &cxl_dc_dev.kick while @work is to be queued
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
	struct kobject *mirror;
	struct mutex policy_lock; /* see the lock order at the top */
	struct list_head todo;
	struct work_struct work;
	struct list_head kick_node;
};

/**
 * struct cxl_dc_chain - work from the device waiting to be processed: an
 *	offer (being gathered, or closed and waiting for its answer) or one
 *	release request
 * @node: entry in &cxl_dc_dev.closed
 * @type: %CXL_DC_EVENT_ADD_CAPACITY, _RELEASE_CAPACITY, _FORCED_RELEASE,
 *	_REGION_CONFIG_UPDATED (@one.shared_extn_seq holds the region index),
 *	or %DC_HOST_GIVE_BACK
 * @nr: records kept in @ext
 * @alloc: room in @ext
 * @why: non-zero when the whole offer is rejected (cap, timeout, memory)
 * @deadline: when an offer still open is closed (jiffies)
 * @ext: the offered extents, in offered order; @one for a release request
 * @pool: a release request comes from &cxl_dc_dev.release_pool, which it
 *	goes back to
 * @one: the extent of a release request
 */
struct cxl_dc_chain {
	struct list_head node;
	u8 type;
	int nr;
	int alloc;
	enum dc_reject why;
	unsigned long deadline;
	struct cxl_dc_extent_raw *ext;
	mempool_t *pool;
	struct cxl_dc_extent_raw one;
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
 * @kick: regions whose worker has callbacks to run, not queued yet
 * @payload: the one Add DC Response / Release DC payload, so that an offer
 *	is answered even when the host is out of memory
 * @release_pool: a reserve of release request items, so that none is
 *	lost when the host is out of memory
 * @dying: the device is going away; nothing new is queued
 * @overflowed: the event log lost records during the current drain
 * @config_bad: the configuration read after a Region Configuration
 *	Updated event was not valid: offers are declined until one is
 * @reread: the configuration read after such an event (process_lock)
 * @withheld: DPA ranges the device asked for whose Release DC failed when
 *	their policy unbound; never recovered, given back on the next request;
 *	and ranges of stranded groups, never recovered nor given back
 * @responses: Add DC Responses sent
 * @releases: Release DC commands sent
 * @offered: extents offered
 * @offer_ns: time spent deciding, answering and activating offers
 * @release_records: release records handled
 * @release_ns: time spent handling release records, the policies'
 *	release callbacks included
 * @recovered: accepted extents read back when a policy bound
 * @recover_ns: time spent reading them back and checking them (Get DC
 *	Extent List included; the policies' activation is not)
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
	struct list_head kick;
	struct cxl_mbox_dc_response *payload;
	mempool_t *release_pool;
	bool dying;
	bool overflowed;
	bool config_bad;
	struct cxl_dc_config reread;
	struct list_head withheld;
	unsigned long responses;
	unsigned long releases;
	unsigned long offered;
	u64 offer_ns;
	unsigned long release_records;
	u64 release_ns;
	unsigned long recovered;
	u64 recover_ns;
	unsigned long rejected[DC_REJECT_MAX];
	unsigned long outcome[DC_OUTCOME_MAX];
	struct dentry *debugfs;
};

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

/*
 * The device's extent list, read once per release record, the first time
 * a part of it that no group holds needs it (@total < 0 until then).
 */
struct dc_device_list {
	struct cxl_dc_extent_raw *raw;
	int total;
};

extern const char *const cxl_dc_reject_str[DC_REJECT_MAX];
/* What regionZ/extentZ.N/state shows for an extent of a stranded group */
#define CXL_DC_EXTENT_STRANDED (CXL_DC_EXTENT_RELEASE_PENDING + 1)
extern const char *const cxl_dc_state_str[];

static inline struct device *dc_dev(struct cxl_dc_dev *dcd)
{
	return dcd->mds->cxlds.dev;
}

static inline struct cxl_memdev *dc_memdev(struct cxl_dc_dev *dcd)
{
	return dcd->mds->cxlds.cxlmd;
}

static inline const char *dcr_name(struct cxl_dc_region *dcr)
{
	return dcr ? dev_name(&dcr->cxlr->dev) : NULL;
}

/* Tag groups of the device carry sequence numbers all hosts agree on. */
static inline bool dc_sharable(struct cxl_dc_dev *dcd)
{
	return dcd->mds->dc.config.region[0].sharable;
}

static inline bool dc_is_tagged(const struct cxl_dc_extent_raw *raw)
{
	return !!memchr_inv(raw->tag, 0, UUID_SIZE);
}

/* A policy may limit the tag modes a user can pick (0: any). */
static inline bool dc_tag_mode_allowed(const struct cxl_dc_policy *policy,
				       enum cxl_dc_tag_mode mode)
{
	return !policy || !policy->tag_modes || (policy->tag_modes & BIT(mode));
}

/* dc_extent_rules.c */
enum dc_reject cxl_dc_check_dpa(const struct cxl_dc_config *cfg, u64 dpa,
				u64 len);
enum dc_reject cxl_dc_check_policy(enum cxl_dc_tag_mode mode, u64 gran,
				   u64 hpa, u64 len, bool tagged);
int cxl_dc_check_offer_overlap(struct dc_offer_ext *oe, int n);
void cxl_dc_reject_group(struct dc_offer_ext *oe, int first,
			 enum dc_reject why);
void cxl_dc_form_groups(struct dc_offer_ext *oe, int n, bool sharable);
struct cxl_dc_extent *cxl_dc_extent_floor(struct cxl_dc_region *dcr, u64 dpa);
bool cxl_dc_overlaps_live(struct cxl_dc_region *dcr, u64 dpa, u64 len);
void cxl_dc_extent_insert(struct cxl_dc_region *dcr,
			  struct cxl_dc_extent *ext);
int cxl_dc_groups_in_range(struct cxl_dc_region *dcr, u64 dpa, u64 len,
			   struct cxl_dc_group **out, int max);

/* dc_extent_io.c */
int cxl_dc_send_list(struct cxl_dc_dev *dcd, u16 opcode, int nr,
		     void (*get)(void *ctx, int i, u64 *dpa, u64 *len),
		     void *ctx);
void cxl_dc_group_get(void *ctx, int i, u64 *dpa, u64 *len);
void cxl_dc_range_get(void *ctx, int i, u64 *dpa, u64 *len);
void cxl_dc_offer_get(void *ctx, int i, u64 *dpa, u64 *len);
int cxl_dc_read_extents(struct cxl_dc_dev *dcd,
			struct cxl_dc_extent_raw **out);
int cxl_dc_clip_held(const struct cxl_dc_extent_raw *raw, int total,
		     u64 start, u64 last, struct range *r, int room);
int cxl_dc_group_still_held(struct cxl_dc_dev *dcd,
			    struct cxl_dc_group *group, struct range **out);

/* dc_extent_sysfs.c */
struct cxl_dc_extent *cxl_dc_extent_alloc(u64 dpa, u64 len, u64 hpa, u16 seq);
void cxl_dc_extent_publish(struct cxl_dc_region *dcr,
			   struct cxl_dc_extent *ext);
void cxl_dc_extent_unpublish(struct cxl_dc_region *dcr,
			     struct cxl_dc_extent *ext);
void cxl_dc_mirror_drop(struct cxl_dc_region *dcr);
void cxl_dc_debugfs_init(struct cxl_dc_dev *dcd, struct device *dev);

/* dc_extent_lib.c */
struct cxl_dc_dev *cxl_dc_region_dev(struct cxl_region *cxlr);

#if IS_ENABLED(CONFIG_KUNIT)
/* dc_extent_lib.c, for the KUnit suite only */
extern unsigned int cxl_dc_chain_timeout_ms;
bool cxl_dc_tag_claim(struct cxl_dc_group *group);
void cxl_dc_tag_drop(struct cxl_dc_group *group);
void cxl_dc_check_tags_live(struct dc_offer_ext *oe, int n);
void cxl_dc_chain_free(struct cxl_dc_chain *chain);
void cxl_dc_chain_add(struct cxl_dc_dev *dcd, const struct cxl_event_dcd *rec);
void cxl_dc_chain_close(struct cxl_dc_dev *dcd);
void cxl_dc_chain_timeout(struct work_struct *work);
#endif

#endif /* __CXL_DC_EXTENT_H__ */
