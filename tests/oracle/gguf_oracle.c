/* gguf_oracle: differential test of Rosetta's strict GGUF reader against llama.cpp's reader.
 *
 *   gguf_oracle --tmp DIR [--verbose] [FILE...]
 *
 * Every case is a byte image written to DIR/case.gguf and opened twice:
 *   - Rosetta: rf_model_open(path, {.lenient = false}); accepted = a model of format GGUF.
 *   - llama.cpp: gguf_init_from_file(path, {.no_alloc = true, .ctx = &meta}) in a forked child
 *     (a crash there is counted, not fatal), followed by the bounds check llama.cpp's model
 *     loader makes for every tensor (llama_tensor_weight: data offset + tensor offset + ggml_nbytes
 *     must lie inside the file; gguf.cpp itself does not read the data with no_alloc). accepted =
 *     both passed.
 * The decisions must agree. When both accept, the tensors (names, ggml types, ne[] = Rosetta's
 * row-major shape reversed and padded with 1s, absolute data offsets, byte sizes) and the
 * metadata keys (count and order) must be equal. A disagreement is allowed only when one of the
 * rules in the allowlist below explains it; anything else fails the test.
 *
 * Cases: the FILEs given (valid GGUFs written by Rosetta, tests/data/bad/gguf/ files), files
 * built here by a small GGUF serializer independent of Rosetta's writer (alignment values,
 * duplicate keys and names, name lengths, n_dims 0..5, every type code with good and bad row
 * lengths, misaligned / overlapping / gapped offsets, big-endian, nested arrays, ...), and a
 * deterministic mutation corpus over seed files: truncation at every field boundary and at
 * random points, every counted field set to edge values, random byte flips. Fixed seeds only.
 * Exit status: 0 all agree (modulo the allowlist), 1 an unexplained disagreement, 2 usage. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ggml.h"
#include "gguf.h"
#include "rosetta/detect.h"
#include "rosetta/gguf.h"
#include "rosetta/model.h"
#include "rosetta/status.h"

static const char *tmp_path; /* --tmp: where the case files are written */
static bool verbose;

/* ---- utilities ------------------------------------------------------------------------------ */

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "gguf_oracle: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        die("out of memory");
    return q;
}

static uint64_t rng_state = 0x5eed0f6a7c3d2b19ull;
static uint64_t rng(void) /* splitmix64 */
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static uint64_t rng_below(uint64_t n) { return n ? rng() % n : 0; }

typedef struct buf {
    uint8_t *p;
    size_t n, cap;
    bool be; /* write scalars big-endian */
} buf;

static void put(buf *b, const void *src, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = xrealloc(b->p, b->cap);
    }
    if (n)
        memcpy(b->p + b->n, src, n);
    b->n += n;
}
static void put_uint(buf *b, uint64_t v, int width)
{
    uint8_t t[8];
    for (int i = 0; i < width; i++)
        t[b->be ? width - 1 - i : i] = (uint8_t)(v >> (8 * i));
    put(b, t, (size_t)width);
}
static void put_u32(buf *b, uint32_t v) { put_uint(b, v, 4); }
static void put_u64(buf *b, uint64_t v) { put_uint(b, v, 8); }
static void put_strn(buf *b, const char *s, size_t n)
{
    put_u64(b, n);
    put(b, s, n);
}
static void put_str(buf *b, const char *s) { put_strn(b, s, strlen(s)); }
static void pad_zero(buf *b, size_t align)
{
    static const uint8_t z[4096] = {0};
    while (b->n % align)
        put(b, z, align - b->n % align < sizeof z ? align - b->n % align : sizeof z);
}

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}
static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ---- the two readers' views ------------------------------------------------------------------ */

typedef struct tview {
    char *name;
    int64_t type;
    int64_t ne[4];
    uint64_t offset; /* absolute */
    uint64_t nbytes;
} tview;

typedef struct view {
    bool accepted;
    bool crashed;   /* ggml only: the child died on a signal */
    bool header_ok; /* ggml only: gguf_init_from_file succeeded */
    char msg[1100]; /* Rosetta's error, or ggml's outcome */
    size_t n_kv;
    char **keys;
    uint32_t (*kv_types)[3]; /* value type; for arrays also element type and count (low 32 bits) */
    size_t n_t;
    tview *t;
    bool nested_array; /* Rosetta only: some value is an array of arrays */
} view;

static void view_free(view *v)
{
    for (size_t i = 0; i < v->n_kv; i++)
        free(v->keys[i]);
    for (size_t i = 0; i < v->n_t; i++)
        free(v->t[i].name);
    free(v->keys);
    free(v->kv_types);
    free(v->t);
    memset(v, 0, sizeof *v);
}

static void rosetta_view(const char *path, view *v)
{
    memset(v, 0, sizeof *v);
    rf_open_options opts = {.lenient = false};
    rf_error err = {0};
    rf_model *m = rf_model_open(path, &opts, &err);
    if (!m) {
        snprintf(v->msg, sizeof v->msg, "%s", err.message);
        return;
    }
    if (rf_model_format(m) != RF_FORMAT_GGUF) {
        snprintf(v->msg, sizeof v->msg, "opened as a non-GGUF format %d", (int)rf_model_format(m));
        rf_model_free(m);
        return;
    }
    v->accepted = true;
    v->n_kv = rf_model_n_kv(m);
    v->keys = xrealloc(NULL, v->n_kv * sizeof *v->keys);
    v->kv_types = xrealloc(NULL, v->n_kv * sizeof *v->kv_types);
    for (size_t i = 0; i < v->n_kv; i++) {
        const rf_kv *kv = rf_model_kv(m, i);
        v->keys[i] = strdup(kv->key);
        v->kv_types[i][0] = (uint32_t)kv->value.type;
        v->kv_types[i][1] =
            kv->value.type == RF_VALUE_ARRAY ? (uint32_t)kv->value.as.arr.elem_type : 0;
        v->kv_types[i][2] = kv->value.type == RF_VALUE_ARRAY ? (uint32_t)kv->value.as.arr.count : 0;
        if (kv->value.type == RF_VALUE_ARRAY && kv->value.as.arr.elem_type == RF_VALUE_ARRAY)
            v->nested_array = true;
    }
    v->n_t = rf_model_n_tensors(m);
    v->t = xrealloc(NULL, v->n_t * sizeof *v->t);
    for (size_t i = 0; i < v->n_t; i++) {
        const rf_tensor *t = rf_model_tensor(m, i);
        tview *o = &v->t[i];
        o->name = strdup(t->name);
        o->type = (int64_t)t->dtype; /* rf_dtype values 0..42 are the ggml type codes */
        for (int j = 0; j < 4; j++)
            o->ne[j] = 1;
        for (int j = 0; j < t->ndim && j < 4; j++)
            o->ne[j] = (int64_t)t->shape[t->ndim - 1 - j];
        if (t->ndim > 4)
            o->ne[0] = -1; /* cannot match ggml */
        o->offset = t->file_offset;
        o->nbytes = t->nbytes;
    }
    rf_model_free(m);
}

/* Child side: the ggml reader's view, serialized to fd. */
static void wr(int fd, const void *p, size_t n)
{
    const uint8_t *c = p;
    while (n) {
        ssize_t k = write(fd, c, n);
        if (k <= 0)
            _exit(3);
        c += k;
        n -= (size_t)k;
    }
}
static void wr_str(int fd, const char *s)
{
    uint32_t n = (uint32_t)strlen(s);
    wr(fd, &n, 4);
    wr(fd, s, n);
}

static void quiet_log(enum ggml_log_level level, const char *text, void *user)
{
    (void)level, (void)text, (void)user;
}

