/* SPDX-License-Identifier: GPL-2.0-only */
/* Copyright(c) 2026 The CXL DCD project authors. */
#ifndef __CXL_DCD_H__
#define __CXL_DCD_H__

#include <linux/sizes.h>
#include <linux/types.h>
#include <linux/uuid.h>
#include <cxl/event.h>

/**
 * DOC: Dynamic Capacity Device wire formats and core hooks
 *
 * The mailbox payloads of the four Dynamic Capacity commands (CXL r3.1
 * section 8.2.9.9.9), the device's Dynamic Capacity configuration as the
 * core keeps it after validation, and the small set of calls through which
 * the rest of the CXL core (mailbox, event log, PCI probe, memdev sysfs)
 * reaches the Dynamic Capacity code in core/dcd.c and
 * core/dc_extent_lib.c.  Nothing in this header is for region drivers;
 * they use <cxl/dc_lib.h>.
 */

struct cxl_memdev_state;
struct cxl_dpa_info;
struct attribute_group;

/* CXL r3.1 section 9.13.3: a device has at most 8 Dynamic Capacity regions */
#define CXL_DC_MAX_REGIONS		8
/* CXL r3.1 Table 8-165: block sizes are powers of 2, at least 64 bytes */
#define CXL_DC_MIN_BLOCK_SIZE		SZ_64
/* Get DC Configuration reports decode length in 256 MiB units */
#define CXL_DC_DECODE_UNIT		SZ_256M

/* CXL r3.1 section 8.2.9.9.9.1 Table 8-163: Get DC Configuration input */
struct cxl_mbox_get_dc_config_in {
	u8 region_count;
	u8 start_region_index;
} __packed;

/* CXL r3.1 Table 8-165: DC Region Configuration */
struct cxl_dc_region_config {
	__le64 region_base;
	__le64 region_decode_length;
	__le64 region_length;
	__le64 region_block_size;
	__le32 region_dsmad_handle;
	u8 flags;
	u8 rsvd[3];
} __packed;

/* CXL r3.1 Table 8-164: Get DC Configuration output, regions part */
struct cxl_mbox_get_dc_config_out {
	u8 avail_region_count;
	u8 regions_returned;
	u8 rsvd[6];
	struct cxl_dc_region_config region[];
	/* followed by struct cxl_mbox_get_dc_config_tail */
} __packed;

/* CXL r3.1 Table 8-164: Get DC Configuration output, after the regions */
struct cxl_mbox_get_dc_config_tail {
	__le32 extents_supported;
	__le32 extents_available;
	__le32 tags_supported;
	__le32 tags_available;
} __packed;

/* CXL r3.1 section 8.2.9.9.9.2 Table 8-166: Get DC Extent List input */
struct cxl_mbox_get_dc_extent_in {
	__le32 extent_cnt;
	__le32 start_extent_index;
} __packed;

/* CXL r3.1 Table 8-167: Get DC Extent List output */
struct cxl_mbox_get_dc_extent_out {
	__le32 returned_extent_count;
	__le32 total_extent_count;
	__le32 generation_num;
	u8 rsvd[4];
	struct cxl_dc_extent_raw extent[];
} __packed;

/* CXL r3.1 Table 8-169: Updated Extent */
struct cxl_dc_updated_extent {
	__le64 start_dpa;
	__le64 length;
	u8 rsvd[8];
} __packed;

/*
 * CXL r3.1 Table 8-168 and Table 8-170: Add Dynamic Capacity Response and
 * Release Dynamic Capacity input payload.
 */
#define CXL_DC_RESPONSE_MORE		BIT(0)
struct cxl_mbox_dc_response {
	__le32 extent_list_size;
	u8 flags;
	u8 rsvd[3];
	struct cxl_dc_updated_extent extent_list[];
} __packed;

