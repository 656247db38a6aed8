//go:build linux && cgo

// The direct spawn: the master clones a child that shares its memory and,
// until the child is exec'd, its descriptor table (CLONE_VM | CLONE_VFORK
// | CLONE_FILES, as posix_spawn does the first two); the child copies only
// the low part of the table that holds what it keeps (close_range with
// CLOSE_RANGE_UNSHARE), arranges its descriptors, applies the daemon's
// process settings and execs the worker's program: one exec, no shim, no
// walk of the master's thousands of descriptors, no copy of its address
// space. Everything the child uses was prepared by the parent; the child
// calls only system calls (never glibc's set*id wrappers, which would
// signal the parent's threads), and reports a failed step in the shared
// struct before it exits 127.

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "spawn_direct_linux.h"

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef CLOSE_RANGE_UNSHARE
#define CLOSE_RANGE_UNSHARE (1U << 1)
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

// The child's stack: it runs on it until exec.
#define CHILD_STACK (64 * 1024)

static void fail(struct nsfd_spawn *s, int step, int arg) {
	s->err = errno;
	s->step = step;
	s->arg = arg;
	_exit(127);
}

// put_pid writes prefix and pid into buf.
static void put_pid(char *buf, const char *prefix, long pid) {
	size_t n = strlen(prefix);
	memcpy(buf, prefix, n);
	char digits[24];
	int d = 0;
	do {
		digits[d++] = (char)('0' + pid % 10);
		pid /= 10;
	} while (pid > 0);
	while (d > 0) {
		buf[n++] = digits[--d];
	}
	buf[n] = '\0';
}

// close_from closes every descriptor from fd up, without close_range if
// the kernel has none.
static void close_from(int fd) {
	if (syscall(SYS_close_range, fd, ~0U, 0) == 0) {
		return;
	}
	struct rlimit rl;
	long limit = 65536;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)limit) {
		limit = (long)rl.rlim_cur;
	}
	for (long i = fd; i < limit; i++) {
		close((int)i);
	}
}