static void ggml_child(const char *path, uint64_t file_size, int fd)
{
    struct ggml_context *meta = NULL;
    struct gguf_init_params p = {.no_alloc = true, .ctx = &meta};
    struct gguf_context *g = gguf_init_from_file(path, p);
    uint8_t ok = g != NULL;
    wr(fd, &ok, 1);
    if (!g)
        _exit(0);
    uint64_t n_kv = (uint64_t)gguf_get_n_kv(g);
    wr(fd, &n_kv, 8);
    for (int64_t i = 0; i < (int64_t)n_kv; i++) {
        enum gguf_type type = gguf_get_kv_type(g, i);
        uint32_t types[3] = {(uint32_t)type, 0, 0};
        if (type == GGUF_TYPE_ARRAY) {
            types[1] = (uint32_t)gguf_get_arr_type(g, i);
            types[2] = (uint32_t)gguf_get_arr_n(g, i);
        }
        wr_str(fd, gguf_get_key(g, i));
        wr(fd, types, sizeof types);
    }
    uint64_t n_t = (uint64_t)gguf_get_n_tensors(g);
    wr(fd, &n_t, 8);
    /* As llama_model_loader does: walk the tensors of the meta context, find each by name. */
    uint64_t seen = 0;
    for (struct ggml_tensor *t = ggml_get_first_tensor(meta); t;
         t = ggml_get_next_tensor(meta, t)) {
        seen++;
        int64_t idx = gguf_find_tensor(g, ggml_get_name(t));
        uint64_t offs = (uint64_t)gguf_get_data_offset(g) +
                        (idx >= 0 ? (uint64_t)gguf_get_tensor_offset(g, idx) : 0);
        uint64_t nbytes = (uint64_t)ggml_nbytes(t);
        uint8_t inside = idx >= 0 && offs + nbytes >= offs && offs + nbytes <= file_size;
        int64_t type = (int64_t)t->type;
        wr_str(fd, ggml_get_name(t));
        wr(fd, &type, 8);
        wr(fd, t->ne, 32);
        wr(fd, &offs, 8);
        wr(fd, &nbytes, 8);
        wr(fd, &inside, 1);
    }
    if (seen != n_t)
        _exit(4);
    ggml_free(meta);
    gguf_free(g);
    _exit(0);
}

typedef struct rd {
    const uint8_t *p;
    size_t n, pos;
    bool bad;
} rd;
static void rd_take(rd *r, void *dst, size_t n)
{
    if (r->bad || r->n - r->pos < n) {
        r->bad = true;
        memset(dst, 0, n);
        return;
    }
    memcpy(dst, r->p + r->pos, n);
    r->pos += n;
}
static char *rd_str(rd *r)
{
    uint32_t n = 0;
    rd_take(r, &n, 4);
    if (r->bad || r->n - r->pos < n) {
        r->bad = true;
        return strdup("");
    }
    char *s = xrealloc(NULL, (size_t)n + 1);
    memcpy(s, r->p + r->pos, n);
    s[n] = '\0';
    r->pos += n;
    return s;
}

static void ggml_view(const char *path, uint64_t file_size, view *v)
{
    memset(v, 0, sizeof *v);
    int fds[2];
    if (pipe(fds) != 0)
        die("pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        close(fds[0]);
        if (!verbose) { /* ggml's abort messages: the harness counts crashes itself */
            int null = open("/dev/null", O_WRONLY);
            if (null >= 0)
                dup2(null, 2);
        }
        ggml_child(path, file_size, fds[1]);
        _exit(5);
    }
    close(fds[1]);
    uint8_t *data = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            data = xrealloc(data, cap);
        }
        ssize_t k = read(fds[0], data + n, cap - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        n += (size_t)k;
    }
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            die("waitpid: %s", strerror(errno));
    if (WIFSIGNALED(status)) {
        v->crashed = true;
        snprintf(v->msg, sizeof v->msg, "ggml crashed (signal %d)", WTERMSIG(status));
        free(data);
        return;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        die("ggml child for %s exited with status %d", path, WEXITSTATUS(status));
    rd r = {data, n, 0, false};
    uint8_t ok = 0;
    rd_take(&r, &ok, 1);
    v->header_ok = ok;
    if (!ok) {
        snprintf(v->msg, sizeof v->msg, "gguf_init_from_file failed");
        free(data);
        return;
    }
    uint64_t n_kv = 0, n_t = 0;
    rd_take(&r, &n_kv, 8);
    v->keys = xrealloc(NULL, (size_t)n_kv * sizeof *v->keys);
    v->kv_types = xrealloc(NULL, (size_t)n_kv * sizeof *v->kv_types);
    for (v->n_kv = 0; v->n_kv < n_kv && !r.bad; v->n_kv++) {
        v->keys[v->n_kv] = rd_str(&r);
        rd_take(&r, v->kv_types[v->n_kv], sizeof v->kv_types[v->n_kv]);
    }
    rd_take(&r, &n_t, 8);
    v->t = xrealloc(NULL, (size_t)n_t * sizeof *v->t);
    bool inside_all = true;
    for (v->n_t = 0; v->n_t < n_t && !r.bad; v->n_t++) {
        tview *t = &v->t[v->n_t];
        uint8_t inside = 0;
        t->name = rd_str(&r);
        rd_take(&r, &t->type, 8);
        rd_take(&r, t->ne, 32);
        rd_take(&r, &t->offset, 8);
        rd_take(&r, &t->nbytes, 8);
        rd_take(&r, &inside, 1);
        if (!inside && inside_all) {
            inside_all = false;
            snprintf(v->msg, sizeof v->msg,
                     "llama.cpp loader: tensor '%s' data is not within the file bounds", t->name);
        }
    }
    if (r.bad)
        die("truncated result from the ggml child for %s", path);
    free(data);
    v->accepted = inside_all;
    if (inside_all)
        snprintf(v->msg, sizeof v->msg, "accepted");
}

/* ---- the allowlist ----------------------------------------------------------------------------
 */

/* Each rule explains one kind of deliberate disagreement. It must match both the outcome and an
 * independent property of the input, so that it cannot hide an unrelated difference. */
enum rule {
    /* Rosetta accepts big-endian GGUF files (version field with zero low 16 bits, every scalar
     * byte-swapped; plain tensor types are swapped on read, quantized ones rejected). ggml on a
     * little-endian host rejects them ("version ... is extremely large"). Documented feature
     * (docs/formats/gguf.md). */
    RULE_BIG_ENDIAN,
    /* Rosetta accepts metadata arrays of arrays (the GGUF spec allows them; gguf-py writes them)
     * and warns; ggml's reader rejects the value type. Rosetta's writer refuses to produce them
     * unless asked. */
    RULE_NESTED_ARRAY,
    /* Rosetta rejects keys and tensor names with a NUL byte inside: names are C strings in the
     * model view and every tool; ggml keeps the full std::string for its duplicate check but
     * truncates tensor names at the NUL (ggml_set_name), so two distinct names can collide. */
    RULE_NUL_IN_NAME,
    /* Rosetta rejects files with more than RF_GGUF_MAX_VALUES (2^25) metadata values in all
     * (array elements included), so that a crafted file cannot make it allocate without bound;
     * ggml only limits one array to 2^30 elements. Real tokenizers hold about 10^6 values. */
    RULE_VALUE_LIMIT,
    /* ggml aborted or crashed on the input; Rosetta must (and did) reject it cleanly. */
    RULE_GGML_CRASH,
    RULE_COUNT
};
static const char *const RULE_NAMES[RULE_COUNT] = {"big-endian", "nested-array", "nul-in-name",
                                                   "value-limit", "ggml-crash"};
static unsigned long rule_hits[RULE_COUNT];

static bool is_big_endian_image(const uint8_t *p, size_t n)
{
    if (n < 8 || memcmp(p, "GGUF", 4) != 0)
        return false;
    uint32_t v = le32(p + 4);
    return v != 0 && (v & 0xFFFFu) == 0;
}

static int allowed(const view *ro, const view *gg, const uint8_t *img, size_t n)
{
    if (gg->crashed && !ro->accepted)
        return RULE_GGML_CRASH;
    if (ro->accepted && !gg->accepted && !gg->header_ok && is_big_endian_image(img, n))
        return RULE_BIG_ENDIAN;
    if (ro->accepted && !gg->accepted && !gg->header_ok && ro->nested_array)
        return RULE_NESTED_ARRAY;
    if (!ro->accepted && gg->accepted && strstr(ro->msg, "contains a NUL byte"))
        return RULE_NUL_IN_NAME;
    if (!ro->accepted && gg->accepted && strstr(ro->msg, "metadata values in the file")) {
        uint64_t values = 0;
        for (size_t i = 0; i < gg->n_kv; i++)
            values += gg->kv_types[i][0] == GGUF_TYPE_ARRAY ? gg->kv_types[i][2] : 1;
        if (values > RF_GGUF_MAX_VALUES)
            return RULE_VALUE_LIMIT;
    }
    return -1;
}

