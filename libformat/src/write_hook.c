/* The commit step of the hooked writers: the writer's own read-back check, then the caller's. */
#include "write_hook.h"

typedef struct chain {
    rf_verify_fn own;
    void *own_ctx;
    const write_hook *hook;
    const char *final_path;
} chain;

static rf_status run_chain(const char *temp_path, void *ctx, rf_error *err)
{
    const chain *c = ctx;
    rf_status st = c->own ? c->own(temp_path, c->own_ctx, err) : RF_OK;
    if (st == RF_OK && c->hook && c->hook->verify)
        st = c->hook->verify(temp_path, c->final_path, c->hook->ctx, err);
    return st;
}

rf_status rfi_write_hook_commit(rf_writer *w, const char *final_path, rf_verify_fn own,
                                void *own_ctx, const write_hook *hook, rf_error *err)
{
    chain c = {own, own_ctx, hook, final_path};
    return rf_writer_commit(w, run_chain, &c, err);
}

void rfi_write_hook_release(const write_hook *hook, const void *data, uint64_t n)
{
    if (hook != NULL && hook->release != NULL)
        hook->release(data, n, hook->release_ctx);
}
