/* apr-hex views over the file map: the summary, --header, --raw, --list, --blocks and --slice,
 * each as text and as JSON, and the helpers the other views share (tensor selection, the xxd
 * layout, colours, JSON of regions and tensors).
 * Not for: statistics (stats.c) or the browser (tui.c). */
#include <fnmatch.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "hex.h"
#include "rosetta/dtype.h"

/* ---- helpers ------------------------------------------------------------------------------- */

size_t *hex_select(const rf_filemap *map, const char *pattern, bool all, size_t *n)
{
    size_t total = rf_filemap_n_tensors(map);
    *n = 0;
    size_t *out = malloc((total ? total : 1) * sizeof *out);
    if (!out)
        return NULL;
    if (!pattern) {
        for (size_t i = 0; i < total && (all || *n == 0); i++)
            out[(*n)++] = i;
    } else if (strpbrk(pattern, "*?[")) {
        for (size_t i = 0; i < total; i++)
            if (fnmatch(pattern, rf_filemap_tensor(map, i)->tensor.name, 0) == 0)
                out[(*n)++] = i;
    } else {
        for (size_t i = 0; i < total && *n == 0; i++)
            if (strcmp(rf_filemap_tensor(map, i)->tensor.name, pattern) == 0)
                out[(*n)++] = i;
        for (size_t i = 0; i < total && *n == 0; i++)
            if (strstr(rf_filemap_tensor(map, i)->tensor.name, pattern))
                out[(*n)++] = i;
        if (*n > 1 && !all) /* substring matches: the first one unless every match is wanted */
            *n = 1;
    }
    if (*n == 0) {
        free(out);
        return NULL;
    }
    return out;
}

int hex_no_tensor(const rf_filemap *map, const hex_options *o)
{
    if (o->tensor)
        cli_error(&HEX_TOOL, "%s: no tensor matches '%s'", rf_filemap_path(map), o->tensor);
    else
        cli_error(&HEX_TOOL, "%s: the file has no tensors (that the map could read)",
                  rf_filemap_path(map));
    return APR_EXIT_USAGE;
}

const char *hex_kind_color(rf_region_kind kind, bool damaged)
{
    if (damaged)
        return "\033[97;41m";
    switch (kind) {
    case RF_REGION_MAGIC:
    case RF_REGION_VERSION:
    case RF_REGION_COUNT:
    case RF_REGION_FIELD:
    case RF_REGION_TENSOR_INFO:
    case RF_REGION_INDEX_ENTRY: return "\033[36m";
    case RF_REGION_CHECKSUM: return "\033[35m";
    case RF_REGION_KV:
    case RF_REGION_KV_KEY:
    case RF_REGION_JSON: return "\033[33m";
    case RF_REGION_KV_TYPE: return "\033[34m";
    case RF_REGION_KV_VALUE: return "\033[32m";
    case RF_REGION_PADDING: return "\033[90m";
    case RF_REGION_UNPARSED: return "\033[31m";
    case RF_REGION_SECTION:
    case RF_REGION_TENSOR_DATA: return "";
    }
    return "";
}

const char *hex_shape(const rf_tensor *t, char *buf, size_t size)
{
    return cli_shape(t->shape, t->ndim, false, buf, size);
}

