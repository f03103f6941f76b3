// Pinned network namespaces (what `ip netns add` and CNI's Go `ns` package do), in C because:
// - unshare(CLONE_NEWNET) changes the namespace of the calling *thread*. In a multithreaded Swift
//   process that must never be a cooperative-pool thread (later tasks on it would silently run in the
//   container's network). A dedicated pthread that exits right after is the only safe carrier, and
//   Swift cannot hand a closure to pthread_create without an escaping context.
// - bringing `lo` up needs ioctl(SIOCSIFFLAGS), a variadic call Swift does not import.
#define _GNU_SOURCE
#include "berth_shim.h"

#include <errno.h>
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
