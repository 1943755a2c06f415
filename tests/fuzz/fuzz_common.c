/* Shared harness of the libFuzzer targets (see fuzz_common.h). */
#include "fuzz_common.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* A finding: print why and abort so that libFuzzer records the input. */
static void finding(const char *fmt, const char *a, unsigned long long b)
    __attribute__((format(printf, 1, 0), noreturn));
static void finding(const char *fmt, const char *a, unsigned long long b)
{
    fprintf(stderr, "fuzz invariant violated: ");
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\n");
    abort();
}

static void env_failure(const char *what)
{
    fprintf(stderr, "fuzz harness: %s: %s\n", what, strerror(errno));
    abort();
}

/* ---- inputs as files -------------------------------------------------------------------- */

static int memfd = -1;
static char memfd_path_buf[64];

const char *fz_memfd_path(const uint8_t *data, size_t size)
{
    if (memfd < 0) {
        memfd = memfd_create("rosetta-fuzz-input", MFD_CLOEXEC);
        if (memfd < 0)
            env_failure("memfd_create");
        snprintf(memfd_path_buf, sizeof memfd_path_buf, "/proc/self/fd/%d", memfd);
    }
    if (ftruncate(memfd, 0) != 0)
        env_failure("ftruncate memfd");
    size_t done = 0;
    while (done < size) {
        ssize_t n = pwrite(memfd, data + done, size - done, (off_t)done);
        if (n <= 0)
            env_failure("write memfd");
        done += (size_t)n;
    }
    return memfd_path_buf;
}

static char dir_path[256];
static char file_path[512];

static void dir_remove_all(void)
{
    if (!dir_path[0])
        return;
    fz_dir_clear();
    rmdir(dir_path);
    dir_path[0] = '\0';
}

const char *fz_dir(void)
{
    if (!dir_path[0]) {
        struct stat st;
        const char *base = getenv("TMPDIR");
        if (!base || !*base)
            base = (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode)) ? "/dev/shm" : "/tmp";
        snprintf(dir_path, sizeof dir_path, "%s/rosetta-fuzz-XXXXXX", base);
        if (!mkdtemp(dir_path))
            env_failure("mkdtemp");
        atexit(dir_remove_all);
    }
    return dir_path;
}

const char *fz_dir_file(const char *name, const uint8_t *data, size_t size)
{
    snprintf(file_path, sizeof file_path, "%s/%s", fz_dir(), name);
    FILE *f = fopen(file_path, "wb");
    if (!f)
        env_failure(file_path);
    if (size && fwrite(data, 1, size, f) != size)
        env_failure(file_path);
    if (fclose(f) != 0)
        env_failure(file_path);
    return file_path;
}

void fz_dir_clear(void)
{
    DIR *d = opendir(fz_dir());
    if (!d)
        env_failure("opendir");
    struct dirent *e;
    char path[512];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir_path, e->d_name);
        unlink(path);
    }
    closedir(d);
}

size_t fz_split(const uint8_t *data, size_t size, fz_part *parts, size_t max_parts)
{
    const size_t sep_len = sizeof FZ_SEPARATOR - 1;
    size_t n = 0, start = 0;
    for (size_t i = 0; n + 1 < max_parts && i + sep_len <= size; i++) {
        if (memcmp(data + i, FZ_SEPARATOR, sep_len) == 0) {
            parts[n].data = data + start;
            parts[n].size = i - start;
            n++;
            start = i + sep_len;
            i = start - 1;
        }
    }
    parts[n].data = data + start;
    parts[n].size = size - start;
    return n + 1;
}

/* ---- rf_file_open as exact-size heap copies (see fuzz_common.h) ------------------------- */

rf_file *__real_rf_file_open(const char *path, rf_error *err);
void __real_rf_file_close(rf_file *file);
rf_file *__wrap_rf_file_open(const char *path, rf_error *err);
void __wrap_rf_file_close(rf_file *file);

typedef struct heap_file {
    rf_file *file;
    uint8_t *copy;
} heap_file;

static heap_file *heap_files;
static size_t n_heap_files, cap_heap_files;

rf_file *__wrap_rf_file_open(const char *path, rf_error *err)
{
    rf_file *real = __real_rf_file_open(path, err);
    if (!real)
        return NULL;
    size_t size = (size_t)rf_file_size(real);
    uint8_t *copy = malloc(size); /* malloc(0) under ASan: a valid pointer to no bytes */
    if (!copy && size)
        env_failure("malloc for a file copy");
    if (size)
        memcpy(copy, rf_file_data(real), size);
    __real_rf_file_close(real);
    rf_file *f = rf_file_from_memory(copy, size, path, err);
    if (!f) {
        free(copy);
        return NULL;
    }
    if (n_heap_files == cap_heap_files) {
        cap_heap_files = cap_heap_files ? cap_heap_files * 2 : 16;
        heap_files = realloc(heap_files, cap_heap_files * sizeof *heap_files);
        if (!heap_files)
            env_failure("realloc");
    }
    heap_files[n_heap_files++] = (heap_file){f, copy};
    return f;
}

