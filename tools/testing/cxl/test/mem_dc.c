// SPDX-License-Identifier: GPL-2.0-only
/* Copyright(c) 2026 The CXL DCD project authors. */
/**
 * DOC: cxl_test mock Dynamic Capacity Device
 *
 * Each cxl_test mock memdev is also a Dynamic Capacity Device with one DC
 * region placed right after its static capacity. This file owns that mock
 * device: its DC configuration, its Dynamic Capacity event log, the extents
 * it has offered and the ones the host accepted, and the four DC mailbox
 * commands.
 *
 * The mock checks the host the way a device must. An Add DC Response must
 * answer the oldest pending offer (first in, first out), may only name
 * ranges of that offer in offered order, and must not accept capacity that
 * is already accepted; a response while nothing is pending is an error (it
 * crashes QEMU 10.0.2). Release DC may only name accepted capacity; one
 * naming capacity the device took by force in a record the host has not
 * read yet is refused whole (the host could not know: counted as
 * ``raced_releases``, not as a violation). Every
 * violation fails the command, is logged, and is counted in ``dc_stats``
 * so that tests can assert there were none. The counters also let tests
 * prove that the host sent no response at all, for example while it reads
 * accepted extents back after a re-probe.
 *
 * Knobs on the mock memdev's platform device (``cxl_mem.N``), written as
 * ``<dpa>:<length>:<tag>:<more>[:<seq>]`` with an absolute DPA, a tag that
 * is a UUID or ``0``/empty for none, and More ``0`` or ``1``:
 *
 * - ``dc_inject_extent``: offer capacity (Add Capacity record);
 * - ``dc_inject_shared_extent``: the same with a sharable sequence number;
 * - ``dc_del_extent``: ask for capacity back (Release Capacity record);
 * - ``dc_force_del_extent``: take capacity back now (Forced Capacity
 *   Release record); the mock forgets the range at once; both also take
 *   ``<dpa>:<length>:<tag>``, with no More flag;
 * - ``dc_inject_raw``: queue one whole event record given as hex (up to
 *   128 bytes, zero padded), to feed the host malformed data; Add Capacity
 *   records in it count as offers like any other;
 * - ``dc_fail_release``: ``N[:M]``, let M Release DC commands succeed (0
 *   when not given), then fail N (Internal Error), taking nothing back, as
 *   a device may (``failed_releases``);
 * - ``dc_fail_response``: ``N``, fail the next N Add DC Responses that
 *   accept something (Internal Error), leaving their offer pending, as a
 *   device may (``failed_responses``);
 * - ``dc_region_length``: the length region 0 maps (any number, so that
 *   the host sees bad ones too), followed by a Region Configuration
 *   Updated record; capacity past it stays on the accepted list until the
 *   host releases it; reads the length;
 * - ``dc_extents`` (read): the accepted extents, in response order;
 * - ``dc_stats`` (read): the counters.
 *
 * Every record written is drained by the host before the write returns,
 * as if the event interrupt had fired.
 *
 * The accepted extents are kept in the order the host accepted them, as
 * Get DC Extent List returns them, and indexed by DPA, so that no command
 * walks them all and a list read in parts resumes where it stopped: a
 * device holds up to 65,536 (``make bench`` fills one).
 *
 * The sharable memdev's serial number is 0xDCDC.  With the module
 * parameter ``dc_preload``, every other memdev starts with two 64 MiB
 * extents accepted: an untagged one at DC region offset 0x8000000 and one
 * tagged deadbeef-cafe-baad-f00d-fedcba987654 at 0x10000000.
 */
#include <linux/platform_device.h>
#include <linux/module.h>
#include <linux/hex.h>
#include <linux/rbtree.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/uuid.h>
#include <cxlmem.h>
#include <dcd.h>

#include "mem_dc.h"

/* The mock's DC region: right after the 2 GiB of static capacity */
#define MOCK_DC_BASE		SZ_2G
#define MOCK_DC_LENGTH		SZ_512M
#define MOCK_DC_BLOCK		SZ_4K
#define MOCK_DC_EXTENTS_MAX	SZ_64K
#define MOCK_DC_TAGS_MAX	1024
/* Records the event log holds between two drains by the host */
#define MOCK_DC_LOG_MAX		64
/* Records returned by one Get Event Records */
#define MOCK_DC_GET_MAX		8

/* CXL r3.1 Table 8-50: Dynamic Capacity Event Record UUID */
static const uuid_t mock_dc_event_uuid =
	UUID_INIT(0xca95afa7, 0xf183, 0x4018,
		  0x8c, 0x2f, 0x95, 0x26, 0x8e, 0x10, 0x1a, 0x2a);

static int dc_sharable_mem = 2;
module_param(dc_sharable_mem, int, 0444);
MODULE_PARM_DESC(dc_sharable_mem,
		 "cxl_mem.N whose DC region is sharable (-1: none)");

static bool dc_preload;
module_param(dc_preload, bool, 0444);
MODULE_PARM_DESC(dc_preload,
		 "Start each non-sharable mock memdev with two extents accepted");

/* The sharable memdev's serial, where tools look for it */
#define MOCK_DC_SHARABLE_SERIAL	0xDCDC

