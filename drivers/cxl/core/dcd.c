// SPDX-License-Identifier: GPL-2.0-only
/* Copyright(c) 2026 The CXL DCD project authors. */
#include <linux/device.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <kunit/visibility.h>
#include <cxlmem.h>
#include <dcd.h>
#include "core.h"

/**
 * DOC: Dynamic Capacity Device enablement
 *
 * A memory device is a Dynamic Capacity Device (DCD, CXL r3.1 section
 * 9.13.3) when its Command Effects Log lists all four Dynamic Capacity
 * commands.  For such a device this file reads Get Dynamic Capacity
 * Configuration, treats the reply as untrusted data, and adds the first
 * Dynamic Capacity region to the device's partition model as the
 * ``dynamic_ram_1`` partition, right after the static RAM and PMEM
 * partitions.  Further Dynamic Capacity regions are named in the log and
 * left unused.
 *
 * A reply that fails validation (regions out of order or overlapping,
 * misaligned bases, block sizes that are not powers of two, absurd counts,
 * a short payload) disables Dynamic Capacity for the device with one log
 * line saying why; the static partitions keep working.
 *
 * What happens to capacity the device offers at run time is the business
 * of the extent library, core/dc_extent_lib.c.
 */

enum {
	CXL_DC_CMD_GET_CONFIG,
	CXL_DC_CMD_GET_EXTENT_LIST,
	CXL_DC_CMD_ADD_RESPONSE,
	CXL_DC_CMD_RELEASE,
	CXL_DC_CMD_MAX
};

static const u16 cxl_dc_opcodes[CXL_DC_CMD_MAX] = {
	[CXL_DC_CMD_GET_CONFIG] = CXL_MBOX_OP_GET_DC_CONFIG,
	[CXL_DC_CMD_GET_EXTENT_LIST] = CXL_MBOX_OP_GET_DC_EXTENT_LIST,
	[CXL_DC_CMD_ADD_RESPONSE] = CXL_MBOX_OP_ADD_DC_RESPONSE,
	[CXL_DC_CMD_RELEASE] = CXL_MBOX_OP_RELEASE_DC,
};

static int cxl_dc_cmd_index(u16 opcode)
{
	for (int i = 0; i < CXL_DC_CMD_MAX; i++)
		if (cxl_dc_opcodes[i] == opcode)
			return i;
	return -1;
}

bool cxl_dc_is_command(u16 opcode)
{
	return cxl_dc_cmd_index(opcode) >= 0;
}

/**
 * cxl_dc_set_command_enabled() - note a Dynamic Capacity command in the CEL
 * @mds: the device whose Command Effects Log is being walked
 * @opcode: one of the four Dynamic Capacity opcodes
 *
 * Context: probe, single threaded.
 */
void cxl_dc_set_command_enabled(struct cxl_memdev_state *mds, u16 opcode)
{
	int i = cxl_dc_cmd_index(opcode);

	if (WARN_ON_ONCE(i < 0))
		return;
	mds->dc.enabled_cmds |= BIT(i);
}

/**
 * cxl_dcd_supported() - does the device speak the whole DC command set
 * @mds: the device
 *
 * Return: true when all four Dynamic Capacity commands are in the CEL.
 */
bool cxl_dcd_supported(struct cxl_memdev_state *mds)
{
	return mds->dc.enabled_cmds == GENMASK(CXL_DC_CMD_MAX - 1, 0);
}
EXPORT_SYMBOL_NS_GPL(cxl_dcd_supported, "CXL");

static bool dc_region_valid(const struct cxl_dc_region_info *r,
			    const char **why)
{
	u64 end;

	if (!IS_ALIGNED(r->base, CXL_DC_DECODE_UNIT)) {
		*why = "region base not 256 MiB aligned";
		return false;
	}
	if (!r->decode_len || !r->len) {
		*why = "zero region length";
		return false;
	}
	if (r->len > r->decode_len) {
		*why = "region length exceeds decode length";
		return false;
	}
	if (!is_power_of_2(r->block_size) ||
	    r->block_size < CXL_DC_MIN_BLOCK_SIZE) {
		*why = "block size not a power of 2 of at least 64 bytes";
		return false;
	}
	if (!IS_ALIGNED(r->len, r->block_size)) {
		*why = "region length not a multiple of the block size";
		return false;
	}
	if (check_add_overflow(r->base, r->decode_len, &end)) {
		*why = "region wraps the DPA space";
		return false;
	}
	return true;
}

