/* apr-hex --tui: an ncurses browser over the file map. Left: the tensor list or the structure
 * tree, and the histogram of the tensor under the cursor; right: the hex dump coloured by region
 * and a decode pane that follows the cursor (the region and its value, the bytes under the cursor
 * read as every dtype, the tensor element and its dequantized value).
 * Keys: arrows/PgUp/PgDn/Home/End move, Tab switches pane, t tensors/structure, Enter jumps,
 * / search names, n next match, g goto offset, ? help, q quit.
 * Not for: anything the non-interactive views do not show (the TUI is a viewer of the same map). */
#include <ctype.h>
#include <curses.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hex.h"
#include "rosetta/dtype.h"
#include "rosetta/half.h"

#define HIST_BINS      12
#define SAMPLE_CHUNKS  256
#define SAMPLE_CHUNK   4096
#define DECODE_ROWS    10
#define MIN_LEFT_WIDTH 28
#define BYTES_PER_ROW  16

enum {
    PAIR_TITLE = 1,
    PAIR_FIELD,
    PAIR_CHECKSUM,
    PAIR_KEY,
    PAIR_TYPE,
    PAIR_VALUE,
    PAIR_PADDING,
    PAIR_UNPARSED,
    PAIR_DAMAGED,
    PAIR_DATA
};

typedef struct hist {
    int64_t tensor; /* -1: none computed */
    bool ok, sampled;
    char error[160];
    uint64_t counts[HIST_BINS], finite, n;
    double min, max, mean, std;
} hist;

typedef struct tui {
    const rf_filemap *map;
    bool structure;    /* left pane lists regions instead of tensors */
    bool focus_list;   /* keys move the list selection */
    size_t sel_tensor; /* selection in the tensor list */
    size_t sel_region; /* selection in the structure list */
    size_t top_list;   /* first visible list row */
    uint64_t cursor;   /* byte under the cursor */
    uint64_t top_row;  /* first visible hex row (offset / 16) */
    char search[128];
    char status[256];
    hist hist;
    bool color;
} tui;

/* ---- layout --------------------------------------------------------------------------------- */

static int left_width(void)
{
    int w = COLS / 3;
    return w < MIN_LEFT_WIDTH ? MIN_LEFT_WIDTH : (w > 48 ? 48 : w);
}
static int list_rows(void) { return LINES - 2 - (HIST_BINS + 4); }
static int hex_rows(void) { return LINES - 2 - DECODE_ROWS; }

static size_t list_len(const tui *t)
{
    return t->structure ? rf_filemap_n_regions(t->map) : rf_filemap_n_tensors(t->map);
}
static size_t list_sel(const tui *t) { return t->structure ? t->sel_region : t->sel_tensor; }

static int pair_of(rf_region_kind kind, bool damaged)
{
    if (damaged)
        return PAIR_DAMAGED;
    switch (kind) {
    case RF_REGION_MAGIC:
    case RF_REGION_VERSION:
    case RF_REGION_COUNT:
    case RF_REGION_FIELD:
    case RF_REGION_TENSOR_INFO:
    case RF_REGION_INDEX_ENTRY: return PAIR_FIELD;
    case RF_REGION_CHECKSUM: return PAIR_CHECKSUM;
    case RF_REGION_KV:
    case RF_REGION_KV_KEY:
    case RF_REGION_JSON: return PAIR_KEY;
    case RF_REGION_KV_TYPE: return PAIR_TYPE;
    case RF_REGION_KV_VALUE: return PAIR_VALUE;
    case RF_REGION_PADDING: return PAIR_PADDING;
    case RF_REGION_UNPARSED: return PAIR_UNPARSED;
    case RF_REGION_SECTION:
    case RF_REGION_TENSOR_DATA: return PAIR_DATA;
    }
    return PAIR_DATA;
}

/* ---- histogram of a tensor (sampled when large) --------------------------------------------- */

