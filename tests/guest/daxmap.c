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
 * usage: daxmap [-s SEED] [-r] [-w FILE] /dev/daxZ.N
 * Exit status: 0 ok, 1 verification failure, 2 usage or setup error,
 * 3 SIGBUS.
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

static void on_sigbus(int sig)
{
	(void)sig;
	siglongjmp(bus_jmp, 1);
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
	static const char *wait_file;
	static uint64_t seed = 0x5a5a5a5a12345678ull;
	static int verify_only;
	int opt, fd;
	struct stat st;
	size_t len, bad;
	void *p;

	while ((opt = getopt(argc, argv, "s:rw:")) != -1) {
		switch (opt) {
		case 's': seed = strtoull(optarg, NULL, 0); break;
		case 'r': verify_only = 1; break;
		case 'w': wait_file = optarg; break;
		default: return 2;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "usage: daxmap [-s SEED] [-r] [-w FILE] DEV\n");
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
	signal(SIGBUS, on_sigbus);
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
	while (stat(wait_file, &st))
		usleep(100000);
	bad = pattern(p, len, seed, 0);
	printf(bad ? "BAD again\n" : "OK again\n");
	return bad ? 1 : 0;
}
