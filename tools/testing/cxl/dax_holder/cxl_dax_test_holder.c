// SPDX-License-Identifier: GPL-2.0-only
/* Copyright(c) 2026 The CXL DCD project authors. */
#include <linux/dax.h>
#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/namei.h>
#include <linux/pfn.h>
#include <linux/slab.h>

/**
 * DOC: cxl_dax_test_holder - an fs-dax holder of a device-dax instance
 *
 * Stands in for FAMFS, whose fuse side 7.3 does not have yet: it takes a
 * dax device bound to ``fsdev_dax`` the way a file system does, as the
 * holder of its &struct dax_device (fs_dax_get()), and reaches the memory
 * only through dax_direct_access(), one page at a time, as iomap does.
 * It shows that a device built from several Dynamic Capacity extents reads
 * and writes across every range boundary, that page offsets follow the
 * extents' sequence order, and that a forced release reaches the holder's
 * failure notification.  Everything is under /sys/kernel/debug/cxl_dax_holder/:
 *
 * - ``hold``: write a device node (``/dev/dax3.1``): become its holder
 * - ``let_go``: write anything: stop being the holder (fs_put_dax())
 * - ``pattern``: write ``<offset> <length> <seed>`` (hex; page aligned):
 *   fill that span with a pattern derived from the seed and each word's
 *   device offset, then read all of it back; the write fails with -EIO on
 *   the first word that differs
 * - ``check``: write ``<offset> <length> <seed>``: read back only
 * - ``phys``: write a device offset: log the physical address
 *   dax_direct_access() gives for it
 * - ``log``: one line per operation and per failure notification
 */

static struct dentry *dir;
static DEFINE_MUTEX(lock);	/* protects everything below */
static struct dax_device *held;
static char holder_cookie;	/* the holder pointer: its address */
static char *log_buf;
static size_t log_len;
#define LOG_SIZE SZ_64K

static __printf(1, 2) void tlog(const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	if (log_len < LOG_SIZE)
		log_len += vscnprintf(log_buf + log_len, LOG_SIZE - log_len,
				      fmt, args);
	va_end(args);
}

/* The dax core calls this with no lock of ours held: take @lock. */
static int holder_notify_failure(struct dax_device *dax_dev, u64 offset,
				 u64 len, int mf_flags)
{
	guard(mutex)(&lock);
	tlog("notify_failure offset=%#llx len=%#llx flags=%#x%s\n", offset,
	     len, mf_flags,
	     mf_flags & MF_MEM_PRE_REMOVE ? " pre_remove" : "");
	return 0;
}

static const struct dax_holder_operations holder_ops = {
	.notify_failure = holder_notify_failure,
};

static int holder_hold(const char *name)
{
	struct dax_device *dax_dev;
	struct inode *inode;
	struct path path;
	int rc;

	if (held)
		return -EBUSY;
	rc = kern_path(name, LOOKUP_FOLLOW, &path);
	if (rc)
		return rc;
	inode = d_backing_inode(path.dentry);
	if (!S_ISCHR(inode->i_mode)) {
		path_put(&path);
		return -ENOTTY;
	}
	dax_dev = dax_dev_get(inode->i_rdev);
	path_put(&path);
	if (!dax_dev)
		return -ENODEV;
	rc = fs_dax_get(dax_dev, &holder_cookie, &holder_ops);
	/* fs_dax_get() took its own reference on success. */
	put_dax(dax_dev);
	if (rc)
		return rc;
	held = dax_dev;
	tlog("hold %s\n", name);
	return 0;
}

static void holder_let_go(void)
{
	if (!held)
		return;
	fs_put_dax(held, &holder_cookie);
	held = NULL;
	tlog("let_go\n");
}

/* The kernel address of the page at @off, as a file system gets it. */
static void *page_at(u64 off, unsigned long *pfn)
{
	void *kaddr;
	long n;

	n = dax_direct_access(held, PHYS_PFN(off), 1, DAX_ACCESS, &kaddr, pfn);
	if (n < 1) {
		tlog("direct_access %#llx: %ld\n", off, n);
		return NULL;
	}
	return kaddr;
}

static u64 pattern_word(u64 seed, u64 off)
{
	return seed ^ (off * 0x9e3779b97f4a7c15ULL);
}

