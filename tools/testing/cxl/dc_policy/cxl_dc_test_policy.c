// SPDX-License-Identifier: GPL-2.0-only
/* Copyright(c) 2026 The CXL DCD project authors. */
#include <linux/debugfs.h>
#include <linux/delay.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <cxl/dc_lib.h>
#include <cxl.h>

/**
 * DOC: cxl_dc_test_policy - a Dynamic Capacity policy that does what it is told
 *
 * Drives every path of the extent library end to end.  A region driver of
 * the region family like the real policies, picked the same way::
 *
 *   echo cxl_dc_test_policy > /sys/bus/cxl/devices/regionZ/driver_override
 *   echo regionZ > /sys/bus/cxl/drivers_probe
 *
 * and unbound through ``/sys/bus/cxl/drivers/cxl_dc_test_policy/unbind``,
 * or by the driver core when the region goes away.  Once bound it accepts,
 * rejects, fails activation, or answers a release with "busy", as the test
 * says, and logs every call it gets.  The test speaks to it under
 * /sys/kernel/debug/cxl_dc_test/:
 *
 * - ``validate``: ``accept`` or ``reject`` the next groups, or ``slow``:
 *   accept after 2 s (to widen races between devices)
 * - ``activate``: ``ok``, ``fail``, or ``slow``: succeed after 8 s (an
 *   activation that takes long, as onlining many GiB does)
 * - ``release``: ``ok``, ``busy`` (held until ``complete`` is written) or
 *   ``fail`` (-EIO, which the library takes as busy: held the same way)
 * - ``granularity``: alignment the policy demands, in bytes (at bind;
 *   one value for every region bound after)
 * - ``complete``: write anything to finish every release held busy
 * - ``give_back``: write ``regionZ <offset>``: give the active group whose
 *   first extent starts at that offset back to the device
 *   (cxl_dc_give_back()), as a dax policy does when the user destroys a
 *   device; the log says what it got
 * - ``find``: write ``regionZ <tag>``: look the active group up by tag
 *   (cxl_dc_find_group()), as a dax claim does, and log it
 * - ``groups``: write ``regionZ``: log the region's active groups, oldest
 *   first, each extent's offset in sequence order (cxl_dc_walk_groups())
 * - ``log``: one line per callback, and the region's facts at each bind
 *   (cxl_dc_region_facts())
 */

static struct dentry *dir;
/*
 * Serialises the policy's answers for its active groups (release,
 * force_release, give_back), so that no group is answered twice.  Never
 * taken in validate(), which runs under the library's device lock.
 */
static DEFINE_MUTEX(answer_lock);
/*
 * A group activated and not answered yet, on &live under answer_lock; the
 * group's data points at it, so that answering costs no search (the
 * benchmark holds 65,536 of them).
 */
struct tp_live {
	struct list_head node;
	struct cxl_dc_group *group;
	struct cxl_region *cxlr;
};

static LIST_HEAD(live);
static DEFINE_MUTEX(lock);	/* protects everything below */
static bool reject, slow_validate, fail_activate, slow_activate;
static bool busy_release, fail_release;
static u64 granularity;
static char *log_buf;
static size_t log_len;
#define LOG_SIZE SZ_64K
/* Groups whose release was answered -EBUSY or -EIO, and their regions */
static struct tp_held {
	struct cxl_dc_group *group;
	struct cxl_region *cxlr;
} *held;
static int nr_held;

static void tlog(const char *what, struct cxl_region *cxlr,
		 struct cxl_dc_group *group)
{
	int nr = cxl_dc_group_nr_extents(group);
	struct cxl_dc_extent_info info;

	guard(mutex)(&lock);
	cxl_dc_group_extent(group, 0, &info);
	if (log_len < LOG_SIZE - 160)
		log_len += scnprintf(log_buf + log_len, LOG_SIZE - log_len,
				     "%s %s nr=%d tag=%pUb offset=%#llx\n",
				     what, dev_name(&cxlr->dev), nr,
				     cxl_dc_group_tag(group), info.offset);
}

static void tp_log_line(const char *line)
{
	guard(mutex)(&lock);
	if (log_len < LOG_SIZE - 160)
		log_len += scnprintf(log_buf + log_len, LOG_SIZE - log_len,
				     "%s\n", line);
}

