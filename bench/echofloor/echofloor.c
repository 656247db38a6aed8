/*
 * echofloor: the floor the benchmark holds the echo servers against.
 *
 *   LISTEN_FDS=1 echofloor      (the listening TCP socket on fd 3)
 *
 * One process, one thread, one epoll loop: it accepts one connection per
 * wake-up on the inherited socket (shared with the other copies, registered
 * with EPOLLEXCLUSIVE so that one waiter wakes per connection; the level-
 * triggered listener wakes a copy again while more are pending), so that a
 * burst of connections spreads over the copies, and for each readable
 * connection makes one read(2) and writes back what it read with one
 * write(2). Nothing else: no line parsing, no buffering, no
 * supervisor, no notify socket, no allocation after start-up. A write that
 * does not take everything (the client stopped reading) closes the
 * connection. It writes "echofloor ready" on stdout once it waits for
 * connections and runs until it is killed.
 *
 * What no echo server on the machine can beat by much: one read and one
 * write a request is what the Perl and Go servers make too, and the
 * loopback TCP path behind them is the kernel's, the same for every server.
 * Built by the benchmark with gcc at run time (buildC, BenchmarkPerlEcho).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define LISTEN_FD 3

int main(void)
{
	const char *n = getenv("LISTEN_FDS");
	if (n == NULL || atoi(n) < 1) {
		fprintf(stderr, "echofloor: no listener: LISTEN_FDS is not set\n");
		return 2;
	}
	int fl = fcntl(LISTEN_FD, F_GETFL);
	if (fl < 0 || fcntl(LISTEN_FD, F_SETFL, fl | O_NONBLOCK) < 0) {
		perror("echofloor: fd 3");
		return 2;
	}
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0) {
		perror("echofloor: epoll_create1");
		return 1;
	}
	struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.fd = LISTEN_FD};
	if (epoll_ctl(ep, EPOLL_CTL_ADD, LISTEN_FD, &ev) < 0) {
		perror("echofloor: epoll_ctl");
		return 1;
	}
	printf("echofloor ready\n");
	fflush(stdout);

	static char buf[64 << 10];
	struct epoll_event evs[256];
	for (;;) {
		int k = epoll_wait(ep, evs, 256, -1);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			perror("echofloor: epoll_wait");
			return 1;
		}
		for (int i = 0; i < k; i++) {
			int fd = evs[i].data.fd;
			if (fd == LISTEN_FD) {
				int c = accept4(LISTEN_FD, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
				if (c < 0) {
					if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
						continue; /* another copy took it */
					perror("echofloor: accept4"); /* EMFILE and the like: fail, do not spin */
					return 1;
				}
				struct epoll_event cev = {.events = EPOLLIN, .data.fd = c};
				if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev) < 0)
					close(c);
				continue;
			}
			ssize_t r = read(fd, buf, sizeof buf);
			if (r < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (r <= 0 || write(fd, buf, (size_t)r) != r)
				close(fd); /* EOF, an error, or a short write */
		}
	}
}