/* ---- running one case ------------------------------------------------------------------------ */

static unsigned long n_cases, n_both_accept, n_both_reject, n_ggml_crash, n_failed;
static unsigned long n_loader_reject; /* gguf_init accepted, llama.cpp's bounds check did not */

static void write_file(const char *path, const uint8_t *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        die("cannot create %s: %s", path, strerror(errno));
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k <= 0)
            die("write %s: %s", path, strerror(errno));
        p += k;
        n -= (size_t)k;
    }
    close(fd);
}

static void save_failure(const char *label, const uint8_t *img, size_t n)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/fail-%lu.gguf", tmp_path, n_failed);
    write_file(path, img, n);
    fprintf(stderr, "  (input saved as %s; case %s)\n", path, label);
}

static bool compare_accepted(const view *ro, const view *gg, char *why, size_t cap)
{
    if (ro->n_kv != gg->n_kv) {
        snprintf(why, cap, "metadata count: Rosetta %zu, ggml %zu", ro->n_kv, gg->n_kv);
        return false;
    }
    for (size_t i = 0; i < ro->n_kv; i++)
        if (strcmp(ro->keys[i], gg->keys[i]) != 0) {
            snprintf(why, cap, "key %zu: Rosetta '%s', ggml '%s'", i, ro->keys[i], gg->keys[i]);
            return false;
        } else if (memcmp(ro->kv_types[i], gg->kv_types[i], sizeof ro->kv_types[i]) != 0) {
            snprintf(why, cap, "key '%s': Rosetta type %u/%u/%u, ggml type %u/%u/%u", ro->keys[i],
                     ro->kv_types[i][0], ro->kv_types[i][1], ro->kv_types[i][2], gg->kv_types[i][0],
                     gg->kv_types[i][1], gg->kv_types[i][2]);
            return false;
        }
    if (ro->n_t != gg->n_t) {
        snprintf(why, cap, "tensor count: Rosetta %zu, ggml %zu", ro->n_t, gg->n_t);
        return false;
    }
    for (size_t i = 0; i < ro->n_t; i++) {
        const tview *a = &ro->t[i], *b = &gg->t[i];
        if (strcmp(a->name, b->name) != 0 || a->type != b->type ||
            memcmp(a->ne, b->ne, sizeof a->ne) != 0 || a->offset != b->offset ||
            a->nbytes != b->nbytes) {
            snprintf(why, cap,
                     "tensor %zu: Rosetta '%s' type %lld ne (%lld,%lld,%lld,%lld) at %llu, %llu "
                     "bytes; ggml '%s' type %lld ne (%lld,%lld,%lld,%lld) at %llu, %llu bytes",
                     i, a->name, (long long)a->type, (long long)a->ne[0], (long long)a->ne[1],
                     (long long)a->ne[2], (long long)a->ne[3], (unsigned long long)a->offset,
                     (unsigned long long)a->nbytes, b->name, (long long)b->type,
                     (long long)b->ne[0], (long long)b->ne[1], (long long)b->ne[2],
                     (long long)b->ne[3], (unsigned long long)b->offset,
                     (unsigned long long)b->nbytes);
            return false;
        }
    }
    return true;
}

/* Runs one case. expect_accept: 1 = both readers must accept (a valid seed), -1 = Rosetta must
 * reject (a bad-catalogue file), 0 = no claim beyond agreement. */
static void run_case(const char *label, const uint8_t *img, size_t n, int expect_accept)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/case.gguf", tmp_path);
    write_file(path, img, n);
    view ro, gg;
    rosetta_view(path, &ro);
    ggml_view(path, n, &gg);
    n_cases++;
    if (gg.crashed)
        n_ggml_crash++;
    if (gg.header_ok && !gg.accepted)
        n_loader_reject++;
    char why[3000] = "";
    bool ok;
    if (ro.accepted && gg.accepted) {
        ok = compare_accepted(&ro, &gg, why, sizeof why);
        n_both_accept += ok;
    } else if (!ro.accepted && !gg.accepted && !gg.crashed) {
        ok = true;
        n_both_reject++;
    } else {
        int rule = allowed(&ro, &gg, img, n);
        ok = rule >= 0;
        if (ok)
            rule_hits[rule]++;
        snprintf(why, sizeof why, "Rosetta %s (%s); ggml %s (%s)",
                 ro.accepted ? "accepts" : "rejects", ro.accepted ? "" : ro.msg,
                 gg.accepted ? "accepts" : (gg.crashed ? "crashes" : "rejects"), gg.msg);
        if (ok && verbose)
            printf("allowed [%s] %s: %s\n", RULE_NAMES[rule], label, why);
    }
    if (ok && expect_accept == 1 && !(ro.accepted && gg.accepted)) {
        ok = false;
        snprintf(why + strlen(why), sizeof why - strlen(why),
                 " [a valid seed must be accepted by both: Rosetta %s, ggml %s]",
                 ro.accepted ? "accepts" : ro.msg, gg.msg);
    }
    if (ok && expect_accept == -1 && ro.accepted) {
        ok = false;
        snprintf(why + strlen(why), sizeof why - strlen(why),
                 " [a file of the bad-input catalogue must be rejected by Rosetta]");
    }
    if (!ok) {
        n_failed++;
        fprintf(stderr, "DISAGREEMENT %s: %s\n", label, why);
        save_failure(label, img, n);
    }
    view_free(&ro);
    view_free(&gg);
}

/* ---- a GGUF serializer independent of Rosetta's writer ------------------------------------------
 */

typedef struct spec_tensor {
    char name[200];
    size_t name_len; /* 0 = strlen(name) */
    uint32_t n_dims;
    int64_t ne[6];
    uint32_t type;
    bool offset_set; /* use .offset instead of the running sum */
    uint64_t offset;
} spec_tensor;

typedef struct spec {
    bool be;
    uint32_t version;
    buf kv; /* serialized key/value pairs */
    uint64_t n_kv;
    uint32_t align; /* alignment used to lay out the data (not necessarily the declared one) */
    spec_tensor t[16];
    int n_t;
    long data_delta; /* bytes added to (or cut from) the end of the file */
} spec;

static void spec_init(spec *s, bool be)
{
    memset(s, 0, sizeof *s);
    s->be = be;
    s->kv.be = be;
    s->version = 3;
    s->align = 32;
}

static void kv_key(spec *s, const char *key, uint32_t type)
{
    put_str(&s->kv, key);
    put_u32(&s->kv, type);
    s->n_kv++;
}
static void kv_u32(spec *s, const char *key, uint32_t v)
{
    kv_key(s, key, GGUF_TYPE_UINT32);
    put_u32(&s->kv, v);
}
static void kv_string(spec *s, const char *key, const char *v)
{
    kv_key(s, key, GGUF_TYPE_STRING);
    put_str(&s->kv, v);
}

