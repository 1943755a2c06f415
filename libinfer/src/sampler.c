/* Sampling (docs/engine.md, "Sampling"): penalties over the recent tokens, then greedy argmax,
 * or top-k, top-p and min-p filtering (on the probabilities at temperature 1), temperature, and
 * a draw from a seeded xoshiro256** generator. The same seed and the same logits give the same
 * token on every machine and thread count.
 * Not for: logits computation (ri_forward) or stop conditions (generate.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct candidate {
    int32_t id;
    float logit;
    float p;
} candidate;

struct ri_sampler {
    ri_sampler_params params;
    uint64_t rng[4];
    int32_t *history; /* accepted tokens, oldest first */
    size_t n_history, cap_history;
    float *work; /* penalized logits, n_valid */
    candidate *cand;
    uint32_t *counts; /* per id, zero between calls */
    size_t cap;       /* entries of work / cand / counts */
};

ri_sampler_params ri_sampler_params_default(void)
{
    return (ri_sampler_params){.temperature = 0.0f,
                               .top_k = 0,
                               .top_p = 1.0f,
                               .min_p = 0.0f,
                               .repeat_penalty = 1.0f,
                               .frequency_penalty = 0.0f,
                               .presence_penalty = 0.0f,
                               .penalty_last_n = 64,
                               .seed = 0};
}

