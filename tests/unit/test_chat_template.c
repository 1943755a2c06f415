/* The Jinja subset of chat templates: ChatML renderings written out by hand, the model's template
 * through ri_chat_apply_model, whitespace control, and the errors: unsupported constructs and
 * syntax errors name the construct and its offset, rendering errors name the undefined value,
 * hostile templates hit limits instead of exhausting the machine. (Byte-for-byte agreement with
 * Python jinja2 is tests/interop/test_chat_template.py.) */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rosetta/model.h"
#include "rosetta/tokenizer.h"

#ifndef ROSETTA_ROOT
#define ROSETTA_ROOT "."
#endif

static const ri_chat_message USER[] = {{"user", "What is 2+2?"}};
static const ri_chat_message SYSTEM_USER[] = {{"system", "Be brief."}, {"user", "Hi"}};

static char *render(const char *tmpl, const ri_chat_message *m, size_t n, bool gen)
{
    char *out = NULL;
    size_t len = 0;
    rf_error err = {0};
    cr_assert_eq(ri_chat_apply(tmpl, m, n, gen, &out, &len, &err), RF_OK, "%s", err.message);
    cr_assert_eq(strlen(out), len);
    return out;
}

/* The error of rendering tmpl with USER. */
static rf_error fail_with(const char *tmpl)
{
    char *out = (char *)"unchanged";
    rf_error err = {0};
    rf_status st = ri_chat_apply(tmpl, USER, 1, true, &out, NULL, &err);
    cr_assert_neq(st, RF_OK, "rendered: %s", out);
    cr_assert_null(out);
    cr_assert_eq(err.status, st);
    return err;
}

Test(chatml, default_system_and_generation_prompt)
{
    char *out = render(ri_chat_template_chatml(), USER, 1, true);
    cr_assert_str_eq(out, "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a "
                          "helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is 2+2?"
                          "<|im_end|>\n<|im_start|>assistant\n");
    free(out);
    out = render(ri_chat_template_chatml(), SYSTEM_USER, 2, false);
    cr_assert_str_eq(out, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi"
                          "<|im_end|>\n");
    free(out);
}

Test(chatml, the_fixture_template_through_the_model)
{
    rf_error err = {0};
    rf_model *m = rf_model_open(ROSETTA_ROOT "/fixtures/tiny-qwen2", NULL, &err);
    cr_assert_not_null(m, "%s", err.message);
    ri_tokenizer *tok = ri_tokenizer_from_model(m, &err);
    rf_model_free(m);
    cr_assert_not_null(tok, "%s", err.message);
    cr_assert_not_null(ri_tokenizer_chat_template(tok));
    char *out;
    size_t len;
    cr_assert_eq(ri_chat_apply_model(tok, SYSTEM_USER, 2, true, &out, &len, &err), RF_OK, "%s",
                 err.message);
    cr_assert_str_eq(out, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi"
                          "<|im_end|>\n<|im_start|>assistant\n");
    /* the rendering tokenizes with the markers as single tokens */
    int32_t *ids;
    size_t n;
    cr_assert_eq(ri_tokenize_alloc(tok, out, len, RI_TOKENIZE_PARSE_SPECIAL, &ids, &n, &err),
                 RF_OK);
    cr_assert_eq(ids[0], ri_token_id(tok, "<|im_start|>"));
    cr_assert_eq(ids[n - 3], ri_token_id(tok, "<|im_start|>"));
    free(ids);
    free(out);
    ri_tokenizer_free(tok);
}

Test(syntax, whitespace_control_and_blocks)
{
    char *out = render("a  {%- if true -%}  b  {%- endif -%}  c", NULL, 0, false);
    cr_assert_str_eq(out, "abc");
    free(out);
    /* trim_blocks drops the newline after a block tag, lstrip_blocks the indentation before */
    out = render("x\n  {% if true %}\n  y\n  {% endif %}\nz\n", NULL, 0, false);
    cr_assert_str_eq(out, "x\n  y\nz");
    free(out);
    out = render("{{ 'a' }}\n{# gone #}\n{{ 'b' }}", NULL, 0, false);
    cr_assert_str_eq(out, "a\nb");
    free(out);
    out = render("{% for m in messages %}{{ loop.index }}:{{ m.role }}{% if not loop.last %},"
                 "{% endif %}{% endfor %}",
                 SYSTEM_USER, 2, false);
    cr_assert_str_eq(out, "1:system,2:user");
    free(out);
    out = render("{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + "
                 "m.content|length %}{% endfor %}{{ ns.n }} {{ messages[-1]['content']|upper }} "
                 "{{ {'k': [1, 'é']}|tojson }}",
                 SYSTEM_USER, 2, false);
    cr_assert_str_eq(out, "11 HI {\"k\": [1, \"é\"]}");
    free(out);
    out = render("{{ tools is none }} {{ bos_token == '' }} {{ x is defined }}", NULL, 0, false);
    cr_assert_str_eq(out, "True True False");
    free(out);
}

