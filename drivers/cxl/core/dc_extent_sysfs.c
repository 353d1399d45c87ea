// SPDX-License-Identifier: GPL-2.0-only
/* Copyright(c) 2026 The CXL DCD project authors. */
#include <linux/debugfs.h>
#include <linux/device.h>
#include <linux/slab.h>
#include <linux/sysfs.h>
#include "dc_extent.h"
#include "core.h"

/**
 * DOC: Dynamic Capacity sysfs and debugfs
 *
 * What the extent library shows: one ``regionZ/extentZ.N`` directory per
 * live extent, the region's ``tag_mode`` and bytes by state, the memdev's
 * ``dc_stats`` counters, and, in debugfs, the device's extents and the
 * library's cost counters.  Every show takes the library's device lock;
 * nothing here changes state but ``tag_mode``.
 */

const char *const cxl_dc_state_str[] = {
	[CXL_DC_EXTENT_ACCEPTED] = "accepted",
	[CXL_DC_EXTENT_ACTIVE] = "active",
	[CXL_DC_EXTENT_RELEASE_PENDING] = "release-pending",
	[CXL_DC_EXTENT_STRANDED] = "stranded",
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
			  cxl_dc_state_str[READ_ONCE(to_dc_extent(kobj)->state)]);
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

struct cxl_dc_extent *cxl_dc_extent_alloc(u64 dpa, u64 len, u64 hpa, u16 seq)
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

static void dc_mirror_link(struct cxl_dc_region *dcr,
			   struct cxl_dc_extent *ext)
{
	if (dcr->mirror && ext->kobj.state_in_sysfs &&
	    sysfs_create_link(dcr->mirror, &ext->kobj,
			      kobject_name(&ext->kobj)))
		dev_warn(&dcr->cxlr->dev, "no link for extent %d\n", ext->id);
}

static void dc_mirror_unlink(struct cxl_dc_region *dcr,
			     struct cxl_dc_extent *ext)
{
	if (dcr->mirror && ext->kobj.state_in_sysfs)
		sysfs_remove_link(dcr->mirror, kobject_name(&ext->kobj));
}

/* A sysfs directory is a courtesy: failing to add one loses nothing. */
void cxl_dc_extent_publish(struct cxl_dc_region *dcr,
			   struct cxl_dc_extent *ext)
{
	lockdep_assert_held(&dcr->dcd->lock);
	ext->id = dcr->next_id++;
	if (kobject_add(&ext->kobj, &dcr->cxlr->dev.kobj, "extent%d.%d",
			dcr->cxlr->id, ext->id)) {
		dev_warn(&dcr->cxlr->dev, "no sysfs entry for extent %d\n",
			 ext->id);
		return;
	}
	dc_mirror_link(dcr, ext);
}

void cxl_dc_extent_unpublish(struct cxl_dc_region *dcr,
			     struct cxl_dc_extent *ext)
{
	lockdep_assert_held(&dcr->dcd->lock);
	/* Its directory may have failed to appear (publish) */
	if (!ext->kobj.state_in_sysfs)
		return;
	dc_mirror_unlink(dcr, ext);
	kobject_del(&ext->kobj);
}

/* Every link in the mirror goes, and the mirror with them. */
void cxl_dc_mirror_drop(struct cxl_dc_region *dcr)
{
	struct rb_node *n;

	lockdep_assert_held(&dcr->dcd->lock);
	if (!dcr->mirror)
		return;
	for (n = rb_first(&dcr->extents); n; n = rb_next(n))
		dc_mirror_unlink(dcr, rb_entry(n, struct cxl_dc_extent, node));
	kobject_put(dcr->mirror);
	dcr->mirror = NULL;
}

/**
 * cxl_dc_mirror_extents() - show the region's extents in a policy's device
 * @cxlr: a region with a policy bound
 * @dir: the directory of a device the policy shows the region through
 *	(its ``dax_regionZ``, say), or NULL to stop
 *
 * Every live ``regionZ/extentZ.N`` gets a link of the same name in @dir,
 * kept as extents come and go, for tools that look for the extents there.
 * Until the policy stops it, or unregisters, the library holds a reference
 * on @dir.  A link that fails to appear is logged and loses nothing.
 *
 * Context: process context, no CXL lock held.
 * Return: 0, -ENXIO (no policy bound) or -EBUSY (another mirror is set).
 */
int cxl_dc_mirror_extents(struct cxl_region *cxlr, struct kobject *dir)
{
	struct cxl_dc_region *dcr = cxlr->dc;
	struct cxl_dc_dev *dcd;
	struct rb_node *n;

	if (!dir) {
		/*
		 * Stopping needs only the device the policy registered
		 * with, as unregistering does: a memdev going away unbinds
		 * the policy after the region lost its decode, and the
		 * links must go before the policy's directory does.
		 */
		dcd = dcr ? dcr->dcd : NULL;
		if (!dcd)
			return -ENXIO;
		guard(mutex)(&dcd->lock);
		cxl_dc_mirror_drop(dcr);
		return 0;
	}
	scoped_guard(rwsem_read, &cxl_rwsem.region)
		dcd = dcr ? cxl_dc_region_dev(cxlr) : NULL;
	if (!dcd)
		return -ENXIO;
	guard(mutex)(&dcd->lock);
	if (!dcr->policy || dcr->dcd != dcd)
		return -ENXIO;
	if (dcr->mirror)
		return -EBUSY;
	dcr->mirror = kobject_get(dir);
	for (n = rb_first(&dcr->extents); n; n = rb_next(n))
		dc_mirror_link(dcr, rb_entry(n, struct cxl_dc_extent, node));
	return 0;
}
EXPORT_SYMBOL_NS_GPL(cxl_dc_mirror_extents, "CXL");

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
		dcd = cxl_dc_region_dev(dcr->cxlr);
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
		dcd = cxl_dc_region_dev(dcr->cxlr);
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
		n = cxl_dc_read_extents(dcd, &raw);
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
	seq_printf(m, "recovered %lu\nrecover_ns %llu\n", dcd->recovered,
		   dcd->recover_ns);
	/* What the library allocates per extent, and per one-extent group */
	seq_printf(m, "extent_bytes %zu\ngroup_bytes %zu\n",
		   kmalloc_size_roundup(sizeof(struct cxl_dc_extent)),
		   kmalloc_size_roundup(struct_size_t(struct cxl_dc_group, ext, 1)));
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(dc_stats);

/* debugfs: the device's live extents and the library's own counters. */
void cxl_dc_debugfs_init(struct cxl_dc_dev *dcd, struct device *dev)
{
	dcd->debugfs = cxl_debugfs_create_dir(dev_name(dev));
	debugfs_create_file("dc_extents", 0400, dcd->debugfs, dcd,
			    &dc_extents_fops);
	debugfs_create_file("dc_stats", 0400, dcd->debugfs, dcd,
			    &dc_stats_fops);
}
