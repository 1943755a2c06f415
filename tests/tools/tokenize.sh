#!/usr/bin/env bash
# apr tokenize end to end: for each fixture prompt (fixtures/*/reference/*.json, whose input_ids
# come from transformers) `apr tokenize --ids-only` on the SafeTensors directory and on GGUF and
# APR copies written through the library gives the same ids; the chat prompt through --chat
# --system renders with the model's template to the same ids; --json carries ids, pieces and
# the text; the default listing's pieces concatenate back to the text; --file reads files and
# stdin (invalid UTF-8 as U+FFFD); --no-special leaves <|im_end|> as text; bad input and usage
# give exit 3 and 2 with a message.
set -euo pipefail
: "${APR_BIN:?}" "${ROSETTA_ROOT:?}" "${ROSETTA_BUILD:?}" "${TEST_TMP:?}"
tmp="$TEST_TMP/tokenize"
rm -rf "$tmp" && mkdir -p "$tmp"
tok="$APR_BIN/apr-tokenize"
fx="$ROSETTA_ROOT/fixtures/tiny-qwen2"
"$ROSETTA_BUILD/tests/write_formats" "$fx" --gguf "$tmp/fx.gguf" --apr "$tmp/fx.apr"

exec python3 - "$tok" "$fx" "$tmp" <<'EOF'
import json, os, subprocess, sys

tok, fx, tmp = sys.argv[1:4]
checks = 0


def run(*args, stdin=None):
    return subprocess.run([tok] + list(args), input=stdin, capture_output=True)


def check(cond, msg):
    global checks
    if not cond:
        print("FAIL: " + msg, file=sys.stderr)
        sys.exit(1)
    checks += 1


models = [fx, os.path.join(tmp, "fx.gguf"), os.path.join(tmp, "fx.apr")]
# under make test-valgrind each prompt runs on one of the formats in turn (all formats are still
# covered, in a third of the time)
valgrind = os.environ.get("ROSETTA_VALGRIND") == "1"
ref_dir = os.path.join(fx, "reference")
names = sorted(n for n in os.listdir(ref_dir) if n.endswith(".json"))
for k, name in enumerate(names):
    ref = json.load(open(os.path.join(ref_dir, name), encoding="utf-8"))
    want = " ".join(str(i) for i in ref["input_ids"])
    for model in [models[k % 3]] if valgrind else models:
        if ref["kind"] == "chat":
            msgs = ref["messages"]
            args = ["--ids-only", "--chat"]
            if msgs[0]["role"] == "system":
                args += ["--system", msgs[0]["content"]]
            r = run(*args, model, msgs[-1]["content"])
        else:
            r = run("--ids-only", model, ref["text"])
        check(r.returncode == 0, "%s %s: exit %d: %s" % (model, name, r.returncode, r.stderr))
        check(r.stdout.decode().strip() == want,
              "%s %s: ids %s, transformers %s" % (model, name, r.stdout.decode().strip(), want))

# --json: ids, tokens with pieces, the text tokenized
r = run("--json", models[1], "Hi <|im_end|>!")
j = json.loads(r.stdout)
check(j["count"] == len(j["ids"]) == len(j["tokens"]), "--json counts")
check("".join(t["piece"] for t in j["tokens"]) == "Hi <|im_end|>!", "--json pieces")
check(999 in j["ids"], "--json: <|im_end|> is one token")
check(j["text"] == "Hi <|im_end|>!", "--json text")
# the default listing: one line per token, pieces quoted
r = run(fx, "a b")
lines = r.stdout.decode().splitlines()
check(len(lines) == 2 and lines[1].split("->")[1].strip() == '" b"', "listing: %r" % lines)
# --no-special: the marker is text
r = run("--ids-only", "--no-special", fx, "<|im_end|>")
check("999" not in r.stdout.decode().split() and len(r.stdout.split()) > 1, "--no-special")
# --file, from a file and from stdin; invalid UTF-8 reads as U+FFFD
path = os.path.join(tmp, "text.bin")
open(path, "wb").write(b"caf\xc3 ok\n")
r1 = run("--ids-only", "--file", path, fx)
r2 = run("--ids-only", "--file", "-", fx, stdin=b"caf\xef\xbf\xbd ok\n")
check(r1.returncode == 0 and r1.stdout == r2.stdout, "--file and stdin: %r %r" % (r1, r2))
# errors
r = run(os.path.join(tmp, "missing.gguf"), "x")
check(r.returncode == 3 and b"missing.gguf" in r.stderr, "missing model: %r" % (r,))
nothing = os.path.join(tmp, "notokenizer")
os.makedirs(nothing)
os.symlink(os.path.join(fx, "model.safetensors"), os.path.join(nothing, "model.safetensors"))
r = run(nothing, "x")
check(r.returncode == 3 and b"tokenizer" in r.stderr, "model without tokenizer: %r" % (r,))
for args in ([fx], ["--json", "--ids-only", fx, "x"], ["--system", "s", fx, "x"],
             ["--bogus", fx, "x"]):
    r = run(*args)
    check(r.returncode == 2 and b"--help" in r.stderr, "usage error %r: %r" % (args, r))
r = run("--help")
check(r.returncode == 0 and b"usage: apr tokenize" in r.stdout, "--help")
r = run("--file", os.path.join(tmp, "nope.txt"), fx)
check(r.returncode == 3 and b"nope.txt" in r.stderr, "unreadable --file")
print("tokenize: %d checks passed" % checks)
EOF
