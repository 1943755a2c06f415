/* The file map (rosetta/filemap.h): opening (which calls the per-format mappers), the final
 * pass that turns what they described into an exact tiling of the file, and access to tensor
 * values and quantized blocks through the map. The region builder the mappers share is in
 * filemap_build.c, so that calls go one way: filemap.c -> filemap_<format>.c -> filemap_build.c.
 * Not for: format knowledge (filemap_gguf.c, filemap_safetensors.c, filemap_apr.c). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filemap_internal.h"
#include "rosetta/apr.h"
#include "rosetta/quant.h"

/* ---- finishing: the exact tiling ------------------------------------------------------------ */

typedef struct finisher {
    rf_filemap *m;
    rf_region *out;
    size_t n_out, cap_out;
    int64_t *new_index;             /* builder index -> final index */
    size_t *child_start, *children; /* children lists of builder regions (CSR) */
    size_t *roots;
    size_t n_roots;
} finisher;

static int64_t out_push(finisher *f, const rf_region *r)
{
    if (f->n_out == f->cap_out) {
        size_t cap = f->cap_out ? f->cap_out * 2 : 256;
        rf_region *grown = realloc(f->out, cap * sizeof *grown);
        if (!grown) {
            f->m->oom = true;
            return -1;
        }
        f->out = grown;
        f->cap_out = cap;
    }
    f->out[f->n_out] = *r;
    return (int64_t)f->n_out++;
}

static int cmp_region(const void *a, const void *b, void *ctx)
{
    const rf_region *regions = ctx;
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    if (regions[x].offset != regions[y].offset)
        return regions[x].offset < regions[y].offset ? -1 : 1;
    return x < y ? -1 : x > y;
}

static void fill_gap(finisher *f, rf_region_kind parent_kind, uint64_t from, uint64_t to,
                     int64_t parent, int depth)
{
    if (to <= from)
        return;
    rf_filemap *m = f->m;
    bool syntax = parent_kind == RF_REGION_JSON;
    rf_region r = {
        .offset = from,
        .size = to - from,
        .kind = syntax ? RF_REGION_JSON : RF_REGION_UNPARSED,
        .depth = depth,
        .parent = parent,
        .label = syntax ? "json" : "unclaimed",
        .value = rfi_fm_printf(m, "%" PRIu64 " bytes", to - from),
        .tensor = -1,
    };
    if (!syntax) {
        r.damaged = true;
        r.reason = rfi_fm_printf(m,
                                 "%" PRIu64 " bytes at offset %" PRIu64 " that no structure of the "
                                 "file accounts for",
                                 to - from, from);
    }
    int64_t idx = out_push(f, &r);
    if (idx >= 0 && !syntax) {
        fm_pending p = {RF_PROBLEM_ERROR, from, -2 - idx, r.reason, false, true, false};
        rfi_fm_push_pending(m, &p);
    }
}

/* Emits builder region b clipped to [lo, hi), then its children, filling holes. */
static void emit(finisher *f, size_t b, uint64_t lo, uint64_t hi, int64_t parent, int depth)
{
    rf_filemap *m = f->m;
    rf_region r = m->regions[b];
    uint64_t end;
    if (__builtin_add_overflow(r.offset, r.size, &end))
        end = UINT64_MAX;
    /* a clipped parent is marked; the problem is listed on its clipped children */
    bool leaf = f->child_start[b] == f->child_start[b + 1];
    if (r.offset < lo) {
        if (!r.damaged) {
            const char *reason = rfi_fm_printf(m,
                                               "starts at offset %" PRIu64 ", inside the "
                                               "preceding region",
                                               r.offset);
            fm_pending p = {RF_PROBLEM_ERROR, r.offset, (int64_t)b, reason, true, leaf, true};
            rfi_fm_push_pending(m, &p);
        }
        r.offset = lo;
        if (end < lo)
            end = lo;
    }
    if (r.offset > hi)
        r.offset = hi;
    if (end > hi) {
        if (!r.damaged) {
            const char *reason =
                hi == m->size ? rfi_fm_printf(m,
                                              "runs %" PRIu64 " bytes past the end of the file "
                                              "(%" PRIu64 " bytes)",
                                              end - hi, m->size)
                              : rfi_fm_printf(m,
                                              "runs %" PRIu64 " bytes past the end of its "
                                              "enclosing region",
                                              end - hi);
            fm_pending p = {RF_PROBLEM_ERROR, r.offset, (int64_t)b, reason, true, leaf, true};
            rfi_fm_push_pending(m, &p);
        }
        end = hi;
    }
    r.size = end - r.offset;
    r.parent = parent;
    r.depth = depth;
    r.n_children = 0;
    int64_t self = out_push(f, &r);
    if (self < 0)
        return;
    f->new_index[b] = self;
    size_t first = f->child_start[b], last = f->child_start[b + 1];
    if (first == last)
        return;
    uint64_t cursor = r.offset;
    for (size_t k = first; k < last; k++) {
        size_t c = f->children[k];
        uint64_t starts = m->regions[c].offset < end ? m->regions[c].offset : end;
        if (starts > cursor)
            fill_gap(f, r.kind, cursor, starts, self, depth + 1);
        emit(f, c, cursor, end, self, depth + 1);
        int64_t ci = f->new_index[c];
        if (ci >= 0 && f->out[ci].offset + f->out[ci].size > cursor)
            cursor = f->out[ci].offset + f->out[ci].size;
    }
    fill_gap(f, r.kind, cursor, end, self, depth + 1);
}

