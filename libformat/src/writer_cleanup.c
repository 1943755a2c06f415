/* Removal of the temp files that killed writers leave behind ("<path>.tmp-XXXXXX").
 * A live writer holds an exclusive flock on its temp file from rf_writer_open until it is
 * committed or aborted; a temp file that can be locked belongs to a writer that is gone.
 * Not for: removing anything but the temp files of one destination path. */
#include "io.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define TEMP_INFIX      ".tmp-"
#define TEMP_SUFFIX_LEN 6 /* mkostemp's XXXXXX */

static bool is_temp_name(const char *name, const char *base, size_t base_len)
{
    size_t infix_len = sizeof TEMP_INFIX - 1;
    if (strlen(name) != base_len + infix_len + TEMP_SUFFIX_LEN ||
        memcmp(name, base, base_len) != 0 || memcmp(name + base_len, TEMP_INFIX, infix_len) != 0)
        return false;
    for (const char *p = name + base_len + infix_len; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
            return false;
    }
    return true;
}

/* Removes name (in dfd) if no live writer holds its lock. Returns 1 if removed. */
static int remove_if_stale(int dfd, const char *name)
{
    int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return 0;
    int removed = 0;
    struct stat held, now;
    if (fstat(fd, &held) == 0 && S_ISREG(held.st_mode) && flock(fd, LOCK_EX | LOCK_NB) == 0) {
        /* Unlink only if the name still is the file we locked: a writer that committed in the
         * meantime renamed it to the destination. */
        if (fstatat(dfd, name, &now, AT_SYMLINK_NOFOLLOW) == 0 && now.st_ino == held.st_ino &&
            now.st_dev == held.st_dev && unlinkat(dfd, name, 0) == 0)
            removed = 1;
    }
    close(fd);
    return removed;
}

int rf_writer_cleanup_stale(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t dir_len = slash ? (size_t)(slash - path) : 0;
    if (!*base)
        return 0;
    char *dir = malloc(dir_len + 2);
    if (!dir)
        return -1;
    if (!slash)
        memcpy(dir, ".", 2);
    else if (dir_len == 0)
        memcpy(dir, "/", 2);
    else {
        memcpy(dir, path, dir_len);
        dir[dir_len] = '\0';
    }
    DIR *d = opendir(dir);
    free(dir);
    if (!d)
        return -1;
    size_t base_len = strlen(base);
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (is_temp_name(e->d_name, base, base_len))
            removed += remove_if_stale(dirfd(d), e->d_name);
    }
    closedir(d);
    return removed;
}
