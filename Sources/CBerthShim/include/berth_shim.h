// CBerthShim: the few things Swift cannot call directly, and the child side of spawning.
//
// Everything here is either (a) a raw system call that glibc 2.36 does not wrap, (b) a wrapper around a
// variadic C function or a macro (Swift imports neither), or (c) code that must run between clone and
// exec, where only async-signal-safe calls are allowed. Keep it that small.
#ifndef BERTH_SHIM_H
#define BERTH_SHIM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

// GNU-only constants and calls: Swift's Glibc module is built without _GNU_SOURCE and omits them.
#define BERTH_O_PATH 010000000
#define BERTH_CLONE_NEWTIME 0x00000080
#define BERTH_CLONE_NEWNS 0x00020000
#define BERTH_CLONE_NEWCGROUP 0x02000000
#define BERTH_CLONE_NEWUTS 0x04000000
#define BERTH_CLONE_NEWIPC 0x08000000
#define BERTH_CLONE_NEWUSER 0x10000000
#define BERTH_CLONE_NEWPID 0x20000000
#define BERTH_CLONE_NEWNET 0x40000000
int berth_pipe2(int fds[2], int flags);
/// statfs/fstatfs: returns f_type (the filesystem magic), or -1 with errno.
long berth_fstatfs_type(int fd);
long berth_statfs_type(const char *path);
int berth_unshare(int flags);
int berth_setresuid(uid_t ruid, uid_t euid, uid_t suid);
int berth_setresgid(gid_t rgid, gid_t egid, gid_t sgid);
/// makedev/major/minor are macros in glibc.
uint64_t berth_makedev(unsigned int major, unsigned int minor);
unsigned int berth_major(uint64_t device);
unsigned int berth_minor(uint64_t device);
#define BERTH_ST_RDONLY 1
#define BERTH_ST_NOSUID 2
#define BERTH_ST_NODEV 4
#define BERTH_ST_NOEXEC 8
int berth_setns(int fd, int type);
/// Every signal but SIGKILL and SIGSTOP back to SIG_DFL, through rt_sigaction itself: glibc's
/// sigaction refuses the two signals it reserves (32 and 33), which a caller may have ignored too.
void berth_reset_signal_dispositions(void);
int berth_sethostname(const char *name, size_t length);
int berth_setdomainname(const char *name, size_t length);

// (a) Raw system calls. Each returns -1 and sets errno on failure, like libc.
int berth_pivot_root(const char *new_root, const char *put_old);
/// The id of the mount `path` is on (statx STATX_MNT_ID, not followed through a final symlink): tells a
/// mount apart from the one it covers. 0 and errno on failure. (struct statx's mount id is newer than
/// the Glibc module Swift sees.)
uint64_t berth_mount_id(const char *path);
/// openat2(2) with `struct open_how`; `resolve` takes RESOLVE_* flags.
int berth_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve);
int berth_pidfd_open(pid_t pid, unsigned int flags);
int berth_pidfd_send_signal(int pidfd, int sig, unsigned int flags);
int berth_close_range(unsigned int first, unsigned int last, unsigned int flags);
int berth_capget(int pid, uint32_t effective[2], uint32_t permitted[2], uint32_t inheritable[2]);
int berth_capset(const uint32_t effective[2], const uint32_t permitted[2], const uint32_t inheritable[2]);
int berth_execveat(int dirfd, const char *path, char *const argv[], char *const envp[], int flags);
int berth_memfd_create(const char *name, unsigned int flags);
/// keyctl(KEYCTL_JOIN_SESSION_KEYRING, name): a fresh session keyring per container (keyctl is variadic).
long berth_join_session_keyring(const char *name);

// (b) Variadic functions and macros.
int berth_open(const char *path, int flags, mode_t mode);
int berth_openat(int dirfd, const char *path, int flags, mode_t mode);
int berth_fcntl_int(int fd, int cmd, int arg);
int berth_ioctl_int(int fd, unsigned long request, int arg);
int berth_ioctl_ptr(int fd, unsigned long request, void *arg);
int berth_prctl(int option, unsigned long arg2, unsigned long arg3, unsigned long arg4, unsigned long arg5);
int berth_wait_status_exited(int status);
int berth_wait_status_exit_code(int status);
int berth_wait_status_signaled(int status);
int berth_wait_status_signal(int status);
/// Sends `fd` over a unix socket with SCM_RIGHTS (the CMSG_* macros are not importable).
int berth_send_fd(int sock, int fd, const void *data, size_t length);
/// Receives one descriptor sent with SCM_RIGHTS; *fd is -1 when the message carried none.
ssize_t berth_recv_fd(int sock, int *fd, void *data, size_t length);
/// Allocates a pseudo-terminal pair: the master (O_CLOEXEC) and the path of its slave.
int berth_open_pty(int *master, char *slave_name, size_t slave_name_length);