static void compute_hist(tui *t, int64_t index)
{
    hist *h = &t->hist;
    if (h->tensor == index)
        return;
    memset(h, 0, sizeof *h);
    h->tensor = index;
    if (index < 0)
        return;
    const rf_map_tensor *mt = rf_filemap_tensor(t->map, (size_t)index);
    uint64_t n = mt->rows * mt->cols;
    float *buf = malloc(SAMPLE_CHUNK * sizeof *buf);
    float *vals = malloc((size_t)SAMPLE_CHUNKS * SAMPLE_CHUNK * sizeof *vals);
    if (!buf || !vals) {
        snprintf(h->error, sizeof h->error, "out of memory");
        goto done;
    }
    /* every value when few, else SAMPLE_CHUNKS runs spread evenly over the tensor */
    uint64_t got = 0;
    h->sampled = n > (uint64_t)SAMPLE_CHUNKS * SAMPLE_CHUNK;
    uint64_t runs = h->sampled ? SAMPLE_CHUNKS : (n + SAMPLE_CHUNK - 1) / SAMPLE_CHUNK;
    for (uint64_t r = 0; r < runs; r++) {
        uint64_t at = h->sampled ? n / SAMPLE_CHUNKS * r : r * SAMPLE_CHUNK;
        uint64_t k = n - at < SAMPLE_CHUNK ? n - at : SAMPLE_CHUNK;
        rf_error err;
        if (rf_filemap_values(t->map, (size_t)index, at, k, buf, &err) != RF_OK) {
            snprintf(h->error, sizeof h->error, "%.150s", err.message);
            goto done;
        }
        memcpy(vals + got, buf, (size_t)k * sizeof *buf);
        got += k;
    }
    h->n = got;
    double sum = 0, m2 = 0;
    h->min = INFINITY;
    h->max = -INFINITY;
    for (uint64_t i = 0; i < got; i++)
        if (isfinite(vals[i])) {
            h->finite++;
            sum += vals[i];
            h->min = fmin(h->min, vals[i]);
            h->max = fmax(h->max, vals[i]);
        }
    if (h->finite) {
        h->mean = sum / (double)h->finite;
        for (uint64_t i = 0; i < got; i++)
            if (isfinite(vals[i])) {
                double d = vals[i] - h->mean;
                m2 += d * d;
                unsigned b = h->max > h->min
                                 ? (unsigned)((vals[i] - h->min) / (h->max - h->min) * HIST_BINS)
                                 : 0;
                h->counts[b >= HIST_BINS ? HIST_BINS - 1 : b]++;
            }
        h->std = sqrt(m2 / (double)h->finite);
    }
    h->ok = true;
done:
    free(buf);
    free(vals);
}

/* ---- drawing -------------------------------------------------------------------------------- */

static void put(int y, int x, int width, const char *s)
{
    if (width <= 0 || y < 0 || y >= LINES)
        return;
    mvaddnstr(y, x, s, width);
}

static void draw_title(const tui *t)
{
    char buf[512], sz[32];
    const rf_filemap *m = t->map;
    snprintf(buf, sizeof buf, " apr hex  %s  %s  %s bytes  %zu tensors%s", rf_filemap_path(m),
             rf_filemap_description(m), cli_thousands(rf_filemap_size(m), sz, sizeof sz),
             rf_filemap_n_tensors(m), rf_filemap_damaged(m) ? "  DAMAGED" : "");
    attron(COLOR_PAIR(PAIR_TITLE) | A_REVERSE);
    mvhline(0, 0, ' ', COLS);
    put(0, 0, COLS, buf);
    attroff(COLOR_PAIR(PAIR_TITLE) | A_REVERSE);
}

static void list_item(const tui *t, size_t i, char *buf, size_t size, int *pair, bool *bad)
{
    if (t->structure) {
        const rf_region *r = rf_filemap_region(t->map, i);
        snprintf(buf, size, "%*s%s %08" PRIx64 " %s", 2 * r->depth, "", r->damaged ? "!" : " ",
                 r->offset, r->label);
        *pair = pair_of(r->kind, r->damaged);
        *bad = r->damaged;
    } else {
        const rf_map_tensor *mt = rf_filemap_tensor(t->map, i);
        snprintf(buf, size, "%s%-7s %s", mt->damaged ? "!" : " ", mt->dtype_text, mt->tensor.name);
        *pair = mt->damaged ? PAIR_DAMAGED : PAIR_DATA;
        *bad = mt->damaged;
    }
}