/**
 * cxl_dc_config_parse() - take in one Get DC Configuration reply
 * @cfg: configuration being assembled; @cfg->nr_regions counts regions so far
 * @out: the reply as the device returned it
 * @out_len: bytes the device returned
 * @start: the start region index the request asked for
 * @why: set to a reason when the reply is rejected
 *
 * The device is not trusted: every count is checked against the payload
 * length and against the architectural limit before it is used.
 *
 * Return: number of regions taken in, or -EINVAL with @why set.
 */
int cxl_dc_config_parse(struct cxl_dc_config *cfg,
			const struct cxl_mbox_get_dc_config_out *out,
			size_t out_len, u8 start, const char **why)
{
	const struct cxl_mbox_get_dc_config_tail *tail;
	size_t need;
	int n;

	if (out_len < sizeof(*out)) {
		*why = "short reply";
		return -EINVAL;
	}
	if (!out->avail_region_count ||
	    out->avail_region_count > CXL_DC_MAX_REGIONS) {
		*why = "region count out of range";
		return -EINVAL;
	}
	n = out->regions_returned;
	if (start != cfg->nr_regions || start + n > out->avail_region_count ||
	    (!n && start < out->avail_region_count)) {
		*why = "inconsistent region counts";
		return -EINVAL;
	}
	need = struct_size(out, region, n) + sizeof(*tail);
	if (out_len < need) {
		*why = "reply shorter than its region count";
		return -EINVAL;
	}

	for (int i = 0; i < n; i++) {
		const struct cxl_dc_region_config *rc = &out->region[i];
		struct cxl_dc_region_info *r = &cfg->region[start + i];
		u64 decode = le64_to_cpu(rc->region_decode_length);

		if (check_mul_overflow(decode, (u64)CXL_DC_DECODE_UNIT,
				       &decode)) {
			*why = "decode length overflows";
			return -EINVAL;
		}
		*r = (struct cxl_dc_region_info) {
			.base = le64_to_cpu(rc->region_base),
			.decode_len = decode,
			.len = le64_to_cpu(rc->region_length),
			.block_size = le64_to_cpu(rc->region_block_size),
			.dsmad_handle = le32_to_cpu(rc->region_dsmad_handle),
			.flags = rc->flags,
		};
	}

	tail = (const void *)&out->region[n];
	cfg->nr_regions = start + n;
	cfg->extents_supported = min(le32_to_cpu(tail->extents_supported),
				     CXL_DC_EXTENTS_MAX);
	cfg->extents_available = le32_to_cpu(tail->extents_available);
	cfg->tags_supported = le32_to_cpu(tail->tags_supported);
	cfg->tags_available = le32_to_cpu(tail->tags_available);
	return n;
}
EXPORT_SYMBOL_IF_KUNIT(cxl_dc_config_parse);

/**
 * cxl_dc_config_validate() - check a fully read configuration
 * @cfg: the configuration
 * @static_end: first DPA after the static (RAM and PMEM) capacity
 * @why: set to a reason when the configuration is rejected
 *
 * Regions must be valid on their own, in increasing DPA order without
 * overlap, and the first must start where the static capacity ends: the
 * partition model of the core requires contiguous partitions.
 *
 * Return: 0 or -EINVAL with @why set.
 */
int cxl_dc_config_validate(const struct cxl_dc_config *cfg, u64 static_end,
			   const char **why)
{
	u64 next = static_end;

	if (cfg->nr_regions < 1 || cfg->nr_regions > CXL_DC_MAX_REGIONS) {
		*why = "region count out of range";
		return -EINVAL;
	}
	if (!cfg->extents_supported) {
		*why = "device tracks no extents";
		return -EINVAL;
	}
	if (cfg->region[0].base != static_end) {
		*why = "first region does not follow the static capacity";
		return -EINVAL;
	}
	for (int i = 0; i < cfg->nr_regions; i++) {
		const struct cxl_dc_region_info *r = &cfg->region[i];

		if (!dc_region_valid(r, why))
			return -EINVAL;
		if (r->base < next) {
			*why = "regions overlap or are out of order";
			return -EINVAL;
		}
		next = r->base + r->decode_len;
	}
	return 0;
}
EXPORT_SYMBOL_IF_KUNIT(cxl_dc_config_validate);

