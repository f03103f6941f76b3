// The bpf(2) system call for cgroup v2 device control (see berth_shim.h). In C because glibc has no
// bpf() wrapper and `union bpf_attr` (linux/bpf.h) is a large union Swift cannot build field by field.
#define _GNU_SOURCE
#include "berth_shim.h"

#include <errno.h>
#include <linux/bpf.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int berth_bpf_attach_device_program(int cgroup_fd, const uint64_t *instructions, unsigned int count,
                                    char *log, unsigned int log_size) {
    union bpf_attr load;
    memset(&load, 0, sizeof(load));
    load.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
    load.insns = (uint64_t)(uintptr_t)instructions;
    load.insn_cnt = count;
    load.license = (uint64_t)(uintptr_t)"Apache";
    int program = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &load, sizeof(load));
    if (program < 0 && log != NULL && log_size > 0) {
        // Load again with the verifier log on, only to explain the failure.
        int saved = errno;
        log[0] = 0;
        load.log_buf = (uint64_t)(uintptr_t)log;
        load.log_size = log_size;
        load.log_level = 1;
        program = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &load, sizeof(load));
        if (program < 0) errno = saved;
    }
    if (program < 0) return -1;

    union bpf_attr attach;
    memset(&attach, 0, sizeof(attach));
    attach.target_fd = (uint32_t)cgroup_fd;
    attach.attach_bpf_fd = (uint32_t)program;
    attach.attach_type = BPF_CGROUP_DEVICE;
    attach.attach_flags = BPF_F_ALLOW_MULTI;
    if (syscall(SYS_bpf, BPF_PROG_ATTACH, &attach, sizeof(attach)) < 0) {
        int saved = errno;
        close(program);
        errno = saved;
        return -1;
    }
    return program;
}

// A classic-BPF seccomp filter loaded with seccomp(2) directly, for filters compiled once by libseccomp
// and kept (BerthRuntime.SeccompCache): `count` 8-byte `struct sock_filter`. In C because glibc has no
// seccomp() wrapper.
#include <linux/filter.h>
#include <linux/seccomp.h>

int berth_seccomp_set_filter(const void *instructions, unsigned int count, unsigned int flags) {
    struct sock_fprog program = {.len = (unsigned short)count, .filter = (struct sock_filter *)instructions};
    if (count == 0 || count > 0xffff) {
        errno = EINVAL;
        return -1;
    }
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &program);
}
