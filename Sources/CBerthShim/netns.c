// Pinned network namespaces (what `ip netns add` and CNI's Go `ns` package do), in C because:
// - unshare(CLONE_NEWNET) changes the namespace of the calling *thread*. In a multithreaded Swift
//   process that must never be a cooperative-pool thread (later tasks on it would silently run in the
//   container's network). A dedicated pthread that exits right after is the only safe carrier, and
//   Swift cannot hand a closure to pthread_create without an escaping context.
// - bringing `lo` up needs ioctl(SIOCSIFFLAGS), a variadic call Swift does not import.
#define _GNU_SOURCE
#include "berth_shim.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

struct netns_job {
    const char *path;
    int step;
    int error;
};

static void *netns_create_main(void *argument) {
    struct netns_job *job = argument;
    if (unshare(CLONE_NEWNET) < 0) {
        job->step = BERTH_NETNS_STEP_UNSHARE;
        job->error = errno;
        return NULL;
    }
    // The bind mount keeps the namespace alive after this thread (its only member) is gone.
    if (mount("/proc/thread-self/ns/net", job->path, "none", MS_BIND, NULL) < 0) {
        job->step = BERTH_NETNS_STEP_MOUNT;
        job->error = errno;
        return NULL;
    }
    // A socket made now belongs to the new namespace: use it to set lo up (a fresh namespace has it down).
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        job->step = BERTH_NETNS_STEP_SOCKET;
        job->error = errno;
        return NULL;
    }
    struct ifreq request;
    memset(&request, 0, sizeof(request));
    strncpy(request.ifr_name, "lo", IFNAMSIZ - 1);
    if (ioctl(fd, SIOCGIFFLAGS, &request) < 0) {
        job->step = BERTH_NETNS_STEP_GET_FLAGS;
        job->error = errno;
    } else {
        request.ifr_flags |= IFF_UP | IFF_RUNNING;
        if (ioctl(fd, SIOCSIFFLAGS, &request) < 0) {
            job->step = BERTH_NETNS_STEP_SET_FLAGS;
            job->error = errno;
        }
    }
    close(fd);
    return NULL;
}

int berth_netns_create(const char *path, int *failed_step) {
    struct netns_job job = { .path = path, .step = 0, .error = 0 };
    pthread_t thread;
    int error = pthread_create(&thread, NULL, netns_create_main, &job);
    if (error != 0) {
        *failed_step = BERTH_NETNS_STEP_THREAD;
        return error;
    }
    pthread_join(thread, NULL);
    *failed_step = job.step;
    return job.error;
}

struct namespace_pin_job {
    const char *path;
    int flag;
    const char *name;
    const char *hostname;
    int step;
    int error;
};

// Same carrier as above, for the IPC and UTS namespaces of a pod sandbox: the namespace is the thread's
// alone, so the process's other threads never see the new hostname or IPC objects.
static void *namespace_pin_main(void *argument) {
    struct namespace_pin_job *job = argument;
    if (unshare(job->flag) < 0) {
        job->step = BERTH_NETNS_STEP_UNSHARE;
        job->error = errno;
        return NULL;
    }
    if (job->hostname != NULL && sethostname(job->hostname, strlen(job->hostname)) < 0) {
        job->step = BERTH_NETNS_STEP_HOSTNAME;
        job->error = errno;
        return NULL;
    }
    char source[64];
    snprintf(source, sizeof(source), "/proc/thread-self/ns/%s", job->name);
    if (mount(source, job->path, "none", MS_BIND, NULL) < 0) {
        job->step = BERTH_NETNS_STEP_MOUNT;
        job->error = errno;
    }
    return NULL;
}

int berth_namespace_pin(const char *path, int flag, const char *name, const char *hostname, int *failed_step) {
    struct namespace_pin_job job = { .path = path, .flag = flag, .name = name, .hostname = hostname };
    pthread_t thread;
    int error = pthread_create(&thread, NULL, namespace_pin_main, &job);
    if (error != 0) {
        *failed_step = BERTH_NETNS_STEP_THREAD;
        return error;
    }
    pthread_join(thread, NULL);
    *failed_step = job.step;
    return job.error;
}

// A socket bound inside another network namespace, for the embedded DNS resolver in a container's
// monitor. A socket belongs to the namespace of the thread that created it and keeps it for life, so
// the calling thread joins the namespace, makes and binds the socket, and goes back. In C so that no
// Swift code (which could allocate, log or throw) runs while the thread is in the container's network;
// the caller (the single-threaded monitor) must not run other threads that expect the host's network.
// Moves the calling thread into the network namespace at `netns_path`; the thread's own is kept open in
// *original for leave_netns. 0, or -errno with the failed step in *failed_step.
static int enter_netns(const char *netns_path, int *original, int *failed_step) {
    *original = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (*original < 0) {
        *failed_step = BERTH_NETNS_STEP_OPEN;
        return -errno;
    }
    int target = open(netns_path, O_RDONLY | O_CLOEXEC);
    if (target < 0) {
        int error = errno;
        close(*original);
        *failed_step = BERTH_NETNS_STEP_OPEN;
        return -error;
    }
    if (setns(target, CLONE_NEWNET) < 0) {
        int error = errno;
        close(target);
        close(*original);
        *failed_step = BERTH_NETNS_STEP_SETNS;
        return -error;
    }
    close(target);
    return 0;
}

// Back to where the thread was; if that fails the process must not go on in the wrong network.
static void leave_netns(int original) {
    if (setns(original, CLONE_NEWNET) < 0) abort();
    close(original);
}

int berth_socket_in_netns(const char *netns_path, int type, uint32_t address, uint16_t port, int *failed_step) {
    int original;
    int entered = enter_netns(netns_path, &original, failed_step);
    if (entered < 0) return entered;
    int result = socket(AF_INET, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (result < 0) {
        result = -errno;
        *failed_step = BERTH_NETNS_STEP_SOCKET;
    } else {
        int on = 1;
        setsockopt(result, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
        struct sockaddr_in sa;
        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;
        sa.sin_port = htons(port);
        sa.sin_addr.s_addr = htonl(address);
        if (bind(result, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
            (type == SOCK_STREAM && listen(result, 64) < 0)) {
            int error = errno;
            close(result);
            result = -error;
            *failed_step = BERTH_NETNS_STEP_BIND;
        }
    }
    leave_netns(original);
    return result;
}

int berth_stream_socket_in_netns(const char *netns_path, int *failed_step) {
    int original;
    int entered = enter_netns(netns_path, &original, failed_step);
    if (entered < 0) return entered;
    int result = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (result < 0) {
        result = -errno;
        *failed_step = BERTH_NETNS_STEP_SOCKET;
    }
    leave_netns(original);
    return result;
}