Test(errors, unsupported_constructs_name_the_construct_and_offset)
{
    rf_error err = fail_with("abc{% macro m() %}x{% endmacro %}");
    cr_assert_eq(err.status, RF_ERR_UNSUPPORTED);
    cr_assert(strstr(err.message, "{% macro %}"), "%s", err.message);
    cr_assert(strstr(err.message, "offset 6"), "%s", err.message);
    err = fail_with("{{ messages|selectattr('role') }}");
    cr_assert_eq(err.status, RF_ERR_UNSUPPORTED);
    cr_assert(strstr(err.message, "filter 'selectattr'"), "%s", err.message);
    cr_assert(strstr(err.message, "offset 11"), "%s", err.message);
    err = fail_with("line1\n{{ 'x'.title() }}");
    cr_assert_eq(err.status, RF_ERR_UNSUPPORTED);
    cr_assert(strstr(err.message, "str.title()"), "%s", err.message);
    cr_assert(strstr(err.message, "line 2"), "%s", err.message);
    err = fail_with("{% raw %}x{% endraw %}");
    cr_assert_eq(err.status, RF_ERR_UNSUPPORTED);
    err = fail_with("{{ strftime_now('%Y') }}");
    cr_assert_eq(err.status, RF_ERR_UNSUPPORTED);
    cr_assert(strstr(err.message, "strftime_now"), "%s", err.message);
}

Test(errors, syntax_errors)
{
    rf_error err = fail_with("{{ 1 + }}");
    cr_assert_eq(err.status, RF_ERR_FORMAT);
    cr_assert(strstr(err.message, "expected an expression"), "%s", err.message);
    cr_assert(strstr(err.message, "offset 7"), "%s", err.message);
    err = fail_with("{% if true %}never closed");
    cr_assert(strstr(err.message, "{% endif %}"), "%s", err.message);
    err = fail_with("{% for x in y %}");
    cr_assert(strstr(err.message, "{% endfor %}"), "%s", err.message);
    err = fail_with("{{ 'unterminated }}");
    cr_assert(strstr(err.message, "unterminated string"), "%s", err.message);
    err = fail_with("{% endif %}");
    cr_assert(strstr(err.message, "endif"), "%s", err.message);
    err = fail_with("{% break %}");
    cr_assert(strstr(err.message, "outside a for loop"), "%s", err.message);
    err = fail_with("{# no end");
    cr_assert(strstr(err.message, "comment"), "%s", err.message);
    err = fail_with("{{ x $ y }}");
    cr_assert(strstr(err.message, "unexpected character '$'"), "%s", err.message);
}

Test(errors, rendering_errors)
{
    rf_error err = fail_with("{{ messages[0].nosuch.deeper }}");
    cr_assert_eq(err.status, RF_ERR_FORMAT);
    cr_assert(strstr(err.message, "'nosuch'"), "%s", err.message);
    err = fail_with("{{ undefined_name + 'x' }}");
    cr_assert(strstr(err.message, "'undefined_name' is undefined"), "%s", err.message);
    err = fail_with("{{ raise_exception('roles must alternate') }}");
    cr_assert(strstr(err.message, "roles must alternate"), "%s", err.message);
    err = fail_with("{{ 'a' + 1 }}");
    cr_assert(strstr(err.message, "str and int"), "%s", err.message);
    err = fail_with("{{ 1 // 0 }}");
    cr_assert(strstr(err.message, "division by zero"), "%s", err.message);
}

Test(errors, arguments)
{
    char *out = NULL;
    rf_error err = {0};
    ri_chat_message bad_role[] = {{NULL, "x"}};
    cr_assert_eq(ri_chat_apply("x", bad_role, 1, false, &out, NULL, &err), RF_ERR_ARGUMENT);
    ri_chat_message bad_utf8[] = {{"user", "caf\xc3"}};
    cr_assert_eq(ri_chat_apply("x", bad_utf8, 1, false, &out, NULL, &err), RF_ERR_ARGUMENT);
    cr_assert(strstr(err.message, "UTF-8"), "%s", err.message);
    cr_assert_eq(ri_chat_apply("\xff", USER, 1, false, &out, NULL, &err), RF_ERR_FORMAT);
    cr_assert_eq(ri_chat_apply(NULL, USER, 1, false, &out, NULL, &err), RF_ERR_ARGUMENT);
    cr_assert_null(out);
}

Test(limits, hostile_templates_stop)
{
    rf_error err = fail_with("{% for i in range(100000000) %}{% endfor %}");
    cr_assert_eq(err.status, RF_ERR_LIMIT);
    err = fail_with("{% for i in range(1000000) %}{% for j in range(1000000) %}{% endfor %}"
                    "{% endfor %}");
    cr_assert_eq(err.status, RF_ERR_LIMIT);
    err = fail_with("{{ 'x' * 1000000000 }}");
    cr_assert_eq(err.status, RF_ERR_LIMIT);
    /* deep nesting: an error, not a stack overflow */
    size_t depth = 5000;
    char *deep = malloc(2 * depth + 16);
    strcpy(deep, "{{ ");
    size_t o = 3;
    for (size_t i = 0; i < depth; i++)
        deep[o++] = '(';
    deep[o++] = '1';
    for (size_t i = 0; i < depth; i++)
        deep[o++] = ')';
    strcpy(deep + o, " }}");
    err = fail_with(deep);
    cr_assert_eq(err.status, RF_ERR_LIMIT);
    free(deep);
    char *blocks = malloc(depth * 9 + 1);
    o = 0;
    for (size_t i = 0; i < depth; i++)
        o += (size_t)sprintf(blocks + o, "{%%if 1%%}");
    err = fail_with(blocks);
    cr_assert_eq(err.status, RF_ERR_LIMIT);
    free(blocks);
}
