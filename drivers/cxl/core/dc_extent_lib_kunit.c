// SPDX-License-Identifier: GPL-2.0-only
/* Copyright(c) 2026 The CXL DCD project authors. */
/*
 * DOC: KUnit suite cxl_dc_extent_rules
 *
 * Table-driven tests for the rules of the extent library (DESIGN section
 * 4), one row per rule and per rejection reason: the DPA checks (length,
 * overflow, partition, block size), the policy checks (granularity, tag
 * mode), overlap inside one offer and with live extents, grouping by tag
 * (whole-group rejection, groups spanning regions, tags live elsewhere,
 * dense sequences for sharable groups, arrival numbering otherwise), the
 * More-bit chain and its cap, and the range walk behind release.
 * A module of its own: the library exports what it checks to KUnit only.
 */
#include <kunit/test.h>
#include <kunit/visibility.h>
#include <linux/sizes.h>
#include "dc_extent.h"

MODULE_IMPORT_NS("EXPORTED_FOR_KUNIT_TESTING");

/* --- DPA rules ----------------------------------------------------------- */

struct dc_dpa_case {
	const char *name;
	bool disabled;		/* DC configuration rejected at probe */
	u64 dpa;
	u64 len;
	enum dc_reject why;
};

static const struct dc_dpa_case dc_dpa_cases[] = {
	{ "inside", false, SZ_1G, SZ_2M, DC_OK },
	{ "last block", false, SZ_2G - SZ_2M, SZ_2M, DC_OK },
	{ "whole partition", false, SZ_1G, SZ_1G, DC_OK },
	{ "zero length", false, SZ_1G, 0, DC_REJECT_LENGTH },
	{ "wraps", false, U64_MAX - SZ_1M, SZ_4M, DC_REJECT_LENGTH },
	{ "below partition", false, 0, SZ_2M, DC_REJECT_PARTITION },
	{ "past usable length", false, SZ_2G - SZ_2M, SZ_4M,
	  DC_REJECT_PARTITION },
	{ "in decode, past length", false, SZ_2G, SZ_2M, DC_REJECT_PARTITION },
	{ "start not block aligned", false, SZ_1G + SZ_1M, SZ_2M,
	  DC_REJECT_BLOCK },
	{ "length not block aligned", false, SZ_1G, SZ_2M + SZ_1M,
	  DC_REJECT_BLOCK },
	{ "DC disabled", true, SZ_1G, SZ_2M, DC_REJECT_PARTITION },
};