static void add_tensor(spec *s, const char *name, uint32_t type, uint32_t n_dims, int64_t ne0,
                       int64_t ne1, int64_t ne2, int64_t ne3)
{
    spec_tensor *t = &s->t[s->n_t++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->type = type;
    t->n_dims = n_dims;
    int64_t ne[6] = {ne0, ne1, ne2, ne3, 1, 1};
    memcpy(t->ne, ne, sizeof ne);
}

/* ggml's byte size of a tensor of a known type, 0 for unknown or removed types. */
static uint64_t tensor_bytes(const spec_tensor *t)
{
    if (t->type >= GGML_TYPE_COUNT)
        return 0;
    int64_t blck = ggml_blck_size((enum ggml_type)t->type);
    size_t ts = ggml_type_size((enum ggml_type)t->type);
    if (blck <= 0 || ts == 0)
        return 0;
    uint64_t elems = 1;
    for (uint32_t j = 0; j < t->n_dims && j < 6; j++) {
        if (t->ne[j] < 0 || (t->ne[j] && elems > UINT64_MAX / (uint64_t)t->ne[j]))
            return 0;
        elems *= (uint64_t)t->ne[j];
    }
    if (elems > (1ull << 24))
        return 0;
    return elems / (uint64_t)blck * ts;
}

static uint64_t pad_up(uint64_t x, uint64_t a) { return a ? (x + a - 1) / a * a : x; }

static buf spec_build(const spec *s)
{
    buf b = {.be = s->be};
    put(&b, "GGUF", 4);
    put_u32(&b, s->version);
    put_u64(&b, (uint64_t)s->n_t);
    put_u64(&b, s->n_kv);
    put(&b, s->kv.p, s->kv.n);
    uint64_t run = 0;
    uint64_t start[16], size[16];
    for (int i = 0; i < s->n_t; i++) {
        const spec_tensor *t = &s->t[i];
        put_strn(&b, t->name, t->name_len ? t->name_len : strlen(t->name));
        put_u32(&b, t->n_dims);
        for (uint32_t j = 0; j < t->n_dims && j < 6; j++)
            put_u64(&b, (uint64_t)t->ne[j]);
        put_u32(&b, t->type);
        size[i] = tensor_bytes(t);
        start[i] = t->offset_set ? t->offset : run;
        put_u64(&b, start[i]);
        run = pad_up(start[i] + size[i], s->align ? s->align : 1);
    }
    if (s->n_t)
        pad_zero(&b, s->align ? s->align : 1);
    size_t data0 = b.n;
    uint64_t end = 0;
    for (int i = 0; i < s->n_t; i++)
        if (start[i] < (1u << 24) && start[i] + size[i] > end)
            end = start[i] + size[i];
    end = pad_up(end, s->align ? s->align : 1);
    for (uint64_t i = 0; i < end; i++) { /* deterministic, recognisable data */
        uint8_t byte = (uint8_t)(i * 7 + 3);
        put(&b, &byte, 1);
    }
    (void)data0;
    if (s->data_delta > 0) {
        for (long i = 0; i < s->data_delta; i++) {
            uint8_t z = 0xA5;
            put(&b, &z, 1);
        }
    } else if (s->data_delta < 0) {
        b.n = (size_t)-s->data_delta > b.n ? 0 : b.n - (size_t)-s->data_delta;
    }
    return b;
}

/* The main synthetic seed: every scalar and array value type, several tensor types and ranks. */
static void seed_mixed(spec *s, bool be, int variant) /* variant 1: alignment 64, 2: plain types */
{
    spec_init(s, be);
    kv_string(s, "general.architecture", "llama");
    if (variant == 1) {
        kv_u32(s, "general.alignment", 64);
        s->align = 64;
    }
    kv_key(s, "test.u8", GGUF_TYPE_UINT8);
    put_uint(&s->kv, 200, 1);
    kv_key(s, "test.i8", GGUF_TYPE_INT8);
    put_uint(&s->kv, 0x80, 1);
    kv_key(s, "test.u16", GGUF_TYPE_UINT16);
    put_uint(&s->kv, 65535, 2);
    kv_key(s, "test.i16", GGUF_TYPE_INT16);
    put_uint(&s->kv, 0x8001, 2);
    kv_key(s, "test.i32", GGUF_TYPE_INT32);
    put_u32(&s->kv, 0xFFFFFFFEu);
    kv_key(s, "test.f32", GGUF_TYPE_FLOAT32);
    put_u32(&s->kv, 0x3FC00000u);
    kv_key(s, "test.bool", GGUF_TYPE_BOOL);
    put_uint(&s->kv, 1, 1);
    kv_key(s, "test.u64", GGUF_TYPE_UINT64);
    put_u64(&s->kv, 1ull << 40);
    kv_key(s, "test.i64", GGUF_TYPE_INT64);
    put_u64(&s->kv, (uint64_t)-5);
    kv_key(s, "test.f64", GGUF_TYPE_FLOAT64);
    put_u64(&s->kv, 0x400921FB54442D18ull);
    kv_key(s, "test.strings", GGUF_TYPE_ARRAY);
    put_u32(&s->kv, GGUF_TYPE_STRING);
    put_u64(&s->kv, 3);
    put_str(&s->kv, "a");
    put_str(&s->kv, "");
    put_str(&s->kv, "<|im_end|>");
    kv_key(s, "test.u32s", GGUF_TYPE_ARRAY);
    put_u32(&s->kv, GGUF_TYPE_UINT32);
    put_u64(&s->kv, 2);
    put_u32(&s->kv, 7);
    put_u32(&s->kv, 9);
    kv_key(s, "test.empty", GGUF_TYPE_ARRAY);
    put_u32(&s->kv, GGUF_TYPE_FLOAT32);
    put_u64(&s->kv, 0);
    if (be || variant == 2) { /* plain types only: quantized blocks have no big-endian form */
        add_tensor(s, "token_embd.weight", GGML_TYPE_F32, 2, 8, 3, 1, 1);
        add_tensor(s, "blk.0.attn_norm.weight", GGML_TYPE_F16, 1, 16, 1, 1, 1);
        add_tensor(s, "blk.0.ids", GGML_TYPE_I32, 3, 2, 2, 2, 1);
        add_tensor(s, "blk.0.bf", GGML_TYPE_BF16, 4, 4, 2, 1, 2);
        return;
    }
    add_tensor(s, "token_embd.weight", GGML_TYPE_F32, 2, 8, 3, 1, 1);
    add_tensor(s, "blk.0.attn_norm.weight", GGML_TYPE_F16, 1, 16, 1, 1, 1);
    add_tensor(s, "blk.0.attn_q.weight", GGML_TYPE_Q8_0, 2, 64, 2, 1, 1);
    add_tensor(s, "blk.0.ffn_down.weight", GGML_TYPE_Q4_K, 2, 256, 1, 1, 1);
    add_tensor(s, "blk.0.bf", GGML_TYPE_BF16, 4, 4, 2, 1, 2);
    add_tensor(s, "scalar", GGML_TYPE_F32, 0, 1, 1, 1, 1);
    add_tensor(s, "empty", GGML_TYPE_F16, 2, 0, 5, 1, 1);
    add_tensor(s, "output.weight", GGML_TYPE_Q6_K, 2, 256, 2, 1, 1);
}

static void seed_small(spec *s)
{
    spec_init(s, false);
    kv_string(s, "general.architecture", "qwen2");
    kv_u32(s, "general.alignment", 32);
    add_tensor(s, "w", GGML_TYPE_Q4_0, 2, 32, 2, 1, 1);
}

static void seed_no_tensors(spec *s)
{
    spec_init(s, false);
    kv_string(s, "general.architecture", "qwen2");
    kv_u32(s, "qwen2.block_count", 1);
}

static void spec_free(spec *s) { free(s->kv.p); }

static void run_spec(const char *label, const spec *s, int expect)
{
    buf b = spec_build(s);
    run_case(label, b.p, b.n, expect);
    free(b.p);
}

/* A big-endian file has no ggml counterpart on this host, so Rosetta's view of it is compared
 * with ggml's view of the same content written little-endian: the layouts are identical, so
 * tensors, offsets and keys must be equal. */
static void run_big_endian_pair(const char *label, uint32_t version)
{
    spec be, le;
    seed_mixed(&be, true, 2);
    seed_mixed(&le, false, 2);
    be.version = le.version = version;
    buf b = spec_build(&be), l = spec_build(&le);
    char path[4200];
    snprintf(path, sizeof path, "%s/case.gguf", tmp_path);
    view ro, gg;
    write_file(path, b.p, b.n);
    rosetta_view(path, &ro);
    write_file(path, l.p, l.n);
    ggml_view(path, l.n, &gg);
    n_cases++;
    char why[3000] = "";
    bool ok = ro.accepted && gg.accepted && b.n == l.n;
    if (!ok)
        snprintf(why, sizeof why, "Rosetta (big-endian) %s, ggml (little-endian) %s", ro.msg,
                 gg.msg);
    else
        ok = compare_accepted(&ro, &gg, why, sizeof why);
    if (ok) {
        n_both_accept++;
    } else {
        n_failed++;
        fprintf(stderr, "DISAGREEMENT %s: %s\n", label, why);
        save_failure(label, b.p, b.n);
    }
    view_free(&ro);
    view_free(&gg);
    free(b.p), free(l.p);
    spec_free(&be), spec_free(&le);
}

/* Built variations: each exercises one validation rule on an otherwise valid file. */
static void built_cases(void)
{
    spec s;
    char label[200];
    /* the seeds themselves are valid */
    seed_mixed(&s, false, 0), run_spec("built/mixed", &s, 1), spec_free(&s);
    seed_mixed(&s, false, 1), run_spec("built/mixed-align64", &s, 1), spec_free(&s);
    seed_small(&s), run_spec("built/small", &s, 1), spec_free(&s);
    seed_no_tensors(&s), run_spec("built/no-tensors", &s, 1), spec_free(&s);
    seed_mixed(&s, true, 0), run_spec("built/mixed-big-endian", &s, 0), spec_free(&s);
    run_big_endian_pair("built/big-endian-v3-vs-little-endian", 3);
    run_big_endian_pair("built/big-endian-v2-vs-little-endian", 2);

    /* general.alignment values, data laid out with the declared value (or 32 when unusable) */
    static const uint32_t aligns[] = {0,  1,  2,   3,   4,    8,     16,          24,
                                      32, 64, 100, 128, 4096, 65536, 0x80000000u, 0xFFFFFFFFu};
    for (size_t i = 0; i < sizeof aligns / sizeof aligns[0]; i++)
        for (int layout = 0; layout < 2; layout++) {
            seed_mixed(&s, false, 0);
            kv_u32(&s, "general.alignment", aligns[i]);
            uint32_t a = aligns[i];
            bool pow2 = a && !(a & (a - 1));
            s.align = layout == 0 && pow2 && a <= 65536 ? a : 32;
            snprintf(label, sizeof label, "built/alignment-%u-layout-%u", a, s.align);
            run_spec(label, &s, 0);
            spec_free(&s);
        }
    /* general.alignment of other types */
    static const uint32_t atypes[] = {GGUF_TYPE_UINT8,  GGUF_TYPE_UINT16,  GGUF_TYPE_INT32,
                                      GGUF_TYPE_UINT64, GGUF_TYPE_FLOAT32, GGUF_TYPE_STRING};
    for (size_t i = 0; i < sizeof atypes / sizeof atypes[0]; i++) {
        seed_small(&s);
        kv_key(&s, "general.alignment", atypes[i]);
        switch (atypes[i]) {
        case GGUF_TYPE_UINT8: put_uint(&s.kv, 32, 1); break;
        case GGUF_TYPE_UINT16: put_uint(&s.kv, 32, 2); break;
        case GGUF_TYPE_UINT64: put_u64(&s.kv, 32); break;
        case GGUF_TYPE_STRING: put_str(&s.kv, "32"); break;
        default: put_u32(&s.kv, 32); break;
        }
        snprintf(label, sizeof label, "built/alignment-type-%u", atypes[i]);
        run_spec(label, &s, 0);
        spec_free(&s);
    }
    seed_small(&s); /* general.alignment as an array holding one u32 */
    kv_key(&s, "general.alignment", GGUF_TYPE_ARRAY);
    put_u32(&s.kv, GGUF_TYPE_UINT32), put_u64(&s.kv, 1), put_u32(&s.kv, 32);
    run_spec("built/alignment-array", &s, 0), spec_free(&s);
    /* keys and names that are not UTF-8 (both readers take any bytes but NUL) */
    seed_small(&s), kv_u32(&s, "\xff\xfe.key", 1), run_spec("built/key-not-utf8", &s, 1),
        spec_free(&s);
    seed_small(&s), add_tensor(&s, "\xc3\x28", GGML_TYPE_F32, 1, 8, 1, 1, 1),
        run_spec("built/name-not-utf8", &s, 1), spec_free(&s);
    /* keys */
    seed_small(&s), kv_string(&s, "general.architecture", "x"), run_spec("built/dup-key", &s, 0),
        spec_free(&s);
    seed_small(&s), kv_u32(&s, "", 1), run_spec("built/empty-key", &s, 0), spec_free(&s);
    seed_small(&s);
    put_strn(&s.kv, "a\0b", 3), put_u32(&s.kv, GGUF_TYPE_UINT8), put_uint(&s.kv, 1, 1), s.n_kv++;
    run_spec("built/nul-in-key", &s, 0), spec_free(&s);
    seed_small(&s);
    put_strn(&s.kv, "k\0a", 3), put_u32(&s.kv, GGUF_TYPE_UINT8), put_uint(&s.kv, 1, 1), s.n_kv++;
    put_strn(&s.kv, "k\0b", 3), put_u32(&s.kv, GGUF_TYPE_UINT8), put_uint(&s.kv, 1, 1), s.n_kv++;
    run_spec("built/nul-keys-same-prefix", &s, 0), spec_free(&s);
    for (uint32_t b = 0; b < 4; b++) { /* bool values other than 0/1 */
        static const uint8_t vals[] = {0, 1, 2, 255};
        seed_small(&s);
        kv_key(&s, "test.bool", GGUF_TYPE_BOOL);
        put_uint(&s.kv, vals[b], 1);
        snprintf(label, sizeof label, "built/bool-%u", vals[b]);
        run_spec(label, &s, 1);
        spec_free(&s);
    }
    for (uint32_t t = 0; t <= 14; t++) { /* every value type as a scalar and as an array */
        for (int arr = 0; arr < 2; arr++) {
            seed_small(&s);
            if (arr) {
                kv_key(&s, "test.v", GGUF_TYPE_ARRAY);
                put_u32(&s.kv, t);
                put_u64(&s.kv, 1);
            } else {
                kv_key(&s, "test.v", t);
            }
            if (t == GGUF_TYPE_STRING)
                put_str(&s.kv, "v");
            else if (t == GGUF_TYPE_ARRAY) {
                put_u32(&s.kv, GGUF_TYPE_UINT8);
                put_u64(&s.kv, 1);
                put_uint(&s.kv, 1, 1);
            } else {
                put_u64(&s.kv, 0); /* 8 bytes: enough for every width, extra bytes misparse */
            }
            snprintf(label, sizeof label, "built/value-type-%u%s", t, arr ? "-array" : "");
            run_spec(label, &s, 0);
            spec_free(&s);
        }
    }
    /* tensor names */
    static const size_t name_lens[] = {0, 1, 62, 63, 64, 65, 200};
    for (size_t i = 0; i < sizeof name_lens / sizeof name_lens[0]; i++) {
        seed_small(&s);
        memset(s.t[0].name, 'n', name_lens[i]);
        s.t[0].name[name_lens[i]] = '\0';
        s.t[0].name_len = name_lens[i];
        if (!name_lens[i]) /* explicit empty name: name_len 0 means strlen, which is 0 too */
            s.t[0].name[0] = '\0';
        snprintf(label, sizeof label, "built/name-length-%zu", name_lens[i]);
        run_spec(label, &s, 0);
        spec_free(&s);
    }
    seed_small(&s), add_tensor(&s, "w", GGML_TYPE_F32, 1, 8, 1, 1, 1),
        run_spec("built/dup-tensor-name", &s, 0), spec_free(&s);
    seed_small(&s);
    add_tensor(&s, "w\0x", GGML_TYPE_F32, 1, 8, 1, 1, 1);
    memcpy(s.t[1].name, "w\0x", 4), s.t[1].name_len = 3;
    run_spec("built/nul-name-collides", &s, 0), spec_free(&s);
    /* n_dims 0..6 */
    for (uint32_t nd = 0; nd <= 6; nd++) {
        seed_small(&s);
        add_tensor(&s, "v", GGML_TYPE_F32, nd, 2, 3, 1, 2);
        s.t[1].ne[4] = 2, s.t[1].ne[5] = 1;
        snprintf(label, sizeof label, "built/n_dims-%u", nd);
        run_spec(label, &s, 0);
        spec_free(&s);
    }
    /* every type code with a row length that is and is not a block multiple */
    for (uint32_t type = 0; type <= GGML_TYPE_COUNT + 2; type++) {
        int64_t blck = type < GGML_TYPE_COUNT ? ggml_blck_size((enum ggml_type)type) : 1;
        if (blck <= 0)
            blck = 1;
        for (int odd = 0; odd < 3; odd++) {
            if (odd && blck == 1)
                continue;
            seed_small(&s);
            int64_t ne0 = odd == 0 ? blck * 2 : odd == 1 ? blck * 2 + 1 : blck / 2;
            add_tensor(&s, "t", type, 2, ne0, 3, 1, 1);
            snprintf(label, sizeof label, "built/type-%u-ne0-%lld", type, (long long)ne0);
            run_spec(label, &s, 0);
            spec_free(&s);
        }
    }
    for (uint32_t type = 0xFFFFFFF0u; type != 0; type++) { /* negative as int32 */
        seed_small(&s), add_tensor(&s, "t", type, 1, 32, 1, 1, 1);
        snprintf(label, sizeof label, "built/type-%u", type);
        run_spec(label, &s, 0), spec_free(&s);
    }
    /* shapes */
    static const int64_t nes[][4] = {
        {0, 0, 0, 0},
        {0, 1, 1, 1},
        {-1, 1, 1, 1},
        {1, -1, 1, 1},
        {INT64_MAX, 1, 1, 1},
        {INT64_MAX, 2, 1, 1},
        {1ll << 32, 1ll << 31, 1, 1},
        {1ll << 31, 1ll << 31, 2, 1},
        {1ll << 40, 1ll << 23, 1, 1},
        {INT64_MIN, 1, 1, 1},
        {8, 0, 1ll << 62, 4},
        {1ll << 62, 0, 0, 8},
    };
    for (size_t i = 0; i < sizeof nes / sizeof nes[0]; i++)
        for (uint32_t type = 0; type < 2; type++) {
            seed_small(&s);
            add_tensor(&s, "big", type == 0 ? GGML_TYPE_F32 : GGML_TYPE_Q8_0, 4, nes[i][0],
                       nes[i][1], nes[i][2], nes[i][3]);
            snprintf(label, sizeof label, "built/shape-%zu-type-%u", i, type);
            run_spec(label, &s, 0);
            spec_free(&s);
        }
    /* offsets: misaligned, overlapping, gapped, out of order, past the end */
    static const long deltas[] = {-64, -32, -1, 1, 16, 31, 32, 64, 4096};
    for (size_t i = 0; i < sizeof deltas / sizeof deltas[0]; i++)
        for (int which = 0; which < 3; which++) {
            seed_mixed(&s, false, 0);
            int k = which == 0 ? 1 : which == 1 ? 3 : s.n_t - 1;
            uint64_t run = 0;
            for (int j = 0; j < k; j++)
                run = pad_up(run + tensor_bytes(&s.t[j]), 32);
            s.t[k].offset_set = true;
            s.t[k].offset = (uint64_t)((long long)run + deltas[i]);
            snprintf(label, sizeof label, "built/offset-tensor%d-%+ld", k, deltas[i]);
            run_spec(label, &s, 0);
            spec_free(&s);
        }
    seed_mixed(&s, false, 0); /* every tensor at offset 0 */
    for (int j = 0; j < s.n_t; j++)
        s.t[j].offset_set = true, s.t[j].offset = 0;
    run_spec("built/offsets-all-zero", &s, 0), spec_free(&s);
    seed_small(&s), s.t[0].offset_set = true, s.t[0].offset = UINT64_MAX - 15;
    run_spec("built/offset-max", &s, 0), spec_free(&s);
    /* file end: tail padding missing, data cut, trailing bytes */
    static const long tails[] = {-1, -2, -16, -31, -32, -33, -100, 1, 7, 4096};
    for (size_t i = 0; i < sizeof tails / sizeof tails[0]; i++) {
        seed_mixed(&s, false, 0);
        s.data_delta = tails[i];
        snprintf(label, sizeof label, "built/file-end%+ld", tails[i]);
        run_spec(label, &s, 0);
        spec_free(&s);
    }
    /* versions, both byte orders */
    static const uint32_t versions[] = {0, 1, 2, 3, 4, 0x10000, 0x7FFFFFFF};
    for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++)
        for (int be = 0; be < 2; be++) {
            seed_mixed(&s, be, 0);
            s.version = versions[i];
            snprintf(label, sizeof label, "built/version-%u%s", versions[i], be ? "-be" : "");
            run_spec(label, &s, 0);
            spec_free(&s);
        }
    seed_mixed(&s, true, 0); /* big-endian with a quantized tensor */
    add_tensor(&s, "q", GGML_TYPE_Q8_0, 1, 32, 1, 1, 1);
    run_spec("built/big-endian-quantized", &s, 0), spec_free(&s);
    /* nested arrays, depth 1..20 */
    for (int depth = 1; depth <= 20; depth += (depth < 3 ? 1 : 8)) {
        seed_small(&s);
        kv_key(&s, "test.nested", GGUF_TYPE_ARRAY);
        for (int d = 0; d < depth; d++) {
            put_u32(&s.kv, GGUF_TYPE_ARRAY);
            put_u64(&s.kv, 1);
        }
        put_u32(&s.kv, GGUF_TYPE_UINT8);
        put_u64(&s.kv, 1);
        put_uint(&s.kv, 5, 1);
        snprintf(label, sizeof label, "built/nested-array-depth-%d", depth);
        run_spec(label, &s, 0);
        spec_free(&s);
    }
    /* Rosetta's limit on metadata values (a 32 MiB file, written once) */
    seed_small(&s);
    kv_key(&s, "test.many", GGUF_TYPE_ARRAY);
    put_u32(&s.kv, GGUF_TYPE_UINT8);
    put_u64(&s.kv, RF_GGUF_MAX_VALUES + 1);
    for (uint64_t i = 0; i <= RF_GGUF_MAX_VALUES; i += 4096) {
        static const uint8_t zeros[4096];
        put(&s.kv, zeros, RF_GGUF_MAX_VALUES + 1 - i < 4096 ? RF_GGUF_MAX_VALUES + 1 - i : 4096);
    }
    run_spec("built/values-over-limit", &s, 0);
    spec_free(&s);
    /* counts */
    static const uint64_t counts[] = {0,          1,          2,          3,         1000,
                                      1ull << 32, 1ull << 62, 1ull << 63, UINT64_MAX};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        seed_small(&s);
        kv_key(&s, "test.arr", GGUF_TYPE_ARRAY);
        put_u32(&s.kv, GGUF_TYPE_UINT16);
        put_u64(&s.kv, counts[i]);
        put_uint(&s.kv, 1, 2), put_uint(&s.kv, 2, 2);
        snprintf(label, sizeof label, "built/array-count-%llu", (unsigned long long)counts[i]);
        run_spec(label, &s, 0);
        spec_free(&s);
    }
}