static int child(void *arg) {
	struct nsfd_spawn *s = arg;

	// The table is the parent's until the child has its own copy, of the
	// descriptors up to the highest it keeps only.
	if (syscall(SYS_close_range, s->max_fd + 1, ~0U, CLOSE_RANGE_UNSHARE) != 0) {
		if (unshare(CLONE_FILES) != 0) {
			fail(s, NSFD_STEP_FDS, 0);
		}
		close_from(s->max_fd + 1);
	}
	// Every handler back to the default while signals are still blocked
	// (the parent blocked them all): none of the parent's runs here. A
	// signal the parent ignores stays ignored, as execve(2) and the exec
	// shim (os/exec) leave it: SIGHUP and SIGINT under nohup, for one.
	struct sigaction dfl, old;
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	for (int sig = 1; sig < NSIG; sig++) {
		if (sig != SIGKILL && sig != SIGSTOP && sigaction(sig, &dfl, &old) == 0 && old.sa_handler == SIG_IGN) {
			sigaction(sig, &old, NULL);
		}
	}
	if (setpgid(0, 0) != 0) {
		fail(s, NSFD_STEP_PGID, 0);
	}
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) {
		fail(s, NSFD_STEP_PDEATHSIG, 0);
	}
	if (getppid() != s->ppid) {
		errno = ESRCH;
		fail(s, NSFD_STEP_MASTER_GONE, 0);
	}
	long pid = syscall(SYS_getpid);
	char pidtext[24];
	put_pid(pidtext, "", pid);
	// Join the worker's control groups first, while still root: whatever
	// the program starts is born in them.
	for (int i = 0; i < s->ncgroups; i++) {
		if (s->placed && i == s->cgroup_skip) {
			continue; // born there
		}
		int fd = open(s->cgroups[i], O_WRONLY | O_CLOEXEC);
		if (fd < 0) {
			fail(s, NSFD_STEP_CGROUP, i);
		}
		if (write(fd, pidtext, strlen(pidtext)) < 0) {
			fail(s, NSFD_STEP_CGROUP, i);
		}
		close(fd);
	}
	// fds[i] becomes i: each is first copied above the range (F_DUPFD never
	// replaces a descriptor), then onto its place; the copies are closed.
	int tmp[s->nfds];
	for (int i = 0; i < s->nfds; i++) {
		tmp[i] = fcntl(s->fds[i], F_DUPFD_CLOEXEC, s->nfds);
		if (tmp[i] < 0) {
			fail(s, NSFD_STEP_FDS, i);
		}
	}
	for (int i = 0; i < s->nfds; i++) {
		if (dup2(tmp[i], i) < 0) {
			fail(s, NSFD_STEP_FDS, i);
		}
	}
	close_from(s->nfds);
	for (int i = 0; i < s->nrlimits; i++) {
		struct rlimit rl = {.rlim_cur = s->rlimit_val[i], .rlim_max = s->rlimit_val[i]};
		if (syscall(SYS_prlimit64, 0, s->rlimit_res[i], &rl, NULL) != 0) {
			fail(s, NSFD_STEP_RLIMIT, i);
		}
	}
	if (s->chroot_dir != NULL) {
		if (chroot(s->chroot_dir) != 0) {
			fail(s, NSFD_STEP_CHROOT, 0);
		}
		if (chdir("/") != 0) {
			fail(s, NSFD_STEP_CHDIR, 0);
		}
	}
	if (s->dir != NULL && chdir(s->dir) != 0) {
		fail(s, NSFD_STEP_CHDIR, 1);
	}
	if (s->set_creds) {
		if (syscall(SYS_setgroups, s->ngroups, s->groups) != 0) {
			fail(s, NSFD_STEP_SETGROUPS, 0);
		}
		if (s->gid >= 0 && syscall(SYS_setresgid, s->gid, s->gid, s->gid) != 0) {
			fail(s, NSFD_STEP_SETGID, 0);
		}
		if (s->uid >= 0 && syscall(SYS_setresuid, s->uid, s->uid, s->uid) != 0) {
			fail(s, NSFD_STEP_SETUID, 0);
		}
		// A change of credentials clears the parent-death signal.
		if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) {
			fail(s, NSFD_STEP_PDEATHSIG, 0);
		}
		if (getppid() != s->ppid) {
			errno = ESRCH;
			fail(s, NSFD_STEP_MASTER_GONE, 0);
		}
	}
	if (s->umask >= 0) {
		umask((mode_t)s->umask);
	}
	if (s->listen_pid >= 0) {
		put_pid(s->listen_buf, "LISTEN_PID=", pid);
		s->envp[s->listen_pid] = s->listen_buf;
	}
	if (s->watchdog_pid >= 0) {
		put_pid(s->watchdog_buf, "WATCHDOG_PID=", pid);
		s->envp[s->watchdog_pid] = s->watchdog_buf;
	}
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	int denied = 0;
	int i = 0;
	for (; s->paths[i] != NULL; i++) {
		execve(s->paths[i], s->argv, s->envp);
		if (errno == EACCES) {
			denied = 1;
		} else if (errno != ENOENT && errno != ENOTDIR) {
			break;
		}
	}
	if (s->paths[i] == NULL) {
		i = 0;
		if (denied) {
			errno = EACCES;
		}
	}
	fail(s, NSFD_STEP_EXEC, i);
	return 127;
}

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif

// clone_args of clone3(2), as of Linux 5.7 (CLONE_INTO_CGROUP).
struct nsfd_clone_args {
	uint64_t flags;
	uint64_t pidfd;
	uint64_t child_tid;
	uint64_t parent_tid;
	uint64_t exit_signal;
	uint64_t stack;
	uint64_t stack_size;
	uint64_t tls;
	uint64_t set_tid;
	uint64_t set_tid_size;
	uint64_t cgroup;
};

#if defined(__x86_64__)
// clone3_run is clone(2)'s fn-and-stack form for clone3, which glibc does
// not export: the child starts on the stack the arguments give, with fn and
// arg in callee-saved registers (the kernel copies every register), calls
// fn(arg) and exits with what it returns. The parent gets the pid or
// -errno.
static long clone3_run(struct nsfd_clone_args *ca, int (*fn)(void *), void *arg) {
	register long rax __asm__("rax") = SYS_clone3;
	register long rdi __asm__("rdi") = (long)ca;
	register long rsi __asm__("rsi") = (long)sizeof *ca;
	register long r12 __asm__("r12") = (long)fn;
	register long r13 __asm__("r13") = (long)arg;
	__asm__ volatile(
		"syscall\n\t"
		"test %%rax, %%rax\n\t"
		"jnz 1f\n\t"
		"xor %%ebp, %%ebp\n\t"
		"and $-16, %%rsp\n\t"
		"mov %%r13, %%rdi\n\t"
		"call *%%r12\n\t"
		"mov %%eax, %%edi\n\t"
		"mov $60, %%eax\n\t"
		"syscall\n\t"
		"hlt\n\t"
		"1:\n\t"
		: "+r"(rax)
		: "r"(rdi), "r"(rsi), "r"(r12), "r"(r13)
		: "rcx", "r11", "memory");
	return rax;
}
#define HAVE_CLONE3_RUN 1
#endif