static int64_t find_leaf(const rf_filemap *m, uint64_t offset)
{
    size_t lo = 0, hi = m->n_leaves;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const rf_region *r = &m->regions[m->leaves[mid]];
        if (offset < r->offset)
            hi = mid;
        else if (offset >= r->offset + r->size)
            lo = mid + 1;
        else
            return m->leaves[mid];
    }
    return -1;
}

static void add_problem(rf_filemap *m, rf_problem_severity sev, uint64_t offset, int64_t region,
                        const char *message)
{
    for (size_t i = 0; i < m->n_problems; i++) /* the same words about the same bytes: once */
        if (m->problems[i].region == region && strcmp(m->problems[i].message, message) == 0)
            return;
    if (m->n_problems == m->cap_problems) {
        size_t cap = m->cap_problems ? m->cap_problems * 2 : 32;
        rf_map_problem *grown = realloc(m->problems, cap * sizeof *grown);
        if (!grown) {
            m->oom = true;
            return;
        }
        m->problems = grown;
        m->cap_problems = cap;
    }
    m->problems[m->n_problems++] = (rf_map_problem){sev, offset, region, message};
}

static rf_status finish(rf_filemap *m, rf_error *err)
{
    while (m->depth > 0) {
        int64_t idx = m->open[m->depth - 1];
        uint64_t end = idx >= 0 ? m->regions[idx].offset : 0;
        for (size_t i = 0; i < m->n_regions; i++) /* close at the end of its last child */
            if (m->regions[i].parent == idx && m->regions[i].offset + m->regions[i].size > end)
                end = m->regions[i].offset + m->regions[i].size;
        rfi_fm_close(m, end);
    }
    finisher f = {.m = m};
    size_t n = m->n_regions;
    f.new_index = malloc((n + 1) * sizeof *f.new_index);
    f.child_start = calloc(n + 2, sizeof *f.child_start);
    f.children = malloc((n + 1) * sizeof *f.children);
    f.roots = malloc((n + 1) * sizeof *f.roots);
    rf_status st = RF_OK;
    if (!f.new_index || !f.child_start || !f.children || !f.roots || m->oom) {
        st = rf_error_set(err, RF_ERR_NOMEM, "%s: out of memory mapping the file", m->path);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        f.new_index[i] = -1;
        if (m->regions[i].parent >= 0)
            f.child_start[m->regions[i].parent + 2]++;
        else
            f.roots[f.n_roots++] = i;
    }
    for (size_t i = 2; i < n + 2; i++)
        f.child_start[i] += f.child_start[i - 1];
    for (size_t i = 0; i < n; i++)
        if (m->regions[i].parent >= 0)
            f.children[f.child_start[m->regions[i].parent + 1]++] = i;
    /* child_start[b]..child_start[b + 1] are now b's children */
    for (size_t b = 0; b < n; b++)
        qsort_r(f.children + f.child_start[b], f.child_start[b + 1] - f.child_start[b],
                sizeof *f.children, cmp_region, m->regions);
    qsort_r(f.roots, f.n_roots, sizeof *f.roots, cmp_region, m->regions);

    uint64_t cursor = 0;
    for (size_t k = 0; k < f.n_roots; k++) {
        size_t b = f.roots[k];
        uint64_t starts = m->regions[b].offset < m->size ? m->regions[b].offset : m->size;
        if (starts > cursor)
            fill_gap(&f, RF_REGION_SECTION, cursor, starts, -1, 0);
        emit(&f, b, cursor, m->size, -1, 0);
        int64_t ri = f.new_index[b];
        if (ri >= 0 && f.out[ri].offset + f.out[ri].size > cursor)
            cursor = f.out[ri].offset + f.out[ri].size;
    }
    fill_gap(&f, RF_REGION_SECTION, cursor, m->size, -1, 0);
    if (m->oom) {
        st = rf_error_set(err, RF_ERR_NOMEM, "%s: out of memory mapping the file", m->path);
        goto done;
    }

    /* the final regions: children counts, leaves, tensor links */
    free(m->regions);
    m->regions = f.out;
    m->n_regions = f.n_out;
    m->cap_regions = f.cap_out;
    f.out = NULL;
    for (size_t i = 0; i < m->n_regions; i++)
        if (m->regions[i].parent >= 0)
            m->regions[m->regions[i].parent].n_children++;
    m->leaves = malloc((m->n_regions ? m->n_regions : 1) * sizeof *m->leaves);
    if (!m->leaves) {
        st = rf_error_set(err, RF_ERR_NOMEM, "%s: out of memory mapping the file", m->path);
        goto done;
    }
    for (size_t i = 0; i < m->n_regions; i++)
        if (m->regions[i].n_children == 0 && m->regions[i].size > 0)
            m->leaves[m->n_leaves++] = (int64_t)i;
    for (size_t t = 0; t < m->n_tensors; t++) {
        rf_map_tensor *ft = &m->tensors[t];
        ft->data_region = ft->data_region >= 0 ? f.new_index[ft->data_region] : -1;
        ft->info_region = ft->info_region >= 0 ? f.new_index[ft->info_region] : -1;
        if (ft->info_region >= 0)
            m->regions[ft->info_region].tensor = (int64_t)t;
    }

    /* problems: attach, mark, keep in the order found; clipping reasons last, and only for
     * regions nothing else explains */
    for (size_t pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < m->n_pending; i++) {
            const fm_pending *p = &m->pending[i];
            if (p->weak != (pass == 1))
                continue;
            int64_t region;
            if (p->region <= -2)
                region = -2 - p->region; /* already a final index (gap fillers) */
            else if (p->region >= 0)
                region = f.new_index[p->region];
            else
                region = find_leaf(m, p->offset); /* -1 past the end of the file */
            if (p->weak && region >= 0) {
                /* a clipped region inside one already explained: marked, not listed */
                bool explained = false;
                for (int64_t a = region; a >= 0 && !explained; a = m->regions[a].parent)
                    explained = m->regions[a].damaged;
                if (explained) {
                    if (!m->regions[region].damaged) {
                        m->regions[region].damaged = true;
                        m->regions[region].reason = p->message;
                    }
                    continue;
                }
            }
            if (region >= 0 && p->damage && !m->regions[region].damaged) {
                m->regions[region].damaged = true;
                m->regions[region].reason = p->message;
            }
            if (p->report)
                add_problem(m, p->severity, region >= 0 ? m->regions[region].offset : p->offset,
                            region, p->message);
        }
    if (m->oom)
        st = rf_error_set(err, RF_ERR_NOMEM, "%s: out of memory mapping the file", m->path);
done:
    free(f.out);
    free(f.new_index);
    free(f.child_start);
    free(f.children);
    free(f.roots);
    return st;
}

