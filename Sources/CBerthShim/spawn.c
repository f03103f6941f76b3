// The child side of berth_spawn: runs between clone and exec, so it uses raw system calls only
// (no malloc, no stdio, no locks), and reports a failure as {step, errno} on the error pipe.
#define _GNU_SOURCE
#include "berth_shim.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

__attribute__((noreturn)) static void child_fail(const struct berth_spawn_args *args, int step) {
    struct berth_spawn_error report = {.step = step, .error = errno};
    ssize_t ignored = write(args->error_fd, &report, sizeof(report));
    (void)ignored;
    _exit(127);
}

static int has_join(const struct berth_spawn_args *args, int type) {
    for (int i = 0; i < args->join_count; i++)
        if (args->join_types[i] == type) return 1;
    return 0;
}

#define NAMESPACE_FLAGS (CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | \
                         CLONE_NEWNET | 0x80 /* CLONE_NEWTIME */)

/// The namespaces to create after the joins (see berth_shim.h): all of them when a user namespace is joined.
static uint64_t deferred_namespaces(const struct berth_spawn_args *args) {
    return has_join(args, CLONE_NEWUSER) ? (args->clone_flags & NAMESPACE_FLAGS) : 0;
}

static long clone_into(uint64_t flags, int cgroup_fd) {
    struct clone_args clone = {0};
    clone.flags = flags;
    // With CLONE_PARENT the child signals our parent as we would; clone3 then wants exit_signal 0.
    clone.exit_signal = (flags & CLONE_PARENT) ? 0 : SIGCHLD;
    if (cgroup_fd >= 0) {
        clone.flags |= CLONE_INTO_CGROUP;
        clone.cgroup = (uint64_t)cgroup_fd;
    }
    return syscall(SYS_clone3, &clone, sizeof(clone));
}

__attribute__((noreturn)) static void child_main(const struct berth_spawn_args *args) {
    // `run` and `exec` block the signals they forward; the child (and what it execs) starts with none blocked.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    if (args->parent_death_signal && prctl(PR_SET_PDEATHSIG, args->parent_death_signal, 0, 0, 0) < 0)
        child_fail(args, BERTH_SPAWN_STEP_PRCTL);

    if (args->sync_fd >= 0) {
        char byte;
        ssize_t n;
        do { n = read(args->sync_fd, &byte, 1); } while (n < 0 && errno == EINTR);
        if (n != 1) {
            if (n == 0) errno = EPIPE;
            child_fail(args, BERTH_SPAWN_STEP_SYNC);
        }
    }

    if (args->become_root && (args->clone_flags & CLONE_NEWUSER)) {
        if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) child_fail(args, BERTH_SPAWN_STEP_SETID);
    }

    // The sealed binary is prepared while still privileged in the runtime's user namespace, before any
    // setns: a temporary mount namespace when the container's own is joined or made later (or there is none:
    // the runtime's is then joined back), else the new one.
    uint64_t deferred = deferred_namespaces(args);
    uint64_t cloned = args->clone_flags & ~deferred;
    int exe_fd = -1;
    if (args->sealed_exe) {
        int joins_mount = has_join(args, CLONE_NEWNS);
        if ((joins_mount || !(cloned & CLONE_NEWNS)) && unshare(CLONE_NEWNS) < 0)
            child_fail(args, BERTH_SPAWN_STEP_UNSHARE);
        if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0) child_fail(args, BERTH_SPAWN_STEP_MOUNT);
        if (mount(args->sealed_exe, args->sealed_exe, NULL, MS_BIND, NULL) < 0)
            child_fail(args, BERTH_SPAWN_STEP_MOUNT);
        if (mount(NULL, args->sealed_exe, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
            child_fail(args, BERTH_SPAWN_STEP_MOUNT);
        exe_fd = open(args->sealed_exe, O_PATH | O_CLOEXEC);
        if (exe_fd < 0) child_fail(args, BERTH_SPAWN_STEP_OPEN);
    }

    for (int i = 0; i < args->join_count; i++) {
        if (setns(args->join_fds[i], args->join_types[i]) < 0) child_fail(args, BERTH_SPAWN_STEP_SETNS);
    }

    if (args->become_root && !(args->clone_flags & CLONE_NEWUSER)) {
        for (int i = 0; i < args->join_count; i++) {
            if (args->join_types[i] == CLONE_NEWUSER && (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0))
                child_fail(args, BERTH_SPAWN_STEP_SETID);
        }
    }

    // Inside the joined user namespace now: what is created here belongs to it.
    if ((deferred & ~(uint64_t)CLONE_NEWPID) && unshare((int)(deferred & ~(uint64_t)CLONE_NEWPID)) < 0)
        child_fail(args, BERTH_SPAWN_STEP_UNSHARE);
    if (deferred & CLONE_NEWPID) {
        // The cgroup is inherited from this process, already where it belongs.
        long init = clone_into(CLONE_PARENT | CLONE_NEWPID, -1);
        if (init < 0) child_fail(args, BERTH_SPAWN_STEP_CLONE);
        if (init > 0) {
            struct berth_spawn_error report = {.step = BERTH_SPAWN_REPORT_PID, .error = (int)init};
            ssize_t ignored = write(args->error_fd, &report, sizeof(report));
            (void)ignored;
            _exit(0);
        }
    }

    if (exe_fd >= 0) {
        syscall(SYS_execveat, exe_fd, "", args->argv, args->envp, AT_EMPTY_PATH);
    } else {
        execve(args->exec_path, args->argv, args->envp);
    }
    child_fail(args, BERTH_SPAWN_STEP_EXEC);
}

pid_t berth_spawn(const struct berth_spawn_args *args) {
    uint64_t flags = args->clone_flags & ~deferred_namespaces(args);
    long pid = clone_into(flags, args->cgroup_fd);
    if (pid < 0 && errno == ENOSYS && !(flags & 0x80 /* CLONE_NEWTIME */) && args->cgroup_fd < 0) {
        pid = syscall(SYS_clone, (unsigned long)flags | SIGCHLD, 0, 0, 0, 0);
    }
    if (pid == 0) child_main(args);
    return (pid_t)pid;
}