const char *hex_bytes(const rf_filemap *map, uint64_t offset, uint64_t len, size_t max, char *buf,
                      size_t size)
{
    const uint8_t *d = rf_filemap_bytes(map);
    uint64_t fsize = rf_filemap_size(map);
    size_t n = 0;
    buf[0] = '\0';
    for (uint64_t i = 0; i < len && i < max && offset + i < fsize && n + 4 < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%s%02x", i ? " " : "", d[offset + i]);
    if (len > max && n + 4 < size)
        snprintf(buf + n, size - n, " ..");
    return buf;
}

/* The colour of the byte at offset (its leaf region), "" without colour. */
static const char *color_at(const rf_filemap *map, uint64_t offset)
{
    int64_t r = rf_filemap_find(map, offset);
    if (r < 0)
        return "";
    const rf_region *reg = rf_filemap_region(map, (size_t)r);
    return hex_kind_color(reg->kind, reg->damaged);
}

void hex_dump(FILE *out, const rf_filemap *map, uint64_t from, uint64_t len, unsigned width,
              bool color)
{
    const uint8_t *d = rf_filemap_bytes(map);
    uint64_t size = rf_filemap_size(map);
    if (from >= size || len == 0)
        return;
    if (len > size - from)
        len = size - from;
    uint64_t end = from + len;
    char line[256 * 4 + 64];
    for (uint64_t at = from; at < end; at += width) {
        unsigned n = end - at < width ? (unsigned)(end - at) : width;
        fprintf(out, "%08" PRIx64 ": ", at);
        /* xxd: octets in groups of two separated by a space; a short last line is padded so
         * that the text column lines up */
        const char *current = "";
        for (unsigned i = 0; i < width; i++) {
            if (i < n) {
                if (color) {
                    const char *c = color_at(map, at + i);
                    if (strcmp(c, current) != 0) {
                        fputs(HEX_RESET, out);
                        fputs(c, out);
                        current = c;
                    }
                }
                fprintf(out, "%02x", d[at + i]);
            } else {
                if (color && *current) {
                    fputs(HEX_RESET, out);
                    current = "";
                }
                fputs("  ", out);
            }
            if (i % 2 == 1 && i + 1 < width)
                fputc(' ', out);
        }
        if (color && *current)
            fputs(HEX_RESET, out);
        size_t k = 0;
        line[k++] = ' ';
        line[k++] = ' ';
        line[k] = '\0';
        fputs(line, out);
        current = "";
        for (unsigned i = 0; i < n; i++) {
            uint8_t b = d[at + i];
            if (color) {
                const char *c = color_at(map, at + i);
                if (strcmp(c, current) != 0) {
                    fputs(HEX_RESET, out);
                    fputs(c, out);
                    current = c;
                }
            }
            fputc(b >= 0x20 && b < 0x7f ? (char)b : '.', out);
        }
        if (color && *current)
            fputs(HEX_RESET, out);
        fputc('\n', out);
    }
}

cJSON *hex_json_region(const rf_filemap *map, const rf_region *r, size_t raw_max)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "offset", cli_json_u64(r->offset));
    cJSON_AddItemToObject(o, "size", cli_json_u64(r->size));
    cJSON_AddStringToObject(o, "kind", rf_region_kind_name(r->kind));
    cJSON_AddItemToObject(o, "label", cli_json_string(r->label, strlen(r->label)));
    cJSON_AddItemToObject(o, "value", cli_json_string(r->value, strlen(r->value)));
    cJSON_AddNumberToObject(o, "depth", r->depth);
    if (raw_max) {
        char buf[3 * 64 + 8];
        cJSON_AddStringToObject(o, "raw",
                                hex_bytes(map, r->offset, r->size, raw_max, buf, sizeof buf));
    }
    if (r->tensor >= 0)
        cJSON_AddItemToObject(o, "tensor", cli_json_u64((uint64_t)r->tensor));
    cJSON_AddBoolToObject(o, "damaged", r->damaged);
    if (r->damaged)
        cJSON_AddItemToObject(o, "reason", cli_json_string(r->reason, strlen(r->reason)));
    return o;
}

cJSON *hex_json_tensor(const rf_map_tensor *t)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "name", cli_json_string(t->tensor.name, strlen(t->tensor.name)));
    cJSON_AddItemToObject(o, "dtype", cli_json_string(t->dtype_text, strlen(t->dtype_text)));
    cJSON *shape = cJSON_AddArrayToObject(o, "shape");
    for (int d = 0; d < t->tensor.ndim; d++)
        cJSON_AddItemToArray(shape, cli_json_u64(t->tensor.shape[d]));
    cJSON_AddItemToObject(o, "start", cli_json_u64(t->tensor.file_offset));
    if (t->size_known) {
        cJSON_AddItemToObject(o, "end", cli_json_u64(t->tensor.file_offset + t->tensor.nbytes));
        cJSON_AddItemToObject(o, "size", cli_json_u64(t->tensor.nbytes));
    } else {
        cJSON_AddNullToObject(o, "end");
        cJSON_AddNullToObject(o, "size");
    }
    cJSON_AddItemToObject(o, "alignment", cli_json_u64(t->alignment));
    cJSON_AddItemToObject(
        o, "aligned",
        cJSON_CreateBool(t->alignment <= 1 || t->tensor.file_offset % t->alignment == 0));
    cJSON_AddItemToObject(o, "padding_before", cli_json_u64(t->pad_before));
    cJSON_AddItemToObject(o, "info_offset", cli_json_u64(t->info_offset));
    cJSON_AddBoolToObject(o, "in_file", t->tensor.data != NULL);
    cJSON_AddBoolToObject(o, "damaged", t->damaged);
    if (t->damaged)
        cJSON_AddItemToObject(o, "reason", cli_json_string(t->reason, strlen(t->reason)));
    return o;
}

cJSON *hex_json_root(const rf_filemap *map, const char *mode)
{
    cJSON *o = cJSON_CreateObject();
    const char *path = rf_filemap_path(map);
    cJSON_AddItemToObject(o, "file", cli_json_string(path, strlen(path)));
    cJSON_AddStringToObject(o, "mode", mode);
    cJSON_AddStringToObject(o, "format", rf_format_name(rf_filemap_format(map)));
    cJSON_AddStringToObject(o, "description", rf_filemap_description(map));
    cJSON_AddItemToObject(o, "size", cli_json_u64(rf_filemap_size(map)));
    cJSON_AddBoolToObject(o, "valid", hex_file_ok(map));
    cJSON *problems = cJSON_AddArrayToObject(o, "problems");
    for (size_t i = 0; i < rf_filemap_n_problems(map); i++) {
        const rf_map_problem *p = rf_filemap_problem(map, i);
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "severity",
                                p->severity == RF_PROBLEM_ERROR ? "error" : "warning");
        cJSON_AddItemToObject(j, "offset", cli_json_u64(p->offset));
        if (p->region >= 0)
            cJSON_AddStringToObject(j, "region", rf_filemap_region(map, (size_t)p->region)->label);
        else
            cJSON_AddNullToObject(j, "region");
        cJSON_AddItemToObject(j, "message", cli_json_string(p->message, strlen(p->message)));
        cJSON_AddItemToArray(problems, j);
    }
    return o;
}

