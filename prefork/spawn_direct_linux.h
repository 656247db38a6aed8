// The direct spawn: one clone, one exec (spawn_direct_linux.c).

#include <stdint.h>
#include <sys/types.h>

// Steps of the child, for the error it reports.
enum {
	NSFD_STEP_NONE,
	NSFD_STEP_FDS,
	NSFD_STEP_PGID,
	NSFD_STEP_PDEATHSIG,
	NSFD_STEP_MASTER_GONE,
	NSFD_STEP_CGROUP,
	NSFD_STEP_RLIMIT,
	NSFD_STEP_CHROOT,
	NSFD_STEP_CHDIR,
	NSFD_STEP_SETGROUPS,
	NSFD_STEP_SETGID,
	NSFD_STEP_SETUID,
	NSFD_STEP_EXEC,
};

struct nsfd_spawn {
	// In.
	char **paths;        // where to exec the program, tried in order (as execvp would)
	char **argv;
	char **envp;         // entries listen_pid and watchdog_pid, if >= 0, are filled in by the child
	int listen_pid;      // index in envp of "LISTEN_PID=", -1: none
	int watchdog_pid;    // index in envp of "WATCHDOG_PID=", -1: none
	char listen_buf[32]; // the child writes "LISTEN_PID=<pid>" here
	char watchdog_buf[32];
	int *fds;            // fds[i] becomes the child's fd i
	int nfds;
	int max_fd;          // the highest fd in fds: the child's copy of the table stops there
	char **cgroups;      // control files the child writes its pid to, before anything else
	int ncgroups;
	int cgroup_fd;       // a cgroup2 directory to clone the child into (CLONE_INTO_CGROUP), -1: none
	int cgroup_skip;     // index in cgroups of that directory's cgroup.procs, -1: none
	int placed;          // set by nsfd_spawn: the child was born in cgroup_fd, it skips cgroup_skip
	int *rlimit_res;
	uint64_t *rlimit_val;
	int nrlimits;
	char *chroot_dir;    // NULL: none
	char *dir;           // NULL: unchanged
	int umask;           // -1: inherited
	int set_creds;
	int uid, gid;        // -1: unchanged
	uint32_t *groups;
	int ngroups;
	int ppid;            // the master: the child leaves if it is gone

	// Out.
	int pidfd;           // -1 if the kernel gave none
	int err;             // errno of the child's failed step
	int step;            // which step failed: NSFD_STEP_*
	int arg;             // the step's argument (index of the cgroup, rlimit or path)
};

pid_t nsfd_spawn(struct nsfd_spawn *s);