/* What dc_preload puts on each non-sharable memdev (DC region offsets) */
#define MOCK_DC_PRELOAD_UNTAGGED	0x8000000
#define MOCK_DC_PRELOAD_TAGGED		0x10000000
#define MOCK_DC_PRELOAD_LEN		SZ_64M
static const uuid_t mock_dc_preload_tag =
	UUID_INIT(0xdeadbeef, 0xcafe, 0xbaad,
		  0xf0, 0x0d, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54);

struct mock_dc_extent {
	struct list_head node;
	/* in &mock_dc.by_dpa while on &mock_dc.accepted */
	struct rb_node rb;
	u64 dpa;
	u64 len;
	uuid_t tag;
	u16 seq;
	/* on &mock_dc.forced_unread: the handle of the record that took it */
	u16 handle;
};

/* One offer: the records of one More chain, answered by one response */
struct mock_dc_offer {
	struct list_head node;
	struct list_head extents;
	bool closed;
};

struct mock_dc {
	struct device *dev;
	struct cxl_memdev_state *mds;
	bool sharable;
	/* serialises the knobs against each other (one injection at a time) */
	struct mutex inject_lock;
	/* protects everything below */
	struct mutex lock;
	struct cxl_event_record_raw log[MOCK_DC_LOG_MAX];
	unsigned int log_head;
	unsigned int log_nr;
	unsigned int log_returned;
	u16 next_handle;
	unsigned int overflows;
	struct list_head offers;
	struct list_head accepted;
	/* the same extents by DPA: no command walks all of them */
	struct rb_root by_dpa;
	unsigned int nr_accepted;
	/*
	 * Where the last Get DC Extent List stopped (index, extent; NULL at
	 * the end) in generation list_gen, so that a host reading the list
	 * in parts costs the device no walk from the start each time.
	 */
	struct mock_dc_extent *list_at;
	u32 list_index;
	u32 list_gen;
	/*
	 * Capacity taken by force in a record the host has not cleared yet:
	 * until it has read that record, a Release DC naming it is a race the
	 * host cannot avoid, refused but not a violation.
	 */
	struct list_head forced_unread;
	/* ranges of a response still open with More set */
	struct list_head response;
	struct mock_dc_extent *cursor;
	u64 cursor_end;
	u32 generation;
	/* what Get DC Configuration reports as region 0's length */
	u64 region_len;
	/* counters read by the tests */
	unsigned long records;
	unsigned long offered;
	unsigned long responses;
	unsigned long response_cmds;
	unsigned long list_cmds;
	unsigned long accepted_total;
	unsigned long releases;
	unsigned long released;
	unsigned long forced;
	unsigned long violations;
	unsigned long raced_releases;
	char last_violation[128];
	/* Release DC commands to let through, then to fail (dc_fail_release) */
	unsigned int pass_releases;
	unsigned int fail_releases;
	unsigned long failed_releases;
	/* Add DC Responses to fail (dc_fail_response) */
	unsigned int fail_responses;
	unsigned long failed_responses;
};

static void mock_dc_violation(struct mock_dc *mdc, const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	vsnprintf(mdc->last_violation, sizeof(mdc->last_violation), fmt, args);
	va_end(args);
	mdc->violations++;
	dev_err(mdc->dev, "DC protocol violation by the host: %s\n",
		mdc->last_violation);
}

static void mock_dc_free_list(struct list_head *list)
{
	struct mock_dc_extent *e, *n;

	list_for_each_entry_safe(e, n, list, node) {
		list_del(&e->node);
		kfree(e);
	}
}

static bool mock_dc_before(struct rb_node *a, const struct rb_node *b)
{
	return rb_entry(a, struct mock_dc_extent, rb)->dpa <
	       rb_entry(b, struct mock_dc_extent, rb)->dpa;
}

/* Put @e, already on &mock_dc.accepted, in the DPA index as well */
static void mock_dc_index(struct mock_dc *mdc, struct mock_dc_extent *e)
{
	rb_add(&e->rb, &mdc->by_dpa, mock_dc_before);
	mdc->nr_accepted++;
}

static void mock_dc_unindex(struct mock_dc *mdc, struct mock_dc_extent *e)
{
	rb_erase(&e->rb, &mdc->by_dpa);
	mdc->nr_accepted--;
}

/* The accepted extent with the highest DPA at or below @dpa, or NULL */
static struct mock_dc_extent *mock_dc_floor(struct mock_dc *mdc, u64 dpa)
{
	struct rb_node *n = mdc->by_dpa.rb_node;
	struct mock_dc_extent *best = NULL;

	while (n) {
		struct mock_dc_extent *e = rb_entry(n, struct mock_dc_extent,
						    rb);

		if (e->dpa <= dpa) {
			best = e;
			n = n->rb_right;
		} else {
			n = n->rb_left;
		}
	}
	return best;
}

/* The first accepted extent starting at or above @dpa, or NULL */
static struct rb_node *mock_dc_from(struct mock_dc *mdc, u64 dpa)
{
	struct mock_dc_extent *e = mock_dc_floor(mdc, dpa);

	if (!e)
		return rb_first(&mdc->by_dpa);
	return e->dpa == dpa ? &e->rb : rb_next(&e->rb);
}

/*
 * Accepted extents do not overlap each other, so only the one at or below
 * the last byte of a non-empty, non-wrapping range can overlap it.
 */
static bool mock_dc_accepted_overlaps(struct mock_dc *mdc, u64 dpa, u64 len)
{
	struct mock_dc_extent *e = mock_dc_floor(mdc, dpa + len - 1);

	return e && e->dpa + e->len > dpa;
}