bool hex_file_ok(const rf_filemap *map)
{
    rf_format f = rf_filemap_format(map);
    bool model_file = f == RF_FORMAT_GGUF || f == RF_FORMAT_SAFETENSORS || f == RF_FORMAT_APR ||
                      f == RF_FORMAT_APR2_MAGIC;
    return model_file && !rf_filemap_damaged(map);
}

int hex_json_print(cJSON *root)
{
    if (!root || !cli_print_json(root, true)) {
        cli_error(&HEX_TOOL, "cannot write the output (out of memory?)");
        return APR_EXIT_WRITE;
    }
    return APR_EXIT_OK;
}

/* Whether [off, off + size) meets the --offset/--limit window. */
static bool in_window(const hex_options *o, uint64_t off, uint64_t size)
{
    if (!o->has_offset && !o->has_limit)
        return true;
    uint64_t lo = o->has_offset ? o->offset : 0;
    uint64_t hi = o->has_limit && o->limit <= UINT64_MAX - lo ? lo + o->limit : UINT64_MAX;
    if (size == 0)
        return off >= lo && off < hi;
    return off < hi && off + size > lo;
}

/* ---- the summary ------------------------------------------------------------------------------
 */

int hex_summary(const rf_filemap *map, const hex_options *o)
{
    size_t n_sel = 0;
    size_t *sel = hex_select(map, o->tensor, false, &n_sel);
    if (o->tensor && !sel)
        return hex_no_tensor(map, o);
    const rf_map_tensor *first = sel ? rf_filemap_tensor(map, sel[0]) : NULL;
    free(sel);
    /* the bytes shown: the window, else the selected tensor's first bytes, else the file's */
    uint64_t from = o->has_offset ? o->offset : (first ? first->tensor.file_offset : 0);
    uint64_t len = o->has_limit ? o->limit : 64;
    uint64_t size = rf_filemap_size(map);

    /* dtype census */
    struct census_row {
        const char *name;
        size_t tensors;
        uint64_t bytes;
    } census[64];
    size_t n_census = 0;
    for (size_t i = 0; i < rf_filemap_n_tensors(map); i++) {
        const rf_map_tensor *t = rf_filemap_tensor(map, i);
        size_t k = 0;
        while (k < n_census && strcmp(census[k].name, t->dtype_text) != 0)
            k++;
        if (k == n_census) {
            if (n_census == sizeof census / sizeof census[0])
                continue;
            census[n_census++] = (struct census_row){t->dtype_text, 0, 0};
        }
        census[k].tensors++;
        census[k].bytes += t->size_known ? t->tensor.nbytes : 0;
    }

    if (o->json) {
        cJSON *root = hex_json_root(map, "summary");
        cJSON *sections = cJSON_AddArrayToObject(root, "sections");
        for (size_t i = 0; i < rf_filemap_n_regions(map); i++) {
            const rf_region *r = rf_filemap_region(map, i);
            if (r->depth == 0)
                cJSON_AddItemToArray(sections, hex_json_region(map, r, 0));
        }
        cJSON_AddItemToObject(root, "tensor_count", cli_json_u64(rf_filemap_n_tensors(map)));
        cJSON *dt = cJSON_AddArrayToObject(root, "dtypes");
        for (size_t k = 0; k < n_census; k++) {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "dtype", census[k].name);
            cJSON_AddItemToObject(j, "tensors", cli_json_u64(census[k].tensors));
            cJSON_AddItemToObject(j, "bytes", cli_json_u64(census[k].bytes));
            cJSON_AddItemToArray(dt, j);
        }
        if (first)
            cJSON_AddItemToObject(root, "tensor", hex_json_tensor(first));
        else
            cJSON_AddNullToObject(root, "tensor");
        cJSON *bytes = cJSON_AddObjectToObject(root, "bytes");
        cJSON_AddItemToObject(bytes, "offset", cli_json_u64(from));
        uint64_t shown = from < size ? (len < size - from ? len : size - from) : 0;
        char *hex = malloc(shown * 2 + 1);
        if (hex) {
            const uint8_t *d = rf_filemap_bytes(map);
            for (uint64_t i = 0; i < shown; i++)
                snprintf(hex + 2 * i, 3, "%02x", d[from + i]);
            hex[2 * shown] = '\0';
            cJSON_AddStringToObject(bytes, "hex", hex);
            free(hex);
        }
        return hex_json_print(root);
    }

    char sz[32], human[32];
    printf("%s: %s, %s bytes (%s), %zu tensor%s\n", rf_filemap_path(map),
           rf_filemap_description(map), cli_thousands(size, sz, sizeof sz),
           cli_human_bytes(size, human, sizeof human), rf_filemap_n_tensors(map),
           rf_filemap_n_tensors(map) == 1 ? "" : "s");
    cli_table *t = cli_table_new(5, "llrll");
    const char *head[] = {"offset", "end", "size", "region", ""};
    cli_table_add(t, head);
    for (size_t i = 0; i < rf_filemap_n_regions(map); i++) {
        const rf_region *r = rf_filemap_region(map, i);
        if (r->depth != 0)
            continue;
        char off[24], end[24], bytes[32], value[600];
        snprintf(off, sizeof off, "0x%08" PRIx64, r->offset);
        snprintf(end, sizeof end, "0x%08" PRIx64, r->offset + r->size);
        snprintf(value, sizeof value, "%.200s%s%s", r->value, r->damaged ? "  DAMAGED: " : "",
                 r->damaged ? r->reason : "");
        const char *row[] = {off, end, cli_thousands(r->size, bytes, sizeof bytes), r->label,
                             value};
        cli_table_add(t, row);
    }
    cli_table_print(t, stdout, "  ");
    cli_table_free(t);
    if (n_census) {
        printf("dtypes:");
        for (size_t k = 0; k < n_census; k++)
            printf("%s %zu %s (%s)", k ? "," : "", census[k].tensors, census[k].name,
                   cli_human_bytes(census[k].bytes, human, sizeof human));
        printf("\n");
    }
    size_t errors = 0, warnings = 0;
    for (size_t i = 0; i < rf_filemap_n_problems(map); i++)
        if (rf_filemap_problem(map, i)->severity == RF_PROBLEM_ERROR)
            errors++;
        else
            warnings++;
    printf("problems: %zu error%s, %zu warning%s%s\n", errors, errors == 1 ? "" : "s", warnings,
           warnings == 1 ? "" : "s", errors + warnings ? " (on stderr; --header marks them)" : "");
    if (first && !o->has_offset) {
        char shape[256];
        printf("\n%s %s %s at 0x%" PRIx64 ", %s bytes%s%s:\n", first->tensor.name,
               first->dtype_text, hex_shape(&first->tensor, shape, sizeof shape),
               first->tensor.file_offset, cli_thousands(first->tensor.nbytes, sz, sizeof sz),
               first->damaged ? ", DAMAGED: " : "", first->damaged ? first->reason : "");
    } else {
        printf("\nbytes at 0x%" PRIx64 ":\n", from);
    }
    hex_dump(stdout, map, from, len, o->width, o->color);
    return APR_EXIT_OK;
}