void __wrap_rf_file_close(rf_file *file)
{
    for (size_t k = 0; k < n_heap_files; k++) {
        if (heap_files[k].file == file) {
            __real_rf_file_close(file);
            free(heap_files[k].copy);
            heap_files[k] = heap_files[--n_heap_files];
            return;
        }
    }
    __real_rf_file_close(file);
}

/* ---- walking a model -------------------------------------------------------------------- */

static volatile uint64_t sink;
static bool walking_lenient; /* the model being walked was opened with opts.lenient */

static void touch(const void *p, uint64_t n)
{
    const uint8_t *b = p;
    uint64_t sum = 0;
    for (uint64_t i = 0; i < n; i++)
        sum += b[i];
    sink += sum;
}

static void touch_string(const char *s, const char *what)
{
    if (s)
        touch(s, strlen(s));
    (void)what;
}

#define MAX_VALUE_DEPTH 64

static void walk_value(const rf_value *v, int depth, const char *key)
{
    if (depth > MAX_VALUE_DEPTH)
        finding("kv '%s': arrays nested deeper than %llu levels were accepted", key,
                MAX_VALUE_DEPTH);
    double f;
    uint64_t u;
    int64_t i;
    (void)rf_value_as_f64(v, &f);
    (void)rf_value_as_u64(v, &u);
    (void)rf_value_as_i64(v, &i);
    touch_string(rf_value_type_name(v->type), "type name");
    switch (v->type) {
    case RF_VALUE_U8:
    case RF_VALUE_I8:
    case RF_VALUE_U16:
    case RF_VALUE_I16:
    case RF_VALUE_U32:
    case RF_VALUE_I32:
    case RF_VALUE_F32:
    case RF_VALUE_BOOL:
    case RF_VALUE_U64:
    case RF_VALUE_I64:
    case RF_VALUE_F64: sink += v->as.u; break;
    case RF_VALUE_STRING:
    case RF_VALUE_JSON:
        if (!v->as.str.data)
            finding("kv '%s': string value with a NULL pointer (len %llu)", key, v->as.str.len);
        touch(v->as.str.data, v->as.str.len + 1);
        if (v->as.str.data[v->as.str.len] != '\0')
            finding("kv '%s': string value not NUL-terminated at len %llu", key, v->as.str.len);
        break;
    case RF_VALUE_ARRAY:
        if (v->as.arr.count && !v->as.arr.items)
            finding("kv '%s': array of %llu items with a NULL pointer", key, v->as.arr.count);
        for (uint64_t k = 0; k < v->as.arr.count; k++) {
            if (v->as.arr.items[k].type != v->as.arr.elem_type)
                finding("kv '%s': array item %llu differs from the element type", key, k);
            walk_value(&v->as.arr.items[k], depth + 1, key);
        }
        break;
    }
}

/* The file whose mapping contains p, or NULL (memory the model owns). */
static const rf_file *file_containing(const rf_model *m, const uint8_t *p)
{
    for (size_t k = 0; k < rf_model_n_files(m); k++) {
        const rf_file *f = rf_model_file(m, k);
        const uint8_t *base = rf_file_data(f);
        if (p >= base && p < base + rf_file_size(f))
            return f;
    }
    return NULL;
}

static void walk_tensor(const rf_model *m, const rf_tensor *t, size_t index)
{
    if (!t)
        finding("%stensor %llu is NULL", "", index);
    if (!t->name)
        finding("%stensor %llu has a NULL name", "", index);
    touch_string(t->name, "name");
    if (t->ndim < 0 || t->ndim > RF_MAX_DIMS)
        finding("tensor '%s': ndim %llu out of range", t->name, (unsigned long long)t->ndim);
    if (rf_model_find_tensor(m, t->name) != t)
        finding("tensor '%s': rf_model_find_tensor does not return it (index %llu)", t->name,
                index);
    touch_string(rf_dtype_name(t->dtype), "dtype");
    if (t->nbytes == 0)
        return;
    if (!t->data) {
        /* Lenient opens may keep a tensor whose data lies outside the file with data NULL
         * (GGUF reader); a strict open never does. */
        if (walking_lenient)
            return;
        finding("tensor '%s': %llu bytes but a NULL data pointer", t->name, t->nbytes);
    }
    const rf_file *f = file_containing(m, t->data);
    if (f) {
        uint64_t start = (uint64_t)(t->data - rf_file_data(f));
        if (t->nbytes > rf_file_size(f) - start)
            finding("tensor '%s': data span runs past the end of its source file (%llu bytes)",
                    t->name, t->nbytes);
        if (t->source >= rf_model_n_files(m) || rf_model_file(m, t->source) != f)
            finding("tensor '%s': source index %llu is not the file holding its data", t->name,
                    t->source);
    }
    touch(t->data, t->nbytes);
}

