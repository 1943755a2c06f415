/* chat_render: renders chat templates with ri_chat_apply for the interop test of the Jinja
 * subset (tests/interop/test_chat_template.py compares every rendering with Python jinja2).
 * Test helper, not a tool.
 *
 * usage: chat_render CASES.json
 *   CASES.json: [{"template": T, "messages": [{"role": R, "content": C}, ...],
 *                 "add_generation_prompt": bool}, ...]
 * Prints one JSON array: per case {"ok": true, "text": T} or {"ok": false, "status": S,
 * "error": E}. Exit status 0, or 2 on usage and input errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "rosetta/tokenizer.h"

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (size_t got; buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0;) {
        n += got;
        if (cap - n < 2) {
            char *p = realloc(buf, cap *= 2);
            if (!p) {
                free(buf);
                buf = NULL;
            } else
                buf = p;
        }
    }
    fclose(f);
    if (buf)
        buf[n] = '\0';
    return buf;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: chat_render CASES.json\n");
        return 2;
    }
    char *text = read_all(argv[1]);
    cJSON *cases = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!cJSON_IsArray(cases)) {
        fprintf(stderr, "chat_render: %s: not a JSON array\n", argv[1]);
        cJSON_Delete(cases);
        return 2;
    }
    cJSON *results = cJSON_CreateArray();
    const cJSON *c;
    cJSON_ArrayForEach(c, cases)
    {
        const cJSON *tmpl = cJSON_GetObjectItemCaseSensitive(c, "template");
        const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(c, "messages");
        bool gen = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "add_generation_prompt"));
        int n = cJSON_GetArraySize(msgs);
        ri_chat_message *m = calloc((size_t)n + 1, sizeof *m);
        int k = 0;
        const cJSON *msg;
        cJSON_ArrayForEach(msg, msgs)
        {
            m[k].role = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(msg, "role"));
            m[k].content = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(msg, "content"));
            k++;
        }
        char *out = NULL;
        size_t len = 0;
        rf_error err = {0};
        rf_status st =
            ri_chat_apply(cJSON_GetStringValue(tmpl), m, (size_t)n, gen, &out, &len, &err);
        cJSON *r = cJSON_CreateObject();
        cJSON_AddBoolToObject(r, "ok", st == RF_OK);
        if (st == RF_OK)
            cJSON_AddStringToObject(r, "text", out);
        else {
            cJSON_AddStringToObject(r, "status", rf_strerror(st));
            cJSON_AddStringToObject(r, "error", err.message);
        }
        cJSON_AddItemToArray(results, r);
        free(out);
        free(m);
    }
    char *printed = cJSON_PrintUnformatted(results);
    fputs(printed, stdout);
    putchar('\n');
    free(printed);
    cJSON_Delete(results);
    cJSON_Delete(cases);
    return 0;
}