static void draw_list(tui *t)
{
    int w = left_width() - 1, rows = list_rows();
    size_t n = list_len(t), sel = list_sel(t);
    if (sel < t->top_list)
        t->top_list = sel;
    if (rows > 0 && sel >= t->top_list + (size_t)rows)
        t->top_list = sel - (size_t)rows + 1;
    char head[64];
    snprintf(head, sizeof head, "%s (%zu)%s", t->structure ? "structure" : "tensors", n,
             t->focus_list ? " *" : "");
    attron(A_BOLD);
    put(1, 0, w, head);
    attroff(A_BOLD);
    for (int r = 0; r < rows - 1; r++) {
        size_t i = t->top_list + (size_t)r;
        if (i >= n)
            break;
        char buf[512];
        int pair;
        bool bad;
        list_item(t, i, buf, sizeof buf, &pair, &bad);
        int attr = (t->color ? COLOR_PAIR(pair) : 0) | (i == sel ? A_REVERSE : 0);
        attron(attr);
        put(2 + r, 0, w, buf);
        attroff(attr);
    }
    mvvline(1, w, '|', LINES - 2);
}

static void draw_hist(tui *t)
{
    int top = list_rows() + 1, w = left_width() - 1;
    const hist *h = &t->hist;
    mvhline(top, 0, '-', w);
    char buf[256];
    if (h->tensor < 0) {
        put(top + 1, 0, w, "histogram: cursor not in a tensor");
        return;
    }
    const rf_map_tensor *mt = rf_filemap_tensor(t->map, (size_t)h->tensor);
    snprintf(buf, sizeof buf, "histogram %s%s", mt->tensor.name, h->sampled ? " (sampled)" : "");
    attron(A_BOLD);
    put(top + 1, 0, w, buf);
    attroff(A_BOLD);
    if (!h->ok || h->finite == 0) {
        put(top + 2, 0, w, h->error[0] ? h->error : "no finite values");
        return;
    }
    snprintf(buf, sizeof buf, "min %.4g max %.4g mean %.3g std %.3g", h->min, h->max, h->mean,
             h->std);
    put(top + 2, 0, w, buf);
    uint64_t most = 1;
    for (int b = 0; b < HIST_BINS; b++)
        if (h->counts[b] > most)
            most = h->counts[b];
    int bar = w - 12;
    for (int b = 0; b < HIST_BINS && top + 3 + b < LINES - 1; b++) {
        snprintf(buf, sizeof buf, "%10.3g ", h->min + (h->max - h->min) * b / HIST_BINS);
        put(top + 3 + b, 0, w, buf);
        int len = bar > 0 ? (int)((double)h->counts[b] / (double)most * bar + 0.5) : 0;
        if (h->counts[b] && len == 0)
            len = 1;
        mvhline(top + 3 + b, 11, '#', len);
    }
}

static void draw_hex(tui *t)
{
    int x0 = left_width() + 1, rows = hex_rows() - 1;
    const uint8_t *d = rf_filemap_bytes(t->map);
    uint64_t size = rf_filemap_size(t->map), cur_row = t->cursor / BYTES_PER_ROW;
    if (cur_row < t->top_row)
        t->top_row = cur_row;
    if (rows > 0 && cur_row >= t->top_row + (uint64_t)rows)
        t->top_row = cur_row - (uint64_t)rows + 1;
    attron(A_BOLD);
    put(1, x0, COLS - x0, t->focus_list ? "hex" : "hex *");
    attroff(A_BOLD);
    for (int r = 0; r < rows; r++) {
        uint64_t at = (t->top_row + (uint64_t)r) * BYTES_PER_ROW;
        if (at >= size)
            break;
        int y = 2 + r;
        char addr[24];
        snprintf(addr, sizeof addr, "%08" PRIx64 ": ", at);
        put(y, x0, COLS - x0, addr);
        int x = x0 + (int)strlen(addr), xa = x + 40;
        for (int i = 0; i < BYTES_PER_ROW && at + (uint64_t)i < size; i++) {
            uint64_t off = at + (uint64_t)i;
            int64_t ri = rf_filemap_find(t->map, off);
            const rf_region *reg = ri >= 0 ? rf_filemap_region(t->map, (size_t)ri) : NULL;
            int attr = (t->color && reg ? COLOR_PAIR(pair_of(reg->kind, reg->damaged)) : 0) |
                       (off == t->cursor ? A_REVERSE : 0);
            char hx[4];
            snprintf(hx, sizeof hx, "%02x", d[off]);
            attron(attr);
            if (x + 2 < COLS)
                mvaddstr(y, x, hx);
            if (xa + i < COLS)
                mvaddch(y, xa + i, d[off] >= 0x20 && d[off] < 0x7f ? d[off] : '.');
            attroff(attr);
            x += 2 + (i % 2 == 1);
        }
    }
}