/* ---- --header ------------------------------------------------------------------------------- */

/* The tensor a region belongs to (itself or an ancestor), or -1. */
static int64_t owner_tensor(const rf_filemap *map, const rf_region *r)
{
    while (r) {
        if (r->tensor >= 0)
            return r->tensor;
        r = r->parent >= 0 ? rf_filemap_region(map, (size_t)r->parent) : NULL;
    }
    return -1;
}

static bool inside_data(const rf_filemap *map, const rf_region *r)
{
    while (r->parent >= 0)
        r = rf_filemap_region(map, (size_t)r->parent);
    return r->kind == RF_REGION_SECTION && strcmp(r->label, "data") == 0;
}

/* The regions --header shows: everything but what lies inside the data section (damaged regions
 * there are shown) and the bare JSON punctuation between members. */
static bool header_region(const rf_filemap *map, const rf_region *r, const hex_options *o,
                          const bool *selected)
{
    if (r->depth > 0 && inside_data(map, r) && !r->damaged)
        return false; /* tensor bytes are --list's business, unless damaged */
    if (r->kind == RF_REGION_JSON && strcmp(r->label, "json") == 0 && !r->damaged)
        return false;
    if (!in_window(o, r->offset, r->size))
        return false;
    if (selected) {
        int64_t t = owner_tensor(map, r);
        if (t < 0 || !selected[t])
            return false;
    }
    return true;
}

int hex_header(const rf_filemap *map, const hex_options *o)
{
    bool *selected = NULL;
    if (o->tensor) {
        size_t n = 0;
        size_t *sel = hex_select(map, o->tensor, true, &n);
        if (!sel)
            return hex_no_tensor(map, o);
        selected = calloc(rf_filemap_n_tensors(map), sizeof *selected);
        for (size_t i = 0; selected && i < n; i++)
            selected[sel[i]] = true;
        free(sel);
        if (!selected)
            return APR_EXIT_WRITE;
    }
    if (o->json) {
        cJSON *root = hex_json_root(map, "header");
        cJSON *regions = cJSON_AddArrayToObject(root, "regions");
        for (size_t i = 0; i < rf_filemap_n_regions(map); i++) {
            const rf_region *r = rf_filemap_region(map, i);
            if (header_region(map, r, o, selected))
                cJSON_AddItemToArray(regions, hex_json_region(map, r, 32));
        }
        free(selected);
        return hex_json_print(root);
    }
    printf("%-10s %10s  %-26s %s\n", "offset", "size", "raw bytes", "field = value");
    for (size_t i = 0; i < rf_filemap_n_regions(map); i++) {
        const rf_region *r = rf_filemap_region(map, i);
        if (!header_region(map, r, o, selected))
            continue;
        char raw[64], sz[32];
        const char *bytes =
            r->n_children ? "" : hex_bytes(map, r->offset, r->size, 8, raw, sizeof raw);
        const char *c = o->color ? hex_kind_color(r->kind, r->damaged) : "";
        printf("0x%08" PRIx64 " %10s  %-26s %*s%s%s%s", r->offset,
               cli_thousands(r->size, sz, sizeof sz), bytes, 2 * r->depth, "", c, r->label,
               *c ? HEX_RESET : "");
        if (r->kind == RF_REGION_SECTION && r->depth == 0 && strcmp(r->label, "data") == 0)
            printf("  %s (see --list)", r->value);
        else if (*r->value)
            printf(r->kind == RF_REGION_KV || r->kind == RF_REGION_TENSOR_INFO ||
                           r->kind == RF_REGION_INDEX_ENTRY || r->kind == RF_REGION_SECTION ||
                           r->kind == RF_REGION_JSON || r->kind == RF_REGION_PADDING ||
                           r->kind == RF_REGION_UNPARSED
                       ? "  %s"
                       : " = %s",
                   r->value);
        if (r->damaged)
            printf("  <-- DAMAGED: %s", r->reason);
        printf("\n");
    }
    free(selected);
    return APR_EXIT_OK;
}

