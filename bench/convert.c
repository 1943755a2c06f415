/* Conversion speed and memory on a generated Qwen2-1.5B-shaped model (docs/convert.md,
 * "Benchmark"): the programs run as child processes, wall time and peak RSS (wait4) each, medians
 * of --reps runs, in the same run as their peers:
 *   - SafeTensors -> APR keeping BF16 (`apr convert`, every check and the provenance on) against
 *     `cp` of the same file (goal: >= 0.8x its GB/s), and against `cp` followed by an fsync
 *     (apr convert syncs what it writes; cp does not); also without the source scan and the
 *     contract (--no-provenance --skip-contract: the writer's write, sync and read-back alone);
 *   - SafeTensors -> GGUF Q4_K_M (`apr convert --quantize q4_k_m`) against llama.cpp's
 *     llama_model_quantize on the F32 GGUF of the same model (goal: >= 4x);
 *   - the peak RSS of each, next to the largest tensor (bounded by it plus a constant, not by
 *     the model's size).
 * The model (3.1 GB of BF16, 1.54 B parameters: hidden 1536, 28 layers, 12 / 2 heads, FF 8960,
 * vocabulary 151936, tied, q/k/v biases; the fixture's tokenizer) is written here tensor by
 * tensor from a fixed pseudo-random sequence, into --dir (default $TMPDIR), and removed after.
 *
 * Usage: bench-convert [--reps N] [--dir DIR] [--layers N] [--keep] [--bf16-only]
 *   APR_BIN (default: ../bin beside this program) names the tools; ROSETTA_LLAMA_QUANTIZE the
 *   llama_model_quantize harness (tests/oracle/llama_quantize.c, built by scripts/bench);
 *   without it the Q4_K_M comparison prints Rosetta's numbers only. --layers N makes a smaller
 *   model of the same widths (for a quick run); --bf16-only measures the BF16 copy alone (no
 *   Q4_K_M case).
 * One JSON object per line on stdout; progress on stderr. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <stdbool.h>

#define MAX_REPS 16

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* ---- child processes ----------------------------------------------------------------------- */

typedef struct run_result {
    int status;
    double seconds;
    double rss_mib;
} run_result;

/* Runs argv (stdout and stderr to /dev/null unless verbose); wall time and peak RSS. */
static run_result run(char *const argv[])
{
    run_result r = {-1, 0, 0};
    double t0 = now();
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    if (pid < 0)
        return r;
    struct rusage ru;
    int status = 0;
    if (wait4(pid, &status, 0, &ru) < 0)
        return r;
    r.seconds = now() - t0;
    r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.rss_mib = (double)ru.ru_maxrss / 1024.0;
    return r;
}

/* ---- the model ------------------------------------------------------------------------------- */

typedef struct tensor_spec {
    char name[96];
    uint64_t shape[2];
    int ndim;
} tensor_spec;

typedef struct shape {
    uint64_t hidden, layers, heads, kv_heads, head_dim, ffn, vocab;
} shape;

static size_t specs(const shape *s, tensor_spec *out)
{
    size_t n = 0;
#define ADD(nd, a, b, ...)                                                                         \
    do {                                                                                           \
        snprintf(out[n].name, sizeof out[n].name, __VA_ARGS__);                                    \
        out[n].ndim = nd;                                                                          \
        out[n].shape[0] = a;                                                                       \
        out[n].shape[1] = b;                                                                       \
        n++;                                                                                       \
    } while (0)
    const uint64_t q = s->heads * s->head_dim, kv = s->kv_heads * s->head_dim;
    ADD(2, s->vocab, s->hidden, "model.embed_tokens.weight");
    for (uint64_t l = 0; l < s->layers; l++) {
        const char *p = "model.layers.%llu.";
        char base[48];
        snprintf(base, sizeof base, p, (unsigned long long)l);
        ADD(2, q, s->hidden, "%sself_attn.q_proj.weight", base);
        ADD(1, q, 0, "%sself_attn.q_proj.bias", base);
        ADD(2, kv, s->hidden, "%sself_attn.k_proj.weight", base);
        ADD(1, kv, 0, "%sself_attn.k_proj.bias", base);
        ADD(2, kv, s->hidden, "%sself_attn.v_proj.weight", base);
        ADD(1, kv, 0, "%sself_attn.v_proj.bias", base);
        ADD(2, s->hidden, q, "%sself_attn.o_proj.weight", base);
        ADD(2, s->ffn, s->hidden, "%smlp.gate_proj.weight", base);
        ADD(2, s->ffn, s->hidden, "%smlp.up_proj.weight", base);
        ADD(2, s->hidden, s->ffn, "%smlp.down_proj.weight", base);
        ADD(1, s->hidden, 0, "%sinput_layernorm.weight", base);
        ADD(1, s->hidden, 0, "%spost_attention_layernorm.weight", base);
    }
    ADD(1, s->hidden, 0, "model.norm.weight");
#undef ADD
    return n;
}