/* ---- opening ----------------------------------------------------------------------------------
 */

static rf_status map_unknown(rf_filemap *m)
{
    snprintf(m->description, sizeof m->description, "unknown format");
    if (m->size == 0) {
        rfi_fm_problem(m, RF_PROBLEM_ERROR, 0, -1, false, "empty file");
        return RF_OK;
    }
    char first[64];
    size_t n = 0;
    for (uint64_t i = 0; i < m->size && i < 8; i++)
        n += (size_t)snprintf(first + n, sizeof first - n, "%s%02x", i ? " " : "", m->data[i]);
    rfi_fm_unparsed_tail(
        m, 0,
        rfi_fm_printf(m,
                      "unknown format (offset 0): no GGUF, SafeTensors or APR magic "
                      "(first bytes %s)",
                      first));
    return RF_OK;
}

static rf_status map_bytes(rf_filemap *m, rf_error *err)
{
    m->format = rf_detect_bytes(m->data, m->size, m->size);
    rf_status st = RF_OK;
    switch (m->format) {
    case RF_FORMAT_GGUF: st = rfi_fm_map_gguf(m, err); break;
    case RF_FORMAT_SAFETENSORS: st = rfi_fm_map_safetensors(m, err); break;
    case RF_FORMAT_APR:
    case RF_FORMAT_APR2_MAGIC:
    case RF_FORMAT_APR_V1:
    case RF_FORMAT_APR1:
    case RF_FORMAT_APRT:
    case RF_FORMAT_APR_TSP: st = rfi_fm_map_apr(m, err); break;
    case RF_FORMAT_SAFETENSORS_INDEX:
    case RF_FORMAT_SAFETENSORS_DIR:
    case RF_FORMAT_UNKNOWN: st = map_unknown(m); break;
    }
    if (st == RF_OK)
        st = finish(m, err);
    return st;
}