/* The accepted extent after @e in the device's list order, or NULL */
static struct mock_dc_extent *mock_dc_next(struct mock_dc *mdc,
					   struct mock_dc_extent *e)
{
	return list_is_last(&e->node, &mdc->accepted) ? NULL :
							 list_next_entry(e, node);
}

static void mock_dc_free_offer(struct mock_dc_offer *offer)
{
	list_del(&offer->node);
	mock_dc_free_list(&offer->extents);
	kfree(offer);
}

static void mock_dc_release(void *data)
{
	struct mock_dc *mdc = data;
	struct mock_dc_offer *o, *n;

	list_for_each_entry_safe(o, n, &mdc->offers, node)
		mock_dc_free_offer(o);
	mock_dc_free_list(&mdc->accepted);
	mock_dc_free_list(&mdc->forced_unread);
	mock_dc_free_list(&mdc->response);
	kfree(mdc);
}

/* The serial of mock memdev @id: @serial, unless it is the sharable one */
u64 mock_dc_serial(int id, u64 serial)
{
	return id >= 0 && id == dc_sharable_mem ? MOCK_DC_SHARABLE_SERIAL :
						   serial;
}

/*
 * dc_preload: the device starts with capacity a host accepted before
 * (an untagged extent and a tagged one), as after a reboot; the host
 * reads it back when a policy binds.
 */
static int mock_dc_preload(struct mock_dc *mdc)
{
	static const struct {
		u64 offset;
		const uuid_t *tag;
	} pre[] = {
		{ MOCK_DC_PRELOAD_UNTAGGED, &uuid_null },
		{ MOCK_DC_PRELOAD_TAGGED, &mock_dc_preload_tag },
	};

	for (int i = 0; i < ARRAY_SIZE(pre); i++) {
		struct mock_dc_extent *e = kzalloc_obj(*e);

		if (!e)
			return -ENOMEM;
		*e = (struct mock_dc_extent) {
			.dpa = MOCK_DC_BASE + pre[i].offset,
			.len = MOCK_DC_PRELOAD_LEN,
			.tag = *pre[i].tag,
		};
		list_add_tail(&e->node, &mdc->accepted);
		mock_dc_index(mdc, e);
	}
	mdc->generation++;
	return 0;
}

struct mock_dc *mock_dc_create(struct device *dev, int id)
{
	struct mock_dc *mdc;
	int rc;

	mdc = kzalloc_obj(*mdc);
	if (!mdc)
		return ERR_PTR(-ENOMEM);
	mdc->dev = dev;
	mdc->sharable = id == dc_sharable_mem;
	mutex_init(&mdc->inject_lock);
	mutex_init(&mdc->lock);
	INIT_LIST_HEAD(&mdc->offers);
	INIT_LIST_HEAD(&mdc->accepted);
	mdc->by_dpa = RB_ROOT;
	INIT_LIST_HEAD(&mdc->forced_unread);
	INIT_LIST_HEAD(&mdc->response);
	mdc->next_handle = 1;
	mdc->region_len = MOCK_DC_LENGTH;

	rc = devm_add_action_or_reset(dev, mock_dc_release, mdc);
	if (rc)
		return ERR_PTR(rc);
	if (dc_preload && id >= 0 && !mdc->sharable) {
		rc = mock_dc_preload(mdc);
		if (rc)
			return ERR_PTR(rc);
	}
	return mdc;
}

/*
 * The core does not parse CDAT DSMAS flags yet, so the sharable property
 * of the DC region is set here, where a device's CDAT would provide it.
 */
void mock_dc_attach(struct mock_dc *mdc, struct cxl_memdev_state *mds)
{
	mdc->mds = mds;
	if (mds->dc.config.nr_regions)
		mds->dc.config.region[0].sharable = mdc->sharable;
}

/* --- mailbox commands --------------------------------------------------- */

static int mock_get_dc_config(struct mock_dc *mdc, struct cxl_mbox_cmd *cmd)
{
	struct cxl_mbox_get_dc_config_in *in = cmd->payload_in;
	struct cxl_mbox_get_dc_config_out *out = cmd->payload_out;
	struct cxl_mbox_get_dc_config_tail *tail;
	size_t size = struct_size(out, region, 1) + sizeof(*tail);
	unsigned int nr = 0;

	if (cmd->size_in != sizeof(*in) || cmd->size_out < size)
		return -EINVAL;

	memset(out, 0, size);
	guard(mutex)(&mdc->lock);
	out->avail_region_count = 1;
	if (in->start_region_index == 0 && in->region_count) {
		out->region[0] = (struct cxl_dc_region_config) {
			.region_base = cpu_to_le64(MOCK_DC_BASE),
			.region_decode_length =
				cpu_to_le64(MOCK_DC_LENGTH / SZ_256M),
			.region_length = cpu_to_le64(mdc->region_len),
			.region_block_size = cpu_to_le64(MOCK_DC_BLOCK),
		};
		nr = 1;
	}
	out->regions_returned = nr;
	tail = (void *)&out->region[nr];
	tail->extents_supported = cpu_to_le32(MOCK_DC_EXTENTS_MAX);
	tail->tags_supported = cpu_to_le32(MOCK_DC_TAGS_MAX);
	tail->extents_available =
		cpu_to_le32(MOCK_DC_EXTENTS_MAX - mdc->nr_accepted);
	tail->tags_available = cpu_to_le32(MOCK_DC_TAGS_MAX);
	cmd->size_out = struct_size(out, region, nr) + sizeof(*tail);
	return 0;
}