// (c) Spawning a process into new or existing namespaces.
//
// The parent is a single-threaded runtime process; the child runs only the code in spawn.c, which uses
// raw system calls, and then execs. Failures in the child are reported on `error_fd` as a
// `berth_spawn_error` and the child exits 127; a successful exec closes `error_fd` (O_CLOEXEC), so the
// parent reading EOF means the child is running the new image.
//
// Joining a user namespace while creating others: namespaces belong to the user namespace of the
// process that creates them, so the child joins first and creates them after (unshare). A new pid
// namespace then needs one more clone (only children enter it): the child clones the init with
// CLONE_PARENT, so the init is the runtime's child too, reports its pid as a
// `{BERTH_SPAWN_REPORT_PID, pid}` record on `error_fd`, and exits 0. The parent reaps it and goes on
// with the init's pid.
struct berth_spawn_args {
    uint64_t clone_flags;      ///< CLONE_NEW* flags for clone3 (CLONE_NEWTIME allowed).
    int cgroup_fd;             ///< cgroup2 directory for CLONE_INTO_CGROUP, or -1.
    int sync_fd;               ///< The child reads one byte here before anything else (parent writes id maps, joins v1 cgroups), or -1.
    int error_fd;              ///< Write end of the error pipe (O_CLOEXEC).
    const int *join_fds;       ///< Namespaces to join with setns, in order (a user namespace first).
    const int *join_types;     ///< CLONE_NEW* type of each join_fds entry.
    int join_count;
    /// CVE-2019-5736: the child execs the runtime binary through a read-only bind mount of it made in a
    /// mount namespace private to the container (or a temporary one), so a process in the container can
    /// never open the host binary for writing through /proc/<pid>/exe.
    const char *sealed_exe;    ///< Real path of the runtime binary to bind read-only and exec, or NULL.
    const char *exec_path;     ///< Path to exec when sealed_exe is NULL.
    char *const *argv;
    char *const *envp;
    int parent_death_signal;   ///< PR_SET_PDEATHSIG for the child, 0 for none.
    /// Become uid/gid 0 of the user namespace (created or joined) before exec: exec as an unmapped
    /// user would drop every capability the namespace granted.
    int become_root;
};

struct berth_spawn_error {
    int step;   ///< One of BERTH_SPAWN_STEP_*, or BERTH_SPAWN_REPORT_PID.
    int error;  ///< errno of the failed call (the init's pid for BERTH_SPAWN_REPORT_PID).
};

enum {
    BERTH_SPAWN_STEP_SYNC = 1,
    BERTH_SPAWN_STEP_SETNS = 2,
    BERTH_SPAWN_STEP_UNSHARE = 3,
    BERTH_SPAWN_STEP_MOUNT = 4,
    BERTH_SPAWN_STEP_OPEN = 5,
    BERTH_SPAWN_STEP_EXEC = 6,
    BERTH_SPAWN_STEP_PRCTL = 7,
    BERTH_SPAWN_STEP_SETID = 8,
    BERTH_SPAWN_STEP_CLONE = 9,
    /// Not a failure: the spawned process handed over to the init it cloned (see above).
    BERTH_SPAWN_REPORT_PID = 100,
};

/// Clones (clone3, falling back to clone) and runs the child steps above. Returns the child's pid, or -1
/// with errno set if the clone itself failed.
pid_t berth_spawn(const struct berth_spawn_args *args);

// write(2) of `data` to the file at `path` on a helper thread (async_write.c); NULL with errno if the
// thread could not start. berth_write_file_wait joins it, frees it, and returns 0 or the errno.
struct berth_async_write;
struct berth_async_write *berth_write_file_async(const char *path, const char *data);
int berth_write_file_wait(struct berth_async_write *job);

// posix_spawn's GNU extensions (spawn.h declares them only under _GNU_SOURCE): the flag that makes the
// child a session leader, chdir as a file action (glibc >= 2.29), and closing every descriptor from
// `from` up (glibc >= 2.34).
#define BERTH_POSIX_SPAWN_SETSID 0x80
int berth_spawn_file_actions_addchdir(void *actions, const char *path);
int berth_spawn_file_actions_addclosefrom(void *actions, int from);
/// accept4(fd, NULL, NULL, SOCK_CLOEXEC | flags): GNU-only in glibc's headers.
int berth_accept_cloexec(int fd, int flags);

/// seccomp(SECCOMP_SET_MODE_FILTER, flags, program) for a classic-BPF program of `count` 8-byte
/// instructions (a filter libseccomp exported earlier). -1 with errno on failure.
int berth_seccomp_set_filter(const void *instructions, unsigned int count, unsigned int flags);