/* ---- --raw ------------------------------------------------------------------------------------
 */

int hex_raw(const rf_filemap *map, const hex_options *o)
{
    uint64_t size = rf_filemap_size(map);
    uint64_t from = o->has_offset ? o->offset : 0;
    uint64_t len = o->has_limit ? o->limit : UINT64_MAX;
    if (o->tensor) { /* the window defaults to the tensor's bytes */
        size_t n = 0;
        size_t *sel = hex_select(map, o->tensor, false, &n);
        if (!sel)
            return hex_no_tensor(map, o);
        const rf_map_tensor *t = rf_filemap_tensor(map, sel[0]);
        free(sel);
        if (!o->has_offset)
            from = t->tensor.file_offset;
        if (!o->has_limit)
            len = t->size_known ? t->tensor.nbytes : 0;
    }
    if (o->json) {
        cJSON *root = hex_json_root(map, "raw");
        cJSON_AddItemToObject(root, "offset", cli_json_u64(from));
        cJSON_AddNumberToObject(root, "width", o->width);
        cJSON *lines = cJSON_AddArrayToObject(root, "lines");
        const uint8_t *d = rf_filemap_bytes(map);
        uint64_t end = from < size ? (len < size - from ? from + len : size) : from;
        for (uint64_t at = from; at < end; at += o->width) {
            unsigned n = end - at < o->width ? (unsigned)(end - at) : o->width;
            char hex[2 * 256 + 1], text[257];
            for (unsigned i = 0; i < n; i++) {
                snprintf(hex + 2 * i, 3, "%02x", d[at + i]);
                text[i] = d[at + i] >= 0x20 && d[at + i] < 0x7f ? (char)d[at + i] : '.';
            }
            hex[2 * n] = '\0';
            text[n] = '\0';
            cJSON *line = cJSON_CreateObject();
            cJSON_AddItemToObject(line, "offset", cli_json_u64(at));
            cJSON_AddStringToObject(line, "hex", hex);
            cJSON_AddStringToObject(line, "text", text);
            int64_t r = rf_filemap_find(map, at);
            if (r >= 0)
                cJSON_AddItemToObject(
                    line, "region",
                    cli_json_string(rf_filemap_region(map, (size_t)r)->label,
                                    strlen(rf_filemap_region(map, (size_t)r)->label)));
            cJSON_AddItemToArray(lines, line);
        }
        cJSON_AddItemToObject(root, "length", cli_json_u64(end - from));
        return hex_json_print(root);
    }
    hex_dump(stdout, map, from, len, o->width, o->color);
    return APR_EXIT_OK;
}

/* ---- --list -----------------------------------------------------------------------------------
 */

int hex_list(const rf_filemap *map, const hex_options *o)
{
    size_t n = 0;
    size_t *sel = hex_select(map, o->tensor, true, &n);
    if (o->tensor && !sel)
        return hex_no_tensor(map, o);
    if (o->json) {
        cJSON *root = hex_json_root(map, "list");
        cJSON_AddItemToObject(root, "tensor_count", cli_json_u64(rf_filemap_n_tensors(map)));
        cJSON *list = cJSON_AddArrayToObject(root, "tensors");
        for (size_t k = 0; k < n; k++) {
            const rf_map_tensor *t = rf_filemap_tensor(map, sel[k]);
            if (in_window(o, t->tensor.file_offset, t->tensor.nbytes))
                cJSON_AddItemToArray(list, hex_json_tensor(t));
        }
        free(sel);
        return hex_json_print(root);
    }
    cli_table *t = cli_table_new(9, "lllrrrrrl");
    const char *head[] = {"name", "dtype", "shape", "start", "end", "size", "align", "pad", ""};
    cli_table_add(t, head);
    for (size_t k = 0; k < n; k++) {
        const rf_map_tensor *mt = rf_filemap_tensor(map, sel[k]);
        if (!in_window(o, mt->tensor.file_offset, mt->tensor.nbytes))
            continue;
        char shape[256], start[24], end[24], size[32], align[24], pad[32];
        snprintf(start, sizeof start, "0x%" PRIx64, mt->tensor.file_offset);
        snprintf(end, sizeof end, mt->size_known ? "0x%" PRIx64 : "?",
                 mt->tensor.file_offset + mt->tensor.nbytes);
        if (mt->size_known)
            cli_thousands(mt->tensor.nbytes, size, sizeof size);
        else
            snprintf(size, sizeof size, "?");
        snprintf(align, sizeof align, "%" PRIu64 "%s", mt->alignment,
                 mt->alignment > 1 && mt->tensor.file_offset % mt->alignment ? " NO" : "");
        cli_thousands(mt->pad_before, pad, sizeof pad);
        char note[600];
        snprintf(note, sizeof note, "%s%.500s", mt->damaged ? "DAMAGED: " : "",
                 mt->damaged ? mt->reason : "");
        const char *row[] = {mt->tensor.name,
                             mt->dtype_text,
                             hex_shape(&mt->tensor, shape, sizeof shape),
                             start,
                             end,
                             size,
                             align,
                             pad,
                             note};
        cli_table_add(t, row);
    }
    cli_table_print(t, stdout, "");
    cli_table_free(t);
    free(sel);
    return APR_EXIT_OK;
}