/* @out has room for the mailbox's whole payload. */
static int cxl_dc_read_config(struct cxl_memdev_state *mds,
			      struct cxl_dc_config *cfg,
			      struct cxl_mbox_get_dc_config_out *out,
			      const char **why)
{
	struct cxl_mailbox *cxl_mbox = &mds->cxlds.cxl_mbox;
	size_t fixed = sizeof(*out) + sizeof(struct cxl_mbox_get_dc_config_tail);
	u8 per_call;

	if (cxl_mbox->payload_size < fixed + sizeof(out->region[0])) {
		*why = "mailbox too small";
		return -EINVAL;
	}
	per_call = min_t(size_t, CXL_DC_MAX_REGIONS,
			 (cxl_mbox->payload_size - fixed) / sizeof(out->region[0]));

	cfg->nr_regions = 0;
	do {
		struct cxl_mbox_get_dc_config_in in = {
			.region_count = per_call,
			.start_region_index = cfg->nr_regions,
		};
		struct cxl_mbox_cmd cmd = {
			.opcode = CXL_MBOX_OP_GET_DC_CONFIG,
			.payload_in = &in,
			.size_in = sizeof(in),
			.payload_out = out,
			.size_out = cxl_mbox->payload_size,
			.min_out = sizeof(*out),
		};
		int rc;

		rc = cxl_internal_send_cmd(cxl_mbox, &cmd);
		if (rc) {
			*why = "Get Dynamic Capacity Configuration failed";
			return rc;
		}
		rc = cxl_dc_config_parse(cfg, out, cmd.size_out,
					 in.start_region_index, why);
		if (rc < 0)
			return rc;
	} while (cfg->nr_regions < out->avail_region_count);

	return 0;
}

/**
 * cxl_dc_config_reread() - read the DC configuration again at run time
 * @mds: the device, whose DC configuration was valid at probe
 * @cfg: filled with what the device reports now
 * @buf: room for one mailbox payload, so that nothing is allocated
 * @why: set to a reason when the configuration is rejected
 *
 * For a Region Configuration Updated event: the same checks as at probe,
 * against the partition layout made at probe (region 0 must still start
 * where the static capacity ends).
 *
 * Context: the extent library's device work; no CXL lock held.
 * Return: 0, or a negative errno with @why set.
 */
int cxl_dc_config_reread(struct cxl_memdev_state *mds,
			 struct cxl_dc_config *cfg, void *buf, const char **why)
{
	int rc;

	memset(buf, 0, mds->cxlds.cxl_mbox.payload_size);
	rc = cxl_dc_read_config(mds, cfg, buf, why);
	if (rc)
		return rc;
	return cxl_dc_config_validate(cfg, mds->dc.config.region[0].base, why);
}

/**
 * cxl_dc_dpa_fetch() - add the Dynamic Capacity partition to @info
 * @mds: the device
 * @info: partition list built from the static capacity so far
 *
 * Never fails the probe because of what the device reported: a bad
 * configuration disables Dynamic Capacity and leaves @info as it was.
 *
 * Context: probe, after cxl_mem_dpa_fetch() filled in the static partitions.
 * Return: 0, or a negative errno for host-side failures (no memory).
 */
