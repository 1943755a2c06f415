/* SIGBUS guard for mapped input. Touching a page of a mapping past the current end of its file
 * (another process truncated the file after it was mapped) raises SIGBUS with si_code
 * BUS_ADRERR. Inside rf_mapped_call that signal ends the guarded function and becomes an
 * RF_ERR_IO error naming the file and offset; outside a guard, or for any other SIGBUS, the
 * previous disposition applies (by default the process dies, as before).
 * Not for: SIGSEGV (a wild pointer is a bug, never an input problem). */
#include "model_internal.h"
#include "io.h"
#include "rosetta/model.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>

typedef struct guard_frame {
    sigjmp_buf jump;
    const rf_file *const *files; /* the files to name in the error, or */
    size_t n_files;
    const rf_model *model; /* the files of this model */
    const uint8_t *volatile fault_addr;
    struct guard_frame *prev;
} guard_frame;

static _Thread_local guard_frame *current_frame;
static struct sigaction previous_action;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;
static int install_errno;

static void on_sigbus(int sig, siginfo_t *info, void *uctx)
{
    guard_frame *frame = current_frame;
    if (frame && info && info->si_code == BUS_ADRERR) {
        frame->fault_addr = info->si_addr;
        siglongjmp(frame->jump, 1);
    }
    /* Not a truncated mapping inside a guard: behave as if the guard did not exist. */
    if (previous_action.sa_flags & SA_SIGINFO) {
        previous_action.sa_sigaction(sig, info, uctx);
    } else if (previous_action.sa_handler != SIG_DFL && previous_action.sa_handler != SIG_IGN) {
        previous_action.sa_handler(sig);
    } else {
        /* Default action: restore it and let the signal take the process down. A fault
         * re-executes the instruction; a signal sent with kill() is raised again. */
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        sigemptyset(&dfl.sa_mask);
        sigaction(SIGBUS, &dfl, NULL);
        if (!info || info->si_code <= 0)
            raise(SIGBUS);
    }
}

static void install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGBUS, &sa, &previous_action) != 0)
        install_errno = errno;
}

/* The file whose mapping holds addr, and the offset in it. */
static const rf_file *find_file(const guard_frame *frame, const uint8_t *addr, uint64_t *offset)
{
    size_t n = frame->model ? rf_model_n_files(frame->model) : frame->n_files;
    for (size_t k = 0; k < n; k++) {
        const rf_file *f = frame->model ? rf_model_file(frame->model, k) : frame->files[k];
        const uint8_t *base = f ? rf_file_data(f) : NULL;
        if (base && addr >= base && (uint64_t)(addr - base) < rf_file_size(f)) {
            *offset = (uint64_t)(addr - base);
            return f;
        }
    }
    return NULL;
}

static rf_status guarded_call(const rf_file *const *files, size_t n_files, const rf_model *model,
                              rf_mapped_fn fn, void *ctx, rf_error *err)
{
    pthread_once(&install_once, install);
    if (install_errno)
        return rf_error_set(err, RF_ERR_IO,
                            "cannot install the SIGBUS handler for mapped input: %s",
                            strerror(install_errno));
    guard_frame frame;
    memset(&frame, 0, sizeof frame);
    frame.files = files;
    frame.n_files = n_files;
    frame.model = model;
    frame.prev = current_frame;
    /* Saving the signal mask (second argument 1) unblocks SIGBUS again after the jump. */
    if (sigsetjmp(frame.jump, 1) == 0) {
        current_frame = &frame;
        rf_status st = fn(ctx, err);
        current_frame = frame.prev;
        return st;
    }
    current_frame = frame.prev;
    const uint8_t *addr = frame.fault_addr;
    uint64_t offset = 0;
    const rf_file *f = find_file(&frame, addr, &offset);
    if (!f)
        return rf_error_set(err, RF_ERR_IO,
                            "mapped input: read at address %p failed (SIGBUS): a mapped file was "
                            "truncated or replaced while in use",
                            (const void *)addr);
    struct stat st;
    const char *path = rf_file_path(f);
    if (stat(path, &st) == 0)
        return rf_error_set(err, RF_ERR_IO,
                            "%s: file changed while in use: read at offset %llu failed (SIGBUS): "
                            "mapped %llu bytes, the file now has %llu",
                            path, (unsigned long long)offset, (unsigned long long)rf_file_size(f),
                            (unsigned long long)st.st_size);
    return rf_error_set(err, RF_ERR_IO,
                        "%s: file changed while in use: read at offset %llu failed (SIGBUS): "
                        "mapped %llu bytes, the file is gone: %s",
                        path, (unsigned long long)offset, (unsigned long long)rf_file_size(f),
                        strerror(errno));
}

rf_status rf_mapped_call(const rf_file *const *files, size_t n_files, rf_mapped_fn fn, void *ctx,
                         rf_error *err)
{
    return guarded_call(files, n_files, NULL, fn, ctx, err);
}

rf_status rf_model_mapped_call(const rf_model *model, rf_mapped_fn fn, void *ctx, rf_error *err)
{
    return guarded_call(NULL, 0, model, fn, ctx, err);
}
