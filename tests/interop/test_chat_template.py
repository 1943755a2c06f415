#!/usr/bin/env python3
"""Chat templates rendered by Rosetta's Jinja subset (ri_chat_apply, through the helper
build/tests/chat_render) against Python jinja2 configured as Hugging Face transformers configures
it for apply_chat_template (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, the
loopcontrols extension, transformers' tojson = json.dumps(ensure_ascii=False), raise_exception;
tools and documents None, bos_token and eos_token ""). The output must be byte-identical, and
where jinja2 raises, Rosetta must fail too.

Templates: the fixtures' chat template, Rosetta's built-in ChatML template, a Qwen2.5-style
template written here with the tools / tool_calls / tool-role branches, and small templates for
each construct of the subset (whitespace control, trim/lstrip blocks, filters, tests, methods,
loop variables, namespace, break/continue, slices, arithmetic, literals). Each renders several
message lists (with and without a system message, multi-turn, tool turns, contents holding Jinja
syntax, non-ASCII, newlines) with add_generation_prompt true and false.
Constructs outside the subset must fail with "unsupported" and name the offset.

With --gguf MODEL.gguf the model's own template (tokenizer.chat_template, read with gguf-py) is
checked the same way (tests/real/tokenizer.sh does this for the real Qwen2.5-Coder model).
Exit 77 (skip) when jinja2 is missing or the helper is not built.
"""
import json
import os
import subprocess
import sys
import tempfile

try:
    from jinja2 import ext
    from jinja2.exceptions import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment
except ImportError as e:
    print("SKIP: test_chat_template needs jinja2: %s" % e, file=sys.stderr)
    sys.exit(77)

ROOT = os.environ.get("ROSETTA_ROOT",
                      os.path.join(os.path.dirname(os.path.abspath(__file__)), "../.."))
BUILD = os.environ.get("ROSETTA_BUILD", os.path.join(ROOT, "build"))
HELPER = os.path.join(BUILD, "tests", "chat_render")


class RaisedByTemplate(Exception):
    pass


def _raise(message):
    raise RaisedByTemplate(message)


def _tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)


ENV = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                    extensions=[ext.loopcontrols])
ENV.filters["tojson"] = _tojson
ENV.globals["raise_exception"] = _raise


_COMPILED = {}


def jinja_render(template, messages, gen):
    try:
        if template not in _COMPILED:
            _COMPILED[template] = ENV.from_string(template)
        t = _COMPILED[template]
        return True, t.render(messages=messages, add_generation_prompt=gen, tools=None,
                              documents=None, bos_token="", eos_token="")
    except (TemplateError, RaisedByTemplate, TypeError, ValueError, ZeroDivisionError) as e:
        return False, "%s: %s" % (type(e).__name__, e)


# A Qwen2.5-style template written for this test: the same constructs as the Qwen2.5 family's
# (tools branch, system default, tool_calls, tool-role grouping by loop.index0 neighbours).
QWEN_STYLE = """{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are a test assistant.' }}
    {%- endif %}
    {{- "\\n\\n# Tools\\n<tools>" }}
    {%- for tool in tools %}
        {{- "\\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\\n</tools><|im_end|>\\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}
    {%- else %}
        {{- '<|im_start|>system\\nYou are a test assistant.<|im_end|>\\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\\n<tool_call>\\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\\n<tool_response>\\n' }}
        {{- message.content }}
        {{- '\\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
"""

# The older Qwen2 style: default system message emitted inside the loop.
QWEN2_STYLE = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
               "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
               "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + "
               "'\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
               "{% endif %}")