void fz_walk_model(const rf_model *m)
{
    (void)rf_model_format(m);
    (void)rf_model_format_version(m);
    touch_string(rf_model_path(m), "path");
    (void)rf_model_file_size(m);
    for (size_t k = 0; k < rf_model_n_files(m); k++) {
        const rf_file *f = rf_model_file(m, k);
        if (!f)
            finding("%sfile %llu is NULL", "", k);
        touch_string(rf_file_path(f), "file path");
    }

    for (size_t k = 0; k < rf_model_n_tensors(m); k++)
        walk_tensor(m, rf_model_tensor(m, k), k);

    for (size_t k = 0; k < rf_model_n_kv(m); k++) {
        const rf_kv *kv = rf_model_kv(m, k);
        if (!kv || !kv->key)
            finding("%skv %llu is NULL or has a NULL key", "", k);
        touch_string(kv->key, "key");
        walk_value(&kv->value, 0, kv->key);
        (void)rf_model_find_kv(m, kv->key);
    }

    const rf_model_config *c = rf_model_config_get(m);
    touch_string(c->architecture, "architecture");
    touch_string(c->name, "name");
    touch_string(c->chat_template, "chat template");
    sink += c->hidden_size + c->n_layers + c->n_heads + c->n_kv_heads + c->head_dim +
            c->intermediate_size + c->vocab_size + c->context_length;

    const rf_tokenizer *tok = rf_model_tokenizer(m);
    if (tok) {
        touch_string(tok->model, "tokenizer model");
        touch_string(tok->pre, "tokenizer pre");
        if (tok->n_tokens && !tok->tokens)
            finding("%stokenizer: %llu tokens with a NULL array", "", tok->n_tokens);
        for (uint64_t k = 0; k < tok->n_tokens; k++) {
            if (!tok->tokens[k])
                finding("%stokenizer: token %llu is NULL", "", k);
            touch_string(tok->tokens[k], "token");
            if (tok->token_types)
                sink += (uint64_t)tok->token_types[k];
        }
        if (tok->n_merges && !tok->merges)
            finding("%stokenizer: %llu merges with a NULL array", "", tok->n_merges);
        for (uint64_t k = 0; k < tok->n_merges; k++) {
            if (!tok->merges[k])
                finding("%stokenizer: merge %llu is NULL", "", k);
            touch_string(tok->merges[k], "merge");
        }
    }

    for (size_t k = 0; k < rf_model_n_warnings(m); k++)
        touch_string(rf_model_warning(m, k), "warning");
}

/* With FZ_CHECK_MESSAGES=1 in the environment, a failed open whose message does not name the
 * file (or a file in its directory) is a finding (the project's error rule); off by default. */
static void check_error(const rf_error *err, const char *path)
{
    if (err->status == RF_OK)
        finding("open of '%s' failed with status RF_OK (%llu)", path, 0);
    if (!err->message[0])
        finding("open of '%s' failed (status %llu) with an empty message", path,
                (unsigned long long)err->status);
    static int strict_messages = -1;
    if (strict_messages < 0) {
        const char *env = getenv("FZ_CHECK_MESSAGES");
        strict_messages = env && *env == '1';
    }
    /* A file beside the one opened (a shard, config.json) may be the one named. */
    char dir[512];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir)
        *slash = '\0';
    if (strict_messages && !strstr(err->message, path) && !(slash && strstr(err->message, dir))) {
        fprintf(stderr, "message: %s\n", err->message);
        finding("error message does not name the file '%s' (status %llu)", path,
                (unsigned long long)err->status);
    }
}

void fz_open_and_walk_with(fz_opener open, const char *path)
{
    for (int lenient = 0; lenient <= 1; lenient++) {
        rf_open_options opts = {.lenient = lenient != 0};
        rf_error err;
        rf_error_clear(&err);
        rf_model *m = open(path, &opts, &err);
        if (m) {
            walking_lenient = opts.lenient;
            fz_walk_model(m);
            walking_lenient = false;
            rf_model_free(m);
        } else {
            check_error(&err, path);
        }
    }
}

void fz_open_memory_and_walk(fz_memory_opener open, const uint8_t *data, size_t size)
{
    for (int lenient = 0; lenient <= 1; lenient++) {
        rf_open_options opts = {.lenient = lenient != 0};
        rf_error err;
        rf_error_clear(&err);
        rf_model *m = open(data, size, "fuzz-input", &opts, &err);
        if (m) {
            walking_lenient = opts.lenient;
            fz_walk_model(m);
            walking_lenient = false;
            rf_model_free(m);
        } else {
            check_error(&err, "fuzz-input");
        }
    }
}

void fz_open_and_walk(const char *path) { fz_open_and_walk_with(rf_model_open, path); }
