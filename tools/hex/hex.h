/* apr-hex internals: the options every view reads and one function per view. The structure of
 * the file comes from the library's file map (rosetta/filemap.h); these files only present it.
 * Not for: format knowledge (libformat) or anything another tool needs. */
#ifndef APR_HEX_H
#define APR_HEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cli.h"
#include "rosetta/filemap.h"

extern const cli_tool HEX_TOOL;

typedef enum hex_mode {
    HEX_SUMMARY,
    HEX_HEADER,
    HEX_RAW,
    HEX_LIST,
    HEX_BLOCKS,
    HEX_SLICE,
    HEX_DISTRIBUTION,
    HEX_ENTROPY,
    HEX_CONTRACT,
    HEX_TUI,
} hex_mode;

typedef struct hex_options {
    hex_mode mode;
    const char *path;
    const char *tensor; /* --tensor PATTERN (NULL: every tensor, or the first one) */
    bool has_offset, has_limit, has_width;
    uint64_t offset; /* --offset: absolute file offset */
    uint64_t limit;  /* --limit: bytes */
    unsigned width;  /* --width: bytes per dump line, histogram bar width, entropy window */
    unsigned bins;   /* --bins: histogram bins */
    uint64_t slice_from, slice_to; /* --slice A:B (B exclusive); slice_to UINT64_MAX = to the end */
    bool json;
    bool color; /* stdout is a terminal and NO_COLOR is unset */
    bool checksums;
} hex_options;

/* Every view prints to stdout and returns an exit code (APR_EXIT_*): 0, or 2 when the command
 * line selects nothing (no tensor matches), or 4 when writing failed. Damage is judged by the
 * caller. */
int hex_summary(const rf_filemap *map, const hex_options *o);
int hex_header(const rf_filemap *map, const hex_options *o);
int hex_raw(const rf_filemap *map, const hex_options *o);
int hex_list(const rf_filemap *map, const hex_options *o);
int hex_blocks(const rf_filemap *map, const hex_options *o);
int hex_slice(const rf_filemap *map, const hex_options *o);
int hex_distribution(const rf_filemap *map, const hex_options *o);
int hex_entropy(const rf_filemap *map, const hex_options *o);
/* Frees what a view abandoned by a fault in the mapped file still held (hex_entropy's tables). */
void hex_release_scratch(void);
int hex_contract(const rf_filemap *map, const hex_options *o);
int hex_tui(const rf_filemap *map, const hex_options *o);

/* ---- shared helpers (views.c) ---------------------------------------------------------------- */

/* Indices of the tensors --tensor selects: a pattern with * ? [ is a glob (fnmatch) over the
 * whole name, otherwise the exact name, or else every name that contains it. Without a pattern,
 * every tensor when all is true, else only the first. Returns a malloc'd array (free it) and
 * the count in *n; NULL with *n = 0 when nothing matches. */
size_t *hex_select(const rf_filemap *map, const char *pattern, bool all, size_t *n);

/* Says on stderr that --tensor matched nothing (or that the file has no tensors); returns 2. */
int hex_no_tensor(const rf_filemap *map, const hex_options *o);

/* xxd's layout of bytes [from, from + len) of the file, width bytes per line, to out; with
 * color, the bytes of each region are coloured by its kind (damaged regions stand out). */
void hex_dump(FILE *out, const rf_filemap *map, uint64_t from, uint64_t len, unsigned width,
              bool color);

/* The ANSI colour of a region kind ("" when none) and the reset sequence. */
const char *hex_kind_color(rf_region_kind kind, bool damaged);
#define HEX_RESET "\033[0m"

/* "[1024, 256]" */
const char *hex_shape(const rf_tensor *t, char *buf, size_t size);

/* Up to max bytes from the file as hex pairs ("47 47 55 46 .." when cut). */
const char *hex_bytes(const rf_filemap *map, uint64_t offset, uint64_t len, size_t max, char *buf,
                      size_t size);

/* JSON of one region (offset, size, kind, label, value, depth, damaged, reason and, when
 * raw_max > 0, up to raw_max bytes as "raw" hex). */
cJSON *hex_json_region(const rf_filemap *map, const rf_region *r, size_t raw_max);
/* JSON of a tensor's layout (name, dtype, shape, offsets, alignment, padding, damage). */
cJSON *hex_json_tensor(const rf_map_tensor *t);
/* {"file", "format", "description", "size", "valid", "mode"} to which a view adds its members. */
cJSON *hex_json_root(const rf_filemap *map, const char *mode);
/* Whether the file is a model file Rosetta reads (GGUF, SafeTensors, APR v2) and undamaged. */
bool hex_file_ok(const rf_filemap *map);
/* Prints and frees root; returns 0 or 4 when printing failed. */
int hex_json_print(cJSON *root);

/* ---- statistics (stats.c) ---------------------------------------------------------------------
 */

/* Summary statistics of a tensor's dequantized values, streamed in chunks. */
typedef struct hex_stats {
    uint64_t count, finite, nan, inf, zeros;
    double min, max, mean, std, skewness, kurtosis; /* over finite values; kurtosis is excess */
    bool exact_quantiles; /* false: from a 65,536-bin histogram (values > 16 Mi) */
    double quantiles[9];  /* at HEX_QUANTILES */
    unsigned bins;
    uint64_t *counts; /* bins counts over [min, max] (malloc'd, hex_stats_free) */
} hex_stats;

extern const double HEX_QUANTILES[9];

/* Computes s for tensor index; bins histogram bins. On failure returns the status with err set
 * (unsupported dtype, bytes missing). */
rf_status hex_tensor_stats(const rf_filemap *map, size_t index, unsigned bins, hex_stats *s,
                           rf_error *err);
void hex_stats_free(hex_stats *s);

#endif
