// SPDX-License-Identifier: GPL-2.0-only
/* Copyright(c) 2026 The CXL DCD project authors. */
#include <linux/overflow.h>
#include <linux/slab.h>
#include "dc_extent.h"
#include "core.h"

#define CREATE_TRACE_POINTS
#include "dc_trace.h"

/**
 * DOC: Dynamic Capacity device commands
 *
 * The mailbox side of the extent library: Add DC Response and Release DC
 * with an extent list split across commands only when the payload forces
 * it, Get DC Extent List read whole and consistent, and what the device
 * still holds of a range.  The callers hold the library's device lock.
 */

/*
 * Send an extent list with Add DC Response or Release DC, split across
 * commands only when the mailbox payload forces it (More set on all but
 * the last).  @get fills in extent @i.
 */
int cxl_dc_send_list(struct cxl_dc_dev *dcd, u16 opcode, int nr,
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
		bool more = done + n < nr;
		int rc;

		memset(rsp, 0, cmd.size_in);
		rsp->extent_list_size = cpu_to_le32(n);
		if (more)
			rsp->flags = CXL_DC_RESPONSE_MORE;
		for (int i = 0; i < n; i++) {
			u64 dpa, len;

			get(ctx, done + i, &dpa, &len);
			rsp->extent_list[i].start_dpa = cpu_to_le64(dpa);
			rsp->extent_list[i].length = cpu_to_le64(len);
		}
		trace_cxl_dc_mbox_send(dc_dev(dcd), opcode, n, more, 0);
		rc = cxl_internal_send_cmd(cxl_mbox, &cmd);
		trace_cxl_dc_mbox_done(dc_dev(dcd), opcode, n, more, rc);
		if (rc)
			return rc;
		done += n;
	} while (done < nr);

	return 0;
}

void cxl_dc_group_get(void *ctx, int i, u64 *dpa, u64 *len)
{
	struct cxl_dc_group *group = ctx;

	*dpa = group->ext[i]->dpa;
	*len = group->ext[i]->len;
}

void cxl_dc_range_get(void *ctx, int i, u64 *dpa, u64 *len)
{
	struct range *r = ctx;

	*dpa = r[i].start;
	*len = range_len(&r[i]);
}

/*
 * Read the device's whole accepted-extent list.  The generation number
 * must not change while the list is read in parts; a few retries, then
 * -EAGAIN.  Returns the number of extents in *@out (kvfree() it).
 */
int cxl_dc_read_extents(struct cxl_dc_dev *dcd,
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
int cxl_dc_clip_held(const struct cxl_dc_extent_raw *raw, int total,
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
int cxl_dc_group_still_held(struct cxl_dc_dev *dcd,
			    struct cxl_dc_group *group, struct range **out)
{
	struct cxl_dc_extent_raw *raw __free(kvfree) = NULL;
	int total, n = 0;
	struct range *r;

	total = cxl_dc_read_extents(dcd, &raw);
	if (total < 0)
		return total;
	/* Two sets of disjoint ranges cut each other in fewer pieces. */
	r = kvcalloc(group->nr + total, sizeof(*r), GFP_KERNEL);
	if (!r)
		return -ENOMEM;
	for (int i = 0; i < group->nr; i++) {
		struct cxl_dc_extent *e = group->ext[i];

		n += cxl_dc_clip_held(raw, total, e->dpa, e->dpa + e->len - 1,
				  r + n, group->nr + total - n);
	}
	*out = r;
	return n;
}

void cxl_dc_offer_get(void *ctx, int i, u64 *dpa, u64 *len)
{
	struct dc_offer_ext **acc = ctx;

	*dpa = acc[i]->dpa;
	*len = acc[i]->len;
}
