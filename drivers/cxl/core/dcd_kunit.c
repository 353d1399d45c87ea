// SPDX-License-Identifier: GPL-2.0-only
/* Copyright(c) 2026 The CXL DCD project authors. */
#include <kunit/test.h>
#include <kunit/visibility.h>
#include <linux/sizes.h>
#include <cxlmem.h>
#include <dcd.h>

/**
 * DOC: KUnit suite cxl_dc_config
 *
 * Feeds hand-made Get Dynamic Capacity Configuration replies to the parser
 * and validator in core/dcd.c: one table row per way a device can get it
 * wrong, each with the reason the kernel must log, plus the good cases.
 */

MODULE_IMPORT_NS("EXPORTED_FOR_KUNIT_TESTING");

#define MAX_REPLY (sizeof(struct cxl_mbox_get_dc_config_out) +		\
		   CXL_DC_MAX_REGIONS * sizeof(struct cxl_dc_region_config) + \
		   sizeof(struct cxl_mbox_get_dc_config_tail))

struct dc_region_row {
	u64 base;
	u64 decode_units;	/* in 256 MiB, as on the wire */
	u64 len;
	u64 block;
};

struct dc_config_case {
	const char *name;
	u8 avail;		/* regions the device claims to have */
	u8 returned;		/* regions in this reply */
	int trim;		/* bytes cut off the end of the reply */
	u32 extents;		/* extents supported */
	u64 static_end;		/* first DPA after static capacity */
	struct dc_region_row r[CXL_DC_MAX_REGIONS + 1];
	const char *why;	/* expected reason, NULL when valid */
};

#define GOOD(b)		{ (b), 4, SZ_1G, SZ_2M }

static const struct dc_config_case dc_config_cases[] = {
	{ "one region", 1, 1, 0, 512, 0, { GOOD(0) }, NULL },
	{ "two regions after static", 2, 2, 0, 512, SZ_1G,
	  { GOOD(SZ_1G), GOOD(SZ_2G) }, NULL },
	{ "eight regions", 8, 8, 0, 512, 0,
	  { GOOD(0), GOOD(SZ_1G), GOOD(2ULL * SZ_1G), GOOD(3ULL * SZ_1G),
	    GOOD(4ULL * SZ_1G), GOOD(5ULL * SZ_1G), GOOD(6ULL * SZ_1G),
	    GOOD(7ULL * SZ_1G) }, NULL },
	{ "short reply", 1, 1, 40, 512, 0, { GOOD(0) },
	  "reply shorter than its region count" },
	{ "no regions", 0, 0, 0, 512, 0, { }, "region count out of range" },
	{ "nine regions", 9, 1, 0, 512, 0, { GOOD(0) },
	  "region count out of range" },
	{ "more returned than available", 1, 2, 0, 512, 0,
	  { GOOD(0), GOOD(SZ_1G) }, "inconsistent region counts" },
	{ "none returned", 2, 0, 0, 512, 0, { }, "inconsistent region counts" },
	{ "gap after static", 1, 1, 0, 512, SZ_256M, { GOOD(SZ_1G) },
	  "first region does not follow the static capacity" },
	{ "misaligned base", 2, 2, 0, 512, 0,
	  { GOOD(0), GOOD(SZ_1G + SZ_2M) }, "region base not 256 MiB aligned" },
	{ "overlap", 2, 2, 0, 512, 0, { GOOD(0), GOOD(SZ_512M) },
	  "regions overlap or are out of order" },
	{ "out of order", 2, 2, 0, 512, SZ_1G, { GOOD(SZ_1G), GOOD(0) },
	  "regions overlap or are out of order" },
	{ "overlap aligned", 2, 2, 0, 512, 0, { GOOD(0), GOOD(SZ_256M) },
	  "regions overlap or are out of order" },
	{ "zero length", 1, 1, 0, 512, 0, { { 0, 4, 0, SZ_2M } },
	  "zero region length" },
	{ "zero decode length", 1, 1, 0, 512, 0, { { 0, 0, SZ_1G, SZ_2M } },
	  "zero region length" },
	{ "length beyond decode", 1, 1, 0, 512, 0,
	  { { 0, 1, SZ_512M, SZ_2M } }, "region length exceeds decode length" },
	{ "block not power of 2", 1, 1, 0, 512, 0,
	  { { 0, 4, SZ_1G, SZ_2M + SZ_1M } },
	  "block size not a power of 2 of at least 64 bytes" },
	{ "block too small", 1, 1, 0, 512, 0, { { 0, 4, SZ_1G, 32 } },
	  "block size not a power of 2 of at least 64 bytes" },
	{ "length not block multiple", 1, 1, 0, 512, 0,
	  { { 0, 4, SZ_1G - SZ_1M, SZ_2M } },
	  "region length not a multiple of the block size" },
	{ "decode length overflows", 1, 1, 0, 512, 0,
	  { { 0, U64_MAX / 2, SZ_1G, SZ_2M } }, "decode length overflows" },
	{ "region wraps", 2, 2, 0, 512, 0,
	  { GOOD(0), { ALIGN_DOWN(U64_MAX, SZ_256M), 4, SZ_1G, SZ_2M } },
	  "region wraps the DPA space" },
	{ "no extents", 1, 1, 0, 0, 0, { GOOD(0) },
	  "device tracks no extents" },
	{ "extents capped", 1, 1, 0, U32_MAX, 0, { GOOD(0) }, NULL },
};