static uint64_t elems(const tensor_spec *t)
{
    return t->ndim == 2 ? t->shape[0] * t->shape[1] : t->shape[0];
}

/* xorshift64*: a fixed sequence, fast enough to write GBs. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t next_u64(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

/* BF16 of an approximately normal value (sum of four uniforms), scaled; norms near 1. */
static uint16_t sample_bf16(float scale, float offset)
{
    uint64_t r = next_u64();
    float u =
        (float)((r & 0xffff) + ((r >> 16) & 0xffff) + ((r >> 32) & 0xffff) + (r >> 48)) / 65536.0f -
        2.0f;
    float v = offset + scale * u * 1.7320508f;
    uint32_t bits;
    memcpy(&bits, &v, 4);
    return (uint16_t)((bits + 0x7fff + ((bits >> 16) & 1)) >> 16);
}

static int copy_file(const char *from, const char *to)
{
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    char buf[65536];
    size_t n;
    int ok = a && b;
    while (ok && (n = fread(buf, 1, sizeof buf, a)) > 0)
        ok = fwrite(buf, 1, n, b) == n;
    if (a)
        fclose(a);
    if (b && fclose(b) != 0)
        ok = 0;
    return ok ? 0 : -1;
}

/* model.safetensors (BF16), config.json and the fixture's tokenizer files into dir. */
static int write_model(const char *dir, const shape *s, const char *root, uint64_t *bytes,
                       uint64_t *largest)
{
    tensor_spec *t = calloc(16 + 12 * s->layers, sizeof *t);
    size_t n = specs(s, t);
    char path[2 * PATH_MAX];
    /* header: names in order, data in the same order */
    size_t cap = 256 + n * 160, used = 0;
    char *h = malloc(cap);
    uint64_t off = 0;
    used += (size_t)snprintf(h + used, cap - used, "{\"__metadata__\":{\"format\":\"pt\"}");
    *largest = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t nb = elems(&t[i]) * 2;
        if (nb > *largest)
            *largest = nb;
        if (t[i].ndim == 2)
            used += (size_t)snprintf(h + used, cap - used,
                                     ",\"%s\":{\"dtype\":\"BF16\",\"shape\":[%llu,%llu],"
                                     "\"data_offsets\":[%llu,%llu]}",
                                     t[i].name, (unsigned long long)t[i].shape[0],
                                     (unsigned long long)t[i].shape[1], (unsigned long long)off,
                                     (unsigned long long)(off + nb));
        else
            used += (size_t)snprintf(h + used, cap - used,
                                     ",\"%s\":{\"dtype\":\"BF16\",\"shape\":[%llu],"
                                     "\"data_offsets\":[%llu,%llu]}",
                                     t[i].name, (unsigned long long)t[i].shape[0],
                                     (unsigned long long)off, (unsigned long long)(off + nb));
        off += nb;
    }
    used += (size_t)snprintf(h + used, cap - used, "}");
    while (used % 8)
        h[used++] = ' ';
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    FILE *f = fopen(path, "wb");
    uint8_t len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (uint8_t)((uint64_t)used >> (8 * i));
    int ok = f && fwrite(len, 1, 8, f) == 8 && fwrite(h, 1, used, f) == used;
    uint16_t *buf = malloc(sizeof(uint16_t) << 20);
    for (size_t i = 0; ok && i < n; i++) {
        bool norm = strstr(t[i].name, "norm") != NULL;
        bool bias = strstr(t[i].name, "bias") != NULL;
        for (uint64_t at = 0, e = elems(&t[i]); ok && at < e; at += 1u << 20) {
            size_t k = e - at < (1u << 20) ? (size_t)(e - at) : (1u << 20);
            for (size_t j = 0; j < k; j++)
                buf[j] = sample_bf16(norm ? 0.05f : bias ? 0.01f : 0.02f, norm ? 1.0f : 0.0f);
            ok = fwrite(buf, 2, k, f) == k;
        }
    }
    if (f && fclose(f) != 0)
        ok = 0;
    free(buf);
    free(h);
    free(t);
    *bytes = 8 + used + off;
    snprintf(path, sizeof path, "%s/config.json", dir);
    f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f,
            "{\"architectures\":[\"Qwen2ForCausalLM\"],\"bos_token_id\":997,\"eos_token_id\":999,"
            "\"hidden_act\":\"silu\",\"hidden_size\":%llu,\"intermediate_size\":%llu,"
            "\"max_position_embeddings\":32768,\"model_type\":\"qwen2\","
            "\"num_attention_heads\":%llu,\"num_hidden_layers\":%llu,\"num_key_value_heads\":%llu,"
            "\"rms_norm_eps\":1e-06,\"rope_theta\":1000000.0,\"tie_word_embeddings\":true,"
            "\"torch_dtype\":\"bfloat16\",\"vocab_size\":%llu}\n",
            (unsigned long long)s->hidden, (unsigned long long)s->ffn, (unsigned long long)s->heads,
            (unsigned long long)s->layers, (unsigned long long)s->kv_heads,
            (unsigned long long)s->vocab);
    fclose(f);
    /* the fixture's tokenizer (1,000 tokens for 151,936 rows: GGUF pads the rest) */
    const char *files[] = {"tokenizer.json", "tokenizer_config.json"};
    for (int i = 0; root && i < 2; i++) {
        char from[2 * PATH_MAX];
        snprintf(from, sizeof from, "%s/fixtures/tiny-qwen2/%s", root, files[i]);
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        if (access(from, R_OK) == 0 && copy_file(from, path) != 0)
            return -1;
    }
    return ok ? 0 : -1;
}

