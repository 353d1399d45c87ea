// SPDX-License-Identifier: GPL-2.0-only
/* Copyright(c) 2026 The CXL DCD project authors. */
#include <linux/bitmap.h>
#include <linux/overflow.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <kunit/visibility.h>
#include "dc_extent.h"

/**
 * DOC: Dynamic Capacity offer rules
 *
 * The rules an offered extent and a group of extents are checked against
 * (DPA range, the policy's granularity and tag mode, overlap, grouping by
 * tag, sequence numbers), and the region's tree of live extents by DPA.
 * Pure functions of their arguments: no lock, no device, no sysfs; the
 * library calls them under its device lock, and KUnit calls them alone.
 */

const char *const cxl_dc_reject_str[DC_REJECT_MAX] = {
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
EXPORT_SYMBOL_IF_KUNIT(cxl_dc_reject_str);

const char *cxl_dc_reject_reason(int reason)
{
	if (reason < 0 || reason >= DC_REJECT_MAX)
		return "unknown";
	return cxl_dc_reject_str[reason];
}
EXPORT_SYMBOL_IF_KUNIT(cxl_dc_reject_reason);

/* The live extent with the highest start at or below @dpa, if any. */
struct cxl_dc_extent *cxl_dc_extent_floor(struct cxl_dc_region *dcr, u64 dpa)
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

bool cxl_dc_overlaps_live(struct cxl_dc_region *dcr, u64 dpa, u64 len)
{
	struct cxl_dc_extent *e = cxl_dc_extent_floor(dcr, dpa + len - 1);

	return e && e->dpa + e->len > dpa;
}
EXPORT_SYMBOL_IF_KUNIT(cxl_dc_overlaps_live);

void cxl_dc_extent_insert(struct cxl_dc_region *dcr, struct cxl_dc_extent *ext)
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
EXPORT_SYMBOL_IF_KUNIT(cxl_dc_extent_insert);

/* Rules on the DPA range alone: length, partition, device block size. */
enum dc_reject cxl_dc_check_dpa(const struct cxl_dc_config *cfg, u64 dpa,
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
EXPORT_SYMBOL_IF_KUNIT(cxl_dc_check_dpa);

/* Rules a region's policy sets: HPA granularity and tag mode. */
enum dc_reject cxl_dc_check_policy(enum cxl_dc_tag_mode mode, u64 gran,
				   u64 hpa, u64 len, bool tagged)
{
	if (gran && !IS_ALIGNED(hpa | len, gran))
		return DC_REJECT_GRANULARITY;
	if ((tagged && mode == CXL_DC_TAG_UNTAGGED) ||
	    (!tagged && mode == CXL_DC_TAG_TAGGED))
		return DC_REJECT_TAG_MODE;
	return DC_OK;
}
EXPORT_SYMBOL_IF_KUNIT(cxl_dc_check_policy);

static int dc_cmp_dpa(const void *a, const void *b)
{
	const struct dc_offer_ext *x = *(const struct dc_offer_ext **)a;
	const struct dc_offer_ext *y = *(const struct dc_offer_ext **)b;

	return x->dpa < y->dpa ? -1 : x->dpa > y->dpa;
}

/* Extents of one offer may not overlap each other: both are rejected. */
int cxl_dc_check_offer_overlap(struct dc_offer_ext *oe, int n)
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
EXPORT_SYMBOL_IF_KUNIT(cxl_dc_check_offer_overlap);

/* Apply @why to every still-acceptable member of the group led by @first. */
void cxl_dc_reject_group(struct dc_offer_ext *oe, int first,
			 enum dc_reject why)
{
	for (int i = first; i >= 0; i = oe[i].next)
		if (oe[i].why == DC_OK)
			oe[i].why = why;
}

/*
 * Rules for a whole group of @nr members led by @first: one region,
 * sequences 0..nr-1 when sharable.  (Whether its tag is live elsewhere
 * is the library's to check: the registry is state.)  Numbers the
 * members (@seq) as a side effect.
 */
static void dc_check_group(struct dc_offer_ext *oe, int first, int nr,
			   bool sharable)
{
	unsigned long *seen __free(bitmap) = bitmap_zalloc(nr, GFP_KERNEL);
	enum dc_reject why = DC_OK;
	int k = 0;

	if (!seen) {
		cxl_dc_reject_group(oe, first, DC_REJECT_NOMEM);
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
	if (why != DC_OK)
		cxl_dc_reject_group(oe, first, why);
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
 * and the next member in offered order (@next).  O(n log n): sorted by
 * tag, not compared in pairs, so that recovering 65536 extents stays
 * cheap.
 */
void cxl_dc_form_groups(struct dc_offer_ext *oe, int n, bool sharable)
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
		dc_check_group(oe, i, nr, sharable);
	}
}
EXPORT_SYMBOL_IF_KUNIT(cxl_dc_form_groups);

/*
 * Collect the live groups with an extent overlapping [@dpa, @dpa + @len),
 * each once, into @out (room for @max); with @out NULL, count the extents
 * in the range instead (a bound on the number of groups).
 */
int cxl_dc_groups_in_range(struct cxl_dc_region *dcr, u64 dpa, u64 len,
			   struct cxl_dc_group **out, int max)
{
	struct cxl_dc_extent *e = cxl_dc_extent_floor(dcr, dpa);
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
EXPORT_SYMBOL_IF_KUNIT(cxl_dc_groups_in_range);