/**
 * struct cxl_dc_region_info - one Dynamic Capacity region, validated
 * @base: first DPA of the region
 * @decode_len: DPA span an HDM decoder maps for the region
 * @len: usable capacity from @base, at most @decode_len
 * @block_size: allocation unit; every extent is a multiple of it
 * @dsmad_handle: CDAT DSMAS entry describing the region's performance
 * @flags: region flags as the device reports them (Table 8-165)
 * @sharable: extents may be shared with other hosts; tagged groups then
 *	carry sequence numbers 0..n-1 that order them
 */
struct cxl_dc_region_info {
	u64 base;
	u64 decode_len;
	u64 len;
	u64 block_size;
	u32 dsmad_handle;
	u8 flags;
	bool sharable;
};

/*
 * The most extents the host tracks for one device, whatever the device
 * claims: a device-reported count sizes the Get DC Extent List buffers,
 * and 64Ki live extents cost about 70 MiB of host memory already.
 */
#define CXL_DC_EXTENTS_MAX	SZ_64K

/**
 * struct cxl_dc_config - a device's Dynamic Capacity configuration
 * @nr_regions: regions the device reports (0 when DCD is disabled)
 * @region: the regions, in increasing DPA order
 * @extents_supported: extents the device can track in total, at most
 *	%CXL_DC_EXTENTS_MAX
 * @extents_available: of those, not in use when read
 * @tags_supported: distinct tags the device can track
 * @tags_available: of those, not in use when read
 */
struct cxl_dc_config {
	int nr_regions;
	struct cxl_dc_region_info region[CXL_DC_MAX_REGIONS];
	u32 extents_supported;
	u32 extents_available;
	u32 tags_supported;
	u32 tags_available;
};

/* core/dcd.c: pure parsing, exported for the KUnit suite */
int cxl_dc_config_parse(struct cxl_dc_config *cfg,
			const struct cxl_mbox_get_dc_config_out *out,
			size_t out_len, u8 start, const char **why);
int cxl_dc_config_validate(const struct cxl_dc_config *cfg, u64 static_end,
			   const char **why);

/**
 * struct cxl_dc_state - Dynamic Capacity state of one memory device
 * @enabled_cmds: DC commands found in the Command Effects Log (core/dcd.c)
 * @config: validated configuration; nr_regions is 0 when DC is disabled
 * @dcd: the extent library's per-device state (core/dc_extent_lib.c)
 */
struct cxl_dc_state {
	unsigned long enabled_cmds;
	struct cxl_dc_config config;
	struct cxl_dc_dev *dcd;
};

/* core/dcd.c: device enablement */
bool cxl_dc_is_command(u16 opcode);
void cxl_dc_set_command_enabled(struct cxl_memdev_state *mds, u16 opcode);
bool cxl_dcd_supported(struct cxl_memdev_state *mds);
int cxl_dc_dpa_fetch(struct cxl_memdev_state *mds, struct cxl_dpa_info *info);
int cxl_dc_config_reread(struct cxl_memdev_state *mds,
			 struct cxl_dc_config *cfg, void *buf, const char **why);
extern const struct attribute_group cxl_memdev_dc_attribute_group;
extern const struct attribute_group cxl_memdev_dc_stats_group;

/* core/dc_extent_lib.c: the event conversation */
struct cxl_region;
int cxl_dc_dev_create(struct cxl_memdev_state *mds);
int cxl_dc_region_alloc(struct cxl_region *cxlr);
void cxl_dc_region_free(struct cxl_region *cxlr);
void cxl_dc_region_delete(struct cxl_region *cxlr);
extern const struct attribute_group cxl_dc_region_group;
const char *cxl_dc_reject_reason(int reason);
void cxl_dc_handle_event(struct cxl_memdev_state *mds,
			 const struct cxl_event_dcd *rec);
void cxl_dc_events_drained(struct cxl_memdev_state *mds);
void cxl_dc_log_overflow(struct cxl_memdev_state *mds);
void cxl_dc_flush(struct cxl_memdev_state *mds);

#endif /* __CXL_DCD_H__ */
