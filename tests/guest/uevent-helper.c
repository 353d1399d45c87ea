// SPDX-License-Identifier: GPL-2.0-only
/*
 * The guest's uevent helper for ndctl's CXL tests (tests/guest/ndctl-env.sh
 * installs it as /proc/sys/kernel/hotplug): the kernel runs it once per
 * uevent, as it would hand the event to udev.  For an "add" with a
 * MODALIAS it runs `modprobe -q -b <alias>`; then it marks the event's
 * SEQNUM done, which is what `udevadm settle` waits for.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define RUN "/run/uevent"

static void touch(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd >= 0)
		close(fd);
}

static void load(const char *alias)
{
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		execl("/sbin/modprobe", "modprobe", "-q", "-b", alias,
		      (char *)NULL);
		_exit(127);
	}
	if (pid > 0)
		waitpid(pid, &status, 0);
}

int main(void)
{
	const char *action = getenv("ACTION");
	const char *alias = getenv("MODALIAS");
	const char *seq = getenv("SEQNUM");
	char done[64];

	if (action && alias && !strcmp(action, "add"))
		load(alias);
	if (seq) {
		snprintf(done, sizeof(done), RUN "/done.%s", seq);
		touch(done);
	}
	return 0;
}