static int mock_get_dc_extent_list(struct mock_dc *mdc,
				   struct cxl_mbox_cmd *cmd)
{
	struct cxl_mbox_get_dc_extent_in *in = cmd->payload_in;
	struct cxl_mbox_get_dc_extent_out *out = cmd->payload_out;
	struct mock_dc_extent *e;
	u32 start, want, i = 0, n = 0;
	size_t room;

	if (cmd->size_in != sizeof(*in) || cmd->size_out < sizeof(*out))
		return -EINVAL;

	start = le32_to_cpu(in->start_extent_index);
	want = le32_to_cpu(in->extent_cnt);
	room = (cmd->size_out - sizeof(*out)) / sizeof(out->extent[0]);
	want = min_t(size_t, want, room);

	guard(mutex)(&mdc->lock);
	mdc->list_cmds++;
	if (start > mdc->nr_accepted)
		return -EINVAL;
	/* A host reads the list in order: go on where the last read ended */
	if (mdc->list_gen == mdc->generation && mdc->list_index == start &&
	    (mdc->list_at || start == mdc->nr_accepted)) {
		e = mdc->list_at;
	} else {
		e = list_first_entry_or_null(&mdc->accepted, typeof(*e), node);
		for (i = 0; e && i < start; i++)
			e = mock_dc_next(mdc, e);
	}
	for (; e && n < want; e = mock_dc_next(mdc, e)) {
		out->extent[n] = (struct cxl_dc_extent_raw) {
			.start_dpa = cpu_to_le64(e->dpa),
			.length = cpu_to_le64(e->len),
			.shared_extn_seq = cpu_to_le16(e->seq),
		};
		export_uuid(out->extent[n].tag, &e->tag);
		n++;
	}
	mdc->list_at = e;
	mdc->list_index = start + n;
	mdc->list_gen = mdc->generation;
	out->returned_extent_count = cpu_to_le32(n);
	out->total_extent_count = cpu_to_le32(mdc->nr_accepted);
	out->generation_num = cpu_to_le32(mdc->generation);
	memset(out->rsvd, 0, sizeof(out->rsvd));
	cmd->size_out = struct_size(out, extent, n);
	return 0;
}

/* A non-empty, non-wrapping [dpa, dpa + len) lies wholly inside @e */
static bool mock_dc_holds(const struct mock_dc_extent *e, u64 dpa, u64 len)
{
	return len && dpa + len > dpa && dpa >= e->dpa &&
	       dpa + len <= e->dpa + e->len;
}

static bool mock_dc_overlaps(struct list_head *list, u64 dpa, u64 len)
{
	struct mock_dc_extent *e;

	list_for_each_entry(e, list, node)
		if (dpa < e->dpa + e->len && e->dpa < dpa + len)
			return true;
	return false;
}

/* Part of [dpa, dpa + len) taken by force in a record the host has not read */
static bool mock_dc_raced(struct mock_dc *mdc, u64 dpa, u64 len)
{
	return mock_dc_overlaps(&mdc->forced_unread, dpa, len);
}

static int mock_dc_updated_list(struct mock_dc *mdc, struct cxl_mbox_cmd *cmd,
				struct cxl_mbox_dc_response **rsp, u32 *nr)
{
	struct cxl_mbox_dc_response *r = cmd->payload_in;

	if (cmd->size_in < sizeof(*r))
		return -EINVAL;
	*nr = le32_to_cpu(r->extent_list_size);
	if (cmd->size_in != struct_size(r, extent_list, *nr)) {
		mock_dc_violation(mdc, "payload of %zu bytes for %u extents",
				  cmd->size_in, *nr);
		return -EINVAL;
	}
	*rsp = r;
	return 0;
}

/*
 * Add DC Response: the ranges must come from the oldest pending offer, in
 * the order it offered them, and must not overlap accepted capacity. A
 * response may span commands (More); mdc->cursor and mdc->cursor_end
 * remember where the previous range ended.
 */