/* n little-endian bytes as an unsigned integer (n <= 8). */
static uint64_t load_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* The bytes at the cursor read as each plain type (little-endian): integers, then floats. */
static void decode_types(const tui *t, char *ints, char *floats, size_t size)
{
    const uint8_t *d = rf_filemap_bytes(t->map) + t->cursor;
    uint64_t left = rf_filemap_size(t->map) - t->cursor;
    size_t n = (size_t)snprintf(ints, size, "u8 %u  i8 %d", d[0], (int8_t)d[0]);
    size_t m = 0;
    floats[0] = '\0';
    if (left >= 2) {
        uint16_t v = (uint16_t)load_le(d, 2);
        n += (size_t)snprintf(ints + n, size - n, "  u16 %u  i16 %d", v, (int16_t)v);
        m += (size_t)snprintf(floats + m, size - m, "f16 %.6g  bf16 %.6g", (double)rf_f16_to_f32(v),
                              (double)rf_bf16_to_f32(v));
    }
    if (left >= 4 && n < size && m < size) {
        uint32_t v = (uint32_t)load_le(d, 4);
        float f;
        memcpy(&f, &v, sizeof f);
        n += (size_t)snprintf(ints + n, size - n, "  u32 %u  i32 %d", v, (int32_t)v);
        m += (size_t)snprintf(floats + m, size - m, "  f32 %.9g", (double)f);
    }
    if (left >= 8 && n < size && m < size) {
        uint64_t v = load_le(d, 8);
        double f;
        memcpy(&f, &v, sizeof f);
        snprintf(ints + n, size - n, "  u64 %" PRIu64 "  i64 %" PRId64, v, (int64_t)v);
        snprintf(floats + m, size - m, "  f64 %.17g", f);
    }
}

/* The tensor element under the cursor and its value. */
static void decode_element(tui *t, int64_t index, char *buf, size_t size)
{
    const rf_map_tensor *mt = rf_filemap_tensor(t->map, (size_t)index);
    buf[0] = '\0';
    if (!mt->dtype_known)
        return;
    const rf_dtype_info *info = rf_dtype_get(mt->tensor.dtype);
    uint64_t rel = t->cursor - mt->tensor.file_offset;
    if (!info || mt->row_bytes == 0 || rel >= mt->rows * mt->row_bytes)
        return;
    uint64_t row = rel / mt->row_bytes, in_row = rel % mt->row_bytes;
    uint64_t block = in_row / info->block_bytes;
    uint64_t elem = row * mt->cols + block * info->block_elems;
    if (info->block_elems == 1)
        elem = row * mt->cols + in_row / info->block_bytes;
    if (mt->tensor.dtype == RF_DTYPE_APR_Q8) /* 4-byte scale, then one byte per value */
        elem = in_row < 4 ? 0 : in_row - 4;
    if (elem >= mt->rows * mt->cols) {
        snprintf(buf, size, "in the padding of a row");
        return;
    }
    uint64_t idx[RF_MAX_DIMS], e = elem;
    for (int dd = mt->tensor.ndim - 1; dd >= 0; dd--) {
        uint64_t dim = mt->tensor.shape[dd] ? mt->tensor.shape[dd] : 1;
        idx[dd] = e % dim;
        e /= dim;
    }
    char coords[128];
    cli_shape(idx, mt->tensor.ndim, false, coords, sizeof coords);
    float v;
    rf_error err;
    size_t n = (size_t)snprintf(buf, size, "element %" PRIu64 " %s", elem, coords);
    if (info->block_elems > 1 && mt->tensor.dtype != RF_DTYPE_APR_Q8)
        n += (size_t)snprintf(buf + n, size - n, " (first of block %" PRIu64 ", %u values)",
                              row * (mt->row_bytes / info->block_bytes) + block, info->block_elems);
    if (rf_filemap_values(t->map, (size_t)index, elem, 1, &v, &err) == RF_OK)
        snprintf(buf + n, size - n, " = %.9g", (double)v);
    else
        snprintf(buf + n, size - n, ": %.300s", err.message);
}