# One construct each (rendered with every message list).
CONSTRUCTS = [
    "{{ messages|length }} {{ messages[0].role if messages else 'none' }}",
    "{% for m in messages %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/"
    "{{ loop.revindex0 }}/{{ loop.length }}/{{ loop.first }}/{{ loop.last }};{% endfor %}",
    "{% for m in messages %}{% if loop.previtem is defined %}{{ loop.previtem.role }}"
    "{% endif %}>{{ m.role }}{% else %}empty{% endfor %}",
    "{% for m in messages if m.role != 'system' %}{{ loop.index }}{{ m.role[0] }}{% endfor %}",
    "{% for m in messages %}{% if loop.index > 2 %}{% break %}{% endif %}{% if m.role == "
    "'system' %}{% continue %}{% endif %}[{{ m.content|trim }}]{% endfor %}",
    "{% set ns = namespace(n=0, s='') %}{% for m in messages %}{% set ns.n = ns.n + 1 %}"
    "{% set ns.s = ns.s ~ m.role[:1] %}{% endfor %}{{ ns.n }}:{{ ns.s }}",
    "{% set x = 1 %}{% for m in messages %}{{ x }}{% set x = x + 1 %}{{ x }}{% endfor %}{{ x }}",
    "{% if messages and messages[-1].role == 'user' %}last user{% elif messages %}last "
    "{{ messages[-1].role }}{% else %}nothing{% endif %}",
    "{{ 'a' ~ 1 ~ none ~ true }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 2 ** 10 }}"
    " {{ 7 / 2 }} {{ 1 + 2 * 3 - 4 }} {{ (1 + 2) * 3 }} {{ 0.1 + 0.2 }} {{ 1e20 }} {{ 1.5e-7 }}",
    "{{ [1, 'two', none, true, 2.5] }} {{ {'k': 'v', 'n': [1, (2, 3)]} }} {{ (1,) }} {{ () }}",
    "{{ 'it\\'s' }} {{ \"say \\\"hi\\\"\" }} {{ 'tab\\tnl\\nuni\\u00e9\\x41' }} {{ 'a' 'b' }}",
    "{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 'ab' in 'xaby' }} {{ 'q' not in 'abc' }} {{ 2 in [1, 2] }}"
    " {{ 'k' in {'k': 1} }} {{ none == none }} {{ 1 == 1.0 }} {{ 'a' != 'b' }} {{ [1] == [1] }}",
    "{{ x is defined }} {{ messages is defined }} {{ tools is none }} {{ 3 is odd }} "
    "{{ 4 is even }} {{ 9 is divisibleby 3 }} {{ 'a' is string }} {{ {} is mapping }} "
    "{{ 1 is number }} {{ x is not defined }} {{ [] is iterable }}",
    "{{ '  pad  '|trim }}|{{ 'abc'|upper }}|{{ 'ABC'|lower }}|{{ 'hello world'|capitalize }}|"
    "{{ [3, 4]|join(', ') }}|{{ [1, 2, 3]|first }}{{ [1, 2, 3]|last }}|{{ missing|default('d') }}|"
    "{{ ''|default('e', true) }}|{{ 'x'|string }}{{ 42|string }}|{{ '12'|int + 1 }}|"
    "{{ 'a-b-c'|replace('-', '+') }}|{{ {'a': 1}|items|list }}|{{ -3|abs }}|{{ 'abc'|list }}",
    "{{ {'s': 'é\"\\\\\\n\\t<>&', 'l': [1, 2.5, none, true, false], 'd': {}}|tojson }} "
    "{{ [1, [2]]|tojson(indent=2) }} {{ 'x'|tojson }}",
    "{{ '  a b  '.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ '  a'.lstrip() }}|{{ 'a  '.rstrip() }}|"
    "{{ 'a,b,,c'.split(',') }}|{{ ' a  b '.split() }}|{{ 'a b c'.split(' ', 1) }}|"
    "{{ 'abc'.startswith('ab') }}{{ 'abc'.endswith(('x', 'c')) }}|{{ 'Hi'.upper() }}"
    "{{ 'Hi'.lower() }}|{{ 'aXbX'.replace('X', '-') }}|{{ 'hello'.find('l') }}|"
    "{{ '-'.join(['a', 'b']) }}|{{ {'a': 1}.get('a') }}{{ {'a': 1}.get('b', 9) }}|"
    "{{ {'a': 1, 'b': 2}.keys()|list }}{{ {'a': 1}.values()|list }}",
    "{{ 'héllo wörld'[1] }} {{ 'héllo'[1:3] }} {{ 'abcdef'[::2] }} {{ 'abc'[::-1] }} "
    "{{ [1, 2, 3, 4][1:-1] }} {{ [1, 2, 3][5] }}|{{ 'abc'[-1] }} {{ range(3)|list }} "
    "{{ range(1, 10, 3)|list }}",
    "{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}"
    "{% for c in 'xy' %}{{ c }}{% endfor %}{% for i in range(2) %}{{ i }}{% endfor %}",
    "{{ 'yes' if messages else 'no' }} {{ 'a' if false }}| {{ not messages }} "
    "{{ messages and messages[0].role }} {{ none or 'fallback' }} {{ 0 or '' or 'last' }}",
    # whitespace control and the trim_blocks / lstrip_blocks rules
    "line1\n  {% if true %}\n    kept\n  {% endif %}\nline2\n",
    "a  {%- if true -%}  b  {%- endif -%}  c\n{{- ' d ' -}}\n  e",
    "x\n    {%+ if true %}plus{% endif +%}\ny\n{# comment #}\nz {#- tight -#} w\n",
    "{% for m in messages %}\n  - {{ m.role }}\n{% endfor %}\n\ndone\n\n",
    "crlf\r\n{% if true %}\r\nyes\r\n{% endif %}\r\nend\r\n",
    "{%- set greeting = 'hi' -%}\n{{ greeting }}\n   {{ greeting }}  \n\t{% if true %}tab{% endif %}\n",
    "{{ '{{ not a tag }}' }} {{ '{% raw %}' }}",
    "{% if messages[0].content is defined %}{{ messages[0].content }}{% endif %}",
    "{{ messages[0]['content'] + '!' }}",
    "{{ raise_exception('Only user and assistant roles are supported') if messages|length > 4 "
    "else 'ok' }}",
    "{{ messages[0].nosuch.deeper }}",
    "{{ 'a' + 1 }}",
    "{% for x in none %}{% endfor %}",
    "{{ 1 / 0 }}",
    "{{ messages[10].role }}",
    "{{ dict(a=1, b='x') }} {{ dict(a=1)|tojson }}",
]

