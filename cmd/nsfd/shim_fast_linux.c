//go:build linux && cgo

// The exec shim's fast path. `nsfd __nsfd_exec [flags] -- command args...`
// runs in every worker between the master's fork and the worker's exec
// (prefork.RunShim). Most of its cost is not its work, a setenv and an exec,
// but starting nsfd's Go runtime and initialising its packages, some 4 ms
// of CPU per worker. This constructor runs when the dynamic loader starts
// the binary, before the Go runtime exists: for the common case (no chroot,
// no change of credentials, no rlimits) it does the shim's whole job and
// execs the command, and the Go runtime never starts. Anything else, and
// any failure, returns to the Go shim, which does it all again (every step
// here is idempotent) and reports errors as usual. NSFD_SHIM_GO=1 in the
// environment forces the Go shim.

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;

// exec_path execs file as execvp would, but as Go's exec.LookPath finds
// it: only absolute PATH entries (a relative one is Go's ErrDot), no
// /bin/sh retry for a file without a #! line. It returns only on failure.
static void exec_path(char *file, char **argv) {
	if (strchr(file, '/') != NULL) {
		execve(file, argv, environ);
		return;
	}
	const char *path = getenv("PATH");
	if (path == NULL) {
		return;
	}
	char buf[PATH_MAX];
	for (const char *p = path; *p != '\0';) {
		const char *end = strchr(p, ':');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		if (n > 0 && p[0] == '/' && n + 1 + strlen(file) < sizeof buf) {
			memcpy(buf, p, n);
			buf[n] = '/';
			strcpy(buf + n + 1, file);
			struct stat st;
			if (stat(buf, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111) != 0) {
				execve(buf, argv, environ);
				return; // found but not executable: the Go shim says why
			}
		}
		if (end == NULL) {
			break;
		}
		p = end + 1;
	}
}

__attribute__((constructor)) static void nsfd_shim_fast(int argc, char **argv, char **envp) {
	(void)envp;
	if (argc < 4 || argv == NULL || argv[1] == NULL || strcmp(argv[1], "__nsfd_exec") != 0) {
		return;
	}
	const char *force = getenv("NSFD_SHIM_GO");
	if (force != NULL && strcmp(force, "1") == 0) {
		return;
	}
	const char *cwd = NULL;
	long mask = -1;
	char self[24];
	snprintf(self, sizeof self, "%ld", (long)getpid());
	int i = 2;
	for (; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (i + 1 >= argc) {
			return;
		}
		if (strcmp(a, "-ppid") == 0) {
			// Only needed after a change of credentials, which clears the
			// parent-death signal; the fork set it and exec keeps it.
			i++;
		} else if (strcmp(a, "-cwd") == 0) {
			cwd = argv[++i];
			if (cwd[0] != '/') {
				return;
			}
		} else if (strcmp(a, "-cgroup") == 0) {
			// Join the worker's control group (a cgroup.procs file) before
			// anything else; a second write by the Go shim is harmless.
			int fd = open(argv[++i], O_WRONLY | O_CLOEXEC);
			if (fd < 0) {
				return;
			}
			ssize_t n = write(fd, self, strlen(self));
			close(fd);
			if (n < 0) {
				return;
			}
		} else if (strcmp(a, "-umask") == 0) {
			char *end;
			errno = 0;
			mask = strtol(argv[++i], &end, 8);
			if (errno != 0 || *end != '\0' || end == argv[i] || mask < 0 || mask > 0777) {
				return;
			}
		} else {
			return; // chroot, credentials, rlimits, or a flag this does not know
		}
	}
	if (i >= argc || argv[i] == NULL || argv[i][0] == '\0') {
		return;
	}
	if (cwd != NULL && chdir(cwd) != 0) {
		return;
	}
	if (mask >= 0) {
		umask((mode_t)mask);
	}
	char pid[24];
	snprintf(pid, sizeof pid, "%ld", (long)getpid());
	if (setenv("LISTEN_PID", pid, 1) != 0) {
		return;
	}
	const char *wd = getenv("WATCHDOG_USEC");
	if (wd != NULL && wd[0] != '\0' && setenv("WATCHDOG_PID", pid, 1) != 0) {
		return;
	}
	// Nothing but 0-2 and the listeners crosses the exec: whatever the
	// master inherited from its own parent stays behind (close-on-exec, so
	// the Go shim still runs if the exec fails).
	const char *nfds = getenv("LISTEN_FDS");
	long n = nfds != NULL ? strtol(nfds, NULL, 10) : 0;
	if (n < 0 || n > 65536) {
		n = 0;
	}
	if (syscall(SYS_close_range, (unsigned int)(3 + n), ~0U, 4 /* CLOSE_RANGE_CLOEXEC */) != 0) {
		return;
	}
	exec_path(argv[i], argv + i);
	// Not exec'd: the Go shim starts and reports the error. It reads its
	// environment from the process's initial stack, where setenv wrote
	// nothing, so it sets LISTEN_PID afresh.
}