static rf_filemap *new_map(const char *path, const rf_filemap_options *opts, rf_error *err)
{
    rf_filemap *m = calloc(1, sizeof *m);
    if (m)
        m->path = strdup(path);
    if (!m || !m->path) {
        free(m);
        rf_error_set(err, RF_ERR_NOMEM, "%s: out of memory", path);
        return NULL;
    }
    if (opts)
        m->opts = *opts;
    return m;
}

rf_status rf_filemap_open(const char *path, const rf_filemap_options *opts, rf_filemap **out,
                          rf_error *err)
{
    *out = NULL;
    rf_file *file = rf_file_open(path, err);
    if (!file)
        return err ? err->status : RF_ERR_IO;
    rf_filemap *m = new_map(path, opts, err);
    if (!m) {
        rf_file_close(file);
        return RF_ERR_NOMEM;
    }
    m->file = file;
    m->data = rf_file_data(file);
    m->size = rf_file_size(file);
    rf_status st = map_bytes(m, err);
    if (st != RF_OK) {
        rf_filemap_free(m);
        return st;
    }
    *out = m;
    return RF_OK;
}

rf_status rf_filemap_open_memory(const void *data, uint64_t size, const char *name,
                                 const rf_filemap_options *opts, rf_filemap **out, rf_error *err)
{
    static const uint8_t empty[1];
    *out = NULL;
    rf_filemap *m = new_map(name ? name : "<memory>", opts, err);
    if (!m)
        return RF_ERR_NOMEM;
    m->data = data ? data : empty;
    m->size = data ? size : 0;
    rf_status st = map_bytes(m, err);
    if (st != RF_OK) {
        rf_filemap_free(m);
        return st;
    }
    *out = m;
    return RF_OK;
}

void rf_filemap_free(rf_filemap *m)
{
    if (!m)
        return;
    rf_model_free(m->model);
    rfi_fm_arena_free(m);
    free(m->regions);
    free(m->tensors);
    free(m->problems);
    free(m->pending);
    free(m->leaves);
    rf_file_close(m->file);
    free(m->path);
    free(m);
}

/* ---- accessors --------------------------------------------------------------------------------
 */

const char *rf_filemap_path(const rf_filemap *m) { return m->path; }
rf_format rf_filemap_format(const rf_filemap *m) { return m->format; }
const char *rf_filemap_description(const rf_filemap *m) { return m->description; }
uint64_t rf_filemap_size(const rf_filemap *m) { return m->size; }
const uint8_t *rf_filemap_bytes(const rf_filemap *m) { return m->data; }
size_t rf_filemap_n_regions(const rf_filemap *m) { return m->n_regions; }

const rf_region *rf_filemap_region(const rf_filemap *m, size_t index)
{
    return index < m->n_regions ? &m->regions[index] : NULL;
}

int64_t rf_filemap_find(const rf_filemap *m, uint64_t offset) { return find_leaf(m, offset); }

size_t rf_filemap_n_tensors(const rf_filemap *m) { return m->n_tensors; }

const rf_map_tensor *rf_filemap_tensor(const rf_filemap *m, size_t index)
{
    return index < m->n_tensors ? &m->tensors[index] : NULL;
}

size_t rf_filemap_n_problems(const rf_filemap *m) { return m->n_problems; }