static void draw_decode(tui *t)
{
    int x0 = left_width() + 1, top = hex_rows() + 1, w = COLS - x0;
    mvhline(top, x0, '-', w);
    if (rf_filemap_size(t->map) == 0) {
        put(top + 1, x0, w, "empty file");
        return;
    }
    char buf[1024];
    int64_t leaf = rf_filemap_find(t->map, t->cursor);
    snprintf(buf, sizeof buf, "offset 0x%" PRIx64 " (%" PRIu64 ")", t->cursor, t->cursor);
    attron(A_BOLD);
    put(top + 1, x0, w, buf);
    attroff(A_BOLD);
    int y = top + 2;
    /* the path of regions down to the leaf */
    const rf_region *chain[16];
    int depth = 0;
    for (int64_t r = leaf; r >= 0 && depth < 16; r = rf_filemap_region(t->map, (size_t)r)->parent)
        chain[depth++] = rf_filemap_region(t->map, (size_t)r);
    size_t n = 0;
    buf[0] = '\0';
    for (int i = depth - 1; i >= 0 && n < sizeof buf; i--)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s", i == depth - 1 ? "" : " > ",
                              chain[i]->label);
    put(y++, x0, w, buf);
    if (depth > 0) {
        const rf_region *r = chain[0];
        snprintf(buf, sizeof buf, "%s [0x%" PRIx64 ", +%" PRIu64 "): %s",
                 rf_region_kind_name(r->kind), r->offset, r->size, r->value);
        put(y++, x0, w, buf);
        for (int i = 0; i < depth && y < LINES - 1; i++)
            if (chain[i]->damaged) {
                attron(t->color ? COLOR_PAIR(PAIR_DAMAGED) : A_BOLD);
                snprintf(buf, sizeof buf, "DAMAGED (%s): %s", chain[i]->label, chain[i]->reason);
                put(y++, x0, w, buf);
                attroff(t->color ? COLOR_PAIR(PAIR_DAMAGED) : A_BOLD);
                break;
            }
    }
    char floats[512];
    decode_types(t, buf, floats, sizeof floats);
    put(y++, x0, w, buf);
    if (floats[0] && y < LINES - 1)
        put(y++, x0, w, floats);
    int64_t tensor = -1;
    for (int i = 0; i < depth; i++)
        if (chain[i]->tensor >= 0 && chain[i]->kind == RF_REGION_TENSOR_DATA)
            tensor = chain[i]->tensor;
    if (tensor >= 0 && y < LINES - 1) {
        decode_element(t, tensor, buf, sizeof buf);
        put(y++, x0, w, buf);
    }
}

static void draw_status(const tui *t)
{
    attron(A_REVERSE);
    mvhline(LINES - 1, 0, ' ', COLS);
    put(LINES - 1, 0, COLS,
        t->status[0] ? t->status
                     : " q quit  ? help  Tab pane  t tensors/structure  / search  n next  "
                       "g goto  Enter jump");
    attroff(A_REVERSE);
}

static int64_t tensor_at(const tui *t)
{
    for (int64_t r = rf_filemap_find(t->map, t->cursor); r >= 0;
         r = rf_filemap_region(t->map, (size_t)r)->parent)
        if (rf_filemap_region(t->map, (size_t)r)->tensor >= 0)
            return rf_filemap_region(t->map, (size_t)r)->tensor;
    return -1;
}

static void draw(tui *t)
{
    erase();
    if (COLS < 60 || LINES < 20) {
        put(0, 0, COLS, "apr hex: the terminal is too small (at least 60x20); q quits");
        refresh();
        return;
    }
    int64_t shown = t->structure || !t->focus_list ? tensor_at(t) : (int64_t)t->sel_tensor;
    if (!t->structure && t->focus_list && rf_filemap_n_tensors(t->map) == 0)
        shown = -1;
    compute_hist(t, shown);
    draw_title(t);
    draw_list(t);
    draw_hist(t);
    draw_hex(t);
    draw_decode(t);
    draw_status(t);
    refresh();
}

/* ---- interaction ---------------------------------------------------------------------------- */