# Constructs outside the subset: Rosetta must say "unsupported" and where.
UNSUPPORTED = [
    "{% macro m() %}x{% endmacro %}{{ m() }}",
    "{{ messages|selectattr('role', 'equalto', 'user')|list }}",
    "{% filter upper %}x{% endfilter %}",
    "{% raw %}{{ x }}{% endraw %}",
    "{% set x %}block{% endset %}{{ x }}",
    "{% include 'other.j2' %}",
    "{{ messages|map(attribute='role')|join(',') }}",
    "{{ strftime_now('%Y') }}",
    "{% for m in messages recursive %}{% endfor %}",
    "{{ 'x'.format(1) }}",
    "{{ dict(1) }}",
    "{% set l = [] %}{{ l.append(1) }}",
]

MESSAGE_LISTS = [
    [{"role": "user", "content": "What is 2+2?"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}],
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"},
     {"role": "user", "content": "Write a poem."}],
    [{"role": "system", "content": "S"}, {"role": "user", "content": "u1"},
     {"role": "assistant", "content": "a1"}, {"role": "user", "content": "u2"},
     {"role": "assistant", "content": "a2"}],
    [{"role": "user", "content": "Weather?"}, {"role": "assistant", "content": ""},
     {"role": "tool", "content": "{\"temp\": 21}"}, {"role": "tool", "content": "sunny"},
     {"role": "user", "content": "Thanks"}],
    [{"role": "user", "content": "  {{ not a tag }} {% if %} {# no #}  "},
     {"role": "assistant", "content": "é 中文 😀 \\ \" ' \t tabs\nnew\r\nlines\n\n"}],
    [{"role": "user", "content": ""}],
    [],
]


def run_helper(cases):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as f:
        json.dump(cases, f, ensure_ascii=False)
        path = f.name
    try:
        out = subprocess.run([HELPER, path], capture_output=True)
    finally:
        os.unlink(path)
    if out.returncode != 0:
        print("FAIL: %s exited %d:\n%s" % (HELPER, out.returncode,
                                           out.stderr.decode(errors="replace")[-3000:]))
        sys.exit(1)
    return json.loads(out.stdout.decode("utf-8"))


def fixture_templates():
    out = []
    fx = os.path.join(ROOT, "fixtures")
    for name in sorted(os.listdir(fx)):
        path = os.path.join(fx, name, "tokenizer_config.json")
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                tmpl = json.load(f).get("chat_template")
            if isinstance(tmpl, str):
                out.append(("fixture " + name, tmpl))
    return out


