/* The inference verifier of librosetta-infer (docs/verifier.md): captures of a forward pass
 * (every stage of every layer, the logits of every prompt position, a greedy continuation),
 * from Rosetta's engine, from llama.cpp loaded at run time, or read back from a trace file;
 * the stage-by-stage comparison of two captures with dtype-dependent limits and a verdict; the
 * statistics and anomaly flags of `apr trace`; the ten-stage self-test of `apr check`.
 * Errors: rf_status + rf_error as everywhere; the library never prints and never exits.
 * Not for: the forward pass itself (rosetta/infer.h), tokenization (rosetta/tokenizer.h). */
#ifndef ROSETTA_VERIFY_H
#define ROSETTA_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rosetta/api.h"
#include "rosetta/infer.h"
#include "rosetta/status.h"
#include "rosetta/tensor_diff.h"
#include "rosetta/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- precision levels ------------------------------------------------------------------------ */

/* How lossy a model's weights are: the coarsest dtype among its embedding, projection and head
 * matrices (norms and biases are not counted). Decided from dtypes, never from file names. */
typedef enum ri_level {
    RI_LEVEL_F32 = 0, /* F32 / F64 */
    RI_LEVEL_HALF,    /* F16 / BF16 */
    RI_LEVEL_Q8,      /* Q8_0, Q8_1, Q8_K, APR_Q8 */
    RI_LEVEL_Q6,      /* Q6_K */
    RI_LEVEL_Q5,      /* Q5_0, Q5_1, Q5_K */
    RI_LEVEL_Q4,      /* Q4_0, Q4_1, Q4_K, APR_Q4, IQ4 */
    RI_LEVEL_Q3,      /* Q3_K, Q2_K and below */
    RI_LEVEL_COUNT
} ri_level;

/* "f32", "f16/bf16", "q8", "q6", "q5", "q4", "q3"; NULL out of range. */
RI_API const char *ri_level_name(ri_level level);

/* ---- captures -------------------------------------------------------------------------------- */

typedef struct ri_capture ri_capture;

typedef struct ri_capture_params {
    uint32_t n_greedy; /* greedy continuation length (0: none) */
    int n_threads;     /* 0: one per online CPU */
    bool no_stages;    /* keep the logits and tokens only (no per-stage tensors) */
} ri_capture_params;

/* n_greedy 8, n_threads 0, every stage kept. */
RI_API ri_capture_params ri_capture_params_default(void);

/* Runs model on text[0..len): tokenized with the model's own tokenizer (control tokens in the
 * text recognised, no BOS added), the prompt run in one prefill with every stage of every layer
 * captured through the trace hook and the logits of every position kept, then params->n_greedy
 * tokens decoded greedily (argmax over the tokenizer's ids, lowest id on ties) with the KV cache
 * and tracing off. RF_ERR_NOT_FOUND when the model has no tokenizer, RF_ERR_ARGUMENT for an
 * empty prompt, RF_ERR_LIMIT when prompt + continuation exceed 4096 positions. */
RI_API ri_capture *ri_capture_run(ri_model *model, const char *text, size_t len,
                                  const ri_capture_params *params, rf_error *err);
/* The same on given token ids (no tokenizer needed; the continuation then takes the argmax over
 * every row of the head). */
RI_API ri_capture *ri_capture_run_ids(ri_model *model, const int32_t *ids, size_t n_ids,
                                      const ri_capture_params *params, rf_error *err);

/* Runs the GGUF file at gguf_path with llama.cpp's own libllama, loaded at run time (dlopen)
 * from library (NULL: $ROSETTA_LLAMA_LIB, then $ROSETTA_BUILD/oracle/llama/install/lib,
 * then the system's libllama.so): the prompt tokenized by llama.cpp (special tokens parsed),
 * decoded in one batch with logits at every position, F32 KV cache, flash attention off;
 * per-layer tensors taken from llama.cpp's graph evaluation callback where its node names map
 * to Rosetta's stages (docs/verifier.md lists the map); then the greedy continuation.
 * RF_ERR_NOT_FOUND naming every place looked at when no libllama can be loaded,
 * RF_ERR_UNSUPPORTED when the library lacks a symbol or its ABI differs from the pinned
 * llama.cpp's, RF_ERR_FORMAT when llama.cpp refuses the file. */