static const char *const HELP[] = {
    "apr hex --tui: keys",
    "",
    "  arrows, PgUp, PgDn   move (in the list: items; in the hex pane: bytes and rows)",
    "  Home, End            first / last item or byte",
    "  Tab                  switch between the list and the hex pane",
    "  t                    list tensors / the structure tree",
    "  Enter                jump the hex cursor to the selected item",
    "  /                    search tensor names and region labels (substring)",
    "  n                    next match",
    "  g                    go to an offset (decimal or 0x...)",
    "  ?                    this help",
    "  q                    quit",
    "",
    "Colours: header fields cyan, keys yellow, values green, types blue, checksums",
    "magenta, padding grey, unparsed red, damaged white on red. The decode pane reads",
    "the bytes under the cursor as every type and shows the tensor element there.",
    "",
    "Press any key.",
};

static void show_help(void)
{
    int h = (int)(sizeof HELP / sizeof HELP[0]) + 2, w = 84;
    if (h > LINES)
        h = LINES;
    if (w > COLS)
        w = COLS;
    WINDOW *win = newwin(h, w, (LINES - h) / 2, (COLS - w) / 2);
    if (!win)
        return;
    wborder(win, '|', '|', '-', '-', '+', '+', '+', '+');
    for (int i = 0; i < h - 2; i++)
        mvwaddnstr(win, 1 + i, 2, HELP[i], w - 4);
    wrefresh(win);
    wgetch(win);
    delwin(win);
}

/* Reads a line at the bottom row; false when cancelled (Escape or empty). */
static bool prompt(const char *label, char *out, size_t size)
{
    size_t n = 0;
    out[0] = '\0';
    for (;;) {
        attron(A_REVERSE);
        mvhline(LINES - 1, 0, ' ', COLS);
        mvprintw(LINES - 1, 0, "%s%s", label, out);
        attroff(A_REVERSE);
        refresh();
        int c = getch();
        if (c == '\n' || c == KEY_ENTER || c == '\r')
            return n > 0;
        if (c == 27)
            return false;
        if ((c == KEY_BACKSPACE || c == 127 || c == 8) && n > 0)
            out[--n] = '\0';
        else if (c >= 0x20 && c < 0x7f && n + 1 < size) {
            out[n++] = (char)c;
            out[n] = '\0';
        }
    }
}

static uint64_t item_offset(const tui *t, size_t i)
{
    if (t->structure)
        return rf_filemap_region(t->map, i)->offset;
    return rf_filemap_tensor(t->map, i)->tensor.file_offset;
}

static void set_cursor(tui *t, uint64_t at)
{
    uint64_t size = rf_filemap_size(t->map);
    t->cursor = size == 0 ? 0 : (at >= size ? size - 1 : at);
}

static void select_item(tui *t, size_t i)
{
    size_t n = list_len(t);
    if (n == 0)
        return;
    if (i >= n)
        i = n - 1;
    if (t->structure)
        t->sel_region = i;
    else
        t->sel_tensor = i;
    set_cursor(t, item_offset(t, i));
}

static bool matches(const tui *t, size_t i, const char *q)
{
    if (t->structure) {
        const rf_region *r = rf_filemap_region(t->map, i);
        return strstr(r->label, q) || strstr(r->value, q);
    }
    return strstr(rf_filemap_tensor(t->map, i)->tensor.name, q) != NULL;
}

static void search_next(tui *t)
{
    size_t n = list_len(t);
    if (!t->search[0] || n == 0)
        return;
    size_t start = list_sel(t);
    for (size_t k = 1; k <= n; k++) {
        size_t i = (start + k) % n;
        if (matches(t, i, t->search)) {
            select_item(t, i);
            snprintf(t->status, sizeof t->status, " found '%s' at 0x%" PRIx64, t->search,
                     item_offset(t, i));
            return;
        }
    }
    snprintf(t->status, sizeof t->status, " not found: '%s'", t->search);
}

static void move_list(tui *t, int64_t delta)
{
    int64_t i = (int64_t)list_sel(t) + delta, n = (int64_t)list_len(t);
    select_item(t, (size_t)(i < 0 ? 0 : (i >= n ? n - 1 : i)));
}

static void move_hex(tui *t, int64_t delta)
{
    int64_t at = (int64_t)t->cursor + delta;
    set_cursor(t, at < 0 ? 0 : (uint64_t)at);
}

