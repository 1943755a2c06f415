/* The region builder of the file map, shared by the per-format mappers (filemap_gguf.c,
 * filemap_safetensors.c, filemap_apr.c): the string arena, regions, problems and tensors as the
 * mappers describe them. Not for: the final tiling or access to the map (filemap.c). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filemap_internal.h"

/* ---- string arena ------------------------------------------------------------------------- */

struct fm_chunk {
    fm_chunk *next;
    size_t used, cap;
    char data[];
};

static char *arena_alloc(rf_filemap *m, size_t n)
{
    fm_chunk *c = m->chunks;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        fm_chunk *fresh = malloc(sizeof *fresh + cap);
        if (!fresh) {
            m->oom = true;
            return NULL;
        }
        fresh->next = m->chunks;
        fresh->used = 0;
        fresh->cap = cap;
        m->chunks = fresh;
        c = fresh;
    }
    char *p = c->data + c->used;
    c->used += n;
    return p;
}

const char *rfi_fm_strdup(rf_filemap *m, const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = arena_alloc(m, n);
    if (!p)
        return "";
    memcpy(p, s, n);
    return p;
}

const char *rfi_fm_printf(rf_filemap *m, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return rfi_fm_strdup(m, buf);
}

const char *rfi_fm_quote(rf_filemap *m, const uint8_t *s, uint64_t len, size_t max_chars)
{
    char buf[1024];
    size_t n = 0;
    buf[n++] = '"';
    uint64_t i = 0;
    for (; i < len && i < max_chars && n + 8 < sizeof buf; i++) {
        unsigned char c = s[i];
        if (c == '"' || c == '\\') {
            buf[n++] = '\\';
            buf[n++] = (char)c;
        } else if (c == '\n') {
            buf[n++] = '\\';
            buf[n++] = 'n';
        } else if (c >= 0x20 && c != 0x7f) {
            buf[n++] = (char)c; /* UTF-8 bytes pass through */
        } else {
            n += (size_t)snprintf(buf + n, sizeof buf - n, "\\x%02x", c);
        }
    }
    buf[n++] = '"';
    if (i < len)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "... (%" PRIu64 " bytes)", len);
    buf[n] = '\0';
    return rfi_fm_strdup(m, buf);
}

