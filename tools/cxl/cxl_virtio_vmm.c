// SPDX-License-Identifier: GPL-2.0-only
/* Copyright(c) 2026 The CXL DCD project authors. */
/*
 * cxl_virtio_vmm - the reference client of /dev/cxl/virtio_regionZ
 *
 * What a virtual machine monitor does with cxl_region_virtio, in one
 * small program that the tests drive and a VMM author can read:
 *
 *   cxl_virtio_vmm DEV info       the region, as CXL_VIRTIO_GET_INFO says
 *   cxl_virtio_vmm DEV list       the active groups
 *   cxl_virtio_vmm DEV follow [options]
 *	lists the groups, then follows events: maps every range of each new
 *	group, writes a pattern and reads it back; on a release request it
 *	unmaps and acknowledges; on a forced release it unmaps.  Options:
 *	  -n N      exit after N events
 *	  -b BYTES  write and check at most BYTES of each range (default all)
 *	  -M        map nothing: only print the events
 *	  -k        keep mappings past an acknowledgment or a forced release
 *	            (then `touch` shows the SIGBUS)
 *	  -A        never acknowledge (a VMM stuck mid-handshake)
 *	  -p        pass the device to a peer process with SCM_RIGHTS; the
 *	            peer maps every new group too
 *	  -s        read the first event with a buffer too small for it
 *	            first, and say what read() answered (EINVAL: the event
 *	            stays queued)
 *	  -c FIFO   read commands from FIFO, one per line:
 *	            give-back ID   give group ID back
 *	            ack ID         acknowledge a release of group ID
 *	            touch ID       read kept mappings of group ID
 *	            peer-touch ID  the peer reads its mapping of group ID
 *	            try-map OFFSET LENGTH  map and unmap, say whether it worked
 *	            quit
 *   cxl_virtio_vmm PATH touch OFFSET LENGTH [4k]
 *	maps LENGTH bytes of PATH (this device, or /dev/daxZ.N) at OFFSET,
 *	writes one byte per 4 KiB page and prints the page faults it took
 *	and the time; with "4k", at a virtual address 4 KiB off any 2 MiB
 *	boundary, so that every fault maps one page.
 *   cxl_virtio_vmm - now
 *	prints CLOCK_MONOTONIC in ns (the clock of DONE's first= and last=).
 *
 * Output is one line per thing that happened, flushed at once, e.g.
 * "ADD group=1 tag=... ranges=0x0+0x8000000", "MAPPED group=1 ok=134217728",
 * "ACKED group=1", "FORCED group=2", "SIGBUS group=1", "GAVE-BACK group=3".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/cxl_virtio.h>

#define MAX_GROUPS 4096
#define MAX_RANGES 64
#define EVENT_BUF (64 << 10)
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

struct mapping {
	uint64_t group;
	uint64_t offset;
	uint64_t length;
	char *addr;
	int kept;		/* unmapped by the kernel, kept by request */
};

static struct mapping maps[MAX_GROUPS * 4];
static int nr_maps;
static uint64_t check_bytes = UINT64_MAX;
static int keep, no_ack, no_map;
static int peer_sock = -1;
static sigjmp_buf bus_jmp;
static sig_atomic_t in_touch;	/* accessed with LOAD() and STORE() */
static char sink;

/* Accesses the compiler must make, each one, in order. */
#define LOAD(p) __atomic_load_n(p, __ATOMIC_RELAXED)
#define STORE(p, v) __atomic_store_n(p, v, __ATOMIC_RELAXED)

static void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static long long now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void on_sigbus(int sig)
{
	(void)sig;
	if (LOAD(&in_touch))
		siglongjmp(bus_jmp, 1);
	_exit(99);
}

static const char *type_name(int type)
{
	static const char * const names[] = {
		[CXL_VIRTIO_EVENT_ADD] = "ADD",
		[CXL_VIRTIO_EVENT_RELEASE] = "RELEASE",
		[CXL_VIRTIO_EVENT_FORCED] = "FORCED",
	};

	if (type < 0 || type >= (int)ARRAY_SIZE(names) ||
	    !names[type])
		return "UNKNOWN";
	return names[type];
}

