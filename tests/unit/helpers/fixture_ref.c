/* Reader of the fixtures' reference outputs (see fixture_ref.h). */
#include "helpers/fixture_ref.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#ifndef ROSETTA_ROOT
#define ROSETTA_ROOT "."
#endif

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "fixture_ref: cannot open %s\n", path);
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        *len = (size_t)n;
    }
    return buf;
}

static size_t int_array(const cJSON *a, int32_t *out, size_t cap)
{
    size_t n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a)
    {
        if (n < cap)
            out[n] = (int32_t)e->valuedouble;
        n++;
    }
    return n < cap ? n : cap;
}

static fixture_stats stats_of(const cJSON *o)
{
    fixture_stats s;
    s.mean = cJSON_GetObjectItem(o, "mean")->valuedouble;
    s.std = cJSON_GetObjectItem(o, "std")->valuedouble;
    s.min = cJSON_GetObjectItem(o, "min")->valuedouble;
    s.max = cJSON_GetObjectItem(o, "max")->valuedouble;
    s.l2 = cJSON_GetObjectItem(o, "l2")->valuedouble;
    return s;
}

bool fixture_ref_load(const char *model, const char *prompt, fixture_ref *out)
{
    memset(out, 0, sizeof *out);
    char path[1024];
    size_t len;
    snprintf(path, sizeof path, "%s/fixtures/%s/reference/%s.json", ROSETTA_ROOT, model, prompt);
    char *text = slurp(path, &len);
    if (!text)
        return false;
    cJSON *j = cJSON_ParseWithLength(text, len);
    free(text);
    if (!j) {
        fprintf(stderr, "fixture_ref: %s is not JSON\n", path);
        return false;
    }
    out->n_ids = int_array(cJSON_GetObjectItem(j, "input_ids"), out->ids, 512);
    int_array(cJSON_GetObjectItem(j, "argmax_per_position"), out->argmax, 512);
    size_t i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(j, "argmax_margin_per_position"))
    {
        if (i < 512)
            out->margin[i++] = e->valuedouble;
    }
    const cJSON *greedy = cJSON_GetObjectItem(j, "greedy");
    out->n_greedy = int_array(cJSON_GetObjectItem(greedy, "ids"), out->greedy, 64);
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(j, "hidden_states"))
    {
        if (out->n_stages == FIXTURE_MAX_STAGES)
            break;
        snprintf(out->stage_names[out->n_stages], sizeof out->stage_names[0], "%s",
                 cJSON_GetObjectItem(e, "name")->valuestring);
        out->stage_last[out->n_stages] = stats_of(cJSON_GetObjectItem(e, "last"));
        out->stage_all[out->n_stages] = stats_of(cJSON_GetObjectItem(e, "all"));
        out->n_stages++;
    }
    cJSON_Delete(j);

    snprintf(path, sizeof path, "%s/fixtures/%s/reference/%s.logits.bin", ROSETTA_ROOT, model,
             prompt);
    char *bin = slurp(path, &len);
    if (!bin)
        return false;
    out->n_logits = len / 4 < 1024 ? len / 4 : 1024;
    memcpy(out->logits, bin, out->n_logits * 4);
    free(bin);
    return out->n_ids > 0 && out->n_logits > 0 && out->n_greedy > 0;
}

fixture_stats fixture_stats_of(const float *x, size_t n)
{
    fixture_stats s = {0, 0, INFINITY, -INFINITY, 0};
    double sum = 0, ss = 0;
    for (size_t i = 0; i < n; i++) {
        sum += x[i];
        ss += (double)x[i] * x[i];
        if (x[i] < s.min)
            s.min = x[i];
        if (x[i] > s.max)
            s.max = x[i];
    }
    s.mean = sum / (double)n;
    double var = 0;
    for (size_t i = 0; i < n; i++)
        var += (x[i] - s.mean) * (x[i] - s.mean);
    s.std = sqrt(var / (double)n);
    s.l2 = sqrt(ss);
    return s;
}