static int tp_validate(struct cxl_region *cxlr, struct cxl_dc_group *group)
{
	bool slow;

	tlog("validate", cxlr, group);
	scoped_guard(mutex, &lock)
		slow = slow_validate;
	if (slow)
		msleep(2000);
	guard(mutex)(&lock);
	return reject ? -EACCES : 0;
}

static int tp_activate(struct cxl_region *cxlr, struct cxl_dc_group *group)
{
	struct tp_live *l;
	bool slow;

	tlog("activate", cxlr, group);
	scoped_guard(mutex, &lock)
		slow = slow_activate;
	if (slow)
		msleep(8000);
	scoped_guard(mutex, &lock)
		if (fail_activate)
			return -EIO;
	l = kzalloc_obj(*l);
	if (!l)
		return -ENOMEM;
	*l = (struct tp_live) { .group = group, .cxlr = cxlr };
	guard(mutex)(&answer_lock);
	list_add_tail(&l->node, &live);
	cxl_dc_group_set_data(group, l);
	return 0;
}

/* Context: answer_lock held. */
static void tp_live_drop(struct tp_live *l)
{
	cxl_dc_group_set_data(l->group, NULL);
	list_del(&l->node);
	kfree(l);
}

/* Context: answer_lock held. */
static void tp_forget(struct cxl_dc_group *group)
{
	struct tp_live *l = cxl_dc_group_data(group);

	if (l)
		tp_live_drop(l);
}

static int tp_release(struct cxl_region *cxlr, struct cxl_dc_group *group)
{
	struct tp_held *more;

	tlog("release", cxlr, group);
	scoped_guard(mutex, &answer_lock)
		tp_forget(group);
	guard(mutex)(&lock);
	if (!busy_release && !fail_release)
		return 0;
	more = krealloc_array(held, nr_held + 1, sizeof(*held), GFP_KERNEL);
	if (!more)
		return 0;
	held = more;
	held[nr_held++] = (struct tp_held) { group, cxlr };
	return fail_release ? -EIO : -EBUSY;
}

static int tp_force_release(struct cxl_region *cxlr,
			    struct cxl_dc_group *group)
{
	tlog("force_release", cxlr, group);
	scoped_guard(mutex, &answer_lock)
		tp_forget(group);
	guard(mutex)(&lock);
	/* A release held busy still owes its cxl_dc_release_done(). */
	for (int i = 0; i < nr_held; i++)
		if (held[i].group == group)
			return -EBUSY;
	return 0;
}

static const struct cxl_dc_policy_ops tp_ops = {
	.validate = tp_validate,
	.activate = tp_activate,
	.release = tp_release,
	.force_release = tp_force_release,
};

static struct cxl_dc_policy tp_policy = {
	.name = "cxl_dc_test_policy",
	.tag_mode = CXL_DC_TAG_ANY,
	.ops = &tp_ops,
};

static struct cxl_region *find_region(const char *buf)
{
	char name[32];
	struct device *dev;

	if (sscanf(buf, "%31s", name) != 1)
		return NULL;
	dev = bus_find_device_by_name(&cxl_bus_type, NULL, name);
	if (!dev)
		return NULL;
	if (!is_cxl_region(dev)) {
		put_device(dev);
		return NULL;
	}
	return container_of(dev, struct cxl_region, dev);
}

/* Drop @cxlr's entries from @list of *@nr, in place. */
static void tp_drop_region(struct tp_held *list, int *nr,
			   struct cxl_region *cxlr)
{
	int n = 0;

	for (int i = 0; i < *nr; i++)
		if (list[i].cxlr != cxlr)
			list[n++] = list[i];
	*nr = n;
}

/* The region unbinds: the library answers its groups, so forget them. */
static void tp_forget_region(void *data)
{
	struct cxl_region *cxlr = data;
	struct tp_live *l, *n;

	scoped_guard(mutex, &answer_lock)
		list_for_each_entry_safe(l, n, &live, node)
			if (l->cxlr == cxlr)
				tp_live_drop(l);
	scoped_guard(mutex, &lock)
		tp_drop_region(held, &nr_held, cxlr);
}