static void print_event(const char *what, const struct cxl_virtio_event *ev)
{
	char ranges[MAX_RANGES * 40] = "", tag[40];
	const uint8_t *t = ev->tag;
	size_t n = 0;
	int i;

	snprintf(tag, sizeof(tag),
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8], t[9],
		 t[10], t[11], t[12], t[13], t[14], t[15]);
	for (i = 0; i < ev->nr_ranges && n < sizeof(ranges) - 40; i++)
		n += snprintf(ranges + n, sizeof(ranges) - n, "%s0x%llx+0x%llx",
			      i ? "," : "",
			      (unsigned long long)ev->ranges[i].offset,
			      (unsigned long long)ev->ranges[i].length);
	say("%s group=%llu tag=%s ranges=%s", what,
	    (unsigned long long)ev->group, tag, ranges);
}

/* The pattern: every 64-bit word holds its region offset, mixed. */
static uint64_t word(uint64_t off)
{
	return off * 0x9e3779b97f4a7c15ULL ^ 0x5bd1e995;
}

static uint64_t fill_and_check(char *addr, uint64_t offset, uint64_t len)
{
	uint64_t n = len < check_bytes ? len : check_bytes, i;
	uint64_t *w = (uint64_t *)addr;

	for (i = 0; i < n / 8; i++)
		STORE(&w[i], word(offset + i * 8));
	for (i = 0; i < n / 8; i++)
		if (LOAD(&w[i]) != word(offset + i * 8))
			return i * 8;
	return n;
}

/* Read one byte per page of @m; 0, or 1 after a SIGBUS. */
static int touch(struct mapping *m)
{
	char *p = m->addr;
	uint64_t i;

	if (sigsetjmp(bus_jmp, 1)) {
		STORE(&in_touch, 0);
		return 1;
	}
	STORE(&in_touch, 1);
	for (i = 0; i < m->length; i += 4096)
		sink ^= LOAD(&p[i]);
	STORE(&in_touch, 0);
	return 0;
}

static void peer_tell(const char *fmt, unsigned long long a,
		      unsigned long long b, unsigned long long c)
{
	char line[128];
	int n = snprintf(line, sizeof(line), fmt, a, b, c);

	if (peer_sock >= 0 && write(peer_sock, line, n) != n)
		say("PEER-LOST");
}

static void map_group(int fd, const struct cxl_virtio_event *ev)
{
	uint64_t ok = 0;
	int i, bad = 0;

	for (i = 0; i < ev->nr_ranges && nr_maps < (int)ARRAY_SIZE(maps);
	     i++) {
		const struct cxl_virtio_range *r = &ev->ranges[i];
		struct mapping *m = &maps[nr_maps];
		uint64_t got;

		m->addr = mmap(NULL, r->length, PROT_READ | PROT_WRITE,
			       MAP_SHARED, fd, r->offset);
		if (m->addr == MAP_FAILED) {
			say("MAP-FAILED group=%llu offset=%#llx errno=%d",
			    (unsigned long long)ev->group,
			    (unsigned long long)r->offset, errno);
			bad = 1;
			continue;
		}
		m->group = ev->group;
		m->offset = r->offset;
		m->length = r->length;
		m->kept = 0;
		nr_maps++;
		got = fill_and_check(m->addr, r->offset, r->length);
		if (got < (r->length < check_bytes ? r->length : check_bytes)) {
			say("BAD group=%llu offset=%#llx",
			    (unsigned long long)ev->group,
			    (unsigned long long)(r->offset + got));
			bad = 1;
		}
		ok += got;
		peer_tell("map %llu %llu %llu\n", ev->group, r->offset,
			  r->length);
	}
	if (!bad)
		say("MAPPED group=%llu ok=%llu", (unsigned long long)ev->group,
		    (unsigned long long)ok);
}

/* The group is gone for this process: unmap, unless asked to keep it. */
static void unmap_group(uint64_t group)
{
	int i;

	for (i = 0; i < nr_maps; i++) {
		if (maps[i].group != group || !maps[i].addr)
			continue;
		if (keep) {
			maps[i].kept = 1;
			continue;
		}
		munmap(maps[i].addr, maps[i].length);
		maps[i].addr = NULL;
	}
}

static int group_op(int fd, unsigned long cmd, uint64_t group)
{
	struct cxl_virtio_group_op op = {
		.argsz = sizeof(op),
		.group = group,
	};

	return ioctl(fd, cmd, &op) ? -errno : 0;
}

