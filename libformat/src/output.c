/* Output paths (see rosetta/output.h): the checks before a write, and the temp files of live
 * writers that a terminating signal removes.
 * Not for: the writing itself (writer.c) or the clean-up of temp files that killed processes
 * left (writer_cleanup.c). */
#include "output_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io.h"
#include "model_internal.h"

/* ---- what is at a path ------------------------------------------------------------------- */

static const char *kind_of(mode_t mode)
{
    if (S_ISDIR(mode))
        return "a directory";
    if (S_ISCHR(mode))
        return "a character device";
    if (S_ISBLK(mode))
        return "a block device";
    if (S_ISFIFO(mode))
        return "a FIFO";
    if (S_ISSOCK(mode))
        return "a socket";
    if (S_ISLNK(mode))
        return "a dangling symbolic link";
    return "not a regular file";
}

rf_status rfi_output_refuse_special(const char *path, rf_error *err)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return RF_OK; /* absent: the writer creates it */
    const char *via = "";
    if (S_ISLNK(st.st_mode)) {
        if (stat(path, &st) != 0)
            return RF_OK; /* a dangling link is replaced by the new file, as rename does */
        via = " (through a symbolic link)";
    }
    if (S_ISREG(st.st_mode))
        return RF_OK;
    return rf_error_set(err, RF_ERR_ARGUMENT,
                        "%s: is %s%s, not a regular file: refusing to replace it (outputs are "
                        "written to a temp file and renamed over the path)",
                        path, kind_of(st.st_mode), via);
}

/* ---- the checks before a write ------------------------------------------------------------ */

/* The directory an output at path is created in (path without its last component and trailing
 * slashes), "." for a bare name. */
static void parent_of(const char *path, char *out, size_t size)
{
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/')
        len--;
    while (len > 0 && path[len - 1] != '/')
        len--;
    while (len > 1 && path[len - 1] == '/')
        len--;
    if (len == 0)
        snprintf(out, size, ".");
    else
        snprintf(out, size, "%.*s", (int)len, path);
}