/* ---- --blocks ---------------------------------------------------------------------------------
 */

/* "[r, c]" of a row-major element index. */
static const char *coords(const rf_tensor *t, uint64_t e, char *buf, size_t size)
{
    uint64_t idx[RF_MAX_DIMS];
    for (int d = t->ndim - 1; d >= 0; d--) {
        uint64_t dim = t->shape[d] ? t->shape[d] : 1;
        idx[d] = e % dim;
        e /= dim;
    }
    return cli_shape(idx, t->ndim, false, buf, size);
}

static cJSON *json_block(const rf_block *b, uint64_t index, uint64_t offset, uint64_t first,
                         const rf_filemap *map)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "index", cli_json_u64(index));
    cJSON_AddItemToObject(o, "offset", cli_json_u64(offset));
    cJSON_AddItemToObject(o, "first_element", cli_json_u64(first));
    cJSON *fields = cJSON_AddArrayToObject(o, "fields");
    for (size_t f = 0; f < b->n_fields; f++) {
        char hex[3 * 256 + 8];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "name", b->fields[f].name);
        cJSON_AddNumberToObject(j, "offset", b->fields[f].offset);
        cJSON_AddNumberToObject(j, "size", b->fields[f].size);
        cJSON_AddStringToObject(
            j, "hex",
            hex_bytes(map, offset + b->fields[f].offset, b->fields[f].size, 256, hex, sizeof hex));
        cJSON_AddStringToObject(j, "meaning", b->fields[f].meaning);
        cJSON_AddItemToArray(fields, j);
    }
    if (b->has_d)
        cJSON_AddItemToObject(o, "d", cli_json_double(b->d, true));
    if (b->has_dmin)
        cJSON_AddItemToObject(o,
                              b->dtype == RF_DTYPE_Q4_1 || b->dtype == RF_DTYPE_Q5_1 ? "m" : "dmin",
                              cli_json_double(b->dmin, true));
    cJSON *scales = cJSON_AddArrayToObject(o, "scales");
    cJSON *mins = cJSON_AddArrayToObject(o, "mins");
    for (uint32_t s = 0; s < b->n_subs; s++) {
        cJSON_AddItemToArray(scales, cJSON_CreateNumber(b->scales[s]));
        cJSON_AddItemToArray(mins, cJSON_CreateNumber(b->mins[s]));
    }
    cJSON_AddNumberToObject(o, "q_offset", b->q_offset);
    cJSON *q = cJSON_AddArrayToObject(o, "quants");
    cJSON *v = cJSON_AddArrayToObject(o, "values");
    for (uint32_t e = 0; e < b->n_elems; e++) {
        cJSON_AddItemToArray(q, cJSON_CreateNumber(b->q[e]));
        cJSON_AddItemToArray(v, cli_json_double(b->values[e], true));
    }
    return o;
}

