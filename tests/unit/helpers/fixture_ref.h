/* The fixtures' transformers reference outputs (fixtures/README.md, "Reference outputs") for the
 * engine tests: prompt ids, last-position logits, greedy continuation, per-stage statistics. */
#ifndef TEST_FIXTURE_REF_H
#define TEST_FIXTURE_REF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FIXTURE_MAX_STAGES 16

typedef struct fixture_stats {
    double mean, std, min, max, l2;
} fixture_stats;

typedef struct fixture_ref {
    int32_t ids[512];
    size_t n_ids;
    int32_t argmax[512]; /* argmax_per_position */
    double margin[512];  /* argmax_margin_per_position */
    float logits[1024];  /* last position */
    size_t n_logits;
    int32_t greedy[64];
    size_t n_greedy;
    char stage_names[FIXTURE_MAX_STAGES][32]; /* embeddings, layer.N, final_norm */
    fixture_stats stage_last[FIXTURE_MAX_STAGES], stage_all[FIXTURE_MAX_STAGES];
    size_t n_stages;
} fixture_ref;

/* Reads fixtures/<model>/reference/<prompt>.json and .logits.bin; false (with a message on
 * stderr) when a file is missing or malformed. */
bool fixture_ref_load(const char *model, const char *prompt, fixture_ref *out);

/* Statistics as the fixture computes them (float64; population std). */
fixture_stats fixture_stats_of(const float *x, size_t n);

#endif