static void handle(int fd, const struct cxl_virtio_event *ev)
{
	int rc;

	print_event(type_name(ev->type), ev);
	switch (ev->type) {
	case CXL_VIRTIO_EVENT_ADD:
		if (!no_map)
			map_group(fd, ev);
		break;
	case CXL_VIRTIO_EVENT_RELEASE:
		if (no_ack)
			break;
		unmap_group(ev->group);
		rc = group_op(fd, CXL_VIRTIO_ACK_RELEASE, ev->group);
		if (rc)
			say("ACK-FAILED group=%llu errno=%d",
			    (unsigned long long)ev->group, -rc);
		else
			say("ACKED group=%llu", (unsigned long long)ev->group);
		break;
	case CXL_VIRTIO_EVENT_FORCED:
		unmap_group(ev->group);
		break;
	}
}

/* Walk a buffer of records; returns how many. */
static int handle_all(int fd, const char *buf, size_t len)
{
	size_t off = 0;
	int n = 0;

	while (off + sizeof(struct cxl_virtio_event) <= len) {
		const struct cxl_virtio_event *ev = (const void *)(buf + off);

		if (ev->size < sizeof(*ev) || off + ev->size > len) {
			say("MALFORMED at %zu", off);
			break;
		}
		if (fd >= 0)
			handle(fd, ev);
		else
			print_event(type_name(ev->type), ev);
		off += ev->size;
		n++;
	}
	return n;
}

static int list_groups(int fd, int act)
{
	struct cxl_virtio_list list = { .argsz = sizeof(list) };
	char *buf = NULL;

	for (;;) {
		list.buf = (uintptr_t)buf;
		if (!ioctl(fd, CXL_VIRTIO_LIST_GROUPS, &list))
			break;
		if (errno != ENOSPC) {
			say("LIST-FAILED errno=%d", errno);
			free(buf);
			return -1;
		}
		say("LIST-NEEDS bytes=%u", list.buf_size);
		free(buf);
		buf = malloc(list.buf_size);
		if (!buf)
			return -1;
	}
	say("LIST groups=%u", list.nr_groups);
	handle_all(act ? fd : -1, buf, list.buf_size);
	free(buf);
	return 0;
}

static int info(int fd)
{
	struct cxl_virtio_info inf = { .argsz = sizeof(inf) };

	if (ioctl(fd, CXL_VIRTIO_GET_INFO, &inf)) {
		say("INFO-FAILED errno=%d", errno);
		return 1;
	}
	say("INFO version=%u size=%#llx align=%#llx groups=%u", inf.version,
	    (unsigned long long)inf.size, (unsigned long long)inf.align,
	    inf.nr_groups);
	return 0;
}

/* --- the peer: a second process that got the device by SCM_RIGHTS --- */

static int recv_fd(int sock)
{
	char c, ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = &c, .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = ctl, .msg_controllen = sizeof(ctl),
	};
	struct cmsghdr *cm;
	int fd;

	if (recvmsg(sock, &msg, 0) != 1)
		return -1;
	cm = CMSG_FIRSTHDR(&msg);
	if (!cm || cm->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(&fd, CMSG_DATA(cm), sizeof(fd));
	return fd;
}

static int send_fd(int sock, int fd)
{
	char c = 'F', ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = &c, .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = ctl, .msg_controllen = sizeof(ctl),
	};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(fd));
	return sendmsg(sock, &msg, 0) == 1 ? 0 : -1;
}

static void peer_main(int sock)
{
	unsigned long long a, b, c;
	char line[128];
	FILE *in;
	int fd = recv_fd(sock);

	if (fd < 0) {
		say("PEER no fd");
		_exit(2);
	}
	say("PEER got fd");
	in = fdopen(sock, "r");
	while (in && fgets(line, sizeof(line), in)) {
		if (sscanf(line, "map %llu %llu %llu", &a, &b, &c) == 3) {
			struct mapping *m = &maps[nr_maps];

			m->addr = mmap(NULL, c, PROT_READ | PROT_WRITE,
				       MAP_SHARED, fd, b);
			if (m->addr == MAP_FAILED) {
				say("PEER MAP-FAILED group=%llu errno=%d", a,
				    errno);
				continue;
			}
			m->group = a;
			m->offset = b;
			m->length = c;
			nr_maps++;
			say("PEER MAPPED group=%llu", a);
		} else if (sscanf(line, "touch %llu", &a) == 1) {
			int i, bus = 0, seen = 0;

			for (i = 0; i < nr_maps; i++) {
				if (maps[i].group != a)
					continue;
				seen = 1;
				bus |= touch(&maps[i]);
			}
			say("PEER %s group=%llu", !seen ? "NOMAP" :
			    bus ? "SIGBUS" : "READ", a);
		}
	}
	_exit(0);
}