/* ---- mutation corpus ------------------------------------------------------------------------- */

/* Field positions of a GGUF image found by a tolerant walk (for choosing where to mutate only). */
typedef struct field {
    size_t pos;
    int width; /* 4 or 8 */
    uint64_t value;
} field;
typedef struct layout {
    field *f;
    size_t n_f, cap_f;
    size_t *cut; /* boundaries: starts and ends of every item */
    size_t n_cut, cap_cut;
    /* Complete walks of small images only: where each pair and tensor info starts (entry n is
     * the end of the last one), the alignment and the data section. */
    bool complete;
    size_t kv_at[65], ti_at[65];
    uint64_t n_kv, n_t, align, data;
} layout;

static void lay_field(layout *l, const uint8_t *img, size_t pos, int width)
{
    if (l->n_f == l->cap_f)
        l->f = xrealloc(l->f, (l->cap_f = l->cap_f * 2 + 64) * sizeof *l->f);
    l->f[l->n_f++] = (field){pos, width, width == 8 ? le64(img + pos) : le32(img + pos)};
}
static void lay_cut(layout *l, size_t pos)
{
    if (l->n_cut == l->cap_cut)
        l->cut = xrealloc(l->cut, (l->cap_cut = l->cap_cut * 2 + 64) * sizeof *l->cut);
    l->cut[l->n_cut++] = pos;
}

