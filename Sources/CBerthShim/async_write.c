// A write(2) on a helper thread. Moving a process into a cgroup v1 hierarchy (a write to cgroup.procs)
// waits out an RCU grace period in the kernel — 6 to 20 ms here — and every further move within the next
// grace period is quick. The runtime starts the first move on a thread and carries on making the other
// cgroups meanwhile. Swift cannot hand a closure to pthread_create without an escaping context, hence C.
#define _GNU_SOURCE
#include "berth_shim.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct berth_async_write {
    pthread_t thread;
    char *path;
    char *data;
    int error;
};

static void *async_write_main(void *argument) {
    struct berth_async_write *job = argument;
    int fd = open(job->path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        job->error = errno;
        return NULL;
    }
    size_t length = strlen(job->data);
    ssize_t written;
    do { written = write(fd, job->data, length); } while (written < 0 && errno == EINTR);
    job->error = written < 0 ? errno : (written == (ssize_t)length ? 0 : EIO);
    close(fd);
    return NULL;
}

struct berth_async_write *berth_write_file_async(const char *path, const char *data) {
    struct berth_async_write *job = calloc(1, sizeof(*job));
    if (!job) return NULL;
    job->path = strdup(path);
    job->data = strdup(data);
    if (!job->path || !job->data) goto fail;
    int error = pthread_create(&job->thread, NULL, async_write_main, job);
    if (error != 0) {
        errno = error;
        goto fail;
    }
    return job;
fail:
    free(job->path);
    free(job->data);
    free(job);
    return NULL;
}

int berth_write_file_wait(struct berth_async_write *job) {
    pthread_join(job->thread, NULL);
    int error = job->error;
    free(job->path);
    free(job->data);
    free(job);
    return error;
}