static int start_peer(void)
{
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid) {
		close(sv[0]);
		peer_main(sv[1]);
	}
	close(sv[1]);
	peer_sock = sv[0];
	return 0;
}

/* --- follow ------------------------------------------------------------ */

static void command(int fd, char *line)
{
	unsigned long long id;
	long long off, len;
	int i, rc, seen = 0, bus = 0;

	if (sscanf(line, "give-back %llu", &id) == 1) {
		unmap_group(id);
		rc = group_op(fd, CXL_VIRTIO_GIVE_BACK, id);
		if (rc)
			say("GIVE-BACK-FAILED group=%llu errno=%d", id, -rc);
		else
			say("GAVE-BACK group=%llu", id);
	} else if (sscanf(line, "ack %llu", &id) == 1) {
		rc = group_op(fd, CXL_VIRTIO_ACK_RELEASE, id);
		if (rc)
			say("ACK-FAILED group=%llu errno=%d", id, -rc);
		else
			say("ACKED group=%llu", id);
	} else if (sscanf(line, "try-map %lli %lli", &off, &len) == 2) {
		void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED,
			       fd, off);

		if (p == MAP_FAILED) {
			say("TRY-MAP-FAILED offset=0x%llx errno=%d", off, errno);
		} else {
			munmap(p, len);
			say("TRY-MAP-OK offset=0x%llx", off);
		}
	} else if (sscanf(line, "peer-touch %llu", &id) == 1) {
		peer_tell("touch %llu\n", id, 0, 0);
	} else if (sscanf(line, "touch %llu", &id) == 1) {
		for (i = 0; i < nr_maps; i++) {
			if (maps[i].group != id || !maps[i].addr)
				continue;
			seen = 1;
			bus |= touch(&maps[i]);
		}
		say("%s group=%llu", !seen ? "NOMAP" : bus ? "SIGBUS" : "READ",
		    id);
	} else if (!strncmp(line, "quit", 4)) {
		say("QUIT");
		exit(0);
	}
}

