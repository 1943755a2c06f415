/* LD_PRELOAD helper of tests/tools/hostile.sh: makes a hostile environment happen at a known
 * moment inside an unmodified tool, so that the test is deterministic.
 *
 *   HOSTILE_TRUNCATE=PATH:BYTES   right after the tool maps PATH (mmap of a descriptor open on
 *                                 it), truncate PATH to BYTES: every later read of the mapping
 *                                 past BYTES faults as if another process had truncated it
 *   HOSTILE_SLOW_WRITE_MS=N       every write() to a file whose name contains ".tmp-" (the atomic
 *                                 writer's temp files) first sleeps N ms, so that a test can
 *                                 signal the tool while its temp file exists
 * Nothing happens without these variables. Not for: anything but tests. */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static int fd_path(int fd, char *buf, size_t size)
{
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, buf, size - 1);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    return 0;
}

void *mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset)
{
    static void *(*real)(void *, size_t, int, int, int, off_t);
    if (!real)
        real = (void *(*)(void *, size_t, int, int, int, off_t))dlsym(RTLD_NEXT, "mmap");
    void *p = real(addr, length, prot, flags, fd, offset);
    static int done;
    const char *spec = getenv("HOSTILE_TRUNCATE");
    char path[PATH_MAX];
    if (p == MAP_FAILED || done || !spec || fd < 0 || fd_path(fd, path, sizeof path) != 0)
        return p;
    const char *colon = strrchr(spec, ':');
    if (!colon || (size_t)(colon - spec) != strlen(path) || strncmp(spec, path, strlen(path)))
        return p;
    done = 1;
    if (truncate(path, strtoll(colon + 1, NULL, 10)) != 0)
        perror("hostile_preload: truncate");
    return p;
}

ssize_t write(int fd, const void *buf, size_t count)
{
    static ssize_t (*real)(int, const void *, size_t);
    if (!real)
        real = (ssize_t(*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
    const char *ms = getenv("HOSTILE_SLOW_WRITE_MS");
    char path[PATH_MAX];
    if (ms && fd > 2 && fd_path(fd, path, sizeof path) == 0 && strstr(path, ".tmp-")) {
        int saved = errno;
        long v = strtol(ms, NULL, 10);
        struct timespec ts = {v / 1000, (v % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        errno = saved;
    }
    return real(fd, buf, count);
}