static void print_block(const rf_filemap *map, const rf_map_tensor *t, const rf_block *b,
                        uint64_t index, uint64_t n_blocks, uint64_t offset, uint64_t first)
{
    char a[64], z[64];
    uint64_t last = first + b->n_elems - 1;
    printf("block %" PRIu64 " of %" PRIu64 " at 0x%" PRIx64 " (%u bytes): elements %" PRIu64
           "..%" PRIu64 " = %s..%s\n",
           index, n_blocks, offset, b->block_bytes, first, last,
           coords(&t->tensor, first, a, sizeof a),
           coords(&t->tensor, last < t->rows * t->cols ? last : first, z, sizeof z));
    printf("  %-7s %7s %5s  %-50s %s\n", "field", "offset", "size", "bytes", "meaning");
    for (size_t f = 0; f < b->n_fields; f++) {
        char hex[3 * 16 + 8], value[64] = "";
        const rf_block_field *fd = &b->fields[f];
        if (strcmp(fd->name, "d") == 0 || strcmp(fd->name, "scale") == 0)
            snprintf(value, sizeof value, " = %.9g", (double)b->d);
        else if (strcmp(fd->name, "dmin") == 0 || strcmp(fd->name, "m") == 0)
            snprintf(value, sizeof value, " = %.9g", (double)b->dmin);
        snprintf(a, sizeof a, "+%u", fd->offset);
        printf("  %-7s %7s %5u  %-50s %s%s\n", fd->name, a, fd->size,
               hex_bytes(map, offset + fd->offset, fd->size, 16, hex, sizeof hex), fd->meaning,
               value);
    }
    if (b->n_subs) {
        bool mins =
            b->dtype == RF_DTYPE_Q2_K || b->dtype == RF_DTYPE_Q4_K || b->dtype == RF_DTYPE_Q5_K;
        printf("  sub-blocks of %u: %s\n", b->sub_elems,
               mins ? "scale, min, d*scale, dmin*min" : "scale, d*scale");
        for (uint32_t s = 0; s < b->n_subs; s++) {
            if (mins)
                printf("    %2u: %4d %4d  %13.6g %13.6g\n", s, b->scales[s], b->mins[s],
                       (double)(b->d * (float)b->scales[s]), (double)(b->dmin * (float)b->mins[s]));
            else
                printf("    %2u: %4d  %13.6g\n", s, b->scales[s],
                       (double)(b->d * (float)b->scales[s]));
        }
    }
    z[0] = '\0';
    if (b->q_offset)
        snprintf(z, sizeof z, ", the formula subtracts %d", b->q_offset);
    printf("  quants (%u bits%s):\n", b->q_bits, z);
    for (uint32_t e = 0; e < b->n_elems; e += 16) {
        printf("    %3u:", e);
        for (uint32_t k = e; k < e + 16 && k < b->n_elems; k++)
            printf(" %3d", b->q[k]);
        printf("\n");
    }
    printf("  values:\n");
    for (uint32_t e = 0; e < b->n_elems; e += 8) {
        printf("    %3u:", e);
        for (uint32_t k = e; k < e + 8 && k < b->n_elems; k++)
            printf(" %12.5g", (double)b->values[k]);
        printf("\n");
    }
}

int hex_blocks(const rf_filemap *map, const hex_options *o)
{
    size_t n = 0;
    size_t *sel = hex_select(map, o->tensor, true, &n);
    if (!sel)
        return hex_no_tensor(map, o);
    cJSON *root = o->json ? hex_json_root(map, "blocks") : NULL;
    cJSON *list = root ? cJSON_AddArrayToObject(root, "tensors") : NULL;
    size_t shown = 0;
    int code = APR_EXIT_OK;
    for (size_t k = 0; k < n; k++) {
        const rf_map_tensor *t = rf_filemap_tensor(map, sel[k]);
        uint64_t n_blocks = rf_filemap_n_blocks(map, sel[k]);
        const rf_dtype_info *info = t->dtype_known ? rf_dtype_get(t->tensor.dtype) : NULL;
        /* the blocks in the window: by default the first one */
        uint64_t first_block = 0, count = 1;
        if (n_blocks && info) {
            uint64_t bb = info->block_bytes, start = t->tensor.file_offset;
            uint64_t end = start + t->rows * t->row_bytes;
            uint64_t lo = o->has_offset ? o->offset : start;
            uint64_t hi = o->has_limit ? lo + o->limit : lo + bb;
            if (hi <= start || lo >= end) {
                if (o->has_offset && o->tensor == NULL)
                    continue; /* a window elsewhere: this tensor is not concerned */
                n_blocks = 0;
            } else {
                if (lo < start)
                    lo = start;
                uint64_t per_row = n_blocks / t->rows, rel = lo - start;
                first_block = rel / t->row_bytes * per_row + (rel % t->row_bytes) / bb;
                if (first_block >= n_blocks)
                    first_block = n_blocks - 1;
                count = (hi - lo + bb - 1) / bb;
                if (count > n_blocks - first_block)
                    count = n_blocks - first_block;
            }
        } else if (o->has_offset && !o->tensor) {
            continue;
        }
        shown++;
        char shape[256];
        cJSON *jt = NULL;
        if (root) {
            jt = hex_json_tensor(t);
            cJSON_AddItemToObject(jt, "block_count", cli_json_u64(n_blocks));
            cJSON_AddItemToArray(list, jt);
        } else {
            printf("%s%s %s %s: %" PRIu64 " block%s", shown > 1 ? "\n" : "", t->tensor.name,
                   t->dtype_text, hex_shape(&t->tensor, shape, sizeof shape), n_blocks,
                   n_blocks == 1 ? "" : "s");
            if (info && n_blocks)
                printf(" of %u bytes (%u values)", info->block_bytes, info->block_elems);
            printf("\n");
        }
        if (n_blocks == 0) {
            const char *why = !t->dtype_known || !rf_block_supported(t->tensor.dtype)
                                  ? "not a quantized block type Rosetta decodes"
                                  : "the window does not reach this tensor's blocks";
            if (jt)
                cJSON_AddStringToObject(jt, "error", why);
            else
                printf("  (%s)\n", why);
            continue;
        }
        cJSON *blocks = jt ? cJSON_AddArrayToObject(jt, "blocks") : NULL;
        for (uint64_t b = first_block; b < first_block + count; b++) {
            rf_block blk;
            uint64_t offset = 0, first = 0;
            rf_error err;
            if (rf_filemap_block(map, sel[k], b, &blk, &offset, &first, &err) != RF_OK) {
                cli_error(&HEX_TOOL, "%s", err.message);
                code = APR_EXIT_INPUT;
                break;
            }
            if (blocks)
                cJSON_AddItemToArray(blocks, json_block(&blk, b, offset, first, map));
            else
                print_block(map, t, &blk, b, n_blocks, offset, first);
        }
    }
    free(sel);
    if (shown == 0 && !root) {
        cli_error(&HEX_TOOL, "%s: no tensor data at offset 0x%" PRIx64, rf_filemap_path(map),
                  o->offset);
        return APR_EXIT_USAGE;
    }
    if (root) {
        int c = hex_json_print(root);
        return code != APR_EXIT_OK ? code : c;
    }
    return code;
}