static int mock_add_dc_response(struct mock_dc *mdc, struct cxl_mbox_cmd *cmd)
{
	struct cxl_mbox_dc_response *rsp;
	struct mock_dc_offer *front;
	struct mock_dc_extent *oe, *e;
	u32 nr, i;
	int rc;

	guard(mutex)(&mdc->lock);
	rc = mock_dc_updated_list(mdc, cmd, &rsp, &nr);
	if (rc)
		return rc;

	front = list_first_entry_or_null(&mdc->offers, typeof(*front), node);
	if (!front) {
		mock_dc_violation(mdc, "Add DC Response with no offer pending");
		return -ENXIO;
	}
	if (nr && mdc->fail_responses) {
		/* A failed command changes nothing: the offer stays pending */
		mdc->fail_responses--;
		mdc->failed_responses++;
		mock_dc_free_list(&mdc->response);
		mdc->cursor = NULL;
		cmd->return_code = CXL_MBOX_CMD_RC_INTERNAL;
		return 0;
	}

	for (i = 0; i < nr; i++) {
		u64 dpa = le64_to_cpu(rsp->extent_list[i].start_dpa);
		u64 len = le64_to_cpu(rsp->extent_list[i].length);

		/* The offered extent holding it, never going back */
		oe = mdc->cursor ? mdc->cursor :
			list_first_entry(&front->extents, typeof(*oe), node);
		for (; !list_entry_is_head(oe, &front->extents, node);
		     oe = list_next_entry(oe, node))
			if (mock_dc_holds(oe, dpa, len))
				break;
		if (list_entry_is_head(oe, &front->extents, node) ||
		    (oe == mdc->cursor && dpa < mdc->cursor_end)) {
			mock_dc_violation(mdc, "response names %#llx+%#llx: %s",
					  dpa, len, "not offered, or out of order");
			goto fail;
		}
		if (mock_dc_accepted_overlaps(mdc, dpa, len)) {
			mock_dc_violation(mdc, "response accepts %#llx+%#llx: %s",
					  dpa, len, "already accepted");
			goto fail;
		}
		e = kzalloc_obj(*e);
		if (!e) {
			rc = -ENOMEM;
			goto out;
		}
		*e = (struct mock_dc_extent) {
			.dpa = dpa, .len = len, .tag = oe->tag, .seq = oe->seq,
		};
		list_add_tail(&e->node, &mdc->response);
		mdc->cursor = oe;
		mdc->cursor_end = dpa + len;
	}

	mdc->response_cmds++;
	if (rsp->flags & CXL_DC_RESPONSE_MORE)
		return 0;

	/* The response is complete: the offer is answered */
	list_for_each_entry(e, &mdc->response, node) {
		mock_dc_index(mdc, e);
		mdc->accepted_total++;
	}
	list_splice_tail_init(&mdc->response, &mdc->accepted);
	mock_dc_free_offer(front);
	mdc->cursor = NULL;
	mdc->responses++;
	mdc->generation++;
	return 0;

fail:
	rc = -ENXIO;
out:
	/* A failed command leaves the offer pending, as a device does */
	mock_dc_free_list(&mdc->response);
	mdc->cursor = NULL;
	return rc;
}

/* Release DC: every range must lie inside one accepted extent */
static int mock_release_dc(struct mock_dc *mdc, struct cxl_mbox_cmd *cmd)
{
	struct cxl_mbox_dc_response *rsp;
	struct mock_dc_extent *e, *tail;
	u32 nr, i;
	int rc;

	guard(mutex)(&mdc->lock);
	if (mdc->pass_releases) {
		mdc->pass_releases--;
	} else if (mdc->fail_releases) {
		/* A device that fails the command takes nothing back */
		mdc->fail_releases--;
		mdc->failed_releases++;
		cmd->return_code = CXL_MBOX_CMD_RC_INTERNAL;
		return 0;
	}
	rc = mock_dc_updated_list(mdc, cmd, &rsp, &nr);
	if (rc)
		return rc;

	/*
	 * A range taken by force in a record the host has not read yet: the
	 * command is refused whole, as the capacity is gone, and nothing
	 * changes.  The host could not know: no violation.
	 */
	for (i = 0; i < nr; i++) {
		u64 dpa = le64_to_cpu(rsp->extent_list[i].start_dpa);
		u64 len = le64_to_cpu(rsp->extent_list[i].length);

		if (mock_dc_raced(mdc, dpa, len)) {
			mdc->raced_releases++;
			cmd->return_code = CXL_MBOX_CMD_RC_INPUT;
			return 0;
		}
	}

	for (i = 0; i < nr; i++) {
		u64 dpa = le64_to_cpu(rsp->extent_list[i].start_dpa);
		u64 len = le64_to_cpu(rsp->extent_list[i].length);

		e = mock_dc_floor(mdc, dpa);
		if (!e || !mock_dc_holds(e, dpa, len)) {
			mock_dc_violation(mdc, "Release DC of %#llx+%#llx: %s",
					  dpa, len, "not accepted");
			return -ENXIO;
		}
		/* Cut the range out, keeping what is left on either side */
		if (dpa + len < e->dpa + e->len) {
			tail = kzalloc_obj(*tail);
			if (!tail)
				return -ENOMEM;
			*tail = *e;
			tail->dpa = dpa + len;
			tail->len = e->dpa + e->len - tail->dpa;
			list_add(&tail->node, &e->node);
			mock_dc_index(mdc, tail);
		}
		if (dpa > e->dpa) {
			e->len = dpa - e->dpa;
		} else {
			list_del(&e->node);
			mock_dc_unindex(mdc, e);
			kfree(e);
		}
		mdc->released++;
	}
	mdc->releases++;
	mdc->generation++;
	return 0;
}

int mock_dc_mbox(struct mock_dc *mdc, struct cxl_mbox_cmd *cmd)
{
	switch (cmd->opcode) {
	case CXL_MBOX_OP_GET_DC_CONFIG:
		return mock_get_dc_config(mdc, cmd);
	case CXL_MBOX_OP_GET_DC_EXTENT_LIST:
		return mock_get_dc_extent_list(mdc, cmd);
	case CXL_MBOX_OP_ADD_DC_RESPONSE:
		return mock_add_dc_response(mdc, cmd);
	case CXL_MBOX_OP_RELEASE_DC:
		return mock_release_dc(mdc, cmd);
	default:
		return -EOPNOTSUPP;
	}
}

/* --- the Dynamic Capacity event log ------------------------------------- */