int cxl_dc_dpa_fetch(struct cxl_memdev_state *mds, struct cxl_dpa_info *info)
{
	struct device *dev = mds->cxlds.dev;
	struct cxl_mbox_get_dc_config_out *out __free(kvfree) = NULL;
	struct cxl_dc_config *cfg = &mds->dc.config;
	const struct cxl_dc_region_info *r0;
	const char *why = "";
	int rc;

	if (!cxl_dcd_supported(mds))
		return 0;

	/*
	 * The library answers the device's offers even when the
	 * configuration below is rejected: it then declines them all.
	 */
	if (!mds->dc.dcd) {
		rc = cxl_dc_dev_create(mds);
		if (rc)
			return rc;
	}

	out = kvzalloc(mds->cxlds.cxl_mbox.payload_size, GFP_KERNEL);
	if (!out)
		return -ENOMEM;
	rc = cxl_dc_read_config(mds, cfg, out, &why);
	if (!rc)
		rc = cxl_dc_config_validate(cfg, info->size, &why);
	if (!rc && info->nr_partitions >= CXL_NR_PARTITIONS_MAX) {
		why = "no free partition slot";
		rc = -ENOSPC;
	}
	if (rc) {
		dev_warn(dev, "Dynamic Capacity disabled: %s\n", why);
		*cfg = (struct cxl_dc_config) {};
		return 0;
	}

	r0 = &cfg->region[0];
	info->part[info->nr_partitions++] = (struct cxl_dpa_part_info) {
		.range = {
			.start = r0->base,
			.end = r0->base + r0->decode_len - 1,
		},
		.mode = CXL_PARTMODE_DYNAMIC_RAM_1,
	};
	info->size = r0->base + r0->decode_len;

	dev_dbg(dev, "DC region 0: DPA %#llx length %#llx block %#llx\n",
		r0->base, r0->len, r0->block_size);
	for (int i = 1; i < cfg->nr_regions; i++)
		dev_info(dev, "DC region %d (DPA %#llx, %#llx bytes) left unused\n",
			 i, cfg->region[i].base, cfg->region[i].len);
	return 0;
}

static struct cxl_dpa_partition *to_dc_part(struct cxl_dev_state *cxlds)
{
	for (int i = 0; i < cxlds->nr_partitions; i++)
		if (cxlds->part[i].mode == CXL_PARTMODE_DYNAMIC_RAM_1)
			return &cxlds->part[i];
	return NULL;
}

static ssize_t dc_size_show(struct device *dev, struct device_attribute *attr,
			    char *buf)
{
	struct cxl_memdev *cxlmd = to_cxl_memdev(dev);
	struct cxl_dpa_partition *part = to_dc_part(cxlmd->cxlds);

	return sysfs_emit(buf, "%#llx\n",
			  part ? (u64)resource_size(&part->res) : 0ULL);
}

static struct device_attribute dev_attr_dc_size =
	__ATTR(size, 0444, dc_size_show, NULL);

static ssize_t dc_qos_class_show(struct device *dev,
				 struct device_attribute *attr, char *buf)
{
	struct cxl_memdev *cxlmd = to_cxl_memdev(dev);
	struct cxl_dpa_partition *part = to_dc_part(cxlmd->cxlds);

	return sysfs_emit(buf, "%d\n",
			  part ? part->perf.qos_class : CXL_QOS_CLASS_INVALID);
}

static struct device_attribute dev_attr_dc_qos_class =
	__ATTR(qos_class, 0444, dc_qos_class_show, NULL);

static struct attribute *cxl_memdev_dc_attributes[] = {
	&dev_attr_dc_size.attr,
	&dev_attr_dc_qos_class.attr,
	NULL,
};

static umode_t cxl_dc_attr_visible(struct kobject *kobj, struct attribute *a,
				   int n)
{
	struct cxl_memdev *cxlmd = to_cxl_memdev(kobj_to_dev(kobj));
	struct cxl_dpa_partition *part = to_dc_part(cxlmd->cxlds);

	if (a == &dev_attr_dc_qos_class.attr &&
	    (!part || part->perf.qos_class == CXL_QOS_CLASS_INVALID))
		return 0;
	return a->mode;
}

static bool cxl_dc_group_visible(struct kobject *kobj)
{
	struct cxl_memdev *cxlmd = to_cxl_memdev(kobj_to_dev(kobj));

	return !!to_dc_part(cxlmd->cxlds);
}

DEFINE_SYSFS_GROUP_VISIBLE(cxl_dc);

const struct attribute_group cxl_memdev_dc_attribute_group = {
	.name = "dynamic_ram_1",
	.attrs = cxl_memdev_dc_attributes,
	.is_visible = SYSFS_GROUP_VISIBLE(cxl_dc),
};