/* splitmix64, to spread the seed over the xoshiro state */
static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* xoshiro256** (Blackman and Vigna) */
static uint64_t rng_next(uint64_t s[4])
{
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Uniform in [0, 1) with 53 random bits. */
static double rng_uniform(uint64_t s[4]) { return (double)(rng_next(s) >> 11) * 0x1.0p-53; }

void ri_sampler_reset(ri_sampler *s)
{
    uint64_t x = s->params.seed;
    for (int i = 0; i < 4; i++)
        s->rng[i] = splitmix64(&x);
    s->n_history = 0;
}

ri_sampler *ri_sampler_new(const ri_sampler_params *params, rf_error *err)
{
    ri_sampler_params p = params ? *params : ri_sampler_params_default();
    const char *bad = NULL;
    if (!isfinite(p.temperature))
        bad = "temperature";
    else if (p.top_k < 0)
        bad = "top_k";
    else if (!(p.top_p > 0.0f && p.top_p <= 1.0f))
        bad = "top_p";
    else if (!(p.min_p >= 0.0f && p.min_p <= 1.0f))
        bad = "min_p";
    else if (!(p.repeat_penalty > 0.0f) || !isfinite(p.repeat_penalty))
        bad = "repeat_penalty";
    else if (!isfinite(p.frequency_penalty))
        bad = "frequency_penalty";
    else if (!isfinite(p.presence_penalty))
        bad = "presence_penalty";
    else if (p.penalty_last_n < -1)
        bad = "penalty_last_n";
    if (bad) {
        rf_error_set(err, RF_ERR_ARGUMENT, "sampler: %s out of range", bad);
        return NULL;
    }
    ri_sampler *s = calloc(1, sizeof *s);
    if (!s) {
        rf_error_set(err, RF_ERR_NOMEM, "out of memory");
        return NULL;
    }
    s->params = p;
    ri_sampler_reset(s);
    return s;
}

void ri_sampler_free(ri_sampler *s)
{
    if (!s)
        return;
    free(s->history);
    free(s->work);
    free(s->cand);
    free(s->counts);
    free(s);
}

void ri_sampler_accept(ri_sampler *s, int32_t token)
{
    if (s->n_history == s->cap_history) {
        size_t cap = s->cap_history ? s->cap_history * 2 : 256;
        int32_t *h = realloc(s->history, cap * sizeof *h);
        if (!h) { /* keep the newest half: the penalties only look back so far */
            size_t keep = s->n_history / 2;
            memmove(s->history, s->history + s->n_history - keep, keep * sizeof *h);
            s->n_history = keep;
        } else {
            s->history = h;
            s->cap_history = cap;
        }
    }
    if (s->n_history < s->cap_history)
        s->history[s->n_history++] = token;
}

static bool reserve(ri_sampler *s, size_t n)
{
    if (n <= s->cap)
        return true;
    float *w = realloc(s->work, n * sizeof *w);
    if (w)
        s->work = w;
    candidate *c = realloc(s->cand, n * sizeof *c);
    if (c)
        s->cand = c;
    uint32_t *k = realloc(s->counts, n * sizeof *k);
    if (k) {
        memset(k + s->cap, 0, (n - s->cap) * sizeof *k);
        s->counts = k;
    }
    if (!w || !c || !k)
        return false;
    s->cap = n;
    return true;
}

/* Descending logit, then ascending id: a total order, so the result never depends on qsort. */
static int by_logit(const void *a, const void *b)
{
    const candidate *x = a, *y = b;
    if (x->logit != y->logit)
        return x->logit > y->logit ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

static void apply_penalties(ri_sampler *s, float *logits, size_t n)
{
    const ri_sampler_params *p = &s->params;
    if (p->repeat_penalty == 1.0f && p->frequency_penalty == 0.0f && p->presence_penalty == 0.0f)
        return;
    size_t window = p->penalty_last_n < 0 ? s->n_history : (size_t)p->penalty_last_n;
    if (window > s->n_history)
        window = s->n_history;
    const int32_t *recent = s->history + s->n_history - window;
    for (size_t i = 0; i < window; i++)
        if (recent[i] >= 0 && (size_t)recent[i] < n)
            s->counts[recent[i]]++;
    for (size_t i = 0; i < window; i++) {
        int32_t id = recent[i];
        if (id < 0 || (size_t)id >= n || s->counts[id] == 0)
            continue;
        float l = logits[id];
        l = l > 0 ? l / p->repeat_penalty : l * p->repeat_penalty;
        l -= (float)s->counts[id] * p->frequency_penalty + p->presence_penalty;
        logits[id] = l;
        s->counts[id] = 0; /* once per distinct token; also resets the counter */
    }
}

int32_t ri_sampler_sample(ri_sampler *s, const float *logits, size_t n_vocab, size_t n_valid)
{
    const ri_sampler_params *p = &s->params;
    size_t n = n_valid == 0 || n_valid > n_vocab ? n_vocab : n_valid;
    if (n == 0 || !reserve(s, n))
        return -1;
    float *w = s->work;
    memcpy(w, logits, n * sizeof *w);
    apply_penalties(s, w, n);

    if (p->temperature <= 0.0f) { /* greedy: argmax, lowest id on ties */
        int32_t best = -1;
        for (size_t i = 0; i < n; i++)
            if (isfinite(w[i]) && (best < 0 || w[i] > w[best]))
                best = (int32_t)i;
        return best;
    }

    /* candidates: finite logits, sorted when a filter needs the order */
    size_t m = 0;
    float max = -INFINITY;
    for (size_t i = 0; i < n; i++)
        if (isfinite(w[i])) {
            s->cand[m++] = (candidate){(int32_t)i, w[i], 0.0f};
            if (w[i] > max)
                max = w[i];
        }
    if (m == 0)
        return -1;
    candidate *c = s->cand;
    qsort(c, m, sizeof *c, by_logit);
    if (p->top_k > 0 && (size_t)p->top_k < m)
        m = (size_t)p->top_k;

    /* probabilities at temperature 1 for top-p and min-p */
    double sum = 0.0;
    for (size_t i = 0; i < m; i++)
        sum += exp((double)c[i].logit - (double)max);
    if (p->top_p < 1.0f) {
        double cum = 0.0;
        for (size_t i = 0; i < m; i++) {
            cum += exp((double)c[i].logit - (double)max) / sum;
            if (cum >= p->top_p) {
                m = i + 1;
                break;
            }
        }
    }
    if (p->min_p > 0.0f) {
        /* c[0] is the most likely; keep tokens with p >= min_p * p_max */
        double floor_logit = (double)c[0].logit + log((double)p->min_p);
        size_t keep = 1;
        while (keep < m && (double)c[keep].logit >= floor_logit)
            keep++;
        m = keep;
    }

    /* temperature, softmax, draw */
    double total = 0.0;
    for (size_t i = 0; i < m; i++) {
        double e = exp(((double)c[i].logit - (double)c[0].logit) / (double)p->temperature);
        c[i].p = (float)e;
        total += e;
    }
    double r = rng_uniform(s->rng) * total, acc = 0.0;
    for (size_t i = 0; i < m; i++) {
        acc += (double)c[i].p;
        if (r < acc)
            return c[i].id;
    }
    return c[m - 1].id;
}