int hex_tui(const rf_filemap *map, const hex_options *o)
{
    if (!isatty(fileno(stdin)) || !isatty(fileno(stdout))) {
        cli_error(&HEX_TOOL, "--tui needs a terminal (stdin and stdout)");
        return APR_EXIT_USAGE;
    }
    tui t = {.map = map, .focus_list = true, .hist = {.tensor = -2}};
    if (o->has_offset)
        set_cursor(&t, o->offset), t.focus_list = false;
    else if (rf_filemap_n_tensors(map))
        select_item(&t, 0);
    if (o->tensor) {
        size_t n = 0;
        size_t *sel = hex_select(map, o->tensor, false, &n);
        if (sel)
            select_item(&t, sel[0]);
        free(sel);
    }
    if (!initscr())
        return APR_EXIT_INPUT;
    cbreak();
    noecho();
    keypad(stdscr, TRUE);
    curs_set(0);
    set_escdelay(25);
    t.color = has_colors() && !getenv("NO_COLOR");
    if (t.color) {
        start_color();
        use_default_colors();
        init_pair(PAIR_TITLE, COLOR_CYAN, -1);
        init_pair(PAIR_FIELD, COLOR_CYAN, -1);
        init_pair(PAIR_CHECKSUM, COLOR_MAGENTA, -1);
        init_pair(PAIR_KEY, COLOR_YELLOW, -1);
        init_pair(PAIR_TYPE, COLOR_BLUE, -1);
        init_pair(PAIR_VALUE, COLOR_GREEN, -1);
        init_pair(PAIR_PADDING, COLOR_BLACK + 8 < COLORS ? 8 : COLOR_WHITE, -1);
        init_pair(PAIR_UNPARSED, COLOR_RED, -1);
        init_pair(PAIR_DAMAGED, COLOR_WHITE, COLOR_RED);
        init_pair(PAIR_DATA, -1, -1);
    }
    for (;;) {
        draw(&t);
        int c = getch();
        t.status[0] = '\0';
        int page = (t.focus_list ? list_rows() : hex_rows()) - 2;
        if (page < 1)
            page = 1;
        switch (c) {
        case 'q':
        case 'Q': endwin(); return APR_EXIT_OK;
        case '?': show_help(); break;
        case '\t': t.focus_list = !t.focus_list; break;
        case 't':
            t.structure = !t.structure;
            t.top_list = 0;
            if (t.structure) { /* select the region under the cursor */
                int64_t r = rf_filemap_find(map, t.cursor);
                if (r >= 0)
                    t.sel_region = (size_t)r;
            }
            break;
        case '\n':
        case '\r':
        case KEY_ENTER:
            if (list_len(&t))
                set_cursor(&t, item_offset(&t, list_sel(&t)));
            t.focus_list = false;
            break;
        case '/':
            if (prompt(" search: ", t.search, sizeof t.search))
                search_next(&t);
            break;
        case 'n': search_next(&t); break;
        case 'g': {
            char text[64];
            if (prompt(" goto offset (decimal or 0x...): ", text, sizeof text)) {
                char *end;
                unsigned long long v = strtoull(text, &end, strncmp(text, "0x", 2) == 0 ? 16 : 10);
                if (*end || text[0] == '-')
                    snprintf(t.status, sizeof t.status, " not an offset: '%s'", text);
                else {
                    set_cursor(&t, v);
                    t.focus_list = false;
                    snprintf(t.status, sizeof t.status, " at 0x%" PRIx64, t.cursor);
                }
            }
            break;
        }
        case KEY_UP: t.focus_list ? move_list(&t, -1) : move_hex(&t, -BYTES_PER_ROW); break;
        case KEY_DOWN: t.focus_list ? move_list(&t, 1) : move_hex(&t, BYTES_PER_ROW); break;
        case KEY_LEFT:
            move_hex(&t, -1);
            t.focus_list = false;
            break;
        case KEY_RIGHT:
            move_hex(&t, 1);
            t.focus_list = false;
            break;
        case KEY_PPAGE:
            t.focus_list ? move_list(&t, -page) : move_hex(&t, -(int64_t)page * BYTES_PER_ROW);
            break;
        case KEY_NPAGE:
            t.focus_list ? move_list(&t, page) : move_hex(&t, (int64_t)page * BYTES_PER_ROW);
            break;
        case KEY_HOME: t.focus_list ? select_item(&t, 0) : set_cursor(&t, 0); break;
        case KEY_END:
            t.focus_list ? select_item(&t, list_len(&t) ? list_len(&t) - 1 : 0)
                         : set_cursor(&t, UINT64_MAX);
            break;
        default: break;
        }
    }
}
