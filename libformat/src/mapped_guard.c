/* SIGBUS guard for mapped input. Touching a page of a mapping past the current end of its file
 * (another process truncated the file after it was mapped) raises SIGBUS with si_code
 * BUS_ADRERR. Inside rf_mapped_call (or rfi_mapped_guarded) that signal ends the guarded function
 * and becomes an RF_ERR_IO error naming the file and offset; outside a guard, or for any other
 * SIGBUS, the previous disposition applies (by default the process dies, as before). The library's
 * own readers of mapped data run under it: rf_dequantize, the atomic writer's rf_writer_write and
 * the APR footer check, so every tool that dequantizes or writes a mapped model is guarded. Not
 * for: SIGSEGV (a wild pointer is a bug, never an input problem). */
#include "model_internal.h"
#include "io.h"
#include "rosetta/model.h"

#include "io_internal.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>

typedef struct guard_frame {
    sigjmp_buf jump;
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

/* The error for a fault at addr: the mapping that holds it (whoever opened it, io.c keeps the
 * list), the offset, and what the file looks like now. */
static rf_status fault_error(const uint8_t *addr, rf_error *err)
{
    char path[4096];
    uint64_t offset = 0, mapped = 0;
    if (!rfi_io_mapped_lookup(addr, path, sizeof path, &offset, &mapped))
        return rf_error_set(err, RF_ERR_IO,
                            "mapped input: read at address %p failed (SIGBUS): a mapped file was "
                            "truncated or replaced while in use",
                            (const void *)addr);
    struct stat st;
    if (stat(path, &st) == 0)
        return rf_error_set(err, RF_ERR_IO,
                            "%s: file changed while in use: read at offset %llu failed (SIGBUS): "
                            "mapped %llu bytes, the file now has %llu",
                            path, (unsigned long long)offset, (unsigned long long)mapped,
                            (unsigned long long)st.st_size);
    return rf_error_set(err, RF_ERR_IO,
                        "%s: file changed while in use: read at offset %llu failed (SIGBUS): "
                        "mapped %llu bytes, the file is gone: %s",
                        path, (unsigned long long)offset, (unsigned long long)mapped,
                        strerror(errno));
}

rf_status rfi_mapped_guarded(rf_mapped_fn fn, void *ctx, rf_error *err)
{
    pthread_once(&install_once, install);
    if (install_errno)
        return rf_error_set(err, RF_ERR_IO,
                            "cannot install the SIGBUS handler for mapped input: %s",
                            strerror(install_errno));
    guard_frame frame;
    memset(&frame, 0, sizeof frame);
    frame.prev = current_frame;
    /* No signal mask is saved (a system call on every guarded call, and rf_dequantize and the
     * atomic writer run under a guard on every call): after the jump SIGBUS, which the
     * kernel blocks while the handler runs, is unblocked by hand. */
    if (sigsetjmp(frame.jump, 0) == 0) {
        current_frame = &frame;
        rf_status st = fn(ctx, err);
        current_frame = frame.prev;
        return st;
    }
    current_frame = frame.prev;
    sigset_t bus;
    sigemptyset(&bus);
    sigaddset(&bus, SIGBUS);
    pthread_sigmask(SIG_UNBLOCK, &bus, NULL);
    return fault_error(frame.fault_addr, err);
}

typedef struct compare_call {
    const void *a, *b;
    size_t n;
    bool equal;
} compare_call;

static rf_status run_compare(void *ctx, rf_error *err)
{
    (void)err;
    compare_call *c = ctx;
    c->equal = c->n == 0 || memcmp(c->a, c->b, c->n) == 0;
    return RF_OK;
}

rf_status rfi_mapped_equal(const void *a, const void *b, size_t n, bool *equal, rf_error *err)
{
    compare_call c = {a, b, n, false};
    rf_status st = rfi_mapped_guarded(run_compare, &c, err);
    *equal = st == RF_OK && c.equal;
    return st;
}

rf_status rf_mapped_call(const rf_file *const *files, size_t n_files, rf_mapped_fn fn, void *ctx,
                         rf_error *err)
{
    (void)files; /* every mapping is known to io.c; the list is kept for the API */
    (void)n_files;
    return rfi_mapped_guarded(fn, ctx, err);
}

rf_status rf_model_mapped_call(const rf_model *model, rf_mapped_fn fn, void *ctx, rf_error *err)
{
    (void)model;
    return rfi_mapped_guarded(fn, ctx, err);
}
