/* Chat templates: the messages as the template sees them (a list of {"role", "content"} dicts,
 * add_generation_prompt, tools and documents none, bos_token and eos_token), rendered by the
 * Jinja subset (jinja_parse.c, jinja_eval.c), and the ChatML template used when a model has
 * none.
 * Not for: tokenizing the result (ri_tokenize with RI_TOKENIZE_PARSE_SPECIAL). */
#include <stdlib.h>
#include <string.h>

#include "jinja.h"

/* Qwen2.5's template without the tools branches: a default system message unless the first
 * message is one, then each message as <|im_start|>role\ncontent<|im_end|>\n. */
static const char CHATML[] =
    "{%- if not messages or messages[0]['role'] != 'system' %}\n"
    "    {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
    "assistant.<|im_end|>\\n' }}\n"
    "{%- endif %}\n"
    "{%- for message in messages %}\n"
    "    {{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n"
    "    {{- '<|im_start|>assistant\\n' }}\n"
    "{%- endif %}\n";

const char *ri_chat_template_chatml(void) { return CHATML; }

static bool valid_utf8(const char *s, size_t len, size_t *bad_at)
{
    for (size_t i = 0; i < len;) {
        size_t bad;
        bool incomplete;
        size_t cl = tok_utf8_next((const uint8_t *)s + i, len - i, &bad, &incomplete);
        if (!cl) {
            *bad_at = i;
            return false;
        }
        i += cl;
    }
    return true;
}

static rf_status render(const char *tmpl, const ri_chat_message *messages, size_t n_messages,
                        bool add_generation_prompt, const char *bos, const char *eos, char **out,
                        size_t *out_len, rf_error *err)
{
    if (!tmpl || !out || (!messages && n_messages))
        return rf_error_set(err, RF_ERR_ARGUMENT, "ri_chat_apply: NULL argument");
    *out = NULL;
    if (out_len)
        *out_len = 0;
    size_t bad;
    if (!valid_utf8(tmpl, strlen(tmpl), &bad))
        return rf_error_set(err, RF_ERR_FORMAT, "chat template: not valid UTF-8 at offset %zu",
                            bad);
    for (size_t i = 0; i < n_messages; i++) {
        const char *fields[2] = {messages[i].role, messages[i].content};
        for (int k = 0; k < 2; k++) {
            if (!fields[k])
                return rf_error_set(err, RF_ERR_ARGUMENT, "ri_chat_apply: message %zu has no %s", i,
                                    k ? "content" : "role");
            if (!valid_utf8(fields[k], strlen(fields[k]), &bad))
                return rf_error_set(err, RF_ERR_ARGUMENT,
                                    "ri_chat_apply: message %zu: %s is not valid UTF-8 at byte "
                                    "%zu",
                                    i, k ? "content" : "role", bad);
        }
    }
    jinja_arena arena = {0};
    jinja_template t;
    tok_buf text = {0};
    rf_status st = jinja_parse(&arena, tmpl, strlen(tmpl), &t, err);
    if (st == RF_OK) {
        jinja_value list = jinja_new_list(&arena);
        jinja_value role_key = jinja_string(&arena, "role", 4);
        jinja_value content_key = jinja_string(&arena, "content", 7);
        bool ok =
            list.type == JV_LIST && role_key.type == JV_STRING && content_key.type == JV_STRING;
        for (size_t i = 0; ok && i < n_messages; i++) {
            jinja_value m = jinja_new_dict(&arena);
            jinja_value role = jinja_string(&arena, messages[i].role, strlen(messages[i].role));
            jinja_value content =
                jinja_string(&arena, messages[i].content, strlen(messages[i].content));
            ok = m.type == JV_DICT && role.type == JV_STRING && content.type == JV_STRING &&
                 jinja_dict_set(&arena, m.as.dict, role_key, role) &&
                 jinja_dict_set(&arena, m.as.dict, content_key, content) &&
                 jinja_list_push(&arena, list.as.list, m);
        }
        jinja_value bos_v = jinja_string(&arena, bos ? bos : "", bos ? strlen(bos) : 0);
        jinja_value eos_v = jinja_string(&arena, eos ? eos : "", eos ? strlen(eos) : 0);
        ok = ok && bos_v.type == JV_STRING && eos_v.type == JV_STRING;
        jinja_var vars[] = {
            {"messages", list},
            {"add_generation_prompt", {.type = JV_BOOL, .as.b = add_generation_prompt}},
            {"tools", {.type = JV_NONE}},
            {"documents", {.type = JV_NONE}},
            {"bos_token", bos_v},
            {"eos_token", eos_v},
        };
        st = ok ? jinja_render(&arena, &t, vars, sizeof vars / sizeof vars[0], &text, err)
                : rf_error_set(err, RF_ERR_NOMEM, "chat template: out of memory");
    }
    jinja_arena_free(&arena);
    if (st == RF_OK) {
        tok_buf_append(&text, "", 1);
        if (text.failed)
            st = rf_error_set(err, RF_ERR_NOMEM, "chat template: out of memory");
    }
    if (st != RF_OK) {
        tok_buf_free(&text);
        return st;
    }
    *out = text.data;
    if (out_len)
        *out_len = text.len - 1;
    return RF_OK;
}

rf_status ri_chat_apply(const char *tmpl, const ri_chat_message *messages, size_t n_messages,
                        bool add_generation_prompt, char **out, size_t *out_len, rf_error *err)
{
    return render(tmpl, messages, n_messages, add_generation_prompt, "", "", out, out_len, err);
}

rf_status ri_chat_apply_model(const ri_tokenizer *tok, const ri_chat_message *messages,
                              size_t n_messages, bool add_generation_prompt, char **out,
                              size_t *out_len, rf_error *err)
{
    if (!tok)
        return rf_error_set(err, RF_ERR_ARGUMENT, "ri_chat_apply_model: tokenizer is NULL");
    const char *tmpl = tok->chat_template ? tok->chat_template : CHATML;
    const char *bos = tok->bos >= 0 ? ri_token_text(tok, tok->bos) : "";
    const char *eos = tok->eos >= 0 ? ri_token_text(tok, tok->eos) : "";
    return render(tmpl, messages, n_messages, add_generation_prompt, bos, eos, out, out_len, err);
}
