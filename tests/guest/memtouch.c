// SPDX-License-Identifier: GPL-2.0
/*
 * memtouch: guest test helper (static, no libnuma). Maps MIB MiB of
 * anonymous memory, optionally bound to one NUMA node, writes a pattern
 * (one word per 64-byte line, so every page), reads it back and prints
 * "OK <MiB>". With -l, -p or -w it then holds the memory, printing
 * "HELD <MiB>", until FILE exists (-w) or stdin reaches EOF; it verifies the
 * pattern again and prints "RELEASED <MiB>" before exiting.
 *
 * usage: memtouch [-n NODE] [-l] [-p] [-w FILE] MIB
 *   -n NODE  MPOL_BIND (strict) to NODE; placement checked with move_pages
 *   -l       mlock the range while holding (keeps it resident; note that
 *            mlocked pages can still be migrated, so offline can succeed)
 *   -p       take page references with vmsplice (one page every 2 MiB) while
 *            holding: these block migration, so offline of that memory fails
 *   -w FILE  hold until FILE exists (polled every 100 ms)
 * Exit status: 0 ok, 1 verification/placement failure, 2 usage or setup error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#define MPOL_BIND	2
#define MPOL_MF_STRICT	1
#define LINE		64
#define PIN_STRIDE	(2UL << 20)

static uint64_t seed;

static void fill(char *buf, size_t len)
{
	for (size_t off = 0; off < len; off += LINE)
		*(volatile uint64_t *)(buf + off) = (uintptr_t)(buf + off) ^ seed;
}

static int check(const char *buf, size_t len)
{
	for (size_t off = 0; off < len; off += LINE) {
		uint64_t want = (uintptr_t)(buf + off) ^ seed;
		uint64_t got = *(volatile const uint64_t *)(buf + off);

		if (got != want) {
			printf("BAD offset 0x%zx: got 0x%llx want 0x%llx\n", off,
			       (unsigned long long)got, (unsigned long long)want);
			return -1;
		}
	}
	return 0;
}

/* Returns the number of sampled pages (one every 2 MiB) not on @node. */
static long misplaced(char *buf, size_t len, int node)
{
	size_t n = (len + PIN_STRIDE - 1) / PIN_STRIDE;
	void **pages = calloc(n, sizeof(*pages));
	int *status = calloc(n, sizeof(*status));
	long bad = 0;

	if (!pages || !status)
		return -1;
	for (size_t i = 0; i < n; i++)
		pages[i] = buf + i * PIN_STRIDE;
	if (syscall(SYS_move_pages, 0, n, pages, NULL, status, 0)) {
		perror("move_pages (placement not checked)");
		bad = 0;
	} else {
		for (size_t i = 0; i < n; i++)
			if (status[i] != node)
				bad++;
	}
	free(pages);
	free(status);
	return bad;
}

/* Hold a reference to one page every 2 MiB in pipes that are never read. */
static long pin(char *buf, size_t len)
{
	int fds[2] = { -1, -1 };
	long n = 0;

	for (size_t off = 0; off < len; off += PIN_STRIDE, n++) {
		struct iovec iov = { .iov_base = buf + off, .iov_len = 1 };

		while (fds[1] < 0 ||
		       vmsplice(fds[1], &iov, 1, SPLICE_F_NONBLOCK) != 1) {
			if (fds[1] >= 0 && errno != EAGAIN)
				return -1;
			if (pipe(fds))	/* a full pipe stays open on purpose */
				return -1;
		}
	}
	return n;
}

static void wait_release(const char *file)
{
	struct stat st;
	char c;

	if (file) {
		while (stat(file, &st))
			usleep(100000);
		return;
	}
	for (;;) {
		ssize_t r = read(0, &c, 1);

		if (r == 0 || (r < 0 && errno != EINTR))
			return;
	}
}

int main(int argc, char **argv)
{
	int opt, node = -1, lock = 0, pins = 0;
	const char *file = NULL;
	size_t mib, len;
	char *buf;

	while ((opt = getopt(argc, argv, "n:lpw:")) != -1) {
		switch (opt) {
		case 'n': node = atoi(optarg); break;
		case 'l': lock = 1; break;
		case 'p': pins = 1; break;
		case 'w': file = optarg; break;
		default: goto usage;
		}
	}
	if (optind != argc - 1 || node >= 64)
		goto usage;
	mib = strtoull(argv[optind], NULL, 0);
	len = mib << 20;
	if (!len)
		goto usage;

	buf = mmap(NULL, len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	if (node >= 0) {
		unsigned long mask = 1UL << node;

		if (syscall(SYS_mbind, buf, len, MPOL_BIND, &mask,
			    sizeof(mask) * 8 + 1, MPOL_MF_STRICT)) {
			perror("mbind");
			return 2;
		}
	}
	seed = 0x5a5a5a5a00000000ULL ^ (uint64_t)getpid();
	fill(buf, len);
	if (check(buf, len))
		return 1;
	if (node >= 0) {
		long bad = misplaced(buf, len, node);

		if (bad) {
			printf("MISPLACED %ld pages (sampled every 2 MiB) not on node %d\n",
			       bad, node);
			return 1;
		}
	}
	printf("OK %zu\n", mib);
	fflush(stdout);

	if (!lock && !pins && !file)
		return 0;
	if (lock && mlock(buf, len)) {
		perror("mlock");
		return 2;
	}
	if (pins && pin(buf, len) < 0) {
		perror("vmsplice pin");
		return 2;
	}
	printf("HELD %zu\n", mib);
	fflush(stdout);
	wait_release(file);
	if (check(buf, len))
		return 1;
	printf("RELEASED %zu\n", mib);
	return 0;

usage:
	fprintf(stderr, "usage: %s [-n NODE] [-l] [-p] [-w FILE] MIB\n", argv[0]);
	return 2;
}
