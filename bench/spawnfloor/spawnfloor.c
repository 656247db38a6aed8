/*
 * spawnfloor: the floor the benchmark holds nsfd's start-up against.
 *
 *   spawnfloor N PROGRAM [ARG...]
 *
 * posix_spawn(3)s N copies of PROGRAM ARG... (an absolute path: no PATH
 * search) with the parent's environment and descriptors, one after the
 * other, and nothing else: no pipes, no listener, no bookkeeping beyond the
 * pids. Then it waits for a signal. When a child dies (SIGCHLD) it reaps it
 * and posix_spawns its replacement at once: the floor of kill → replacement.
 * On SIGTERM (or SIGINT) it SIGKILLs and reaps its children and writes one
 * line to stdout:
 *
 *   spawned=N loop_ns=T self_cpu_ns=C children_cpu_ns=K respawned=R
 *
 * (the line is written once the children are reaped).
 *
 * loop_ns: wall time from the start of main to the return of the last
 * posix_spawn; self_cpu_ns: its own user+system CPU (getrusage) at that
 * point; children_cpu_ns: its children's whole CPU, getrusage
 * (RUSAGE_CHILDREN) once they are reaped: their part of the spawn, the
 * exec, `sleep`'s start-up and its death, replacements included.
 * respawned: replacements spawned. (Not /proc/PID/schedstat: as the
 * first process of a PID namespace it knows its children by pids that
 * /proc, the host's, does not.)
 *
 * It does not watch its children itself: the benchmark polls them from
 * outside, as it does nsfd's and supervisord's workers, with the same
 * criterion (a child counts once /proc/PID/comm is the program's).
 * Built by the benchmark with gcc at run time (bench/spawnfloor_test.go).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static long long nsec(struct timespec t) { return (long long)t.tv_sec * 1000000000LL + t.tv_nsec; }

static long long tvnsec(struct timeval t) { return (long long)t.tv_sec * 1000000000LL + (long long)t.tv_usec * 1000LL; }

int main(int argc, char **argv)
{
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (argc < 3) {
		fprintf(stderr, "usage: spawnfloor N PROGRAM [ARG...]\n");
		return 2;
	}
	int n = atoi(argv[1]);
	if (n < 1) {
		fprintf(stderr, "spawnfloor: N must be positive, not %s\n", argv[1]);
		return 2;
	}
	pid_t *pids = calloc((size_t)n, sizeof *pids);
	if (pids == NULL) {
		perror("spawnfloor: calloc");
		return 1;
	}

	/* SIGTERM, SIGINT and SIGCHLD are blocked before the first spawn and
	 * waited for with sigwaitinfo: as the first process of a PID namespace
	 * this program would otherwise ignore the first two. The children get
	 * the default mask. */
	sigset_t stop, none;
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGCHLD);
	sigprocmask(SIG_BLOCK, &stop, NULL);
	sigemptyset(&none);
	posix_spawnattr_t attr;
	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);

	int spawned = 0;
	for (; spawned < n; spawned++) {
		int err = posix_spawn(&pids[spawned], argv[2], NULL, &attr, argv + 2, environ);
		if (err != 0) {
			fprintf(stderr, "spawnfloor: posix_spawn %s (#%d): %s\n", argv[2], spawned + 1, strerror(err));
			break;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	long long self = tvnsec(ru.ru_utime) + tvnsec(ru.ru_stime);

	/* Until SIGTERM or SIGINT: each child that dies is reaped and replaced
	 * in its slot. (Orphans reparented to it, as the first process of a PID
	 * namespace, are reaped and not replaced.) */
	long respawned = 0;
	while (spawned == n) {
		int sig = sigwaitinfo(&stop, NULL);
		if (sig < 0) {
			if (errno == EINTR)
				continue;
			perror("spawnfloor: sigwaitinfo");
			break;
		}
		if (sig != SIGCHLD)
			break;
		pid_t dead;
		while ((dead = waitpid(-1, NULL, WNOHANG)) > 0) {
			for (int i = 0; i < n; i++) {
				if (pids[i] != dead)
					continue;
				int err = posix_spawn(&pids[i], argv[2], NULL, &attr, argv + 2, environ);
				if (err != 0) {
					fprintf(stderr, "spawnfloor: posix_spawn %s (replacement): %s\n", argv[2], strerror(err));
					pids[i] = 0;
				} else {
					respawned++;
				}
				break;
			}
		}
	}
	for (int i = 0; i < spawned; i++)
		if (pids[i] > 0)
			kill(pids[i], SIGKILL);
	for (int i = 0; i < spawned; i++)
		while (pids[i] > 0 && waitpid(pids[i], NULL, 0) < 0 && errno == EINTR)
			;
	getrusage(RUSAGE_CHILDREN, &ru);
	long long kids = tvnsec(ru.ru_utime) + tvnsec(ru.ru_stime);
	printf("spawned=%d loop_ns=%lld self_cpu_ns=%lld children_cpu_ns=%lld respawned=%ld\n", spawned, nsec(t1) - nsec(t0), self, kids, respawned);
	fflush(stdout);
	return spawned == n ? 0 : 1;
}