static void dc_dpa_desc(const struct dc_dpa_case *t, char *desc)
{
	strscpy(desc, t->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(dc_dpa, dc_dpa_cases, dc_dpa_desc);

static void dc_dpa_test(struct kunit *test)
{
	const struct dc_dpa_case *t = test->param_value;
	struct cxl_dc_config cfg = {
		.nr_regions = t->disabled ? 0 : 2,
		.region[0] = {
			.base = SZ_1G, .decode_len = SZ_2G, .len = SZ_1G,
			.block_size = SZ_2M,
		},
	};

	KUNIT_EXPECT_STREQ(test, cxl_dc_reject_str[cxl_dc_check_dpa(&cfg, t->dpa, t->len)],
			   cxl_dc_reject_str[t->why]);
}

/* --- policy rules -------------------------------------------------------- */

struct dc_policy_case {
	const char *name;
	enum cxl_dc_tag_mode mode;
	u64 gran;
	u64 hpa;
	u64 len;
	bool tagged;
	enum dc_reject why;
};

static const struct dc_policy_case dc_policy_cases[] = {
	{ "untagged in untagged", CXL_DC_TAG_UNTAGGED, 0, 0, SZ_2M, false, DC_OK },
	{ "tagged in untagged", CXL_DC_TAG_UNTAGGED, 0, 0, SZ_2M, true,
	  DC_REJECT_TAG_MODE },
	{ "untagged in tagged", CXL_DC_TAG_TAGGED, 0, 0, SZ_2M, false,
	  DC_REJECT_TAG_MODE },
	{ "tagged in tagged", CXL_DC_TAG_TAGGED, 0, 0, SZ_2M, true, DC_OK },
	{ "both in any", CXL_DC_TAG_ANY, 0, 0, SZ_2M, true, DC_OK },
	{ "memory block aligned", CXL_DC_TAG_ANY, SZ_128M, SZ_256M, SZ_128M,
	  false, DC_OK },
	{ "start below granularity", CXL_DC_TAG_ANY, SZ_128M, SZ_2M, SZ_128M,
	  false, DC_REJECT_GRANULARITY },
	{ "length below granularity", CXL_DC_TAG_ANY, SZ_128M, SZ_128M, SZ_64M,
	  false, DC_REJECT_GRANULARITY },
};

static void dc_policy_desc(const struct dc_policy_case *t, char *desc)
{
	strscpy(desc, t->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(dc_policy, dc_policy_cases, dc_policy_desc);

static void dc_policy_test(struct kunit *test)
{
	const struct dc_policy_case *t = test->param_value;
	enum dc_reject why = cxl_dc_check_policy(t->mode, t->gran, t->hpa, t->len,
					     t->tagged);

	KUNIT_EXPECT_STREQ(test, cxl_dc_reject_str[why], cxl_dc_reject_str[t->why]);
}

/* --- offers: overlap and groups ------------------------------------------ */

#define DC_MAX_ROWS 6

struct dc_row {
	u64 dpa_mb;
	u64 len_mb;
	u8 tag;			/* 0: untagged, else tag number */
	u16 seq;		/* sequence number as the device sent it */
	enum dc_reject pre;	/* verdict of the per-extent checks */
	u8 region;		/* which of two regions maps it */
};

struct dc_group_case {
	const char *name;
	bool sharable;
	u8 live_tag;		/* a tag already live on the host, or 0 */
	int n;
	struct dc_row row[DC_MAX_ROWS];
	enum dc_reject why[DC_MAX_ROWS];
	u16 seq[DC_MAX_ROWS];
};

#define ROW(d, l, t, s) { d, l, t, s, DC_OK, 0 }

static const struct dc_group_case dc_group_cases[] = {
	{ "untagged extents stand alone", false, 0, 2,
	  { ROW(0, 2, 0, 0), ROW(2, 2, 0, 0) },
	  { DC_OK, DC_OK }, { 0, 0 } },
	{ "tag group accepted whole, numbered by arrival", false, 0, 3,
	  { ROW(4, 2, 1, 9), ROW(0, 2, 1, 9), ROW(2, 2, 1, 9) },
	  { DC_OK, DC_OK, DC_OK }, { 0, 1, 2 } },
	{ "one bad member rejects its group", false, 0, 3,
	  { ROW(0, 2, 1, 0), { 2, 2, 1, 0, DC_REJECT_BLOCK, 0 }, ROW(4, 2, 1, 0) },
	  { DC_REJECT_GROUP, DC_REJECT_BLOCK, DC_REJECT_GROUP } },
	{ "other groups unaffected", false, 0, 3,
	  { ROW(0, 2, 0, 0), { 2, 2, 1, 0, DC_REJECT_BLOCK, 0 }, ROW(4, 2, 2, 0) },
	  { DC_OK, DC_REJECT_BLOCK, DC_OK } },
	{ "group spans regions", false, 0, 2,
	  { ROW(0, 2, 1, 0), { 2, 2, 1, 1, DC_OK, 1 } },
	  { DC_REJECT_GROUP_REGIONS, DC_REJECT_GROUP_REGIONS } },
	{ "Set(A) then Set(A)': tag live on host", false, 1, 2,
	  { ROW(0, 2, 1, 0), ROW(2, 2, 1, 1) },
	  { DC_REJECT_TAG_LIVE, DC_REJECT_TAG_LIVE } },
	{ "other tag still accepted", false, 1, 2,
	  { ROW(0, 2, 1, 0), ROW(2, 2, 2, 0) },
	  { DC_REJECT_TAG_LIVE, DC_OK } },
	{ "sharable: dense sequence orders the group", true, 0, 3,
	  { ROW(0, 2, 1, 2), ROW(2, 2, 1, 0), ROW(4, 2, 1, 1) },
	  { DC_OK, DC_OK, DC_OK }, { 2, 0, 1 } },
	{ "sharable: sequence gap", true, 0, 2,
	  { ROW(0, 2, 1, 0), ROW(2, 2, 1, 2) },
	  { DC_REJECT_SEQUENCE, DC_REJECT_SEQUENCE } },
	{ "sharable: duplicate sequence", true, 0, 3,
	  { ROW(0, 2, 1, 0), ROW(2, 2, 1, 1), ROW(4, 2, 1, 1) },
	  { DC_REJECT_SEQUENCE, DC_REJECT_SEQUENCE, DC_REJECT_SEQUENCE } },
	{ "sharable: untagged extents need no sequence", true, 0, 2,
	  { ROW(0, 2, 0, 5), ROW(2, 2, 0, 7) },
	  { DC_OK, DC_OK }, { 0, 0 } },
	{ "overlap inside one offer", false, 0, 3,
	  { ROW(0, 4, 0, 0), ROW(2, 2, 0, 0), ROW(8, 2, 0, 0) },
	  { DC_REJECT_OVERLAP, DC_REJECT_OVERLAP, DC_OK } },
	{ "overlap sinks a tag group", false, 0, 3,
	  { ROW(0, 2, 1, 0), ROW(2, 2, 1, 1), ROW(3, 2, 0, 0) },
	  { DC_REJECT_GROUP, DC_REJECT_OVERLAP, DC_REJECT_OVERLAP } },
	{ "same range twice", false, 0, 2,
	  { ROW(6, 2, 0, 0), ROW(6, 2, 0, 0) },
	  { DC_REJECT_OVERLAP, DC_REJECT_OVERLAP } },
};

static void dc_group_desc(const struct dc_group_case *t, char *desc)
{
	strscpy(desc, t->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(dc_group, dc_group_cases, dc_group_desc);

static void dc_tag_of(u8 n, u8 *tag)
{
	memset(tag, 0, UUID_SIZE);
	if (n)
		memset(tag, n, UUID_SIZE);
}

static void dc_unregister_tag(void *group)
{
	cxl_dc_tag_drop(group);
}

static void dc_group_test(struct kunit *test)
{
	const struct dc_group_case *t = test->param_value;
	struct cxl_dc_region regions[2] = {};
	struct cxl_memdev_state *mds;
	struct cxl_dc_extent_raw *raw;
	struct dc_offer_ext *oe;
	struct cxl_dc_dev *dcd;

	mds = kunit_kzalloc(test, sizeof(*mds), GFP_KERNEL);
	dcd = kunit_kzalloc(test, sizeof(*dcd), GFP_KERNEL);
	raw = kunit_kcalloc(test, t->n, sizeof(*raw), GFP_KERNEL);
	oe = kunit_kcalloc(test, t->n, sizeof(*oe), GFP_KERNEL);
	KUNIT_ASSERT_TRUE(test, mds && dcd && raw && oe);
	mds->dc.config.region[0].sharable = t->sharable;
	dcd->mds = mds;

	if (t->live_tag) {
		struct cxl_dc_group *live =
			kunit_kzalloc(test, sizeof(*live), GFP_KERNEL);

		KUNIT_ASSERT_NOT_NULL(test, live);
		dc_tag_of(t->live_tag, live->tag.b);
		KUNIT_ASSERT_TRUE(test, cxl_dc_tag_claim(live));
		KUNIT_ASSERT_EQ(test, 0,
				kunit_add_action_or_reset(test, dc_unregister_tag,
							  live));
	}

	for (int i = 0; i < t->n; i++) {
		const struct dc_row *r = &t->row[i];

		dc_tag_of(r->tag, raw[i].tag);
		raw[i].shared_extn_seq = cpu_to_le16(r->seq);
		oe[i] = (struct dc_offer_ext) {
			.raw = &raw[i], .dpa = r->dpa_mb * SZ_1M,
			.len = r->len_mb * SZ_1M, .why = r->pre,
			.dcr = &regions[r->region],
		};
	}
	KUNIT_ASSERT_EQ(test, cxl_dc_check_offer_overlap(oe, t->n), 0);
	cxl_dc_form_groups(oe, t->n, dc_sharable(dcd));
	cxl_dc_check_tags_live(oe, t->n);

	for (int i = 0; i < t->n; i++) {
		KUNIT_EXPECT_STREQ_MSG(test, cxl_dc_reject_str[oe[i].why],
				       cxl_dc_reject_str[t->why[i]], "extent %d", i);
		if (t->why[i] == DC_OK)
			KUNIT_EXPECT_EQ_MSG(test, oe[i].seq, t->seq[i],
					    "extent %d", i);
	}
}

/* --- live extents: overlap and the release range walk ---------------------- */

static void dc_extent_tree_test(struct kunit *test)
{
	struct cxl_dc_region *dcr = kunit_kzalloc(test, sizeof(*dcr), GFP_KERNEL);
	struct cxl_dc_group *g[4], *out[8];
	struct cxl_dc_extent *e;

	KUNIT_ASSERT_NOT_NULL(test, dcr);
	dcr->extents = RB_ROOT;
	/* Groups 0..3, one 2 MiB extent each at 0, 4, 8, 12 MiB; group 3 also
	 * owns a second extent at 16 MiB.
	 */
	for (int i = 0; i < 4; i++) {
		g[i] = kunit_kzalloc(test, struct_size(g[i], ext, 2), GFP_KERNEL);
		e = kunit_kzalloc(test, sizeof(*e), GFP_KERNEL);
		KUNIT_ASSERT_TRUE(test, g[i] && e);
		e->dpa = i * SZ_4M;
		e->len = SZ_2M;
		e->group = g[i];
		cxl_dc_extent_insert(dcr, e);
	}
	e = kunit_kzalloc(test, sizeof(*e), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, e);
	e->dpa = 16 * SZ_1M;
	e->len = SZ_2M;
	e->group = g[3];
	cxl_dc_extent_insert(dcr, e);
	KUNIT_EXPECT_EQ(test, dcr->nr_extents, 5);

	KUNIT_EXPECT_TRUE(test, cxl_dc_overlaps_live(dcr, 0, SZ_2M));
	KUNIT_EXPECT_TRUE(test, cxl_dc_overlaps_live(dcr, SZ_1M, SZ_2M));
	KUNIT_EXPECT_FALSE(test, cxl_dc_overlaps_live(dcr, SZ_2M, SZ_2M));
	KUNIT_EXPECT_TRUE(test, cxl_dc_overlaps_live(dcr, SZ_2M, SZ_4M));
	KUNIT_EXPECT_FALSE(test, cxl_dc_overlaps_live(dcr, 18 * SZ_1M, SZ_2M));

	/* A range over groups 1 and 2 and a gap. */
	KUNIT_EXPECT_EQ(test, cxl_dc_groups_in_range(dcr, SZ_4M, SZ_8M, NULL,
						     INT_MAX), 2);
	KUNIT_EXPECT_EQ(test, cxl_dc_groups_in_range(dcr, SZ_4M, SZ_8M, out, 8), 2);
	KUNIT_EXPECT_PTR_EQ(test, out[0], g[1]);
	KUNIT_EXPECT_PTR_EQ(test, out[1], g[2]);
	/* Two extents of one group count once as a group. */
	KUNIT_EXPECT_EQ(test, cxl_dc_groups_in_range(dcr, 12 * SZ_1M, SZ_8M, out,
						     8), 1);
	KUNIT_EXPECT_PTR_EQ(test, out[0], g[3]);
	/* Starting inside an extent finds it. */
	KUNIT_EXPECT_EQ(test, cxl_dc_groups_in_range(dcr, SZ_1M, SZ_1M, out, 8), 1);
	KUNIT_EXPECT_PTR_EQ(test, out[0], g[0]);
	/* Nothing there. */
	KUNIT_EXPECT_EQ(test, cxl_dc_groups_in_range(dcr, SZ_2M, SZ_2M, out, 8), 0);
}

/* --- chains: the More bit, the cap ---------------------------------------- */

static void dc_chain_test(struct kunit *test)
{
	struct cxl_dc_dev *dcd = kunit_kzalloc(test, sizeof(*dcd), GFP_KERNEL);
	struct cxl_event_dcd rec = { .event_type = CXL_DC_EVENT_ADD_CAPACITY };
	unsigned int timeout = cxl_dc_chain_timeout_ms;
	struct cxl_dc_chain *c;

	KUNIT_ASSERT_NOT_NULL(test, dcd);
	dcd->mds = kunit_kzalloc(test, sizeof(*dcd->mds), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, dcd->mds);
	mutex_init(&dcd->lock);
	INIT_LIST_HEAD(&dcd->closed);
	INIT_DELAYED_WORK(&dcd->timeout, cxl_dc_chain_timeout);
	cxl_dc_chain_timeout_ms = 600000;	/* the timer does not fire here */

	mutex_lock(&dcd->lock);
	/* Records with More set gather; nothing is ready to answer. */
	for (int i = 0; i < 3; i++) {
		rec.extent.start_dpa = cpu_to_le64(i * SZ_2M);
		cxl_dc_chain_add(dcd, &rec);
	}
	KUNIT_EXPECT_TRUE(test, list_empty(&dcd->closed));
	/* More clear closes the offer: one chain, in offered order. */
	cxl_dc_chain_close(dcd);
	c = list_first_entry_or_null(&dcd->closed, struct cxl_dc_chain, node);
	KUNIT_ASSERT_NOT_NULL(test, c);
	KUNIT_EXPECT_EQ(test, c->nr, 3);
	KUNIT_EXPECT_EQ(test, le64_to_cpu(c->ext[2].start_dpa), 2 * SZ_2M);
	KUNIT_EXPECT_EQ(test, c->why, DC_OK);
	list_del(&c->node);
	cxl_dc_chain_free(c);

	/* One record over the cap rejects the whole offer, answered once. */
	for (int i = 0; i <= CXL_DC_CHAIN_MAX; i++)
		cxl_dc_chain_add(dcd, &rec);
	cxl_dc_chain_close(dcd);
	c = list_first_entry_or_null(&dcd->closed, struct cxl_dc_chain, node);
	KUNIT_ASSERT_NOT_NULL(test, c);
	KUNIT_EXPECT_EQ(test, c->nr, CXL_DC_CHAIN_MAX);
	KUNIT_EXPECT_EQ(test, c->why, DC_REJECT_CHAIN_CAP);
	KUNIT_EXPECT_TRUE(test, list_is_singular(&dcd->closed));
	list_del(&c->node);
	cxl_dc_chain_free(c);
	mutex_unlock(&dcd->lock);
	cancel_delayed_work_sync(&dcd->timeout);
	cxl_dc_chain_timeout_ms = timeout;
}

/*
 * The timer armed for offer A fires just as A's last record closes A and
 * offer B opens: the stale run must leave B alone, and B is closed only
 * at its own deadline.
 */
static void dc_chain_deadline_test(struct kunit *test)
{
	struct cxl_dc_dev *dcd = kunit_kzalloc(test, sizeof(*dcd), GFP_KERNEL);
	struct cxl_event_dcd rec = { .event_type = CXL_DC_EVENT_ADD_CAPACITY };
	struct cxl_dc_chain *c;

	KUNIT_ASSERT_NOT_NULL(test, dcd);
	dcd->mds = kunit_kzalloc(test, sizeof(*dcd->mds), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, dcd->mds);
	dcd->dying = true;	/* no workqueue here: nothing is kicked */
	mutex_init(&dcd->lock);
	INIT_LIST_HEAD(&dcd->closed);
	INIT_DELAYED_WORK(&dcd->timeout, cxl_dc_chain_timeout);

	scoped_guard(mutex, &dcd->lock)
		cxl_dc_chain_add(dcd, &rec);	/* B's first record */
	cxl_dc_chain_timeout(&dcd->timeout.work);	/* A's stale timer */
	scoped_guard(mutex, &dcd->lock) {
		KUNIT_EXPECT_NOT_NULL(test, dcd->open);
		KUNIT_EXPECT_TRUE(test, list_empty(&dcd->closed));
		if (dcd->open)
			dcd->open->deadline = jiffies - 1;
	}
	cxl_dc_chain_timeout(&dcd->timeout.work);	/* B's own deadline */
	cancel_delayed_work_sync(&dcd->timeout);
	c = list_first_entry_or_null(&dcd->closed, struct cxl_dc_chain, node);
	KUNIT_ASSERT_NOT_NULL(test, c);
	KUNIT_EXPECT_EQ(test, c->why, DC_REJECT_CHAIN_TIMEOUT);
	KUNIT_EXPECT_NULL(test, dcd->open);
	list_del(&c->node);
	cxl_dc_chain_free(c);
}

static void dc_reject_reasons_test(struct kunit *test)
{
	for (int i = 0; i < DC_REJECT_MAX; i++) {
		KUNIT_EXPECT_NOT_NULL_MSG(test, cxl_dc_reject_str[i], "reason %d", i);
		for (int j = 0; j < i; j++)
			KUNIT_EXPECT_STRNEQ(test, cxl_dc_reject_str[i],
					    cxl_dc_reject_str[j]);
	}
	KUNIT_EXPECT_STREQ(test, cxl_dc_reject_reason(-1), "unknown");
	KUNIT_EXPECT_STREQ(test, cxl_dc_reject_reason(DC_REJECT_MAX), "unknown");
}

static struct kunit_case cxl_dc_extent_rules_cases[] = {
	KUNIT_CASE_PARAM(dc_dpa_test, dc_dpa_gen_params),
	KUNIT_CASE_PARAM(dc_policy_test, dc_policy_gen_params),
	KUNIT_CASE_PARAM(dc_group_test, dc_group_gen_params),
	KUNIT_CASE(dc_extent_tree_test),
	KUNIT_CASE(dc_chain_test),
	KUNIT_CASE(dc_chain_deadline_test),
	KUNIT_CASE(dc_reject_reasons_test),
	{}
};

static struct kunit_suite cxl_dc_extent_rules_suite = {
	.name = "cxl_dc_extent_rules",
	.test_cases = cxl_dc_extent_rules_cases,
};

kunit_test_suite(cxl_dc_extent_rules_suite);

MODULE_DESCRIPTION("KUnit tests for the CXL Dynamic Capacity extent rules");
MODULE_LICENSE("GPL");
