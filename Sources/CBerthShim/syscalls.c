// Raw system calls and wrappers for variadic functions and macros (see berth_shim.h).
#define _GNU_SOURCE
#include "berth_shim.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <linux/stat.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/vfs.h>
#include <sys/sysmacros.h>
#include <spawn.h>
#include <unistd.h>

int berth_pipe2(int fds[2], int flags) { return pipe2(fds, flags); }
int berth_accept_cloexec(int fd, int flags) { return accept4(fd, NULL, NULL, SOCK_CLOEXEC | flags); }
int berth_spawn_file_actions_addchdir(void *actions, const char *path) {
    return posix_spawn_file_actions_addchdir_np((posix_spawn_file_actions_t *)actions, path);
}
int berth_spawn_file_actions_addclosefrom(void *actions, int from) {
    return posix_spawn_file_actions_addclosefrom_np((posix_spawn_file_actions_t *)actions, from);
}
long berth_fstatfs_type(int fd) {
    struct statfs info;
    return fstatfs(fd, &info) < 0 ? -1 : (long)info.f_type;
}
long berth_statfs_type(const char *path) {
    struct statfs info;
    return statfs(path, &info) < 0 ? -1 : (long)info.f_type;
}
int berth_setresuid(uid_t ruid, uid_t euid, uid_t suid) { return setresuid(ruid, euid, suid); }
int berth_setresgid(gid_t rgid, gid_t egid, gid_t sgid) { return setresgid(rgid, egid, sgid); }
uint64_t berth_makedev(unsigned int major, unsigned int minor) { return makedev(major, minor); }
unsigned int berth_major(uint64_t device) { return major(device); }
unsigned int berth_minor(uint64_t device) { return minor(device); }
int berth_unshare(int flags) { return unshare(flags); }
int berth_setns(int fd, int type) { return setns(fd, type); }
void berth_reset_signal_dispositions(void) {
    // The kernel's struct sigaction, all zero: SIG_DFL, no flags, empty mask, whatever the architecture's
    // field order. The last argument is the size of the kernel's signal set (64 bits).
    unsigned long action[4] = {0};
    for (int signal = 1; signal <= 64; signal++) {
        if (signal == SIGKILL || signal == SIGSTOP) continue;
        syscall(SYS_rt_sigaction, signal, action, NULL, 8);
    }
}
uint64_t berth_mount_id(const char *path) {
    struct statx info;
    if (syscall(SYS_statx, AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &info) < 0) return 0;
    if (!(info.stx_mask & STATX_MNT_ID)) { errno = ENOSYS; return 0; }
    return info.stx_mnt_id;
}
int berth_sethostname(const char *name, size_t length) { return sethostname(name, length); }
int berth_setdomainname(const char *name, size_t length) { return setdomainname(name, length); }

int berth_pivot_root(const char *new_root, const char *put_old) {
    return (int)syscall(SYS_pivot_root, new_root, put_old);
}

int berth_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve) {
    struct open_how how = {.flags = flags, .mode = mode, .resolve = resolve};
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

int berth_pidfd_open(pid_t pid, unsigned int flags) { return (int)syscall(SYS_pidfd_open, pid, flags); }

int berth_pidfd_send_signal(int pidfd, int sig, unsigned int flags) {
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, flags);
}

int berth_close_range(unsigned int first, unsigned int last, unsigned int flags) {
    return (int)syscall(SYS_close_range, first, last, flags);
}

// capget/capset take the kernel's versioned header; version 3 carries 64 bits as two 32-bit words.
int berth_capget(int pid, uint32_t effective[2], uint32_t permitted[2], uint32_t inheritable[2]) {
    struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = pid};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof(data));
    int result = (int)syscall(SYS_capget, &header, data);
    if (result == 0) {
        for (int i = 0; i < 2; i++) {
            effective[i] = data[i].effective;
            permitted[i] = data[i].permitted;
            inheritable[i] = data[i].inheritable;
        }
    }
    return result;
}

int berth_capset(const uint32_t effective[2], const uint32_t permitted[2], const uint32_t inheritable[2]) {
    struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2];
    for (int i = 0; i < 2; i++) {
        data[i].effective = effective[i];
        data[i].permitted = permitted[i];
        data[i].inheritable = inheritable[i];
    }
    return (int)syscall(SYS_capset, &header, data);
}

int berth_execveat(int dirfd, const char *path, char *const argv[], char *const envp[], int flags) {
    return (int)syscall(SYS_execveat, dirfd, path, argv, envp, flags);
}

int berth_memfd_create(const char *name, unsigned int flags) { return (int)syscall(SYS_memfd_create, name, flags); }

long berth_join_session_keyring(const char *name) {
    return syscall(SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, name, 0, 0, 0);
}

int berth_open(const char *path, int flags, mode_t mode) { return open(path, flags, mode); }
int berth_openat(int dirfd, const char *path, int flags, mode_t mode) { return openat(dirfd, path, flags, mode); }
int berth_fcntl_int(int fd, int cmd, int arg) { return fcntl(fd, cmd, arg); }
int berth_ioctl_int(int fd, unsigned long request, int arg) { return ioctl(fd, request, arg); }
int berth_ioctl_ptr(int fd, unsigned long request, void *arg) { return ioctl(fd, request, arg); }
int berth_prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5) {
    return prctl(option, a2, a3, a4, a5);
}

int berth_wait_status_exited(int status) { return WIFEXITED(status); }
int berth_wait_status_exit_code(int status) { return WEXITSTATUS(status); }
int berth_wait_status_signaled(int status) { return WIFSIGNALED(status); }
int berth_wait_status_signal(int status) { return WTERMSIG(status); }

int berth_send_fd(int sock, int fd, const void *data, size_t length) {
    char byte = 0;
    struct iovec iov = {.iov_base = length ? (void *)data : &byte, .iov_len = length ? length : 1};
    union {
        char buffer[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof(control));
    struct msghdr message = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buffer,
                             .msg_controllen = sizeof(control.buffer)};
    struct cmsghdr *header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(header), &fd, sizeof(int));
    ssize_t sent;
    do { sent = sendmsg(sock, &message, MSG_NOSIGNAL); } while (sent < 0 && errno == EINTR);
    return sent < 0 ? -1 : 0;
}

ssize_t berth_recv_fd(int sock, int *fd, void *data, size_t length) {
    *fd = -1;
    struct iovec iov = {.iov_base = data, .iov_len = length};
    union {
        char buffer[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    struct msghdr message = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buffer,
                             .msg_controllen = sizeof(control.buffer)};
    ssize_t received;
    do { received = recvmsg(sock, &message, MSG_CMSG_CLOEXEC); } while (received < 0 && errno == EINTR);
    if (received < 0) return -1;
    for (struct cmsghdr *h = CMSG_FIRSTHDR(&message); h; h = CMSG_NXTHDR(&message, h)) {
        if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS) memcpy(fd, CMSG_DATA(h), sizeof(int));
    }
    return received;
}

int berth_open_pty(int *master, char *slave_name, size_t slave_name_length) {
    int fd = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) return -1;
    if (grantpt(fd) < 0 || unlockpt(fd) < 0 || ptsname_r(fd, slave_name, slave_name_length) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    *master = fd;
    return 0;
}

int berth_malloc_arena_max(int arenas) { return mallopt(M_ARENA_MAX, arenas); }

int berth_malloc_trim(void) { return malloc_trim(0); }
