/* llama_quantize: a minimal front end to llama.cpp's llama_model_quantize(), the oracle that
 * tests/tools/quantize_oracle.sh compares `apr quantize` with. It accepts the options of
 * llama-quantize that Rosetta implements and fills llama_model_quantize_params the way
 * llama.cpp's tools/quantize does (including the quantize.imatrix.* metadata it adds).
 * Built by the test script against scripts/build-llama-oracle's install; not part of Rosetta.
 *
 * usage: llama_quantize [--pure] [--leave-output-tensor] [--allow-requantize] [--dry-run]
 *                       [--threads N]
 *                       [--output-tensor-type T] [--token-embedding-type T]
 *                       [--tensor-type PATTERN=T]... [--imatrix FILE] [--log FILE]
 *                       IN.gguf OUT.gguf MIX
 * Exit status 0 on success, 1 when llama.cpp fails (its log is printed), 2 on usage errors. */
#define _GNU_SOURCE
#include <ctype.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ggml.h"
#include "gguf.h"
#include "llama.h"

/* ---- the log: kept in memory, printed on failure or to --log ----------------------------- */

static char log_buf[1 << 20];
static size_t log_len;

static void log_cb(enum ggml_log_level level, const char *text, void *user)
{
    (void)level;
    FILE *f = user;
    if (f != NULL)
        fputs(text, f);
    size_t n = strlen(text);
    if (log_len + n >= sizeof log_buf) /* keep the tail */
        log_len = 0;
    memcpy(log_buf + log_len, text, n);
    log_len += n;
    log_buf[log_len] = '\0';
}

/* ---- names ---------------------------------------------------------------------------------- */

static const struct {
    const char *name;
    enum llama_ftype ftype;
} MIXES[] = {
    {"Q4_0", LLAMA_FTYPE_MOSTLY_Q4_0},     {"Q4_1", LLAMA_FTYPE_MOSTLY_Q4_1},
    {"Q5_0", LLAMA_FTYPE_MOSTLY_Q5_0},     {"Q5_1", LLAMA_FTYPE_MOSTLY_Q5_1},
    {"Q8_0", LLAMA_FTYPE_MOSTLY_Q8_0},     {"Q2_K", LLAMA_FTYPE_MOSTLY_Q2_K},
    {"Q3_K_S", LLAMA_FTYPE_MOSTLY_Q3_K_S}, {"Q3_K_M", LLAMA_FTYPE_MOSTLY_Q3_K_M},
    {"Q3_K_L", LLAMA_FTYPE_MOSTLY_Q3_K_L}, {"Q4_K_S", LLAMA_FTYPE_MOSTLY_Q4_K_S},
    {"Q4_K_M", LLAMA_FTYPE_MOSTLY_Q4_K_M}, {"Q5_K_S", LLAMA_FTYPE_MOSTLY_Q5_K_S},
    {"Q5_K_M", LLAMA_FTYPE_MOSTLY_Q5_K_M}, {"Q6_K", LLAMA_FTYPE_MOSTLY_Q6_K},
    {"F16", LLAMA_FTYPE_MOSTLY_F16},       {"BF16", LLAMA_FTYPE_MOSTLY_BF16},
    {"F32", LLAMA_FTYPE_ALL_F32},
};

static bool parse_mix(const char *s, enum llama_ftype *out)
{
    for (size_t i = 0; i < sizeof MIXES / sizeof MIXES[0]; i++) {
        if (strcasecmp(s, MIXES[i].name) == 0) {
            *out = MIXES[i].ftype;
            return true;
        }
    }
    return false;
}

static enum ggml_type parse_type(const char *s)
{
    for (int i = 0; i < GGML_TYPE_COUNT; i++) {
        const char *name = ggml_type_name((enum ggml_type)i);
        if (name != NULL && strcasecmp(name, s) == 0)
            return (enum ggml_type)i;
    }
    fprintf(stderr, "llama_quantize: unknown ggml type '%s'\n", s);
    exit(2);
}

/* ---- imatrix, normalized as llama.cpp's tools/quantize does -------------------------------- */

typedef struct imatrix {
    size_t n;
    char **names;
    float **values;
    size_t *sizes;
    char *dataset;
    int chunk_count;
} imatrix;

static void imatrix_add(imatrix *im, const char *name, float *values, size_t size)
{
    im->names = realloc(im->names, (im->n + 1) * sizeof *im->names);
    im->values = realloc(im->values, (im->n + 1) * sizeof *im->values);
    im->sizes = realloc(im->sizes, (im->n + 1) * sizeof *im->sizes);
    if (!im->names || !im->values || !im->sizes) {
        fprintf(stderr, "llama_quantize: out of memory\n");
        exit(1);
    }
    im->names[im->n] = strdup(name);
    im->values[im->n] = values;
    im->sizes[im->n] = size;
    im->n++;
}