RI_API ri_capture *ri_capture_run_llama(const char *gguf_path, const char *library,
                                        const char *text, size_t len,
                                        const ri_capture_params *params, rf_error *err);

/* Reads a trace container written by ri_capture_write (or by tests/interop/hf_trace.py);
 * docs/verifier.md describes the format. Every size and offset is checked: RF_ERR_FORMAT
 * naming the field, RF_ERR_IO, RF_ERR_NOMEM. */
RI_API ri_capture *ri_capture_read(const char *path, rf_error *err);

/* Writes c as a trace container at path (zstd-compressed tensors; written to a temp file in
 * the target directory, synced, then renamed). RF_ERR_WRITE on failure (nothing is left at
 * path). */
RI_API rf_status ri_capture_write(const ri_capture *c, const char *path, rf_error *err);

RI_API void ri_capture_free(ri_capture *c);

/* Writes data[0..len) to path atomically (a temp file beside it, synced, then renamed): the
 * writer of trace files, also for apr trace's statistics. RF_ERR_WRITE naming the step. */
RI_API rf_status ri_write_file_atomic(const char *path, const void *data, size_t len,
                                      rf_error *err);

/* Where the capture came from: the model or trace path, and the engine ("rosetta reference",
 * "rosetta cpu avx512", "llama.cpp", "transformers ...", or what a trace file says). */
RI_API const char *ri_capture_label(const ri_capture *c);
RI_API const char *ri_capture_engine(const ri_capture *c);

/* The prompt text the capture ran on (NULL when it was run on ids). */
RI_API const char *ri_capture_prompt(const ri_capture *c);

/* Shape of the model that was run (as ri_model_info; weight_bytes 0 when unknown). */
RI_API ri_model_info ri_capture_info(const ri_capture *c);

/* Precision level of the weights and a summary of their dtypes ("bf16", "q4_k q6_k q8_0"). */
RI_API ri_level ri_capture_level(const ri_capture *c);
RI_API const char *ri_capture_dtypes(const ri_capture *c);

/* The prompt's token ids (*n gets the count). */
RI_API const int32_t *ri_capture_tokens(const ri_capture *c, size_t *n);
/* The greedy continuation (*n gets its length, 0 when none was run). */
RI_API const int32_t *ri_capture_greedy(const ri_capture *c, size_t *n);

/* The tensor of stage at layer (-1 for EMBEDDING, FINAL_NORM, LOGITS): rows x cols F32, row r
 * for prompt position r (LOGITS: every position). NULL when the capture does not hold it (a
 * trace of transformers' hidden states holds only some stages). */
RI_API const float *ri_capture_stage(const ri_capture *c, ri_stage stage, int32_t layer,
                                     uint32_t *rows, uint32_t *cols);

/* The weight tensors that feed stage at layer, comma separated ("blk.1.attn_k.weight,
 * blk.1.attn_k.bias"), with the config values the stage reads (rope_theta and rope_type for
 * q_rope / k_rope, rms_norm_eps for the norms); "" when none (attention, residual, SwiGLU),
 * NULL when unknown. */
RI_API const char *ri_capture_weights(const ri_capture *c, ri_stage stage, int32_t layer);

/* The tokenizer of the model that was run (NULL for llama.cpp runs and trace files). */
RI_API const ri_tokenizer *ri_capture_tokenizer(const ri_capture *c);

/* ---- statistics and anomalies (apr trace) ---------------------------------------------------- */

typedef struct ri_tensor_stats {
    uint64_t count, nan, inf;
    double min, max, mean, std, l2; /* over the finite values; std is the population std */
} ri_tensor_stats;

RI_API ri_tensor_stats ri_tensor_stats_compute(const float *x, size_t n);

/* Anomaly flags of a stage or a layer. */
enum {
    RI_ANOMALY_NAN = 1u << 0,          /* NaN or infinity present */
    RI_ANOMALY_HUGE = 1u << 1,         /* some |x| > 1e6 */
    RI_ANOMALY_FLAT = 1u << 2,         /* std < 1e-6 (collapsed) */
    RI_ANOMALY_ATTN_ENTROPY = 1u << 3, /* mean attention entropy < 0.1 nats */
    RI_ANOMALY_RESIDUAL = 1u << 4,     /* residual ratio > 0.99: the layer adds ~nothing */
};
/* Comma-separated names of the flags set in anomalies ("nan,huge"), into buf. */
RI_API const char *ri_anomaly_names(unsigned anomalies, char *buf, size_t size);
/* The flags of one tensor's statistics (NAN, HUGE, FLAT). */
RI_API unsigned ri_tensor_stats_anomalies(const ri_tensor_stats *s);