static int tp_probe(struct device *dev)
{
	struct cxl_region *cxlr = container_of(dev, struct cxl_region, dev);
	struct cxl_dc_region_facts f;
	char line[128];
	int rc;

	if (cxlr->mode != CXL_PARTMODE_DYNAMIC_RAM_1)
		return -ENXIO;
	rc = devm_cxl_region_enable(cxlr);
	if (rc)
		return rc;
	scoped_guard(mutex, &lock)
		tp_policy.granularity = granularity;
	rc = devm_cxl_dc_register_policy(dev, cxlr, &tp_policy, NULL);
	if (rc)
		return rc;
	/* Runs before the library unregisters the policy. */
	rc = devm_add_action_or_reset(dev, tp_forget_region, cxlr);
	if (rc)
		return rc;
	if (!cxl_dc_region_facts(cxlr, &f)) {
		snprintf(line, sizeof(line),
			 "facts %s hpa=%#llx-%#llx nid=%d sharable=%d tag_mode=%d",
			 dev_name(dev), f.hpa.start, f.hpa.end, f.nid,
			 f.sharable, f.tag_mode);
		tp_log_line(line);
	}
	return 0;
}

static struct cxl_driver tp_driver = {
	.name = "cxl_dc_test_policy",
	.probe = tp_probe,
	.id = CXL_DEVICE_REGION,
};

static ssize_t complete_write(struct file *f, const char __user *ubuf,
			      size_t len, loff_t *ppos)
{
	struct tp_held *groups;
	int nr;

	scoped_guard(mutex, &lock) {
		groups = held;
		nr = nr_held;
		held = NULL;
		nr_held = 0;
	}
	for (int i = 0; i < nr; i++)
		cxl_dc_release_done(groups[i].group);
	kfree(groups);
	return len;
}

static const struct file_operations complete_fops = {
	.write = complete_write,
};

static ssize_t give_back_write(struct file *f, const char __user *ubuf,
			       size_t len, loff_t *ppos)
{
	struct cxl_region *cxlr;
	char buf[64] = {}, name[32];
	u64 offset;

	if (copy_from_user(buf, ubuf, min(len, sizeof(buf) - 1)))
		return -EFAULT;
	if (sscanf(buf, "%31s %llx", name, &offset) != 2)
		return -EINVAL;
	cxlr = find_region(buf);
	if (!cxlr)
		return -ENODEV;
	scoped_guard(mutex, &answer_lock) {
		struct tp_live *l, *n;

		list_for_each_entry_safe(l, n, &live, node) {
			struct cxl_dc_extent_info info;
			char line[96];
			int rc;

			if (l->cxlr != cxlr)
				continue;
			cxl_dc_group_extent(l->group, 0, &info);
			if (info.offset != offset)
				continue;
			rc = cxl_dc_give_back(l->group);
			snprintf(line, sizeof(line), "give_back %s offset=%#llx: %d",
				 dev_name(&cxlr->dev), info.offset, rc);
			tp_log_line(line);
			if (!rc)
				tp_live_drop(l);
		}
	}
	put_device(&cxlr->dev);
	return len;
}

static const struct file_operations give_back_fops = {
	.write = give_back_write,
};

/* "regionZ <tag>": log the active group under the tag, by its offset */
static ssize_t find_write(struct file *f, const char __user *ubuf,
			  size_t len, loff_t *ppos)
{
	struct cxl_dc_extent_info info = {};
	struct cxl_dc_group *group;
	struct cxl_region *cxlr;
	char buf[96] = {}, name[32], tag_str[40], line[128];
	uuid_t tag;
	int nr = 0;

	if (copy_from_user(buf, ubuf, min(len, sizeof(buf) - 1)))
		return -EFAULT;
	if (sscanf(buf, "%31s %39s", name, tag_str) != 2 ||
	    uuid_parse(tag_str, &tag))
		return -EINVAL;
	cxlr = find_region(buf);
	if (!cxlr)
		return -ENODEV;
	/* As a dax claim would: the release callbacks take answer_lock. */
	scoped_guard(mutex, &answer_lock) {
		group = cxl_dc_find_group(cxlr, &tag);
		if (group) {
			nr = cxl_dc_group_nr_extents(group);
			cxl_dc_group_extent(group, 0, &info);
		}
	}
	if (group)
		snprintf(line, sizeof(line), "find %s %pUb: nr=%d offset=%#llx",
			 name, &tag, nr, info.offset);
	else
		snprintf(line, sizeof(line), "find %s %pUb: none", name, &tag);
	tp_log_line(line);
	put_device(&cxlr->dev);
	return len;
}

static const struct file_operations find_fops = {
	.write = find_write,
};

struct tp_walk {
	char line[1024];
	size_t len;
};