static bool load_legacy(const char *path, imatrix *im)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return false;
    int32_t n_entries = 0;
    if (fread(&n_entries, 4, 1, f) != 1 || n_entries < 1)
        goto bad;
    for (int32_t i = 0; i < n_entries; i++) {
        int32_t len = 0, ncall = 0, nval = 0;
        if (fread(&len, 4, 1, f) != 1 || len < 0 || len > 4096)
            goto bad;
        char name[4097];
        if (fread(name, 1, (size_t)len, f) != (size_t)len)
            goto bad;
        name[len] = '\0';
        if (fread(&ncall, 4, 1, f) != 1 || fread(&nval, 4, 1, f) != 1 || nval < 1)
            goto bad;
        float *v = malloc((size_t)nval * sizeof *v);
        if (v == NULL || fread(v, sizeof *v, (size_t)nval, f) != (size_t)nval)
            goto bad;
        if (ncall > 0)
            for (int32_t k = 0; k < nval; k++)
                v[k] = v[k] / (float)ncall;
        imatrix_add(im, name, v, (size_t)nval);
    }
    int32_t n_calls = 0, len = 0;
    if (fread(&n_calls, 4, 1, f) == 1) {
        im->chunk_count = n_calls;
        if (fread(&len, 4, 1, f) == 1 && len > 0 && len < (1 << 20)) {
            im->dataset = calloc((size_t)len + 1, 1);
            if (im->dataset && fread(im->dataset, 1, (size_t)len, f) != (size_t)len) {
                free(im->dataset);
                im->dataset = NULL;
            }
        }
    }
    fclose(f);
    return true;
bad:
    fclose(f);
    fprintf(stderr, "llama_quantize: %s: malformed legacy imatrix\n", path);
    exit(1);
}

static bool ends_with(const char *s, const char *suffix, size_t *stem)
{
    size_t n = strlen(s), m = strlen(suffix);
    if (n < m || strcmp(s + n - m, suffix) != 0)
        return false;
    *stem = n - m;
    return true;
}

static void load_imatrix(const char *path, imatrix *im)
{
    struct ggml_context *ctx = NULL;
    struct gguf_init_params params = {false, &ctx};
    struct gguf_context *g = gguf_init_from_file(path, params);
    if (g == NULL) {
        load_legacy(path, im);
        return;
    }
    int64_t k_ds = gguf_find_key(g, "imatrix.datasets");
    int64_t k_cc = gguf_find_key(g, "imatrix.chunk_count");
    int64_t k_cs = gguf_find_key(g, "imatrix.chunk_size");
    if (k_ds < 0 || k_cc < 0 || k_cs < 0) {
        fprintf(stderr, "llama_quantize: %s: missing imatrix metadata\n", path);
        exit(1);
    }
    if (gguf_get_kv_type(g, k_ds) == GGUF_TYPE_ARRAY &&
        gguf_get_arr_type(g, k_ds) == GGUF_TYPE_STRING && gguf_get_arr_n(g, k_ds) > 0)
        im->dataset = strdup(gguf_get_arr_str(g, k_ds, 0));
    im->chunk_count = (int)gguf_get_val_u32(g, k_cc);
    for (struct ggml_tensor *t = ggml_get_first_tensor(ctx); t; t = ggml_get_next_tensor(ctx, t)) {
        size_t stem;
        if (!ends_with(t->name, ".in_sum2", &stem))
            continue;
        char name[GGML_MAX_NAME + 1];
        snprintf(name, sizeof name, "%.*s.counts", (int)stem, t->name);
        struct ggml_tensor *c = ggml_get_tensor(ctx, name);
        if (c == NULL || t->type != GGML_TYPE_F32 || c->type != GGML_TYPE_F32) {
            fprintf(stderr, "llama_quantize: %s: bad sums/counts pair for %s\n", path, t->name);
            exit(1);
        }
        int64_t nval = ggml_nelements(t), ncounts = ggml_nelements(c);
        int64_t ne0 = nval / ncounts;
        float *v = malloc((size_t)nval * sizeof *v);
        const float *sums = t->data, *counts = c->data;
        for (int64_t j = 0; j < ncounts; j++) {
            const float count = (float)(int64_t)llroundf(counts[j]);
            for (int64_t i = 0; i < ne0; i++)
                v[j * ne0 + i] = count > 0.0f ? sums[j * ne0 + i] / count : 1.0f;
        }
        name[stem] = '\0';
        imatrix_add(im, name, v, (size_t)nval);
    }
    gguf_free(g);
    ggml_free(ctx);
}