int mock_dc_get_event(struct mock_dc *mdc, struct cxl_mbox_cmd *cmd)
{
	struct cxl_get_event_payload *pl = cmd->payload_out;
	unsigned int i, n;

	if (cmd->size_out < struct_size(pl, records, 0))
		return -EINVAL;

	guard(mutex)(&mdc->lock);
	n = min3(mdc->log_nr, (unsigned int)MOCK_DC_GET_MAX,
		 (unsigned int)((cmd->size_out - sizeof(*pl)) /
				sizeof(pl->records[0])));
	memset(pl, 0, struct_size(pl, records, 0));
	for (i = 0; i < n; i++)
		pl->records[i] =
			mdc->log[(mdc->log_head + i) % MOCK_DC_LOG_MAX];
	mdc->log_returned = n;
	pl->record_count = cpu_to_le16(n);
	if (n < mdc->log_nr)
		pl->flags |= CXL_GET_EVENT_FLAG_MORE_RECORDS;
	if (mdc->overflows) {
		pl->flags |= CXL_GET_EVENT_FLAG_OVERFLOW;
		pl->overflow_err_count = cpu_to_le16(mdc->overflows);
	}
	cmd->size_out = struct_size(pl, records, n);
	return 0;
}

int mock_dc_clear_event(struct mock_dc *mdc, struct cxl_mbox_cmd *cmd)
{
	struct cxl_mbox_clear_event_payload *pl = cmd->payload_in;
	unsigned int i;

	if (cmd->size_in < sizeof(*pl) ||
	    cmd->size_in < struct_size(pl, handles, pl->nr_recs))
		return -EINVAL;

	guard(mutex)(&mdc->lock);
	if (pl->nr_recs > mdc->log_returned) {
		dev_err(mdc->dev, "DC log: clearing records never returned\n");
		return -EINVAL;
	}
	for (i = 0; i < pl->nr_recs; i++) {
		struct cxl_event_record_raw *r =
			&mdc->log[(mdc->log_head + i) % MOCK_DC_LOG_MAX];

		if (pl->handles[i] != r->event.generic.hdr.handle) {
			dev_err(mdc->dev, "DC log: records cleared out of order\n");
			return -EINVAL;
		}
	}
	for (i = 0; i < pl->nr_recs; i++) {
		struct mock_dc_extent *e, *n;

		/* The host read it: from now on it knows */
		list_for_each_entry_safe(e, n, &mdc->forced_unread, node)
			if (cpu_to_le16(e->handle) == pl->handles[i]) {
				list_del(&e->node);
				kfree(e);
			}
	}
	mdc->log_head = (mdc->log_head + pl->nr_recs) % MOCK_DC_LOG_MAX;
	mdc->log_nr -= pl->nr_recs;
	mdc->log_returned -= pl->nr_recs;
	mdc->overflows = 0;
	return 0;
}

/* Queue one record and track what it means to the device; mdc->lock held */
static int mock_dc_queue(struct mock_dc *mdc, struct cxl_event_record_raw *raw)
{
	struct cxl_event_dcd *rec = &raw->event.dcd;
	u64 dpa = le64_to_cpu(rec->extent.start_dpa);
	u64 len = le64_to_cpu(rec->extent.length);
	struct mock_dc_offer *open;
	struct mock_dc_extent *e;

	if (mdc->log_nr == MOCK_DC_LOG_MAX) {
		mdc->overflows++;
		return -ENOSPC;
	}

	if (rec->event_type == CXL_DC_EVENT_ADD_CAPACITY) {
		open = list_last_entry_or_null(&mdc->offers, typeof(*open),
					       node);
		if (!open || open->closed) {
			open = kzalloc_obj(*open);
			if (!open)
				return -ENOMEM;
			INIT_LIST_HEAD(&open->extents);
			list_add_tail(&open->node, &mdc->offers);
		}
		e = kzalloc_obj(*e);
		if (!e)
			return -ENOMEM;
		e->dpa = dpa;
		e->len = len;
		import_uuid(&e->tag, rec->extent.tag);
		e->seq = le16_to_cpu(rec->extent.shared_extn_seq);
		list_add_tail(&e->node, &open->extents);
		open->closed = !(rec->flags & CXL_DC_EVENT_MORE);
		mdc->offered++;
	} else if (rec->event_type == CXL_DC_EVENT_FORCED_RELEASE) {
		struct rb_node *n = mock_dc_from(mdc, dpa);
		u64 end;

		if (check_add_overflow(dpa, len, &end))
			n = NULL;
		/* The device takes back what lies wholly in the range */
		while (n) {
			e = rb_entry(n, struct mock_dc_extent, rb);
			if (e->dpa >= end)
				break;
			n = rb_next(n);
			if (e->dpa + e->len > end)
				continue;
			e->handle = mdc->next_handle;
			list_move_tail(&e->node, &mdc->forced_unread);
			mock_dc_unindex(mdc, e);
			mdc->forced++;
		}
		mdc->generation++;
	}

	raw->event.generic.hdr.handle = cpu_to_le16(mdc->next_handle);
	if (++mdc->next_handle == 0)
		mdc->next_handle = 1;
	mdc->log[(mdc->log_head + mdc->log_nr) % MOCK_DC_LOG_MAX] = *raw;
	mdc->log_nr++;
	mdc->records++;
	return 0;
}