/* Bytes of one scalar metadata value of the given type, 0 for strings, arrays and unknown. */
static size_t value_width(uint32_t type)
{
    switch (type) {
    case GGUF_TYPE_UINT8:
    case GGUF_TYPE_INT8:
    case GGUF_TYPE_BOOL: return 1;
    case GGUF_TYPE_UINT16:
    case GGUF_TYPE_INT16: return 2;
    case GGUF_TYPE_UINT32:
    case GGUF_TYPE_INT32:
    case GGUF_TYPE_FLOAT32: return 4;
    case GGUF_TYPE_UINT64:
    case GGUF_TYPE_INT64:
    case GGUF_TYPE_FLOAT64: return 8;
    default: return 0;
    }
}

/* Walks a little-endian image; stops quietly at anything it does not understand. For long
 * arrays only the array header and the first and last few elements are recorded. */
static void walk(const uint8_t *img, size_t n, layout *l)
{
    size_t p = 0;
#define NEED(k)                                                                                    \
    do {                                                                                           \
        if ((k) > n - p)                                                                           \
            return;                                                                                \
    } while (0)
    NEED(24);
    lay_cut(l, 4), lay_field(l, img, 4, 4), lay_cut(l, 8), lay_field(l, img, 8, 8);
    lay_cut(l, 16), lay_field(l, img, 16, 8), lay_cut(l, 24);
    uint64_t n_t = le64(img + 8), n_kv = le64(img + 16);
    p = 24;
    uint64_t align = 32;
    for (uint64_t i = 0; i < n_kv; i++) {
        bool rec = i < 24 || i + 4 >= n_kv;
        if (i < 65)
            l->kv_at[i] = p;
        NEED(8);
        uint64_t kl = le64(img + p);
        if (rec)
            lay_field(l, img, p, 8), lay_cut(l, p + 8);
        p += 8;
        NEED(kl);
        bool is_align = kl == 17 && memcmp(img + p, "general.alignment", 17) == 0;
        p += kl;
        NEED(4);
        uint32_t type = le32(img + p);
        if (rec)
            lay_cut(l, p), lay_field(l, img, p, 4);
        p += 4;
        uint64_t count = 1;
        bool arr = type == GGUF_TYPE_ARRAY;
        if (arr) {
            NEED(12);
            type = le32(img + p);
            count = le64(img + p + 4);
            if (rec)
                lay_field(l, img, p, 4), lay_field(l, img, p + 4, 8), lay_cut(l, p + 12);
            p += 12;
        }
        if (type == GGUF_TYPE_STRING) {
            for (uint64_t k = 0; k < count; k++) {
                NEED(8);
                uint64_t sl = le64(img + p);
                if (rec && (k < 3 || k + 1 == count))
                    lay_field(l, img, p, 8), lay_cut(l, p + 8);
                p += 8;
                NEED(sl);
                p += sl;
            }
        } else {
            size_t w = value_width(type);
            if (!w || (count && w > (n - p) / count))
                return;
            if (is_align && !arr && type == GGUF_TYPE_UINT32 && le32(img + p))
                align = le32(img + p);
            p += w * count;
        }
        if (rec)
            lay_cut(l, p);
    }
    if (n_kv < 65)
        l->kv_at[n_kv] = p;
    uint64_t starts[64], sizes[64];
    for (uint64_t i = 0; i < n_t; i++) {
        bool rec = i < 48 || i + 8 >= n_t;
        if (i < 65)
            l->ti_at[i] = p;
        NEED(8);
        uint64_t nl = le64(img + p);
        if (rec)
            lay_cut(l, p), lay_field(l, img, p, 8);
        p += 8;
        NEED(nl);
        p += nl;
        NEED(4);
        uint32_t nd = le32(img + p);
        if (rec)
            lay_cut(l, p), lay_field(l, img, p, 4);
        p += 4;
        if (nd > 8)
            return;
        NEED(8ull * nd + 12);
        uint64_t el = 1;
        for (uint32_t j = 0; j < nd; j++) {
            if (rec)
                lay_field(l, img, p, 8);
            el *= le64(img + p);
            p += 8;
        }
        uint32_t type = le32(img + p);
        if (rec)
            lay_cut(l, p), lay_field(l, img, p, 4), lay_field(l, img, p + 4, 8);
        if (i < 64) {
            starts[i] = le64(img + p + 4);
            sizes[i] = 0;
            if (type < GGML_TYPE_COUNT && ggml_blck_size((enum ggml_type)type) > 0)
                sizes[i] = el / (uint64_t)ggml_blck_size((enum ggml_type)type) *
                           ggml_type_size((enum ggml_type)type);
        }
        p += 12;
        if (rec)
            lay_cut(l, p);
    }
    if (!align || (align & (align - 1)))
        return;
    if (n_t < 65)
        l->ti_at[n_t] = p;
    uint64_t data = pad_up(p, align);
    lay_cut(l, (size_t)data);
    if (n_kv < 64 && n_t < 64 && data <= n) {
        l->complete = true;
        l->n_kv = n_kv, l->n_t = n_t, l->align = align, l->data = data;
    }
    for (uint64_t i = 0; i < n_t && i < 64; i++) {
        if (starts[i] < n && sizes[i] < n) {
            lay_cut(l, (size_t)(data + starts[i]));
            lay_cut(l, (size_t)(data + starts[i] + sizes[i]));
            lay_cut(l, (size_t)(data + starts[i] + sizes[i] - 1));
        }
    }
#undef NEED
}

