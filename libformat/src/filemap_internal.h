/* Private side of the file map (rosetta/filemap.h): the map structure and the builder the
 * per-format mappers (filemap_gguf.c, filemap_safetensors.c, filemap_apr.c) use to describe a
 * file. Mappers add regions in any order as a tree (a region's parent is the region open when it
 * was added); fm_finish sorts siblings by offset, clips what overlaps or runs past its parent or
 * the end of the file (marking it damaged), fills holes with unparsed regions, and indexes the
 * leaves. Not installed. */
#ifndef ROSETTA_FILEMAP_INTERNAL_H
#define ROSETTA_FILEMAP_INTERNAL_H

#include <stdarg.h>

#include "rosetta/filemap.h"
#include "io.h"

#define FM_MAX_DEPTH 8

typedef struct fm_chunk fm_chunk;

/* Problem before it is attached: the region is found by offset (or given). */
typedef struct fm_pending {
    rf_problem_severity severity;
    uint64_t offset;
    int64_t region; /* builder index, -1 to find by offset */
    const char *message;
    bool damage; /* mark the region damaged */
    bool report; /* list it among the map's problems */
    bool weak;   /* found by the final pass (clipping): only if nothing better names the region */
} fm_pending;

struct rf_filemap {
    char *path;
    rf_file *file; /* owned mapping (NULL for memory) */
    const uint8_t *data;
    uint64_t size;
    rf_format format;
    char description[128];
    rf_filemap_options opts;

    rf_region *regions;
    size_t n_regions, cap_regions;
    rf_map_tensor *tensors;
    size_t n_tensors, cap_tensors;
    rf_map_problem *problems;
    size_t n_problems, cap_problems;
    fm_pending *pending;
    size_t n_pending, cap_pending;
    int64_t *leaves; /* leaf region indices in offset order (after fm_finish) */
    size_t n_leaves;
    rf_model *model;

    fm_chunk *chunks; /* string arena */
    bool oom;

    int64_t open[FM_MAX_DEPTH]; /* builder: the open parents */
    int depth;
};

/* ---- strings ------------------------------------------------------------------------------- */

/* A copy in the map's arena (never NULL: "" when memory ran out, and map->oom is set). */
const char *rfi_fm_strdup(rf_filemap *m, const char *s);
const char *rfi_fm_printf(rf_filemap *m, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A printable rendering of bytes from the file: quoted, escaped, cut after max_chars. */
const char *rfi_fm_quote(rf_filemap *m, const uint8_t *s, uint64_t len, size_t max_chars);
/* Up to max bytes as hex pairs "47 47 55 46" ("..." appended when cut). */
const char *rfi_fm_hex(rf_filemap *m, const uint8_t *p, uint64_t len, size_t max);

/* ---- regions -------------------------------------------------------------------------------- */

/* Adds a region as a child of the open parent; returns its builder index. */
int64_t rfi_fm_add(rf_filemap *m, rf_region_kind kind, uint64_t offset, uint64_t size,
                   const char *label, const char *value);
/* Adds a region and opens it: regions added until rfi_fm_close become its children. */
int64_t rfi_fm_open(rf_filemap *m, rf_region_kind kind, uint64_t offset, const char *label,
                    const char *value);
/* Closes the innermost open region at end (its size becomes end - offset, 0 if end < offset). */
void rfi_fm_close(rf_filemap *m, uint64_t end);
/* Marks a region damaged (the first reason given wins) and records a problem. */
void rfi_fm_damage(rf_filemap *m, int64_t region, const char *reason);
/* Records a problem attached to region (or, when region is -1, to the deepest region holding
 * offset once the map is finished). damage also marks that region. */
void rfi_fm_problem(rf_filemap *m, rf_problem_severity severity, uint64_t offset, int64_t region,
                    bool damage, const char *message);
/* Marks a region damaged with reason without listing a problem (the problem is listed on a
 * more precise region). */
void rfi_fm_mark(rf_filemap *m, int64_t region, const char *reason);
/* The rest of the file from offset: one damaged unparsed region at depth 0 (closes every open
 * region at offset first). */
void rfi_fm_unparsed_tail(rf_filemap *m, uint64_t offset, const char *reason);

/* ---- tensors ------------------------------------------------------------------------------- */

/* Appends a tensor (copied; name copied into the arena) and returns its index, or -1. The
 * value layout defaults to one row of all elements when rows is 0. */
int64_t rfi_fm_add_tensor(rf_filemap *m, const rf_map_tensor *t);

/* Lays out the tensors of known size from start on (none may start before it; limit is where
 * the data section must end): one data region per tensor in offset order, padding before each
 * tensor up to its alignment, unclaimed bytes as unparsed, overlaps and truncation marked
 * damaged; fills pad_before and data_region. Adds the regions to the open parent and returns
 * the end of the last tensor (start when there is none). */
uint64_t rfi_fm_data_regions(rf_filemap *m, uint64_t start, uint64_t limit);

/* "Q4_K [1024, 256], 147,456 bytes" */
const char *rfi_fm_tensor_summary(rf_filemap *m, const rf_map_tensor *t);

/* ---- mappers ------------------------------------------------------------------------------- */

/* Each maps m->data[0..m->size) of its format; problems go into the map, never an error unless
 * memory ran out. */
rf_status rfi_fm_map_gguf(rf_filemap *m, rf_error *err);
rf_status rfi_fm_map_safetensors(rf_filemap *m, rf_error *err);
rf_status rfi_fm_map_apr(rf_filemap *m, rf_error *err);

/* A reader's message without the leading "<path>: " (the map names the file itself). */
const char *rfi_fm_without_path(const rf_filemap *m, const char *message);

/* The first "at offset N" in a reader's message, or UINT64_MAX when there is none. */
uint64_t rfi_fm_message_offset(const char *message);

/* The builder's bookkeeping for the final pass (filemap_build.c): a problem recorded during
 * the tiling, and the release of the string arena. */
void rfi_fm_push_pending(rf_filemap *m, const fm_pending *p);
void rfi_fm_arena_free(rf_filemap *m);

#endif
