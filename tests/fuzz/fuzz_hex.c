/* Fuzz target: the file map of any file (rosetta/filemap.h) and the apr hex views over it. The map
 * must keep its promises on every input (leaf regions tiling the file, parents covering their
 * children: checked here, abort() otherwise); tensor values and blocks are read through it; the
 * views (summary, --header, --list, --blocks, --slice, --distribution, --entropy, text and JSON)
 * render into /dev/null.
 * Input: one file of any format.
 * fuzz-config: max_len=65536 seeds=tests/data/bad,tests/fuzz/corpus/fuzz_model */
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_common.h"
#include "hex.h"

/* The views name the tool in their messages (tools/hex.c defines it for apr-hex). */
const cli_tool HEX_TOOL = {"hex", "fuzz target", ""};

static void check_map(const rf_filemap *m)
{
    uint64_t cursor = 0;
    for (size_t i = 0; i < rf_filemap_n_regions(m); i++) {
        const rf_region *r = rf_filemap_region(m, i);
        if (r->offset + r->size > rf_filemap_size(m) || (r->damaged && !r->reason))
            abort();
        if (r->parent >= 0) {
            const rf_region *p = rf_filemap_region(m, (size_t)r->parent);
            if (r->offset < p->offset || r->offset + r->size > p->offset + p->size)
                abort();
        }
        if (r->n_children == 0 && r->size > 0) {
            if (r->offset != cursor)
                abort();
            cursor = r->offset + r->size;
        }
    }
    if (cursor != rf_filemap_size(m))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool quiet;
    if (!quiet) { /* the views print to stdout; sanitizer reports go to stderr */
        quiet = freopen("/dev/null", "w", stdout) != NULL;
    }
    rf_filemap *m = NULL;
    rf_error err;
    const rf_filemap_options opts = {.verify_checksums = true};
    if (rf_filemap_open_memory(data, size, "fuzz-input", &opts, &m, &err) != RF_OK)
        return 0;
    check_map(m);
    for (size_t i = 0; i < rf_filemap_n_tensors(m) && i < 8; i++) {
        const rf_map_tensor *t = rf_filemap_tensor(m, i);
        float v[64];
        uint64_t n = t->rows * t->cols;
        (void)rf_filemap_values(m, i, n > 64 ? n - 64 : 0, n > 64 ? 64 : n, v, &err);
        rf_block b;
        uint64_t blocks = rf_filemap_n_blocks(m, i);
        if (blocks)
            (void)rf_filemap_block(m, i, blocks - 1, &b, NULL, NULL, &err);
    }
    hex_options o = {.width = 16, .bins = 8, .slice_from = 0, .slice_to = 8};
    for (int json = 0; json < 2; json++) {
        o.json = json;
        hex_summary(m, &o);
        hex_header(m, &o);
        hex_list(m, &o);
        hex_blocks(m, &o);
        hex_slice(m, &o);
        hex_distribution(m, &o);
        o.width = 64;
        hex_entropy(m, &o);
        o.width = 16;
    }
    rf_filemap_free(m);
    return 0;
}