def builtin_chatml():
    """The ChatML template compiled into libinfer (chat.c), read from the source."""
    src = open(os.path.join(ROOT, "libinfer", "src", "chat.c"), encoding="utf-8").read()
    start = src.index("static const char CHATML[] =") + len("static const char CHATML[] =")
    body = src[start:src.index(";", start)]
    parts = []
    i = 0
    while True:
        i = body.find('"', i)
        if i < 0:
            break
        j = i + 1
        while body[j] != '"':
            j += 2 if body[j] == "\\" else 1
        parts.append(body[i + 1:j])
        i = j + 1
    return "".join(parts).encode("utf-8").decode("unicode_escape")


def gguf_template(path):
    import gguf  # noqa: F401 (gguf-py)
    reader = gguf.GGUFReader(path)
    field = reader.fields["tokenizer.chat_template"]
    return bytes(field.parts[field.data[0]]).decode("utf-8")


def main():
    if not os.path.exists(HELPER):
        print("SKIP: %s is not built" % HELPER, file=sys.stderr)
        sys.exit(77)
    templates = []
    if len(sys.argv) == 3 and sys.argv[1] == "--gguf":
        templates.append(("model " + os.path.basename(sys.argv[2]), gguf_template(sys.argv[2])))
    else:
        templates += fixture_templates()
        templates.append(("built-in ChatML", builtin_chatml()))
        templates.append(("Qwen2.5-style", QWEN_STYLE))
        templates.append(("Qwen2-style", QWEN2_STYLE))
        templates += [("construct %d" % i, t) for i, t in enumerate(CONSTRUCTS)]
    cases, expected = [], []
    for name, tmpl in templates:
        for mi, msgs in enumerate(MESSAGE_LISTS):
            for gen in (False, True):
                cases.append({"template": tmpl, "messages": msgs, "add_generation_prompt": gen})
                expected.append((name, mi, gen) + jinja_render(tmpl, msgs, gen))
    got = run_helper(cases)
    failures = 0
    renders = errors = 0
    for (name, mi, gen, ok, text), r in zip(expected, got):
        label = "%s, messages %d, add_generation_prompt=%s" % (name, mi, gen)
        if ok and not r["ok"]:
            failures += 1
            print("FAIL %s: jinja2 renders, Rosetta fails: %s" % (label, r["error"]))
        elif not ok and r["ok"]:
            failures += 1
            print("FAIL %s: jinja2 fails (%s), Rosetta renders %r" % (label, text, r["text"]))
        elif ok and r["text"] != text:
            failures += 1
            print("FAIL %s:\n  jinja2:  %r\n  Rosetta: %r" % (label, text, r["text"]))
        elif not ok and "at line" not in r["error"] and "template" not in r["error"]:
            failures += 1
            print("FAIL %s: Rosetta's error does not say where: %s" % (label, r["error"]))
        if ok:
            renders += 1
        else:
            errors += 1
    if len(templates) > 1:
        # the built-in ChatML equals the Qwen2.5-style template without tools (and so Qwen2.5's)
        chatml = builtin_chatml()
        for mi, msgs in enumerate(MESSAGE_LISTS[:-1]):
            a = jinja_render(chatml, msgs, True)[1]
            b = jinja_render(QWEN_STYLE.replace("You are a test assistant.",
                                                "You are Qwen, created by Alibaba Cloud. You are "
                                                "a helpful assistant."), msgs, True)[1]
            if a != b and all(m["role"] != "tool" for m in msgs):
                failures += 1
                print("FAIL built-in ChatML differs from the Qwen2.5 rendering for messages %d"
                      % mi)
        unsupported = run_helper([{"template": t, "messages": MESSAGE_LISTS[0],
                                   "add_generation_prompt": True} for t in UNSUPPORTED])
        for t, r in zip(UNSUPPORTED, unsupported):
            if r["ok"] or "unsupported" not in r["status"] or "offset" not in r["error"]:
                failures += 1
                print("FAIL unsupported construct %r: %s" % (t, r))
    print("test_chat_template: %d templates x %d message lists x 2: %d renderings identical to "
          "jinja2, %d errors where jinja2 errs; %d failures"
          % (len(templates), len(MESSAGE_LISTS), renders, errors, failures))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