static int pattern(u64 start, u64 len, u64 seed, bool write)
{
	u64 off, i;
	int id, rc = 0;

	if (!held)
		return -ENXIO;
	if (!IS_ALIGNED(start | len, PAGE_SIZE) || !len)
		return -EINVAL;
	id = dax_read_lock();
	for (off = start; write && off < start + len; off += PAGE_SIZE) {
		u64 *p = page_at(off, NULL);

		if (!p) {
			rc = -EFAULT;
			goto out;
		}
		for (i = 0; i < PAGE_SIZE / sizeof(u64); i++)
			p[i] = pattern_word(seed, off + i * sizeof(u64));
	}
	for (off = start; off < start + len; off += PAGE_SIZE) {
		u64 *p = page_at(off, NULL);

		if (!p) {
			rc = -EFAULT;
			goto out;
		}
		for (i = 0; i < PAGE_SIZE / sizeof(u64); i++) {
			u64 want = pattern_word(seed, off + i * sizeof(u64));

			if (p[i] != want) {
				tlog("mismatch at %#llx: %#llx, expected %#llx\n",
				     off + i * sizeof(u64), p[i], want);
				rc = -EIO;
				goto out;
			}
		}
	}
out:
	dax_read_unlock(id);
	if (!rc)
		tlog("%s %#llx+%#llx ok\n", write ? "pattern" : "check", start,
		     len);
	return rc;
}

static int holder_phys(u64 off)
{
	unsigned long pfn;
	int id;

	if (!held)
		return -ENXIO;
	id = dax_read_lock();
	if (!page_at(off & PAGE_MASK, &pfn)) {
		dax_read_unlock(id);
		return -EFAULT;
	}
	dax_read_unlock(id);
	tlog("phys %#llx %#llx\n", off,
	     (u64)PFN_PHYS(pfn) + offset_in_page(off));
	return 0;
}

static ssize_t cmd_write(struct file *file, const char __user *ubuf,
			 size_t len, loff_t *ppos)
{
	const char *op = file->f_path.dentry->d_name.name;
	u64 a, b, c;
	char *buf;
	int rc;

	buf = memdup_user_nul(ubuf, min_t(size_t, len, PATH_MAX));
	if (IS_ERR(buf))
		return PTR_ERR(buf);
	strim(buf);
	guard(mutex)(&lock);
	if (!strcmp(op, "hold")) {
		rc = holder_hold(buf);
	} else if (!strcmp(op, "let_go")) {
		holder_let_go();
		rc = 0;
	} else if (!strcmp(op, "phys")) {
		rc = kstrtou64(buf, 0, &a) ?: holder_phys(a);
	} else if (sscanf(buf, "%llx %llx %llx", &a, &b, &c) != 3) {
		rc = -EINVAL;
	} else {
		rc = pattern(a, b, c, !strcmp(op, "pattern"));
	}
	kfree(buf);
	return rc ?: len;
}

static const struct file_operations cmd_fops = {
	.owner = THIS_MODULE,
	.write = cmd_write,
};

static ssize_t log_read(struct file *file, char __user *ubuf, size_t len,
			loff_t *ppos)
{
	guard(mutex)(&lock);
	return simple_read_from_buffer(ubuf, len, ppos, log_buf, log_len);
}

static const struct file_operations log_fops = {
	.owner = THIS_MODULE,
	.read = log_read,
};

static int __init holder_init(void)
{
	static const char *const cmds[] = {
		"hold", "let_go", "pattern", "check", "phys",
	};
	int i;

	log_buf = kzalloc(LOG_SIZE, GFP_KERNEL);
	if (!log_buf)
		return -ENOMEM;
	dir = debugfs_create_dir("cxl_dax_holder", NULL);
	for (i = 0; i < ARRAY_SIZE(cmds); i++)
		debugfs_create_file(cmds[i], 0200, dir, NULL, &cmd_fops);
	debugfs_create_file("log", 0400, dir, NULL, &log_fops);
	return 0;
}
module_init(holder_init);

static void __exit holder_exit(void)
{
	debugfs_remove_recursive(dir);
	scoped_guard(mutex, &lock)
		holder_let_go();
	kfree(log_buf);
}
module_exit(holder_exit);

MODULE_DESCRIPTION("CXL test: an fs-dax holder of a device-dax instance");
MODULE_LICENSE("GPL");