/* Rebuilds an image from a walked one with pair kv_drop and tensor info ti_drop left out (-1:
 * none), pair kv_dup and tensor info ti_dup written twice, tensor infos ti_swap and ti_swap + 1
 * exchanged; the counts are adjusted, the tensor infos re-padded to the alignment and the data
 * section copied unchanged. */
static void splice_case(const uint8_t *img, size_t n, const layout *l, int kv_drop, int kv_dup,
                        int ti_drop, int ti_dup, int ti_swap, const char *label, int expect)
{
    buf b = {0};
    put(&b, img, 8);
    put_u64(&b, l->n_t - (ti_drop >= 0) + (ti_dup >= 0));
    put_u64(&b, l->n_kv - (kv_drop >= 0) + (kv_dup >= 0));
    for (int i = 0; i < (int)l->n_kv; i++) {
        if (i == kv_drop)
            continue;
        for (int k = 0; k < 1 + (i == kv_dup); k++)
            put(&b, img + l->kv_at[i], l->kv_at[i + 1] - l->kv_at[i]);
    }
    for (int i = 0; i < (int)l->n_t; i++) {
        if (i == ti_drop)
            continue;
        int j = i == ti_swap ? i + 1 : i == ti_swap + 1 && ti_swap >= 0 ? i - 1 : i;
        for (int k = 0; k < 1 + (i == ti_dup); k++)
            put(&b, img + l->ti_at[j], l->ti_at[j + 1] - l->ti_at[j]);
    }
    if (l->n_t - (ti_drop >= 0) + (ti_dup >= 0) > 0)
        pad_zero(&b, (size_t)l->align);
    put(&b, img + l->data, n - (size_t)l->data);
    run_case(label, b.p, b.n, expect);
    free(b.p);
}