static int follow(const char *path, int argc, char **argv)
{
	const char *fifo = NULL;
	long limit = -1, seen = 0;
	long long first_ns = 0, last_ns = 0;
	int fd, cfd = -1, opt, peer = 0, short_read = 0;
	static char buf[EVENT_BUF];
	char line[256];
	size_t llen = 0;

	while ((opt = getopt(argc, argv, "n:b:kAMpsc:")) != -1) {
		switch (opt) {
		case 's':
			short_read = 1;
			break;
		case 'M':
			no_map = 1;
			break;
		case 'n':
			limit = atol(optarg);
			break;
		case 'b':
			check_bytes = strtoull(optarg, NULL, 0);
			break;
		case 'k':
			keep = 1;
			break;
		case 'A':
			no_ack = 1;
			break;
		case 'p':
			peer = 1;
			break;
		case 'c':
			fifo = optarg;
			break;
		default:
			return 2;
		}
	}
	/* The peer exists before the device is open: it gets it by message. */
	if (peer && start_peer()) {
		say("PEER-FAILED errno=%d", errno);
		return 1;
	}
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		say("OPEN-FAILED errno=%d", errno);
		return 1;
	}
	say("OPENED %s", path);
	if (peer && send_fd(peer_sock, fd)) {
		say("SEND-FAILED errno=%d", errno);
		return 1;
	}
	if (fifo) {
		/* Read-write: no end of file while no writer has it open. */
		cfd = open(fifo, O_RDWR | O_NONBLOCK);
		if (cfd < 0) {
			say("FIFO-FAILED errno=%d", errno);
			return 1;
		}
	}
	if (list_groups(fd, 1))
		return 1;
	while (limit < 0 || seen < limit) {
		struct pollfd p[2] = {
			{ .fd = fd, .events = POLLIN },
			{ .fd = cfd, .events = POLLIN },
		};
		ssize_t n;

		if (poll(p, cfd >= 0 ? 2 : 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		if (p[0].revents & POLLIN) {
			if (short_read) {
				short_read = 0;
				n = read(fd, buf, 8);
				say("SHORT-READ bytes=%zd errno=%d", n,
				    n < 0 ? errno : 0);
			}
			n = read(fd, buf, sizeof(buf));
			if (n < 0) {
				say("READ-FAILED errno=%d", errno);
				return 1;
			}
			if (!seen)
				first_ns = now_ns();
			seen += handle_all(fd, buf, n);
			last_ns = now_ns();
		} else if (p[0].revents & (POLLHUP | POLLERR)) {
			say("HANGUP");
			return 0;
		}
		if (cfd >= 0 && (p[1].revents & POLLIN)) {
			n = read(cfd, line + llen, sizeof(line) - 1 - llen);
			if (n > 0) {
				char *nl;

				llen += n;
				line[llen] = 0;
				while ((nl = strchr(line, '\n'))) {
					*nl = 0;
					command(fd, line);
					memmove(line, nl + 1, strlen(nl + 1) + 1);
					llen = strlen(line);
				}
			}
		}
	}
	say("DONE events=%ld first=%lld last=%lld", seen, first_ns, last_ns);
	return 0;
}

/* --- touch: page faults and time to touch a range ---------------------- */

static int touch_range(const char *path, uint64_t off, uint64_t len,
		       int small)
{
	struct rusage r0, r1;
	struct timespec t0, t1;
	char *p;
	uint64_t i;
	int fd = open(path, O_RDWR);

	if (fd < 0) {
		say("OPEN-FAILED errno=%d", errno);
		return 1;
	}
	if (small) {
		/* A 2 MiB-aligned hole, and the mapping 4 KiB into it. */
		char *hole = mmap(NULL, len + (4 << 20), PROT_NONE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (hole == MAP_FAILED)
			return 1;
		hole = (char *)(((uintptr_t)hole + (2 << 20) - 1) &
				~(uintptr_t)((2 << 20) - 1));
		p = mmap(hole + 4096, len, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_FIXED, fd, off);
	} else {
		p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
			 off);
	}
	if (p == MAP_FAILED) {
		say("MAP-FAILED errno=%d", errno);
		return 1;
	}
	/* Once before: their own first faults are not the mapping's. */
	getrusage(RUSAGE_SELF, &r0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	getrusage(RUSAGE_SELF, &r0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < len; i += 4096)
		STORE(&p[i], (char)i);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	getrusage(RUSAGE_SELF, &r1);
	say("TOUCHED bytes=%llu faults=%ld ns=%lld aligned2m=%d",
	    (unsigned long long)len, r1.ru_minflt - r0.ru_minflt,
	    (long long)(t1.tv_sec - t0.tv_sec) * 1000000000LL +
	    (t1.tv_nsec - t0.tv_nsec), !((uintptr_t)p & ((2 << 20) - 1)));
	munmap(p, len);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_sigbus };
	const char *path;
	int fd, rc;

	if (argc < 3) {
		fprintf(stderr, "usage: %s DEV info|list|follow [opts]\n",
			argv[0]);
		fprintf(stderr, "       %s PATH touch OFFSET LENGTH [4k]\n",
			argv[0]);
		return 2;
	}
	sigaction(SIGBUS, &sa, NULL);
	path = argv[1];
	if (!strcmp(argv[2], "follow"))
		return follow(path, argc - 2, argv + 2);
	if (!strcmp(argv[2], "touch") && (argc == 5 || argc == 6))
		return touch_range(path, strtoull(argv[3], NULL, 0),
				   strtoull(argv[4], NULL, 0),
				   argc == 6 && !strcmp(argv[5], "4k"));
	if (!strcmp(argv[2], "now")) {
		say("%lld", now_ns());
		return 0;
	}
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		say("OPEN-FAILED errno=%d", errno);
		return 1;
	}
	if (!strcmp(argv[2], "info"))
		rc = info(fd);
	else if (!strcmp(argv[2], "list"))
		rc = list_groups(fd, 0) ? 1 : 0;
	else
		rc = 2;
	close(fd);
	return rc;
}