const rf_map_problem *rf_filemap_problem(const rf_filemap *m, size_t index)
{
    return index < m->n_problems ? &m->problems[index] : NULL;
}

bool rf_filemap_damaged(const rf_filemap *m)
{
    for (size_t i = 0; i < m->n_problems; i++)
        if (m->problems[i].severity == RF_PROBLEM_ERROR)
            return true;
    return false;
}

const rf_model *rf_filemap_model(const rf_filemap *m) { return m->model; }

const char *rf_region_kind_name(rf_region_kind kind)
{
    switch (kind) {
    case RF_REGION_SECTION: return "section";
    case RF_REGION_MAGIC: return "magic";
    case RF_REGION_VERSION: return "version";
    case RF_REGION_COUNT: return "count";
    case RF_REGION_FIELD: return "field";
    case RF_REGION_CHECKSUM: return "checksum";
    case RF_REGION_KV: return "kv";
    case RF_REGION_KV_KEY: return "kv key";
    case RF_REGION_KV_TYPE: return "kv type";
    case RF_REGION_KV_VALUE: return "kv value";
    case RF_REGION_TENSOR_INFO: return "tensor info";
    case RF_REGION_INDEX_ENTRY: return "index entry";
    case RF_REGION_JSON: return "json";
    case RF_REGION_PADDING: return "padding";
    case RF_REGION_TENSOR_DATA: return "tensor data";
    case RF_REGION_UNPARSED: return "unparsed";
    }
    return "unknown";
}

/* ---- values and blocks ------------------------------------------------------------------------
 */

static rf_status usable(const rf_filemap *m, size_t index, const rf_map_tensor **out, rf_error *err)
{
    if (index >= m->n_tensors)
        return rf_error_set(err, RF_ERR_ARGUMENT, "%s: no tensor %zu (the file has %zu)", m->path,
                            index, m->n_tensors);
    const rf_map_tensor *t = &m->tensors[index];
    *out = t;
    if (!t->dtype_known)
        return rf_error_set(err, RF_ERR_FORMAT, "%s: tensor '%s': %s, its values cannot be read",
                            m->path, t->tensor.name, t->dtype_text);
    uint64_t need;
    if (!t->tensor.data || __builtin_mul_overflow(t->rows, t->row_bytes, &need) ||
        need > t->tensor.nbytes)
        return rf_error_set(err, RF_ERR_FORMAT,
                            "%s: tensor '%s': its bytes are not all in the file%s%s", m->path,
                            t->tensor.name, t->reason ? ": " : "", t->reason ? t->reason : "");
    if (!rf_can_dequantize(t->tensor.dtype))
        return rf_error_set(err, RF_ERR_UNSUPPORTED,
                            "%s: tensor '%s': unsupported dtype %s (Rosetta has no dequantizer "
                            "for it)",
                            m->path, t->tensor.name, t->dtype_text);
    return RF_OK;
}

/* Values [c0, c1) of one row (row points at its bytes). */
static rf_status row_values(const rf_map_tensor *t, const uint8_t *row, uint64_t c0, uint64_t c1,
                            float *out, rf_error *err)
{
    rf_dtype dtype = t->tensor.dtype;
    if (dtype == RF_DTYPE_APR_Q8) {
        /* one f32 scale for the whole tensor, then int8 values (docs/formats/apr.md) */
        uint8_t scratch[4 + 4096];
        memcpy(scratch, row, 4);
        for (uint64_t c = c0; c < c1;) {
            uint64_t take = c1 - c < 4096 ? c1 - c : 4096;
            memcpy(scratch + 4, row + 4 + c, (size_t)take);
            rf_status st = rf_dequantize(dtype, scratch, out + (c - c0), take, err);
            if (st != RF_OK)
                return st;
            c += take;
        }
        return RF_OK;
    }
    const rf_dtype_info *info = rf_dtype_get(dtype);
    uint64_t be = info->block_elems, bb = info->block_bytes;
    float tmp[RF_BLOCK_MAX_ELEMS];
    uint64_t c = c0;
    while (c < c1) {
        uint64_t block = c / be, in_block = c % be;
        uint64_t block_n = t->row_elems - block * be < be ? t->row_elems - block * be : be;
        const uint8_t *src = row + block * bb;
        if (in_block == 0 && c1 - c >= block_n) {
            /* whole blocks straight into out */
            uint64_t whole = (c1 - c) / be * be;
            if (whole == 0)
                whole = block_n; /* a partial last APR_Q4 block */
            rf_status st = rf_dequantize(dtype, src, out + (c - c0), whole, err);
            if (st != RF_OK)
                return st;
            c += whole;
            continue;
        }
        rf_status st = rf_dequantize(dtype, src, tmp, block_n, err);
        if (st != RF_OK)
            return st;
        uint64_t take = block_n - in_block < c1 - c ? block_n - in_block : c1 - c;
        memcpy(out + (c - c0), tmp + in_block, (size_t)take * sizeof *out);
        c += take;
    }
    return RF_OK;
}