static bool same_inode(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* Files a SafeTensors reader reads beside the weights (hf_companions.c, safetensors_index.c). */
static const char *const BESIDE_WEIGHTS[] = {
    "config.json",           "generation_config.json", "tokenizer.json",
    "tokenizer_config.json", "chat_template.jinja",    "model.safetensors.index.json",
};

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Whether the output (existing: *out) is one of the input's files, or for a directory output the
 * directory that holds its SafeTensors files. Names the input file in *which. */
static bool hits_input(const rf_model *input, const struct stat *out, rf_output_kind kind,
                       char *which, size_t which_size)
{
    size_t n = rf_model_n_files(input);
    for (size_t k = 0; k < n; k++) {
        const rf_file *f = rf_model_file(input, k);
        const char *p = f ? rf_file_path(f) : NULL;
        struct stat st;
        if (!p || stat(p, &st) != 0)
            continue;
        char dir[PATH_MAX];
        parent_of(p, dir, sizeof dir);
        struct stat dst;
        bool safetensors = ends_with(p, ".safetensors");
        if (kind == RF_OUTPUT_FILE && same_inode(&st, out)) {
            snprintf(which, which_size, "%s", p);
            return true;
        }
        if (!safetensors || stat(dir, &dst) != 0)
            continue;
        if (kind == RF_OUTPUT_DIRECTORY && same_inode(&dst, out)) {
            snprintf(which, which_size, "%s", p);
            return true;
        }
        for (size_t c = 0;
             kind == RF_OUTPUT_FILE && c < sizeof BESIDE_WEIGHTS / sizeof *BESIDE_WEIGHTS; c++) {
            char beside[PATH_MAX + 64];
            snprintf(beside, sizeof beside, "%s/%s", dir, BESIDE_WEIGHTS[c]);
            if (stat(beside, &st) == 0 && same_inode(&st, out)) {
                snprintf(which, which_size, "%s", beside);
                return true;
            }
        }
    }
    return false;
}

rf_status rf_output_check(const char *path, const rf_output_check_options *opts, rf_error *err)
{
    static const rf_output_check_options defaults = {RF_OUTPUT_FILE, NULL, false};
    if (!opts)
        opts = &defaults;
    if (!path || !*path)
        return rf_error_set(err, RF_ERR_ARGUMENT, "no output path");
    const bool dir_out = opts->kind == RF_OUTPUT_DIRECTORY;
    struct stat st;
    bool exists = stat(path, &st) == 0;
    if (dir_out) {
        if (exists && !S_ISDIR(st.st_mode))
            return rf_error_set(err, RF_ERR_ARGUMENT,
                                "%s: is %s, but this output is a directory of files", path,
                                S_ISREG(st.st_mode) ? "a file" : kind_of(st.st_mode));
    } else {
        rf_status s = rfi_output_refuse_special(path, err);
        if (s != RF_OK)
            return s;
        if (ends_with(path, "/"))
            return rf_error_set(err, RF_ERR_ARGUMENT,
                                "%s: ends in '/', but this output is a single file: name the "
                                "file",
                                path);
    }
    char which[PATH_MAX + 64];
    if (exists && opts->input && !opts->replace_input &&
        hits_input(opts->input, &st, opts->kind, which, sizeof which)) {
        if (dir_out)
            return rf_error_set(err, RF_ERR_ARGUMENT,
                                "%s: is the directory of the input model (%s): writing there "
                                "would replace the input's files; choose another directory, or "
                                "force it",
                                path, which);
        return rf_error_set(err, RF_ERR_ARGUMENT,
                            "%s: is a file of the input model (%s): writing there would replace "
                            "it; choose another output path, or force it",
                            path, which);
    }
    /* Where the files are created: the directory itself when it exists, else its parent. */
    char where[PATH_MAX];
    if (dir_out && exists)
        snprintf(where, sizeof where, "%s", path);
    else
        parent_of(path, where, sizeof where);
    struct stat wst;
    if (stat(where, &wst) != 0)
        return rf_error_set(err, RF_ERR_WRITE, "%s: cannot write there: directory %s: %s", path,
                            where, strerror(errno));
    if (!S_ISDIR(wst.st_mode))
        return rf_error_set(err, RF_ERR_WRITE, "%s: cannot write there: %s is not a directory",
                            path, where);
    if (access(where, W_OK | X_OK) != 0)
        return rf_error_set(err, RF_ERR_WRITE, "%s: cannot write there: directory %s: %s", path,
                            where, strerror(errno));
    return RF_OK;
}

/* ---- temp files of live writers, removed on a terminating signal ---------------------------- */

static const int CLEANUP_SIGNALS[] = {SIGINT, SIGTERM, SIGHUP};

/* Slots hold the paths, written before the file exists, so that the handler does nothing but
 * unlink (async-signal-safe). A slot is LIVE while its path may name a temp file (or a staging
 * directory: dir set). */
#define TEMP_SLOTS 32
enum { SLOT_FREE, SLOT_BUSY, SLOT_LIVE };

static struct {
    atomic_int state;
    bool dir;
    char path[PATH_MAX];
} temps[TEMP_SLOTS];

static int remember(const char *path, bool dir)
{
    if (strlen(path) >= PATH_MAX)
        return -1;
    for (int i = 0; i < TEMP_SLOTS; i++) {
        int expected = SLOT_FREE;
        if (atomic_compare_exchange_strong(&temps[i].state, &expected, SLOT_BUSY)) {
            memcpy(temps[i].path, path, strlen(path) + 1);
            temps[i].dir = dir;
            atomic_store(&temps[i].state, SLOT_LIVE);
            return i;
        }
    }
    return -1;
}

int rfi_output_temp_remember(const char *temp_path) { return remember(temp_path, false); }

char *rfi_output_mkdtemp(char *template_path, int *slot)
{
    /* the terminating signals wait until the directory exists and is recorded for removal */
    sigset_t block, saved;
    sigemptyset(&block);
    for (size_t i = 0; i < sizeof CLEANUP_SIGNALS / sizeof *CLEANUP_SIGNALS; i++)
        sigaddset(&block, CLEANUP_SIGNALS[i]);
    pthread_sigmask(SIG_BLOCK, &block, &saved);
    char *made = mkdtemp(template_path);
    int made_errno = errno;
    *slot = made ? remember(made, true) : -1;
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    errno = made_errno;
    return made;
}

void rfi_output_temp_forget(int slot)
{
    if (slot < 0 || slot >= TEMP_SLOTS)
        return;
    atomic_store(&temps[slot].state, SLOT_BUSY); /* the handler skips it from now on */
    atomic_store(&temps[slot].state, SLOT_FREE);
}

/* Removes the plain files of directory path, then path itself, with system calls only (open,
 * getdents64, unlinkat, rmdir: no allocation, no stdio), for the signal handler. */
static void remove_directory(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        _Alignas(struct dirent64) char buf[4096];
        for (int rounds = 0; rounds < 1024; rounds++) {
            ssize_t n = getdents64(fd, buf, sizeof buf);
            if (n <= 0)
                break;
            for (ssize_t at = 0; at < n;) {
                const struct dirent64 *e = (const struct dirent64 *)(const void *)(buf + at);
                const char *name = e->d_name;
                if (!(name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'))))
                    unlinkat(fd, name, 0);
                at += e->d_reclen;
            }
        }
        close(fd);
    }
    rmdir(path);
}

void rf_output_remove_temps(void)
{
    /* files first: a writer's temp file may lie in a staging directory */
    for (int i = 0; i < TEMP_SLOTS; i++)
        if (atomic_load(&temps[i].state) == SLOT_LIVE && !temps[i].dir)
            unlink(temps[i].path);
    for (int i = 0; i < TEMP_SLOTS; i++)
        if (atomic_load(&temps[i].state) == SLOT_LIVE && temps[i].dir)
            remove_directory(temps[i].path);
}

static void on_terminate(int sig)
{
    int saved = errno;
    rf_output_remove_temps();
    /* SA_RESETHAND restored the default action and the signal is blocked while this handler
     * runs: raised again, it ends the process as soon as the handler returns, as it would have
     * without us (the parent sees "killed by SIGINT": status 130 in a shell). */
    raise(sig);
    errno = saved;
}

static pthread_once_t signals_once = PTHREAD_ONCE_INIT;
static int signals_errno;

static void install_signals(void)
{
    for (size_t i = 0; i < sizeof CLEANUP_SIGNALS / sizeof *CLEANUP_SIGNALS; i++) {
        struct sigaction old;
        if (sigaction(CLEANUP_SIGNALS[i], NULL, &old) != 0) {
            signals_errno = errno;
            continue;
        }
        /* an ignored signal (nohup, a background job) or a program's handler stays as it is */
        if ((old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL)
            continue;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_terminate;
        sa.sa_flags = SA_RESETHAND;
        sigemptyset(&sa.sa_mask);
        if (sigaction(CLEANUP_SIGNALS[i], &sa, NULL) != 0)
            signals_errno = errno;
    }
}

rf_status rf_output_cleanup_on_signals(void)
{
    pthread_once(&signals_once, install_signals);
    if (signals_errno)
        return RF_ERR_IO;
    return RF_OK;
}