/* Queue a record and let the host drain the log, as its interrupt would */
static int mock_dc_inject(struct mock_dc *mdc, struct cxl_event_record_raw *raw)
{
	int rc;

	if (!mdc->mds)
		return -ENXIO;

	scoped_guard(mutex, &mdc->inject_lock) {
		scoped_guard(mutex, &mdc->lock)
			rc = mock_dc_queue(mdc, raw);
		if (rc)
			return rc;
		cxl_mem_get_event_records(mdc->mds, CXLDEV_EVENT_STATUS_DCD);
	}
	/*
	 * The host acts on records in its own work: wait for it, without
	 * holding up another injection meanwhile (one region's slow policy
	 * must not stop a record for another region from coming).
	 */
	cxl_dc_flush(mdc->mds);
	return 0;
}

/* --- knobs -------------------------------------------------------------- */

/* A DC event record of @type, stamped now; the rest zero */
static struct cxl_event_dcd *mock_dc_record(struct cxl_event_record_raw *raw,
					    u8 type)
{
	struct cxl_event_dcd *rec = &raw->event.dcd;

	memset(raw, 0, sizeof(*raw));
	raw->id = mock_dc_event_uuid;
	rec->hdr.length = sizeof(*raw);
	rec->hdr.timestamp = cpu_to_le64(ktime_get_real_ns());
	rec->event_type = type;
	return rec;
}

/* Parse "<dpa>:<length>:<tag>:<more>[:<seq>]" into a DC event record */
static int mock_dc_parse(const char *buf, u8 type, bool want_seq,
			 struct cxl_event_record_raw *raw)
{
	char *s, *orig, *field[5] = {};
	struct cxl_event_dcd *rec;
	unsigned int i = 0, more;
	u64 dpa, len;
	uuid_t tag = {};
	u16 seq = 0;
	int rc = -EINVAL;

	orig = kstrndup(buf, 256, GFP_KERNEL);
	if (!orig)
		return -ENOMEM;
	s = orig;
	s = strim(s);
	while (s && i < ARRAY_SIZE(field))
		field[i++] = strsep(&s, ":");
	/* A release names no More flag: <dpa>:<length>:<tag> will do. */
	if (s || i < 3 || (i == 3 && type == CXL_DC_EVENT_ADD_CAPACITY) ||
	    (i == 5 && !want_seq))
		goto out;
	more = 0;
	if (kstrtou64(field[0], 0, &dpa) || kstrtou64(field[1], 0, &len) ||
	    (i > 3 && (kstrtouint(field[3], 0, &more) || more > 1)))
		goto out;
	if (field[2][0] && strcmp(field[2], "0") && uuid_parse(field[2], &tag))
		goto out;
	if (i == 5 && kstrtou16(field[4], 0, &seq))
		goto out;

	rec = mock_dc_record(raw, type);
	rec->flags = more ? CXL_DC_EVENT_MORE : 0;
	rec->extent.start_dpa = cpu_to_le64(dpa);
	rec->extent.length = cpu_to_le64(len);
	export_uuid(rec->extent.tag, &tag);
	rec->extent.shared_extn_seq = cpu_to_le16(seq);
	rc = 0;
out:
	kfree(orig);
	return rc;
}

static ssize_t mock_dc_store(struct device *dev, const char *buf,
			     size_t count, u8 type, bool want_seq)
{
	struct mock_dc *mdc = cxl_mock_mem_dc(dev);
	struct cxl_event_record_raw raw;
	int rc;

	if (!mdc)
		return -ENXIO;
	rc = mock_dc_parse(buf, type, want_seq, &raw);
	if (rc)
		return rc;
	rc = mock_dc_inject(mdc, &raw);
	return rc ? rc : count;
}

/* One knob per record type: <name>_store() and dev_attr_<name> */
#define MOCK_DC_KNOB(name, type, want_seq)				\
static ssize_t name##_store(struct device *dev,				\
			    struct device_attribute *attr,		\
			    const char *buf, size_t count)		\
{									\
	return mock_dc_store(dev, buf, count, type, want_seq);		\
}									\
static DEVICE_ATTR_WO(name)

MOCK_DC_KNOB(dc_inject_extent, CXL_DC_EVENT_ADD_CAPACITY, false);
MOCK_DC_KNOB(dc_inject_shared_extent, CXL_DC_EVENT_ADD_CAPACITY, true);
MOCK_DC_KNOB(dc_del_extent, CXL_DC_EVENT_RELEASE_CAPACITY, false);
MOCK_DC_KNOB(dc_force_del_extent, CXL_DC_EVENT_FORCED_RELEASE, false);

static ssize_t dc_inject_raw_store(struct device *dev,
				   struct device_attribute *attr,
				   const char *buf, size_t count)
{
	struct mock_dc *mdc = cxl_mock_mem_dc(dev);
	struct cxl_event_record_raw raw = {};
	size_t len = strcspn(buf, "\n");
	int rc;

	if (!mdc)
		return -ENXIO;
	if (!len || len % 2 || len / 2 > sizeof(raw))
		return -EINVAL;
	if (hex2bin((u8 *)&raw, buf, len / 2))
		return -EINVAL;
	rc = mock_dc_inject(mdc, &raw);
	return rc ? rc : count;
}
static DEVICE_ATTR_WO(dc_inject_raw);

/*
 * dc_fail_release: "N[:M]", let M Release DC commands through, then fail
 * N, changing nothing
 */