// spawn_into_cgroup clones the child straight into s->cgroup_fd; -1 (and
// nothing started) where that cannot be done here: no clone3 wrapper for
// this architecture, a kernel before 5.7, or a group the kernel refuses.
static pid_t spawn_into_cgroup(struct nsfd_spawn *s, void *stack, int *pidfd) {
#ifdef HAVE_CLONE3_RUN
	struct nsfd_clone_args ca;
	memset(&ca, 0, sizeof ca);
	ca.flags = CLONE_VM | CLONE_VFORK | CLONE_FILES | CLONE_PIDFD | CLONE_INTO_CGROUP;
	ca.pidfd = (uint64_t)(uintptr_t)pidfd;
	ca.exit_signal = SIGCHLD;
	ca.stack = (uint64_t)(uintptr_t)stack;
	ca.stack_size = CHILD_STACK;
	ca.cgroup = (uint64_t)s->cgroup_fd;
	s->placed = 1;
	long pid = clone3_run(&ca, child, s);
	if (pid > 0) {
		return (pid_t)pid;
	}
	s->placed = 0;
#else
	(void)s;
	(void)stack;
	(void)pidfd;
#endif
	return -1;
}

// Stacks of children that have exec'd, kept for the next spawns: a stack
// mapped and unmapped per spawn cost the master a TLB shootdown on every
// CPU that runs one of its threads, and the child page faults on fresh
// pages. Spawns may run at once on several threads, each with a stack of
// its own; at most STACKS_KEPT are kept.
#define STACKS_KEPT 4
static pthread_mutex_t stacks_mu = PTHREAD_MUTEX_INITIALIZER;
static void *stacks[STACKS_KEPT];
static int nstacks;

static void *get_stack(void) {
	void *stack = NULL;
	pthread_mutex_lock(&stacks_mu);
	if (nstacks > 0) {
		stack = stacks[--nstacks];
	}
	pthread_mutex_unlock(&stacks_mu);
	if (stack != NULL) {
		return stack;
	}
	stack = mmap(NULL, CHILD_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	return stack == MAP_FAILED ? NULL : stack;
}

// put_stack keeps stack for a later spawn; the child that ran on it has
// exec'd or exited (CLONE_VFORK), so nothing uses it any more.
static void put_stack(void *stack) {
	pthread_mutex_lock(&stacks_mu);
	if (nstacks < STACKS_KEPT) {
		stacks[nstacks++] = stack;
		stack = NULL;
	}
	pthread_mutex_unlock(&stacks_mu);
	if (stack != NULL) {
		munmap(stack, CHILD_STACK);
	}
}

pid_t nsfd_spawn(struct nsfd_spawn *s) {
	s->pidfd = -1;
	s->err = 0;
	s->step = NSFD_STEP_NONE;
	void *stack = get_stack();
	if (stack == NULL) {
		return -errno;
	}
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int flags = CLONE_VM | CLONE_VFORK | CLONE_FILES | SIGCHLD;
	int pidfd = -1;
	s->placed = 0;
	pid_t pid = -1;
	if (s->cgroup_fd >= 0) {
		pid = spawn_into_cgroup(s, stack, &pidfd);
	}
	if (pid < 0) {
		pidfd = -1;
		pid = clone(child, (char *)stack + CHILD_STACK, flags | CLONE_PIDFD, s, &pidfd);
	}
	if (pid < 0 && errno == EINVAL) { // a kernel before 5.2
		pidfd = -1;
		pid = clone(child, (char *)stack + CHILD_STACK, flags, s);
		if (pid > 0) {
			pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
		}
	}
	int e = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	put_stack(stack);
	if (pid < 0) {
		return -e;
	}
	s->pidfd = pidfd;
	return pid;
}