static void mutate_seed(const char *name, const uint8_t *img, size_t n)
{
    layout l = {0};
    walk(img, n, &l);
    char label[400];
    uint8_t *m = xrealloc(NULL, n + 16);
    bool big = n > (1u << 20);
    /* 1. truncation at every boundary, at boundary +- 1, and at random points */
    for (size_t i = 0; i < l.n_cut; i++)
        for (int d = -1; d <= 1; d++) {
            size_t cut = l.cut[i] + (size_t)d;
            if (cut >= n || (big && d != 0) || (big && rng_below(2) != 0))
                continue;
            snprintf(label, sizeof label, "%s/truncate-%zu", name, cut);
            run_case(label, img, cut, 0);
        }
    for (int i = 0; i < (big ? 4 : 40); i++) {
        size_t cut = (size_t)rng_below(n);
        snprintf(label, sizeof label, "%s/truncate-random-%zu", name, cut);
        run_case(label, img, cut, 0);
    }
    for (size_t cut = 0; cut < 24 && cut < n && !big; cut++) {
        snprintf(label, sizeof label, "%s/truncate-header-%zu", name, cut);
        run_case(label, img, cut, 0);
    }
    /* 2. every recorded field set to edge values */
    for (size_t i = 0; i < l.n_f; i++) {
        const field *f = &l.f[i];
        uint64_t v = f->value;
        uint64_t edges8[] = {0,
                             1,
                             v - 1,
                             v + 1,
                             v * 2,
                             (uint64_t)n,
                             (uint64_t)n - f->pos,
                             1ull << 30,
                             (1ull << 30) + 1,
                             1ull << 32,
                             (uint64_t)INT64_MAX,
                             1ull << 63,
                             UINT64_MAX};
        uint64_t edges4[] = {0,  1,     2,     3,           4,           5,          8,  9,
                             12, 13,    30,    31,          38,          39,         42, 43,
                             64, v - 1, v + 1, 0x7FFFFFFFu, 0x80000000u, 0xFFFFFFFFu};
        size_t ne =
            f->width == 8 ? sizeof edges8 / sizeof edges8[0] : sizeof edges4 / sizeof edges4[0];
        for (size_t k = 0; k < ne; k++) {
            uint64_t nv = f->width == 8 ? edges8[k] : edges4[k];
            if (nv == v || (big && rng_below(6) != 0))
                continue;
            memcpy(m, img, n);
            for (int b = 0; b < f->width; b++)
                m[f->pos + (size_t)b] = (uint8_t)(nv >> (8 * b));
            snprintf(label, sizeof label, "%s/field@%zu=%llu", name, f->pos,
                     (unsigned long long)nv);
            run_case(label, m, n, 0);
        }
    }
    /* 3. structure: pairs and tensor infos dropped, duplicated, swapped */
    if (l.complete && !big) {
        for (int i = 0; i < (int)l.n_kv; i++) {
            snprintf(label, sizeof label, "%s/drop-kv-%d", name, i);
            splice_case(img, n, &l, i, -1, -1, -1, -1, label, 0);
            snprintf(label, sizeof label, "%s/dup-kv-%d", name, i);
            splice_case(img, n, &l, -1, i, -1, -1, -1, label, 0);
        }
        for (int i = 0; i < (int)l.n_t; i++) {
            snprintf(label, sizeof label, "%s/drop-tensor-%d", name, i);
            splice_case(img, n, &l, -1, -1, i, -1, -1, label, 0);
            snprintf(label, sizeof label, "%s/dup-tensor-%d", name, i);
            splice_case(img, n, &l, -1, -1, -1, i, -1, label, 0);
            if (i + 1 < (int)l.n_t) {
                snprintf(label, sizeof label, "%s/swap-tensors-%d", name, i);
                splice_case(img, n, &l, -1, -1, -1, -1, i, label, 0);
            }
        }
        for (int i = (int)l.n_t - 1; i >= 0; i--) { /* the last tensors dropped: still valid */
            snprintf(label, sizeof label, "%s/drop-tensor-%d-and-data", name, i);
            layout cut = l;
            cut.n_t = (uint64_t)i;
            splice_case(img, n, &cut, -1, -1, -1, -1, -1, label, 1);
        }
    }
    /* 4. random byte flips, mostly in the header and tensor infos */
    size_t header_end = l.n_cut ? l.cut[l.n_cut - 1] : n;
    for (size_t i = 0; i < l.n_cut; i++)
        if (l.cut[i] > header_end)
            header_end = l.cut[i];
    if (header_end > n)
        header_end = n;
    int flips = big ? 60 : 400;
    for (int i = 0; i < flips; i++) {
        memcpy(m, img, n);
        int nflip = 1 + (int)rng_below(3);
        size_t first = 0;
        for (int k = 0; k < nflip; k++) {
            size_t pos = rng_below(10) < 9 && header_end ? (size_t)rng_below(header_end)
                                                         : (size_t)rng_below(n);
            if (!k)
                first = pos;
            m[pos] ^= (uint8_t)(1 + rng_below(255));
        }
        snprintf(label, sizeof label, "%s/flip-%d@%zu", name, i, first);
        run_case(label, m, n, 0);
    }
    free(m);
    free(l.f);
    free(l.cut);
}

/* ---- main ------------------------------------------------------------------------------------ */

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die("cannot open %s: %s", path, strerror(errno));
    uint8_t *p = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap)
            p = xrealloc(p, cap = cap * 2 + 65536);
        size_t k = fread(p + len, 1, cap - len, f);
        len += k;
        if (k == 0)
            break;
    }
    fclose(f);
    *n = len;
    return p;
}

int main(int argc, char **argv)
{
    const char *files[256];
    int n_files = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--tmp") == 0 && i + 1 < argc)
            tmp_path = argv[++i];
        else if (strcmp(argv[i], "--verbose") == 0)
            verbose = true;
        else if (argv[i][0] != '-' && n_files < 256)
            files[n_files++] = argv[i];
        else
            die("usage: gguf_oracle --tmp DIR [--verbose] [FILE...]");
    }
    if (!tmp_path)
        die("usage: gguf_oracle --tmp DIR [--verbose] [FILE...]");
    ggml_log_set(quiet_log, NULL);
    setenv("GGML_NO_BACKTRACE", "1", 1); /* an abort in a child must not start a debugger */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);

    /* 1. the given files as they are; valid ones (no .expect sidecar) must be accepted */
    for (int i = 0; i < n_files; i++) {
        size_t n;
        uint8_t *img = slurp(files[i], &n);
        char side[4200];
        snprintf(side, sizeof side, "%s.expect", files[i]);
        bool bad = access(side, F_OK) == 0;
        run_case(files[i], img, n, bad ? -1 : 1);
        free(img);
    }
    /* 2. built cases */
    built_cases();
    /* 3. mutations of the built seeds and of the valid given files */
    spec s;
    struct {
        const char *name;
        int which;
    } seeds[] = {{"mut/mixed", 0},
                 {"mut/mixed-align64", 1},
                 {"mut/small", 2},
                 {"mut/no-tensors", 3},
                 {"mut/mixed-be", 4}};
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        switch (seeds[i].which) {
        case 0: seed_mixed(&s, false, 0); break;
        case 1: seed_mixed(&s, false, 1); break;
        case 2: seed_small(&s); break;
        case 3: seed_no_tensors(&s); break;
        default: seed_mixed(&s, true, 0); break;
        }
        buf b = spec_build(&s);
        mutate_seed(seeds[i].name, b.p, b.n);
        free(b.p);
        spec_free(&s);
    }
    /* Of the valid given files (the fixtures, a few MB each with a real tokenizer) only the
     * smallest is mutated: they share one structure, and every case reads the whole header. */
    const char *smallest = NULL;
    off_t smallest_size = 0;
    for (int i = 0; i < n_files; i++) {
        char side[4200];
        struct stat st;
        snprintf(side, sizeof side, "%s.expect", files[i]);
        if (access(side, F_OK) == 0 || stat(files[i], &st) != 0)
            continue;
        if (!smallest || st.st_size < smallest_size)
            smallest = files[i], smallest_size = st.st_size;
    }
    if (smallest) {
        size_t n;
        uint8_t *img = slurp(smallest, &n);
        const char *base = strrchr(smallest, '/');
        char name[300];
        snprintf(name, sizeof name, "mut/%s", base ? base + 1 : smallest);
        mutate_seed(name, img, n);
        free(img);
    }

    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("gguf_oracle: %lu cases: %lu both accept, %lu both reject (%lu rejected by llama.cpp's "
           "loader bounds check after gguf_init_from_file accepted), allowed differences:",
           n_cases, n_both_accept, n_both_reject, n_loader_reject);
    for (int r = 0; r < RULE_COUNT; r++)
        printf(" %s %lu%s", RULE_NAMES[r], rule_hits[r], r + 1 < RULE_COUNT ? "," : "");
    printf("; ggml crashes %lu; unexplained disagreements %lu; %.1f s\n", n_ggml_crash, n_failed,
           secs);
    return n_failed ? 1 : 0;
}