const char *rfi_fm_hex(rf_filemap *m, const uint8_t *p, uint64_t len, size_t max)
{
    char buf[3 * 64 + 8];
    size_t n = 0;
    if (max > 64)
        max = 64;
    for (uint64_t i = 0; i < len && i < max; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%02x", i ? " " : "", p[i]);
    if (len > max)
        n += (size_t)snprintf(buf + n, sizeof buf - n, " ...");
    buf[n] = '\0';
    return rfi_fm_strdup(m, buf);
}

const char *rfi_fm_without_path(const rf_filemap *m, const char *message)
{
    size_t n = strlen(m->path);
    if (strncmp(message, m->path, n) == 0 && message[n] == ':' && message[n + 1] == ' ')
        return message + n + 2;
    return message;
}

uint64_t rfi_fm_message_offset(const char *message)
{
    /* the readers say "at offset N", "(offset N)" or "(header offset N)" for the byte concerned;
     * "data offset N" and the like are values, not places */
    for (const char *p = strstr(message, "offset "); p; p = strstr(p + 1, "offset ")) {
        const char *digits = p + strlen("offset ");
        if (*digits < '0' || *digits > '9')
            continue;
        bool place = (p - message >= 3 && strncmp(p - 3, "at ", 3) == 0) ||
                     (p - message >= 1 && p[-1] == '(') ||
                     (p - message >= 7 && strncmp(p - 7, "header ", 7) == 0);
        if (place)
            return strtoull(digits, NULL, 10);
    }
    return UINT64_MAX;
}

/* ---- regions -------------------------------------------------------------------------------- */

static int64_t push_region(rf_filemap *m, const rf_region *r)
{
    if (m->n_regions == m->cap_regions) {
        size_t cap = m->cap_regions ? m->cap_regions * 2 : 256;
        rf_region *grown = realloc(m->regions, cap * sizeof *grown);
        if (!grown) {
            m->oom = true;
            return -1;
        }
        m->regions = grown;
        m->cap_regions = cap;
    }
    m->regions[m->n_regions] = *r;
    return (int64_t)m->n_regions++;
}

int64_t rfi_fm_add(rf_filemap *m, rf_region_kind kind, uint64_t offset, uint64_t size,
                   const char *label, const char *value)
{
    rf_region r = {
        .offset = offset,
        .size = size,
        .kind = kind,
        .depth = m->depth,
        .parent = m->depth ? m->open[m->depth - 1] : -1,
        .label = label ? label : "",
        .value = value ? value : "",
        .tensor = -1,
    };
    return push_region(m, &r);
}

int64_t rfi_fm_open(rf_filemap *m, rf_region_kind kind, uint64_t offset, const char *label,
                    const char *value)
{
    int64_t idx = rfi_fm_add(m, kind, offset, 0, label, value);
    if (idx >= 0 && m->depth < FM_MAX_DEPTH)
        m->open[m->depth++] = idx;
    return idx;
}

void rfi_fm_close(rf_filemap *m, uint64_t end)
{
    if (m->depth == 0)
        return;
    int64_t idx = m->open[--m->depth];
    if (idx >= 0) {
        rf_region *r = &m->regions[idx];
        r->size = end > r->offset ? end - r->offset : 0;
    }
}

void rfi_fm_push_pending(rf_filemap *m, const fm_pending *p)
{
    if (m->n_pending == m->cap_pending) {
        size_t cap = m->cap_pending ? m->cap_pending * 2 : 32;
        fm_pending *grown = realloc(m->pending, cap * sizeof *grown);
        if (!grown) {
            m->oom = true;
            return;
        }
        m->pending = grown;
        m->cap_pending = cap;
    }
    m->pending[m->n_pending++] = *p;
}

static void damage_now(rf_filemap *m, int64_t region, const char *reason)
{
    if (region >= 0 && (size_t)region < m->n_regions && !m->regions[region].damaged) {
        m->regions[region].damaged = true;
        m->regions[region].reason = reason;
    }
}

void rfi_fm_problem(rf_filemap *m, rf_problem_severity severity, uint64_t offset, int64_t region,
                    bool damage, const char *message)
{
    fm_pending p = {severity, offset, region, rfi_fm_strdup(m, message), damage, true, false};
    if (damage)
        damage_now(m, region, p.message);
    rfi_fm_push_pending(m, &p);
}

void rfi_fm_mark(rf_filemap *m, int64_t region, const char *reason)
{
    damage_now(m, region, rfi_fm_strdup(m, reason));
}

void rfi_fm_damage(rf_filemap *m, int64_t region, const char *reason)
{
    if (region < 0 || (size_t)region >= m->n_regions)
        return;
    rfi_fm_problem(m, RF_PROBLEM_ERROR, m->regions[region].offset, region, true, reason);
}

void rfi_fm_unparsed_tail(rf_filemap *m, uint64_t offset, const char *reason)
{
    while (m->depth > 0)
        rfi_fm_close(m, offset);
    if (offset >= m->size) {
        rfi_fm_problem(m, RF_PROBLEM_ERROR, offset, -1, false, reason);
        return;
    }
    int64_t idx = rfi_fm_add(m, RF_REGION_UNPARSED, offset, m->size - offset, "unparsed",
                             rfi_fm_printf(m, "%" PRIu64 " bytes", m->size - offset));
    rfi_fm_damage(m, idx, reason);
}

/* ---- tensors -------------------------------------------------------------------------------- */

int64_t rfi_fm_add_tensor(rf_filemap *m, const rf_map_tensor *t)
{
    if (m->n_tensors == m->cap_tensors) {
        size_t cap = m->cap_tensors ? m->cap_tensors * 2 : 64;
        rf_map_tensor *grown = realloc(m->tensors, cap * sizeof *grown);
        if (!grown) {
            m->oom = true;
            return -1;
        }
        m->tensors = grown;
        m->cap_tensors = cap;
    }
    rf_map_tensor *dst = &m->tensors[m->n_tensors];
    *dst = *t;
    dst->tensor.name = rfi_fm_strdup(m, t->tensor.name ? t->tensor.name : "");
    if (!dst->dtype_text)
        dst->dtype_text = dst->dtype_known ? rf_dtype_name(t->tensor.dtype) : "unknown";
    if (dst->rows == 0) {
        uint64_t n = 0;
        if (rf_shape_elements(t->tensor.shape, t->tensor.ndim, &n, NULL) != RF_OK)
            n = 0;
        dst->rows = 1;
        dst->cols = n;
        dst->row_elems = n;
        dst->row_bytes = t->tensor.nbytes;
    }
    dst->info_region = t->info_region;
    dst->data_region = -1;
    return (int64_t)m->n_tensors++;
}

static int cmp_extent(const void *a, const void *b, void *ctx)
{
    const rf_filemap *m = ctx;
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    uint64_t ox = m->tensors[x].tensor.file_offset, oy = m->tensors[y].tensor.file_offset;
    if (ox != oy)
        return ox < oy ? -1 : 1;
    return x < y ? -1 : x > y;
}

const char *rfi_fm_tensor_summary(rf_filemap *m, const rf_map_tensor *t)
{
    char shape[256];
    size_t n = (size_t)snprintf(shape, sizeof shape, "[");
    for (int d = 0; d < t->tensor.ndim && n < sizeof shape - 32; d++)
        n += (size_t)snprintf(shape + n, sizeof shape - n, "%s%" PRIu64, d ? ", " : "",
                              t->tensor.shape[d]);
    snprintf(shape + n, sizeof shape - n, "]");
    if (!t->size_known)
        return rfi_fm_printf(m, "%s %s, size unknown", t->dtype_text, shape);
    return rfi_fm_printf(m, "%s %s, %" PRIu64 " bytes", t->dtype_text, shape, t->tensor.nbytes);
}

uint64_t rfi_fm_data_regions(rf_filemap *m, uint64_t start, uint64_t limit)
{
    size_t *order = malloc((m->n_tensors ? m->n_tensors : 1) * sizeof *order);
    if (!order) {
        m->oom = true;
        return start;
    }
    size_t n = 0;
    for (size_t i = 0; i < m->n_tensors; i++)
        if (m->tensors[i].size_known)
            order[n++] = i;
    qsort_r(order, n, sizeof *order, cmp_extent, m);
    uint64_t cursor = start;
    const char *prev = NULL;
    for (size_t k = 0; k < n; k++) {
        rf_map_tensor *t = &m->tensors[order[k]];
        uint64_t at = t->tensor.file_offset, size = t->tensor.nbytes, end;
        if (__builtin_add_overflow(at, size, &end))
            end = UINT64_MAX;
        if (at > cursor && at <= limit) {
            uint64_t gap = at - cursor, a = t->alignment ? t->alignment : 1;
            if (gap < a && at % a == 0) {
                rfi_fm_add(m, RF_REGION_PADDING, cursor, gap, "padding",
                           rfi_fm_printf(m, "%" PRIu64 " bytes to a multiple of %" PRIu64, gap, a));
            } else {
                int64_t g = rfi_fm_add(m, RF_REGION_UNPARSED, cursor, gap, "unclaimed",
                                       rfi_fm_printf(m, "%" PRIu64 " bytes", gap));
                rfi_fm_damage(m, g,
                              rfi_fm_printf(m,
                                            "%" PRIu64 " bytes at offset %" PRIu64
                                            " before tensor '%s' "
                                            "belong to no tensor",
                                            gap, cursor, t->tensor.name));
            }
        }
        t->pad_before = at > cursor ? at - cursor : 0;
        int64_t r = rfi_fm_add(m, RF_REGION_TENSOR_DATA, at, size, t->tensor.name,
                               rfi_fm_tensor_summary(m, t));
        t->data_region = r;
        if (r >= 0)
            m->regions[r].tensor = (int64_t)order[k];
        if (at < cursor && prev) {
            t->damaged = true;
            t->reason = rfi_fm_printf(
                m, "data at offset %" PRIu64 " overlaps the data of tensor '%s'", at, prev);
            rfi_fm_damage(m, r, t->reason);
        } else if (end > m->size) {
            t->damaged = true;
            t->reason = at >= m->size
                            ? rfi_fm_printf(m,
                                            "data at offset %" PRIu64 " (%" PRIu64
                                            " bytes) starts past the end of the file "
                                            "(%" PRIu64 " bytes)",
                                            at, size, m->size)
                            : rfi_fm_printf(m,
                                            "truncated: data at offset %" PRIu64 " needs %" PRIu64
                                            " bytes, the file ends after "
                                            "%" PRIu64,
                                            at, size, m->size - at);
            rfi_fm_damage(m, r, t->reason);
        }
        if (end > cursor && at < m->size) {
            cursor = end > m->size ? m->size : end;
            prev = t->tensor.name;
        }
    }
    free(order);
    return cursor;
}

void rfi_fm_arena_free(rf_filemap *m)
{
    while (m->chunks) {
        fm_chunk *next = m->chunks->next;
        free(m->chunks);
        m->chunks = next;
    }
}
