// SPDX-License-Identifier: GPL-2.0
/*
 * daxmap: guest test helper (static). Maps a device-dax character device
 * whole (MAP_SHARED, as a dax device must be mapped), writes a pattern
 * (the offset of every 64-byte line, xor a seed), reads it back and prints
 * "OK <bytes>".  With -w it then holds the mapping, printing "HELD", until
 * FILE exists, and touches every page again: it prints "SIGBUS" and exits
 * 3 when the memory was taken away meanwhile, "OK again" otherwise.
 * With -r it only verifies a pattern an earlier run wrote with that seed.
 *
 * With -t FILE (touch) it checks no data, for addresses that are not RAM
 * (a cxl_test mock's): it reads one byte of every page of the mapping,
 * prints "MAPPED <bytes> <first byte>", waits until FILE exists, then
 * reads every page again with a SIGBUS handler installed and prints
 * "SIGBUS at <offset>" (exit 3) when the mapping was taken away meanwhile,
 * "no fault" (exit 0) when it was not.  A SIGBUS on the first pass prints
 * "SIGBUS before mapped at <offset>" (exit 4).
 *
 * usage: daxmap [-s SEED] [-r] [-w FILE] /dev/daxZ.N
 *        daxmap -t FILE /dev/daxZ.N
 * Exit status: 0 ok, 1 verification failure, 2 usage or setup error,
 * 3 SIGBUS, 4 SIGBUS on the first touch.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static sigjmp_buf bus_jmp;
static volatile uintptr_t bus_addr;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	bus_addr = (uintptr_t)si->si_addr;
	siglongjmp(bus_jmp, 1);
}

static void catch_sigbus(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigbus;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
}

static void wait_for_file(const char *path)
{
	struct stat st;

	while (stat(path, &st))
		usleep(100000);
}

/* Read one byte of every page; returns the first. */
static unsigned char touch(volatile unsigned char *p, size_t len)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE), off;
	unsigned char first = p[0];

	for (off = pg; off < len; off += pg)
		(void)p[off];
	return first;
}

/* -t: map, touch, wait, touch again: see the header. */
static int touch_mode(volatile unsigned char *p, size_t len, const char *file)
{
	static volatile int second;
	unsigned char first;

	catch_sigbus();
	if (sigsetjmp(bus_jmp, 1)) {
		printf("SIGBUS %sat %#lx\n", second ? "" : "before mapped ",
		       (unsigned long)(bus_addr - (uintptr_t)p));
		fflush(stdout);
		return second ? 3 : 4;
	}
	first = touch(p, len);
	printf("MAPPED %zu %#x\n", len, first);
	fflush(stdout);
	wait_for_file(file);
	second = 1;
	touch(p, len);
	printf("no fault\n");
	fflush(stdout);
	return 0;
}

static unsigned long long dev_size(const char *path)
{
	char attr[256], buf[64];
	const char *name = strrchr(path, '/');
	FILE *f;

	snprintf(attr, sizeof(attr), "/sys/bus/dax/devices/%s/size",
		 name ? name + 1 : path);
	f = fopen(attr, "r");
	if (!f || !fgets(buf, sizeof(buf), f)) {
		perror(attr);
		exit(2);
	}
	fclose(f);
	return strtoull(buf, NULL, 0);
}

/* Returns the number of bad lines. */
static size_t pattern(volatile uint64_t *p, size_t len, uint64_t seed,
		      int write)
{
	size_t off, bad = 0;

	for (off = 0; off < len; off += 64) {
		volatile uint64_t *w = p + off / 8;

		if (write)
			*w = off ^ seed;
		else if (*w != (off ^ seed))
			bad++;
	}
	return bad;
}

int main(int argc, char **argv)
{
	static const char *wait_file, *touch_file;
	static uint64_t seed = 0x5a5a5a5a12345678ull;
	static int verify_only;
	int opt, fd;
	size_t len, bad;
	void *p;

	while ((opt = getopt(argc, argv, "s:rw:t:")) != -1) {
		switch (opt) {
		case 's': seed = strtoull(optarg, NULL, 0); break;
		case 'r': verify_only = 1; break;
		case 'w': wait_file = optarg; break;
		case 't': touch_file = optarg; break;
		default: return 2;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "usage: daxmap [-s SEED] [-r] [-w FILE] DEV\n"
				"       daxmap -t FILE DEV\n");
		return 2;
	}
	len = dev_size(argv[optind]);
	fd = open(argv[optind], O_RDWR);
	if (fd < 0 || !len) {
		perror(argv[optind]);
		return 2;
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	if (touch_file)
		return touch_mode(p, len, touch_file);
	catch_sigbus();
	if (sigsetjmp(bus_jmp, 1)) {
		printf("SIGBUS\n");
		fflush(stdout);
		return 3;
	}
	if (!verify_only)
		pattern(p, len, seed, 1);
	bad = pattern(p, len, seed, 0);
	if (bad) {
		printf("BAD %zu lines\n", bad);
		return 1;
	}
	printf("OK %zu\n", len);
	fflush(stdout);
	if (!wait_file)
		return 0;
	printf("HELD\n");
	fflush(stdout);
	wait_for_file(wait_file);
	bad = pattern(p, len, seed, 0);
	printf(bad ? "BAD again\n" : "OK again\n");
	return bad ? 1 : 0;
}