/* ---- measuring ------------------------------------------------------------------------------- */

typedef struct series {
    double seconds[MAX_REPS], rss[MAX_REPS];
    int n, failed;
} series;

static void measure(series *s, char *const argv[], const char *remove_after)
{
    run_result r = run(argv);
    if (r.status != 0) {
        fprintf(stderr, "bench-convert: %s failed (exit %d)\n", argv[0], r.status);
        s->failed = 1;
    } else {
        s->seconds[s->n] = r.seconds;
        s->rss[s->n] = r.rss_mib;
        s->n++;
    }
    if (remove_after)
        unlink(remove_after);
}

static double med(series *s) { return s->n ? median(s->seconds, s->n) : NAN; }
static double max_rss(const series *s)
{
    double m = 0;
    for (int i = 0; i < s->n; i++)
        m = s->rss[i] > m ? s->rss[i] : m;
    return m;
}

static void print_num(const char *key, double v)
{
    if (isfinite(v))
        printf(",\"%s\":%.4g", key, v);
    else
        printf(",\"%s\":null", key);
}

/* The generated model and its directory. */
static void remove_model(const char *dir, const char *model, const char *st)
{
    unlink(st);
    const char *files[] = {"config.json", "tokenizer.json", "tokenizer_config.json"};
    for (int i = 0; i < 3; i++) {
        char p[PATH_MAX + 64];
        snprintf(p, sizeof p, "%s/%s", model, files[i]);
        unlink(p);
    }
    rmdir(model);
    rmdir(dir);
}