/* ---- --slice ----------------------------------------------------------------------------------
 */

int hex_slice(const rf_filemap *map, const hex_options *o)
{
    size_t n = 0;
    size_t *sel = hex_select(map, o->tensor, true, &n);
    if (!sel)
        return hex_no_tensor(map, o);
    if (!o->tensor)
        n = 1;
    cJSON *root = o->json ? hex_json_root(map, "slice") : NULL;
    cJSON *list = root ? cJSON_AddArrayToObject(root, "tensors") : NULL;
    int code = APR_EXIT_OK;
    for (size_t k = 0; k < n && code == APR_EXIT_OK; k++) {
        const rf_map_tensor *t = rf_filemap_tensor(map, sel[k]);
        uint64_t total = t->rows * t->cols;
        uint64_t from = o->slice_from, to = o->slice_to == UINT64_MAX ? total : o->slice_to;
        char shape[256], a[64];
        if (from >= total || to > total) {
            cli_error(&HEX_TOOL,
                      "%s: tensor '%s' has %" PRIu64 " elements: --slice %" PRIu64 ":%" PRIu64
                      " is outside it",
                      rf_filemap_path(map), t->tensor.name, total, from, to);
            code = APR_EXIT_USAGE;
            break;
        }
        float *values = malloc((size_t)(to - from) * sizeof *values);
        rf_error err;
        if (!values) {
            cli_error(&HEX_TOOL, "out of memory for %" PRIu64 " values", to - from);
            code = APR_EXIT_WRITE;
            break;
        }
        if (rf_filemap_values(map, sel[k], from, to - from, values, &err) != RF_OK) {
            cli_error(&HEX_TOOL, "%s", err.message);
            free(values);
            code = APR_EXIT_INPUT;
            break;
        }
        if (root) {
            cJSON *jt = cJSON_CreateObject();
            cJSON_AddItemToObject(jt, "tensor",
                                  cli_json_string(t->tensor.name, strlen(t->tensor.name)));
            cJSON_AddStringToObject(jt, "dtype", t->dtype_text);
            cJSON *sh = cJSON_AddArrayToObject(jt, "shape");
            for (int d = 0; d < t->tensor.ndim; d++)
                cJSON_AddItemToArray(sh, cli_json_u64(t->tensor.shape[d]));
            snprintf(a, sizeof a, "%" PRIu64 ":%" PRIu64, from, to);
            cJSON_AddStringToObject(jt, "slice", a);
            cJSON *vals = cJSON_AddArrayToObject(jt, "values");
            cJSON *crd = cJSON_AddArrayToObject(jt, "coords");
            for (uint64_t i = from; i < to; i++) {
                cJSON_AddItemToArray(vals, cli_json_double(values[i - from], true));
                uint64_t idx[RF_MAX_DIMS], e = i;
                for (int d = t->tensor.ndim - 1; d >= 0; d--) {
                    uint64_t dim = t->tensor.shape[d] ? t->tensor.shape[d] : 1;
                    idx[d] = e % dim;
                    e /= dim;
                }
                cJSON *c = cJSON_CreateArray();
                for (int d = 0; d < t->tensor.ndim; d++)
                    cJSON_AddItemToArray(c, cli_json_u64(idx[d]));
                cJSON_AddItemToArray(crd, c);
            }
            cJSON_AddItemToArray(list, jt);
        } else {
            printf("%s%s %s %s: elements %" PRIu64 "..%" PRIu64 " of %" PRIu64 "\n", k ? "\n" : "",
                   t->tensor.name, t->dtype_text, hex_shape(&t->tensor, shape, sizeof shape), from,
                   to - 1, total);
            printf("  %10s  %-16s %s\n", "index", "coordinates", "value");
            for (uint64_t i = from; i < to; i++) {
                char v[40];
                printf("  %10" PRIu64 "  %-16s %s\n", i, coords(&t->tensor, i, a, sizeof a),
                       cli_shortest(values[i - from], true, v, sizeof v));
            }
        }
        free(values);
    }
    free(sel);
    if (root) {
        int c = hex_json_print(root);
        return code != APR_EXIT_OK ? code : c;
    }
    return code;
}