/* Runs under the library's device lock: only formats. */
static int tp_walk_one(struct cxl_dc_group *group, void *arg)
{
	struct tp_walk *w = arg;
	struct cxl_dc_extent_info info;
	int nr = cxl_dc_group_nr_extents(group);

	for (int i = 0; i < nr; i++) {
		cxl_dc_group_extent(group, i, &info);
		w->len += scnprintf(w->line + w->len, sizeof(w->line) - w->len,
				    "%s%#llx", i ? "," : " ", info.offset);
	}
	return w->len > sizeof(w->line) - 32 ? -E2BIG : 0;
}

/* "regionZ": log its active groups, oldest first, extents by sequence */
static ssize_t groups_write(struct file *f, const char __user *ubuf,
			    size_t len, loff_t *ppos)
{
	struct tp_walk *w = kzalloc(sizeof(*w), GFP_KERNEL);
	struct cxl_region *cxlr;
	char buf[32] = {};
	int rc;

	if (!w)
		return -ENOMEM;
	if (copy_from_user(buf, ubuf, min(len, sizeof(buf) - 1))) {
		kfree(w);
		return -EFAULT;
	}
	cxlr = find_region(buf);
	if (!cxlr) {
		kfree(w);
		return -ENODEV;
	}
	w->len = scnprintf(w->line, sizeof(w->line), "groups %s:",
			   dev_name(&cxlr->dev));
	rc = cxl_dc_walk_groups(cxlr, tp_walk_one, w);
	if (rc)
		scnprintf(w->line + w->len, sizeof(w->line) - w->len, " (%d)",
			  rc);
	tp_log_line(w->line);
	put_device(&cxlr->dev);
	kfree(w);
	return len;
}

static const struct file_operations groups_fops = {
	.write = groups_write,
};

static ssize_t log_read(struct file *f, char __user *ubuf, size_t len,
			loff_t *ppos)
{
	guard(mutex)(&lock);
	return simple_read_from_buffer(ubuf, len, ppos, log_buf, log_len);
}

static const struct file_operations log_fops = {
	.read = log_read,
};

static ssize_t mode_write(struct file *f, const char __user *ubuf, size_t len,
			  loff_t *ppos)
{
	const char *name = file_dentry(f)->d_name.name;
	char buf[16] = {};

	if (copy_from_user(buf, ubuf, min(len, sizeof(buf) - 1)))
		return -EFAULT;
	guard(mutex)(&lock);
	if (!strcmp(name, "validate")) {
		reject = sysfs_streq(buf, "reject");
		slow_validate = sysfs_streq(buf, "slow");
	} else if (!strcmp(name, "activate")) {
		fail_activate = sysfs_streq(buf, "fail");
		slow_activate = sysfs_streq(buf, "slow");
	} else if (!strcmp(name, "release")) {
		busy_release = sysfs_streq(buf, "busy");
		fail_release = sysfs_streq(buf, "fail");
	} else {
		return -EINVAL;
	}
	return len;
}

static const struct file_operations mode_fops = {
	.write = mode_write,
};

static int __init tp_init(void)
{
	int rc;

	log_buf = kzalloc(LOG_SIZE, GFP_KERNEL);
	if (!log_buf)
		return -ENOMEM;
	dir = debugfs_create_dir("cxl_dc_test", NULL);
	debugfs_create_file("validate", 0200, dir, NULL, &mode_fops);
	debugfs_create_file("activate", 0200, dir, NULL, &mode_fops);
	debugfs_create_file("release", 0200, dir, NULL, &mode_fops);
	debugfs_create_file("complete", 0200, dir, NULL, &complete_fops);
	debugfs_create_file("give_back", 0200, dir, NULL, &give_back_fops);
	debugfs_create_file("find", 0200, dir, NULL, &find_fops);
	debugfs_create_file("groups", 0200, dir, NULL, &groups_fops);
	debugfs_create_file("log", 0400, dir, NULL, &log_fops);
	debugfs_create_u64("granularity", 0600, dir, &granularity);
	rc = cxl_driver_register(&tp_driver);
	if (rc) {
		debugfs_remove_recursive(dir);
		kfree(log_buf);
	}
	return rc;
}
module_init(tp_init);

static void __exit tp_exit(void)
{
	cxl_driver_unregister(&tp_driver);
	debugfs_remove_recursive(dir);
	kfree(held);
	kfree(log_buf);
}
module_exit(tp_exit);

MODULE_DESCRIPTION("Test-only CXL Dynamic Capacity region policy");
MODULE_LICENSE("GPL");
MODULE_IMPORT_NS("CXL");