// cgroup v2 device control (bpf.c): bpf(2) has no glibc wrapper and takes `union bpf_attr`.
/// Loads a BPF_PROG_TYPE_CGROUP_DEVICE program (`count` 8-byte `struct bpf_insn`) and attaches it to the
/// cgroup directory `cgroup_fd` (opened O_RDONLY|O_DIRECTORY) with BPF_F_ALLOW_MULTI. Returns the program
/// descriptor (the attachment stays while the cgroup exists, even after it is closed), or -1 with errno;
/// the verifier's message, if any, is left in `log`.
int berth_bpf_attach_device_program(int cgroup_fd, const uint64_t *instructions, unsigned int count,
                                    char *log, unsigned int log_size);

// ---------------------------------------------------------------------------------------------------
// Pinned network namespaces (netns.c), for BerthNetwork.
// unshare(CLONE_NEWNET) acts on the calling thread, so it runs on a dedicated short-lived pthread
// (never a Swift pool thread), which bind-mounts /proc/thread-self/ns/net onto `path` (an existing
// empty file) and sets `lo` up inside the new namespace before it exits.
// Returns 0, or the errno of the step left in *failed_step (one of BERTH_NETNS_STEP_*). After a failure
// at BERTH_NETNS_STEP_SOCKET or later the namespace is already pinned at `path`.
enum {
    BERTH_NETNS_STEP_THREAD = 1,     ///< pthread_create
    BERTH_NETNS_STEP_UNSHARE = 2,    ///< unshare(CLONE_NEWNET)
    BERTH_NETNS_STEP_MOUNT = 3,      ///< mount(MS_BIND) of /proc/thread-self/ns/net
    BERTH_NETNS_STEP_SOCKET = 4,     ///< socket(AF_INET) inside the namespace
    BERTH_NETNS_STEP_GET_FLAGS = 5,  ///< ioctl(SIOCGIFFLAGS) on lo
    BERTH_NETNS_STEP_SET_FLAGS = 6,  ///< ioctl(SIOCSIFFLAGS) on lo
};
int berth_netns_create(const char *path, int *failed_step);

/// A non-blocking, close-on-exec IPv4 socket of `type` (SOCK_DGRAM or SOCK_STREAM, then listening) bound
/// to `address`:`port` (host byte order) inside the network namespace pinned at `netns_path`; the calling
/// thread joins that namespace only for the socket() and bind() and then returns to its own. Returns the
/// descriptor, or -errno with the failed step in *failed_step (OPEN, SETNS, SOCKET or BIND).
enum {
    BERTH_NETNS_STEP_OPEN = 7,       ///< open of /proc/thread-self/ns/net or of `netns_path`
    BERTH_NETNS_STEP_SETNS = 8,      ///< setns(CLONE_NEWNET)
    BERTH_NETNS_STEP_BIND = 9,       ///< bind (or listen)
};
int berth_socket_in_netns(const char *netns_path, int type, uint32_t address, uint16_t port, int *failed_step);

/// A TCP socket of another network namespace, unbound and blocking, for the caller to connect (a
/// socket keeps the namespace it was made in): how the CRI's port forwarding reaches a pod's localhost.
/// Same steps and errors as berth_socket_in_netns (no BIND step).
int berth_stream_socket_in_netns(const char *netns_path, int *failed_step);

/// A pinned IPC or UTS namespace (a CRI pod sandbox's, what CRI-O's pinns makes): a dedicated pthread
/// unshares `flag` (CLONE_NEWIPC or CLONE_NEWUTS), sets `hostname` in a new UTS namespace when not NULL,
/// and bind-mounts /proc/thread-self/ns/`name` (`ipc` or `uts`) onto `path` (an existing empty file).
/// Returns 0, or the errno of the step left in *failed_step (THREAD, UNSHARE, HOSTNAME or MOUNT).
enum {
    BERTH_NETNS_STEP_HOSTNAME = 10,  ///< sethostname in the new UTS namespace
};
int berth_namespace_pin(const char *path, int flag, const char *name, const char *hostname, int *failed_step);

/// glibc's heap tuning (malloc.h is not in Swift's Glibc module). berth_malloc_arena_max caps the heap
/// arenas (mallopt M_ARENA_MAX: glibc makes up to 8 per core, each keeping its own freed pages); a
/// long-lived daemon that allocates little at a time needs one. berth_malloc_trim returns the heap's free
/// pages to the kernel (malloc_trim(0)). Both return what glibc returns (1 on success).
int berth_malloc_arena_max(int arenas);
int berth_malloc_trim(void);
// ---------------------------------------------------------------------------------------------------

#endif