rf_status rf_filemap_values(const rf_filemap *m, size_t index, uint64_t first, uint64_t count,
                            float *out, rf_error *err)
{
    const rf_map_tensor *t = NULL;
    rf_status st = usable(m, index, &t, err);
    if (st != RF_OK)
        return st;
    uint64_t n = t->rows * t->cols, last;
    if (__builtin_add_overflow(first, count, &last) || last > n)
        return rf_error_set(err, RF_ERR_ARGUMENT,
                            "%s: tensor '%s': elements [%" PRIu64 ", %" PRIu64 ") are outside its "
                            "%" PRIu64 " elements",
                            m->path, t->tensor.name, first, first + count, n);
    uint64_t i = first;
    while (i < last) {
        uint64_t r = i / t->cols, c = i % t->cols;
        uint64_t c1 = last - i < t->cols - c ? c + (last - i) : t->cols;
        st = row_values(t, t->tensor.data + r * t->row_bytes, c, c1, out + (i - first), err);
        if (st != RF_OK) {
            rf_error_prefix(err, "%s: tensor '%s'", m->path, t->tensor.name);
            return st;
        }
        i += c1 - c;
    }
    return RF_OK;
}

uint64_t rf_filemap_n_blocks(const rf_filemap *m, size_t index)
{
    if (index >= m->n_tensors)
        return 0;
    const rf_map_tensor *t = &m->tensors[index];
    if (!t->dtype_known || !rf_block_supported(t->tensor.dtype))
        return 0;
    const rf_dtype_info *info = rf_dtype_get(t->tensor.dtype);
    if (t->tensor.dtype == RF_DTYPE_APR_Q4)
        return (t->row_elems + 31) / 32 * t->rows;
    return t->rows * (t->row_bytes / info->block_bytes);
}

rf_status rf_filemap_block(const rf_filemap *m, size_t index, uint64_t block, rf_block *out,
                           uint64_t *offset, uint64_t *first_element, rf_error *err)
{
    uint64_t n_blocks = rf_filemap_n_blocks(m, index);
    if (index >= m->n_tensors)
        return rf_error_set(err, RF_ERR_ARGUMENT, "%s: no tensor %zu", m->path, index);
    const rf_map_tensor *t = &m->tensors[index];
    if (n_blocks == 0)
        return rf_error_set(err, RF_ERR_UNSUPPORTED,
                            "%s: tensor '%s': %s has no quantized blocks to decode", m->path,
                            t->tensor.name, t->dtype_text);
    if (block >= n_blocks)
        return rf_error_set(err, RF_ERR_ARGUMENT, "%s: tensor '%s': block %" PRIu64 " of %" PRIu64,
                            m->path, t->tensor.name, block, n_blocks);
    const rf_dtype_info *info = rf_dtype_get(t->tensor.dtype);
    uint64_t per_row = n_blocks / t->rows, r = block / per_row, b = block % per_row;
    uint64_t rel = r * t->row_bytes + b * info->block_bytes;
    if (offset)
        *offset = t->tensor.file_offset + rel;
    if (first_element)
        *first_element = r * t->cols + b * info->block_elems;
    if (!t->tensor.data || rel + info->block_bytes > t->tensor.nbytes)
        return rf_error_set(err, RF_ERR_FORMAT,
                            "%s: tensor '%s': block %" PRIu64 " is not in "
                            "the file",
                            m->path, t->tensor.name, block);
    uint32_t n = 0;
    if (t->tensor.dtype == RF_DTYPE_APR_Q4 && t->row_elems - b * 32 < 32)
        n = (uint32_t)(t->row_elems - b * 32);
    return rf_block_decode(t->tensor.dtype, t->tensor.data + rel, info->block_bytes, n, out, err);
}