static ssize_t dc_fail_release_store(struct device *dev,
				     struct device_attribute *attr,
				     const char *buf, size_t count)
{
	struct mock_dc *mdc = cxl_mock_mem_dc(dev);
	unsigned int n, m = 0;
	char tail;

	if (!mdc)
		return -ENXIO;
	if (sscanf(buf, "%u%c", &n, &tail) == 2 && tail == ':') {
		if (sscanf(buf, "%u:%u", &n, &m) != 2)
			return -EINVAL;
	} else if (kstrtouint(buf, 0, &n)) {
		return -EINVAL;
	}
	guard(mutex)(&mdc->lock);
	mdc->fail_releases = n;
	mdc->pass_releases = m;
	return count;
}
static DEVICE_ATTR_WO(dc_fail_release);

/* dc_fail_response: "N", fail the next N Add DC Responses accepting any */
static ssize_t dc_fail_response_store(struct device *dev,
				      struct device_attribute *attr,
				      const char *buf, size_t count)
{
	struct mock_dc *mdc = cxl_mock_mem_dc(dev);
	unsigned int n;

	if (!mdc)
		return -ENXIO;
	if (kstrtouint(buf, 0, &n))
		return -EINVAL;
	guard(mutex)(&mdc->lock);
	mdc->fail_responses = n;
	return count;
}
static DEVICE_ATTR_WO(dc_fail_response);

/* dc_region_length: region 0 now maps this much; the host is told */
static ssize_t dc_region_length_store(struct device *dev,
				      struct device_attribute *attr,
				      const char *buf, size_t count)
{
	struct mock_dc *mdc = cxl_mock_mem_dc(dev);
	struct cxl_event_record_raw raw;
	u64 len;
	int rc;

	if (!mdc)
		return -ENXIO;
	if (kstrtou64(buf, 0, &len))
		return -EINVAL;
	scoped_guard(mutex, &mdc->lock)
		mdc->region_len = len;
	/* Region index 0: the mock has one DC region. */
	mock_dc_record(&raw, CXL_DC_EVENT_REGION_CONFIG_UPDATED);
	rc = mock_dc_inject(mdc, &raw);
	return rc ? rc : count;
}

static ssize_t dc_region_length_show(struct device *dev,
				     struct device_attribute *attr, char *buf)
{
	struct mock_dc *mdc = cxl_mock_mem_dc(dev);

	if (!mdc)
		return -ENXIO;
	guard(mutex)(&mdc->lock);
	return sysfs_emit(buf, "%#llx\n", mdc->region_len);
}
static DEVICE_ATTR_RW(dc_region_length);

static ssize_t dc_extents_show(struct device *dev,
			       struct device_attribute *attr, char *buf)
{
	struct mock_dc *mdc = cxl_mock_mem_dc(dev);
	struct mock_dc_extent *e;
	int n = 0;

	if (!mdc)
		return -ENXIO;
	guard(mutex)(&mdc->lock);
	list_for_each_entry(e, &mdc->accepted, node) {
		if (n >= PAGE_SIZE - 96) {
			n += sysfs_emit_at(buf, n, "...\n");
			break;
		}
		n += sysfs_emit_at(buf, n, "%#llx %#llx %pUb %u\n", e->dpa,
				   e->len, &e->tag, e->seq);
	}
	return n;
}
static DEVICE_ATTR_RO(dc_extents);

static ssize_t dc_stats_show(struct device *dev,
			     struct device_attribute *attr, char *buf)
{
	struct mock_dc *mdc = cxl_mock_mem_dc(dev);
	unsigned int pending = 0;
	struct mock_dc_offer *o;

	if (!mdc)
		return -ENXIO;
	guard(mutex)(&mdc->lock);
	list_for_each_entry(o, &mdc->offers, node)
		pending++;
	return sysfs_emit(buf,
			  "records %lu\noffered %lu\npending_offers %u\n"
			  "responses %lu\nresponse_cmds %lu\nlist_cmds %lu\n"
			  "accepted %lu\n"
			  "live %u\nreleases %lu\nreleased %lu\nforced %lu\n"
			  "generation %u\nsharable %d\nviolations %lu\n"
			  "last_violation %s\nfailed_releases %lu\n"
			  "failed_responses %lu\nraced_releases %lu\n"
			  "extent_bytes %zu\n",
			  mdc->records, mdc->offered, pending, mdc->responses,
			  mdc->response_cmds, mdc->list_cmds,
			  mdc->accepted_total,
			  mdc->nr_accepted, mdc->releases, mdc->released,
			  mdc->forced, mdc->generation, mdc->sharable,
			  mdc->violations,
			  mdc->violations ? mdc->last_violation : "none",
			  mdc->failed_releases, mdc->failed_responses,
			  mdc->raced_releases,
			  kmalloc_size_roundup(sizeof(struct mock_dc_extent)));
}
static DEVICE_ATTR_RO(dc_stats);

static struct attribute *mock_dc_attrs[] = {
	&dev_attr_dc_inject_extent.attr,
	&dev_attr_dc_inject_shared_extent.attr,
	&dev_attr_dc_del_extent.attr,
	&dev_attr_dc_force_del_extent.attr,
	&dev_attr_dc_inject_raw.attr,
	&dev_attr_dc_fail_release.attr,
	&dev_attr_dc_fail_response.attr,
	&dev_attr_dc_region_length.attr,
	&dev_attr_dc_extents.attr,
	&dev_attr_dc_stats.attr,
	NULL
};

const struct attribute_group mock_dc_attribute_group = {
	.attrs = mock_dc_attrs,
};