int main(int argc, char **argv)
{
    int reps = 3;
    const char *dir_arg = NULL;
    int keep = 0, bf16_only = 0;
    shape s = {1536, 28, 12, 2, 128, 8960, 151936};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            dir_arg = argv[++i];
        else if (strcmp(argv[i], "--layers") == 0 && i + 1 < argc)
            s.layers = (uint64_t)atoi(argv[++i]);
        else if (strcmp(argv[i], "--keep") == 0)
            keep = 1;
        else if (strcmp(argv[i], "--bf16-only") == 0)
            bf16_only = 1;
        else {
            fprintf(stderr, "usage: bench-convert [--reps N] [--dir DIR] [--layers N] [--keep] "
                            "[--bf16-only]\n");
            return 2;
        }
    }
    if (reps < 1 || reps > MAX_REPS || s.layers < 1 || s.layers > 256) {
        fprintf(stderr, "bench-convert: --reps 1..%d, --layers 1..256\n", MAX_REPS);
        return 2;
    }
    /* the tools beside this program: <build>/bench/bench-convert -> <build>/bin */
    char self[PATH_MAX], bin[PATH_MAX], root[PATH_MAX + 16];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0)
        return 2;
    self[len] = '\0';
    *strrchr(self, '/') = '\0';
    snprintf(bin, sizeof bin, "%s", getenv("APR_BIN") ? getenv("APR_BIN") : self);
    if (!getenv("APR_BIN")) {
        char *slash = strrchr(bin, '/');
        snprintf(slash ? slash : bin, sizeof bin - (size_t)(slash ? slash - bin : 0), "/bin");
    }
    const char *src_root = getenv("ROSETTA_ROOT");
    if (src_root == NULL) { /* <root>/build/bench: the source tree two levels up */
        snprintf(root, sizeof root, "%s/../..", self);
        src_root = root;
    }
    char convert[PATH_MAX + 16];
    snprintf(convert, sizeof convert, "%s/apr-convert", bin);
    if (access(convert, X_OK) != 0) {
        printf("{\"bench\":\"convert\",\"error\":\"%s is not built\"}\n", convert);
        return 1;
    }
    const char *llama = getenv("ROSETTA_LLAMA_QUANTIZE");
    const char *tmp = dir_arg ? dir_arg : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/rosetta-bench-convert-%d", tmp, (int)getpid());
    if (mkdir(dir, 0755) != 0) {
        fprintf(stderr, "bench-convert: %s: %s\n", dir, strerror(errno));
        return 1;
    }
    char model[PATH_MAX + 32], st[PATH_MAX + 32], f32[PATH_MAX + 32], out[PATH_MAX + 32],
        cp_out[PATH_MAX + 32], q_out[PATH_MAX + 32], l_out[PATH_MAX + 32];
    snprintf(model, sizeof model, "%s/model", dir);
    snprintf(st, sizeof st, "%s/model/model.safetensors", dir);
    snprintf(f32, sizeof f32, "%s/f32.gguf", dir);
    snprintf(out, sizeof out, "%s/out.apr", dir);
    snprintf(cp_out, sizeof cp_out, "%s/copy.safetensors", dir);
    snprintf(q_out, sizeof q_out, "%s/q4km.gguf", dir);
    snprintf(l_out, sizeof l_out, "%s/llama-q4km.gguf", dir);
    mkdir(model, 0755);
    uint64_t bytes = 0, largest = 0;
    fprintf(stderr, "bench-convert: writing the model (%llu layers) into %s\n",
            (unsigned long long)s.layers, model);
    double t0 = now();
    if (write_model(model, &s, src_root, &bytes, &largest) != 0) {
        fprintf(stderr, "bench-convert: writing the model failed\n");
        return 1;
    }
    fprintf(stderr, "bench-convert: %.2f GB written in %.1f s\n", (double)bytes / 1e9, now() - t0);
    const double gb = (double)bytes / 1e9, model_mib = (double)bytes / 1048576.0;
    const double largest_mib = (double)largest / 1048576.0;
    char cp_path[] = "/bin/cp", sync_path[] = "/bin/sync";
    char *cp_argv[] = {cp_path, st, cp_out, NULL};
    char *sync_argv[] = {sync_path, cp_out, NULL};
    char *apr_argv[] = {convert, "-q", st, "-o", out, NULL};
    char *plain_argv[] = {convert, "-q", "--no-provenance", "--skip-contract", st, "-o", out, NULL};
    char *q_argv[] = {convert, "-q", "--quantize", "q4_k_m", st, "-o", q_out, NULL};
    char *f32_argv[] = {convert, "-q", "--quantize", "f32", st, "-o", f32, NULL};
    char threads[] = "2";
    char *l_argv[] = {(char *)llama, "--threads", threads, f32, l_out, "Q4_K_M", NULL};

    /* 1. SafeTensors -> APR keeping BF16, against cp (and cp + fsync), interleaved */
    series cp = {0}, cps = {0}, apr = {0}, plain = {0};
    for (int r = 0; r < reps; r++) {
        fprintf(stderr, "bench-convert: st->apr, rep %d/%d\n", r + 1, reps);
        measure(&cp, cp_argv, cp_out);
        run_result a = run(cp_argv), b = run(sync_argv);
        if (a.status == 0 && b.status == 0) {
            cps.seconds[cps.n] = a.seconds + b.seconds;
            cps.rss[cps.n++] = a.rss_mib;
        }
        unlink(cp_out);
        measure(&apr, apr_argv, out);
        measure(&plain, plain_argv, out);
    }
    printf("{\"bench\":\"convert\",\"case\":\"st_to_apr_bf16\",\"model\":\"qwen2-1.5b-shaped\","
           "\"layers\":%llu,\"bytes\":%llu,\"reps\":%d",
           (unsigned long long)s.layers, (unsigned long long)bytes, apr.n);
    print_num("seconds", med(&apr));
    print_num("gb_per_s", gb / med(&apr));
    print_num("cp_seconds", med(&cp));
    print_num("cp_gb_per_s", gb / med(&cp));
    print_num("ratio_vs_cp", med(&cp) / med(&apr));
    print_num("cp_fsync_seconds", med(&cps));
    print_num("ratio_vs_cp_fsync", med(&cps) / med(&apr));
    /* without the source scan (NaN / Inf, digest) and the contract: the writer's own work */
    print_num("plain_seconds", med(&plain));
    print_num("plain_ratio_vs_cp", med(&cp) / med(&plain));
    printf(",\"goal\":0.8");
    print_num("peak_rss_mib", max_rss(&apr));
    print_num("largest_tensor_mib", largest_mib);
    print_num("model_mib", model_mib);
    printf("}\n");
    fflush(stdout);

    /* 2. SafeTensors -> GGUF Q4_K_M, against llama_model_quantize on the F32 GGUF */
    series q = {0}, l = {0};
    if (bf16_only) {
        if (!keep)
            remove_model(dir, model, st);
        return apr.failed || plain.failed ? 1 : 0;
    }
    int have_llama = llama && access(llama, X_OK) == 0;
    if (have_llama) {
        fprintf(stderr, "bench-convert: writing the F32 GGUF for llama.cpp\n");
        run_result r = run(f32_argv);
        if (r.status != 0) {
            fprintf(stderr, "bench-convert: the F32 GGUF could not be written\n");
            have_llama = 0;
        }
    }
    for (int r = 0; r < reps; r++) {
        fprintf(stderr, "bench-convert: q4_k_m, rep %d/%d\n", r + 1, reps);
        measure(&q, q_argv, q_out);
        if (have_llama)
            measure(&l, l_argv, l_out);
    }
    unlink(f32);
    printf("{\"bench\":\"convert\",\"case\":\"st_to_gguf_q4_k_m\",\"model\":\"qwen2-1.5b-shaped\","
           "\"layers\":%llu,\"bytes\":%llu,\"reps\":%d",
           (unsigned long long)s.layers, (unsigned long long)bytes, q.n);
    print_num("seconds", med(&q));
    print_num("gb_per_s", gb / med(&q));
    const char *peer = getenv("ROSETTA_LLAMA_PEER");
    if (have_llama)
        printf(",\"peer\":\"llama_model_quantize, F32 GGUF -> Q4_K_M, %s\"",
               peer ? peer : "llama.cpp");
    else
        printf(",\"peer\":null");
    print_num("peer_seconds", have_llama ? med(&l) : NAN);
    print_num("ratio", have_llama ? med(&l) / med(&q) : NAN);
    printf(",\"goal\":4");
    print_num("peak_rss_mib", max_rss(&q));
    print_num("peer_peak_rss_mib", have_llama ? max_rss(&l) : NAN);
    print_num("largest_tensor_mib", largest_mib);
    print_num("largest_tensor_f32_mib", largest_mib * 2);
    print_num("model_mib", model_mib);
    printf("}\n");

    if (!keep)
        remove_model(dir, model, st);
    return apr.failed || plain.failed || q.failed || l.failed ? 1 : 0;
}