static void dc_config_case_desc(const struct dc_config_case *t, char *desc)
{
	strscpy(desc, t->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(dc_config, dc_config_cases, dc_config_case_desc);

static size_t build_reply(const struct dc_config_case *t, u8 *buf)
{
	struct cxl_mbox_get_dc_config_out *out = (void *)buf;
	struct cxl_mbox_get_dc_config_tail *tail;
	int n = min_t(int, t->returned, CXL_DC_MAX_REGIONS);

	memset(buf, 0, MAX_REPLY);
	out->avail_region_count = t->avail;
	out->regions_returned = t->returned;
	for (int i = 0; i < n; i++) {
		out->region[i] = (struct cxl_dc_region_config) {
			.region_base = cpu_to_le64(t->r[i].base),
			.region_decode_length = cpu_to_le64(t->r[i].decode_units),
			.region_length = cpu_to_le64(t->r[i].len),
			.region_block_size = cpu_to_le64(t->r[i].block),
		};
	}
	tail = (void *)&out->region[n];
	tail->extents_supported = cpu_to_le32(t->extents);
	return (u8 *)(tail + 1) - buf - t->trim;
}

static void dc_config_test(struct kunit *test)
{
	const struct dc_config_case *t = test->param_value;
	struct cxl_dc_config *cfg;
	const char *why = NULL;
	size_t len;
	u8 *buf;
	int rc;

	buf = kunit_kzalloc(test, MAX_REPLY, GFP_KERNEL);
	cfg = kunit_kzalloc(test, sizeof(*cfg), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, buf);
	KUNIT_ASSERT_NOT_NULL(test, cfg);

	len = build_reply(t, buf);
	rc = cxl_dc_config_parse(cfg, (void *)buf, len, 0, &why);
	if (rc >= 0) {
		KUNIT_EXPECT_EQ(test, rc, t->returned);
		rc = cxl_dc_config_validate(cfg, t->static_end, &why);
	}

	if (!t->why) {
		KUNIT_EXPECT_EQ(test, rc, 0);
		KUNIT_EXPECT_EQ(test, cfg->nr_regions, t->avail);
		KUNIT_EXPECT_EQ(test, cfg->region[0].decode_len,
				t->r[0].decode_units * SZ_256M);
		KUNIT_EXPECT_EQ(test, cfg->extents_supported,
				min(t->extents, CXL_DC_EXTENTS_MAX));
		return;
	}
	KUNIT_EXPECT_EQ(test, rc, -EINVAL);
	KUNIT_EXPECT_STREQ(test, why, t->why);
}

/* A device with more regions than one mailbox reply holds answers in parts. */
static void dc_config_two_parts(struct kunit *test)
{
	struct dc_config_case part = {
		.avail = 3, .returned = 2, .extents = 512,
		.r = { GOOD(0), GOOD(SZ_1G) },
	};
	struct cxl_dc_config *cfg;
	const char *why = NULL;
	u8 *buf;

	buf = kunit_kzalloc(test, MAX_REPLY, GFP_KERNEL);
	cfg = kunit_kzalloc(test, sizeof(*cfg), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, buf);
	KUNIT_ASSERT_NOT_NULL(test, cfg);

	KUNIT_EXPECT_EQ(test, cxl_dc_config_parse(cfg, (void *)buf,
						  build_reply(&part, buf), 0,
						  &why), 2);
	/* The second part must continue where the first stopped. */
	part.returned = 1;
	part.r[0] = (struct dc_region_row)GOOD(2ULL * SZ_1G);
	KUNIT_EXPECT_EQ(test, cxl_dc_config_parse(cfg, (void *)buf,
						  build_reply(&part, buf), 1,
						  &why), -EINVAL);
	KUNIT_EXPECT_EQ(test, cxl_dc_config_parse(cfg, (void *)buf,
						  build_reply(&part, buf), 2,
						  &why), 1);
	KUNIT_EXPECT_EQ(test, cfg->nr_regions, 3);
	KUNIT_EXPECT_EQ(test, cxl_dc_config_validate(cfg, 0, &why), 0);
	KUNIT_EXPECT_EQ(test, cfg->region[2].base, 2ULL * SZ_1G);
}

static struct kunit_case cxl_dc_config_test_cases[] = {
	KUNIT_CASE_PARAM(dc_config_test, dc_config_gen_params),
	KUNIT_CASE(dc_config_two_parts),
	{}
};

static struct kunit_suite cxl_dc_config_test_suite = {
	.name = "cxl_dc_config",
	.test_cases = cxl_dc_config_test_cases,
};

kunit_test_suite(cxl_dc_config_test_suite);

MODULE_DESCRIPTION("KUnit tests for CXL Dynamic Capacity configuration");
MODULE_LICENSE("GPL");