/* Per-layer health: attention recomputed from the captured q_rope, k_rope (softmax of the
 * scaled causal scores per head, GQA), its mean entropy over heads and positions > 0 (nats) and
 * the smallest per-head mean; the residual ratio |x_in| / (|x_in| + |x_out - x_in|) over the
 * layer (x_in the previous layer's output or the embedding); flags ATTN_ENTROPY and RESIDUAL.
 * RF_ERR_NOT_FOUND when the capture lacks the stages. */
typedef struct ri_layer_health {
    double attn_entropy, attn_entropy_min_head;
    double residual_ratio;
    unsigned anomalies;
} ri_layer_health;
RI_API rf_status ri_capture_layer_health(const ri_capture *c, uint32_t layer, ri_layer_health *out,
                                         rf_error *err);

/* Attention probabilities of one head recomputed from the captured q_rope and k_rope (as in
 * ri_capture_layer_health): probs[t * n + j] for query position t and key position j <= t
 * (zero above the diagonal), n = the prompt length. RF_ERR_NOT_FOUND without the stages. */
RI_API rf_status ri_capture_attention(const ri_capture *c, uint32_t layer, uint32_t head,
                                      float *probs, rf_error *err);

/* ---- comparison (apr compare-inference) ------------------------------------------------------ */

typedef struct ri_compare_options {
    double tolerance;                       /* >= 0: NMSE limit of every stage; < 0: defaults */
    double stage_tolerance[RI_STAGE_COUNT]; /* >= 0: this stage's NMSE limit (wins) */
    double kl_tolerance;                    /* >= 0: limit of the mean KL of the logits */
    uint32_t top_k;                         /* top-k overlap of the last logits (default 10) */
} ri_compare_options;

RI_API ri_compare_options ri_compare_options_default(void);

/* How the two engines relate: one engine ran both sides, or another engine with F32
 * arithmetic (transformers in float32), or one that rounds activations before its products
 * (llama.cpp: 8-bit activations for quantized weights, 16-bit for F16/BF16 weights). */
typedef enum ri_engines {
    RI_ENGINES_SAME = 0,
    RI_ENGINES_OTHER_F32,
    RI_ENGINES_OTHER_ROUNDED,
} ri_engines;

/* Default limits for two captures at levels a and b; same_weights means every matrix has the
 * same dtype on both sides (then one engine must agree to the last bits). */
typedef struct ri_limits {
    double nmse;       /* per stage: sum (b - a)^2 / sum (a - mean a)^2 */
    double kl_mean;    /* logits: mean KL(A || B) over the prompt positions, nats */
    bool judge_greedy; /* a differing continuation is a divergence */
} ri_limits;
RI_API ri_limits ri_compare_default_limits(ri_level a, ri_level b, bool same_weights,
                                           ri_engines engines);

/* What is compared, in report order. */
typedef enum ri_point {
    RI_POINT_TOKENS = 0,
    RI_POINT_STAGE, /* stage / layer given */
    RI_POINT_GREEDY,
} ri_point;

/* One row of the report. For RI_POINT_STAGE with stage LOGITS the logits fields are set too. */
typedef struct ri_compare_row {
    ri_point point;
    ri_stage stage; /* RI_POINT_STAGE */
    int32_t layer;  /* -1 outside the layers */
    bool compared;  /* false: one side lacks it (reported, not judged) */
    bool pass;
    uint32_t rows, cols;
    double max_abs, rel_max, cosine, nmse, limit;
    uint64_t bad_a, bad_b;  /* NaN / infinite values */
    int32_t first_position; /* first row whose own NMSE exceeds the limit (-1: none) */
    /* RI_POINT_TOKENS / RI_POINT_GREEDY: lengths and the first differing index (-1: none) */
    size_t n_a, n_b;
    int64_t first_diff;
    /* LOGITS */
    int32_t argmax_a, argmax_b; /* at the last prompt position */
    double top_k_overlap;       /* |top-k(A) & top-k(B)| / k at the last position */
    double kl_mean, kl_max;     /* KL(A || B) over positions, nats */
    double top1_agreement;      /* share of positions whose argmax agrees ("same top p") */
    double rms_dp; /* RMS of p_B - p_A of the next prompt token over positions 0..n-2 */
    double kl_limit;
    const char *note; /* why not compared / extra information; NULL when none */
} ri_compare_row;