/* ---- main ----------------------------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr,
            "usage: llama_quantize [--pure] [--leave-output-tensor] [--dry-run] [--threads N]\n"
            "       [--output-tensor-type T] [--token-embedding-type T] [--tensor-type P=T]...\n"
            "       [--imatrix FILE] [--log FILE] IN.gguf OUT.gguf MIX\n");
    exit(2);
}

int main(int argc, char **argv)
{
    struct llama_model_quantize_params params = llama_model_quantize_default_params();
    params.nthread = 1;
    struct llama_model_tensor_override overrides[64];
    size_t n_overrides = 0;
    const char *imatrix_path = NULL, *log_path = NULL;
    int i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        const char *a = argv[i];
        bool has_value = i + 1 < argc;
        if (strcmp(a, "--pure") == 0) {
            params.pure = true;
        } else if (strcmp(a, "--allow-requantize") == 0) {
            params.allow_requantize = true;
        } else if (strcmp(a, "--leave-output-tensor") == 0) {
            params.quantize_output_tensor = false;
        } else if (strcmp(a, "--dry-run") == 0) {
            params.dry_run = true;
        } else if (strcmp(a, "--threads") == 0 && has_value) {
            params.nthread = atoi(argv[++i]);
        } else if (strcmp(a, "--output-tensor-type") == 0 && has_value) {
            params.output_tensor_type = parse_type(argv[++i]);
        } else if (strcmp(a, "--token-embedding-type") == 0 && has_value) {
            params.token_embedding_type = parse_type(argv[++i]);
        } else if (strcmp(a, "--tensor-type") == 0 && has_value) {
            char *spec = strdup(argv[++i]);
            char *eq = strchr(spec, '=');
            if (eq == NULL || eq == spec || n_overrides + 1 >= 64)
                usage();
            *eq = '\0';
            for (char *p = spec; *p; p++) /* llama-quantize lower-cases the pattern */
                *p = (char)tolower((unsigned char)*p);
            overrides[n_overrides].pattern = spec;
            overrides[n_overrides].type = parse_type(eq + 1);
            n_overrides++;
        } else if (strcmp(a, "--imatrix") == 0 && has_value) {
            imatrix_path = argv[++i];
        } else if (strcmp(a, "--log") == 0 && has_value) {
            log_path = argv[++i];
        } else {
            usage();
        }
    }
    if (argc - i != 3)
        usage();
    const char *in = argv[i], *out = argv[i + 1];
    if (!parse_mix(argv[i + 2], &params.ftype)) {
        fprintf(stderr, "llama_quantize: unknown mix '%s'\n", argv[i + 2]);
        return 2;
    }
    if (n_overrides > 0) {
        overrides[n_overrides].pattern = NULL;
        overrides[n_overrides].type = GGML_TYPE_COUNT;
        params.tt_overrides = overrides;
    }

    imatrix im = {0};
    struct llama_model_imatrix_data *idata = NULL;
    struct llama_model_kv_override kvo[5];
    memset(kvo, 0, sizeof kvo);
    if (imatrix_path != NULL) {
        load_imatrix(imatrix_path, &im);
        idata = calloc(im.n + 1, sizeof *idata);
        for (size_t k = 0; k < im.n; k++) {
            idata[k].name = im.names[k];
            idata[k].data = im.values[k];
            idata[k].size = im.sizes[k];
        }
        params.imatrix = idata;
        /* the metadata llama-quantize records about the imatrix, in its order */
        size_t n = 0;
        strcpy(kvo[n].key, "quantize.imatrix.file");
        kvo[n].tag = LLAMA_KV_OVERRIDE_TYPE_STR;
        strncpy(kvo[n].val_str, imatrix_path, 127);
        n++;
        if (im.dataset != NULL) {
            strcpy(kvo[n].key, "quantize.imatrix.dataset");
            kvo[n].tag = LLAMA_KV_OVERRIDE_TYPE_STR;
            strncpy(kvo[n].val_str, im.dataset, 127);
            n++;
        }
        strcpy(kvo[n].key, "quantize.imatrix.entries_count");
        kvo[n].tag = LLAMA_KV_OVERRIDE_TYPE_INT;
        kvo[n].val_i64 = (int64_t)im.n;
        n++;
        if (im.chunk_count > 0) {
            strcpy(kvo[n].key, "quantize.imatrix.chunks_count");
            kvo[n].tag = LLAMA_KV_OVERRIDE_TYPE_INT;
            kvo[n].val_i64 = im.chunk_count;
            n++;
        }
        kvo[n].key[0] = '\0';
        params.kv_overrides = kvo;
    }

    FILE *log_file = NULL;
    if (log_path != NULL && (log_file = fopen(log_path, "w")) == NULL) {
        fprintf(stderr, "llama_quantize: cannot write %s\n", log_path);
        return 2;
    }
    llama_log_set(log_cb, log_file);
    llama_backend_init();
    uint32_t rc = llama_model_quantize(in, out, &params);
    llama_backend_free();
    if (log_file != NULL)
        fclose(log_file);
    if (rc != 0) {
        fprintf(stderr, "llama_quantize: llama_model_quantize failed (%u); its log:\n%s", rc,
                log_buf);
        return 1;
    }
    return 0;
}