typedef struct ri_compare ri_compare;

/* Compares capture b against capture a (the reference) at every point, in report order:
 * tokens, embedding, each layer's stages, final norm, logits, greedy continuation. Limits come
 * from ri_compare_default_limits on the captures' levels unless options override them; when
 * the levels differ a warning says so. Both captures must outlive the result. Fails only on
 * allocation failure. */
RI_API ri_compare *ri_compare_new(const ri_capture *a, const ri_capture *b,
                                  const ri_compare_options *options, rf_error *err);
RI_API void ri_compare_free(ri_compare *cmp);

RI_API size_t ri_compare_n_rows(const ri_compare *cmp);
RI_API const ri_compare_row *ri_compare_row_at(const ri_compare *cmp, size_t index);
/* Index of the first row that failed (the first divergence), -1 under parity. */
RI_API long ri_compare_first_divergence(const ri_compare *cmp);
RI_API bool ri_compare_parity(const ri_compare *cmp);
/* "tokens", "greedy" or the stage name of a row. */
RI_API const char *ri_compare_row_name(const ri_compare_row *row);
/* The limits in force and whether they were adapted to different precision levels. */
RI_API ri_limits ri_compare_limits(const ri_compare *cmp);
RI_API size_t ri_compare_n_warnings(const ri_compare *cmp);
RI_API const char *ri_compare_warning(const ri_compare *cmp, size_t index);

/* ---- the weights behind a divergence -------------------------------------------------------- */

/* One weight (or config value) that feeds a stage, compared between two models. */
typedef struct ri_weight_diff {
    char name[192];    /* as listed by ri_capture_weights: a tensor name (either model's
                          spelling) or a config key: rope_theta, rope_type, rms_norm_eps */
    bool is_tensor;    /* false for a config key */
    bool found;        /* present in both models */
    bool ok;           /* tensors: the diff-tensors class passes; config keys: equal values */
    bool changed;      /* the values differ at all (tensors: neither identical nor same-values;
                          a change within the dtype's tolerance is still a change) */
    rf_diff_class cls; /* tensors: the class of rf_models_diff (default tolerances) */
    double max_abs;    /* tensors: max |a - b| (NaN when not compared) */
    double tolerance;  /* tensors: the tolerance applied */
    char status[32];   /* rf_diff_class_name, "not found", or "equal" / "differs" */
    char detail[192];  /* dtypes and max |diff|, or both config values ("A 1e+06, B 10000") */
} ri_weight_diff;

/* Compares, between models a and b, every entry of names (comma separated, as
 * ri_capture_weights returns them): tensors with rf_models_diff (paired by canonical name,
 * per-dtype default tolerances: docs/diff-tensors.md), config keys by value. Fills out[0..*n)
 * with at most cap entries in the order of names. Fails only on allocation failure or a file
 * truncated while in use (the errors of rf_models_diff). */
RI_API rf_status ri_weights_diff(const rf_model *a, const rf_model *b, const char *names,
                                 ri_weight_diff *out, size_t cap, size_t *n, rf_error *err);

/* ---- self-test (apr check) ------------------------------------------------------------------- */

typedef struct ri_check_item {
    const char *name;  /* "tokenizer", "embedding", "rope", ... */
    const char *plain; /* what it checks, in plain words */
    bool pass;
    char details[256]; /* the measured values */
} ri_check_item;

#define RI_CHECK_ITEMS 10

typedef struct ri_check_report {
    ri_check_item items[RI_CHECK_ITEMS];
    size_t n_items;
    bool all_pass;
} ri_check_report;

/* Runs the ten-stage self-test on a real forward pass of model (its tokenizer, a fixed prompt,
 * every stage captured): tokenizer round trip and special ids, embedding rows, RoPE against the
 * closed form at a position > 0, Q/K/V shapes and spread, attention rows and entropy, SwiGLU,
 * RMSNorm, the LM head, softmax, greedy determinism over three runs. Each item passes or fails
 * with its measured values; an error is returned only when the pass cannot run at all. */
RI_API rf_status ri_check_run(ri_model *model, int n_threads, ri_check_report *report,
                              rf_error *err);

#ifdef __cplusplus
}
#endif
#endif
