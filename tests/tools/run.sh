#!/usr/bin/env bash
# apr run on the fixtures: greedy output equals the fixture's transformers greedy ids (the
# prompt given as text, tokenized by Rosetta) and is the same from the SafeTensors, GGUF and APR
# forms; --json carries prompt_tokens, tokens, text, stop and timings; seeded sampling repeats;
# --chat applies the template; bad input ends with a clear message and exit 3 (5 for a
# contract violation), never a crash: missing tensor, wrong shape, unknown architecture, no or
# empty vocabulary, prompt longer than the context, unreadable file; bad flags exit 2.
set -euo pipefail
: "${APR_BIN:?}" "${ROSETTA_ROOT:?}" "${TEST_TMP:?}"
tmp="$TEST_TMP/run"
rm -rf "$tmp" && mkdir -p "$tmp"

exec python3 - "$APR_BIN" "$ROSETTA_ROOT" "$tmp" <<'EOF'
import json, os, shutil, struct, subprocess, sys

apr_bin, root, tmp = sys.argv[1:4]
run = os.path.join(apr_bin, "apr-run")
checks = 0


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    global checks
    if not cond:
        fail(msg)
    checks += 1


def apr(args, code=0, stdin=None):
    r = subprocess.run([run] + args, capture_output=True, input=stdin)
    if r.returncode != code:
        fail(f"apr run {' '.join(args)}: exit {r.returncode}, expected {code}\n"
             f"stdout: {r.stdout[-2000:]!r}\nstderr: {r.stderr[-2000:]!r}")
    return r


fx = os.path.join(root, "fixtures", "tiny-qwen2")
ref = json.load(open(os.path.join(fx, "reference", "code.json")))

# 1. greedy from text: the fixture's ids, as transformers computed them
out = json.loads(apr([fx, "-p", ref["text"], "-n", "16", "--ignore-eos", "--json",
                      "-t", "1"]).stdout)
check(out["prompt_tokens"] == ref["input_ids"], f"prompt_tokens {out['prompt_tokens']}")
check(out["tokens"] == ref["greedy"]["ids"],
      f"greedy {out['tokens']}, transformers {ref['greedy']['ids']}")
for key in ("text", "stop", "timings", "path"):
    check(key in out, f"--json lacks {key}")
check(out["stop"] == "length", f"stop {out['stop']}")
check(all(k in out["timings"] for k in ("load_s", "prefill_s", "decode_s", "prefill_tok_s",
                                         "decode_tok_s")), f"timings {out['timings']}")

# the streamed text is the JSON text plus a newline; two threads give the same text
text = apr([fx, "-p", ref["text"], "-n", "16", "--ignore-eos", "-t", "2"]).stdout
check(text == out["text"].encode() + b"\n", f"streamed {text!r} vs json {out['text']!r}")

# 2. the same ids from GGUF and APR copies (F32: the BF16 values exactly)
quant = os.path.join(apr_bin, "apr-quantize")
for ext in ("gguf", "apr"):
    path = os.path.join(tmp, f"tiny.{ext}")
    subprocess.run([quant, "-q", fx, path, "f32"], check=True, capture_output=True)
    o = json.loads(apr([path, "-p", ref["text"], "-n", "16", "--ignore-eos", "--json"]).stdout)
    check(o["tokens"] == ref["greedy"]["ids"], f"{ext}: greedy {o['tokens']}")

# 3. sampling: the same seed repeats, temperature 0 is greedy
a = apr([fx, "-p", "Hello", "-n", "12", "--temperature", "0.9", "--seed", "7", "--json"]).stdout
b = apr([fx, "-p", "Hello", "-n", "12", "--temperature", "0.9", "--seed", "7", "--json"]).stdout
check(json.loads(a)["tokens"] == json.loads(b)["tokens"], "seeded sampling did not repeat")
apr([fx, "-p", "Hello", "-n", "4", "--temperature", "1", "--top-k", "5", "--top-p", "0.9",
     "--min-p", "0.01", "--repeat-penalty", "1.1", "--frequency-penalty", "0.2",
     "--presence-penalty", "0.1", "--kv", "f16"])

# 4. --chat renders the template: the fixture's chat prompt ids
chat = json.load(open(os.path.join(fx, "reference", "chat.json")))
user = [m["content"] for m in chat["messages"] if m["role"] == "user"][0]
system = [m["content"] for m in chat["messages"] if m["role"] == "system"]
args = [fx, "--chat", "-p", user, "-n", "4", "--json"] + (["--system", system[0]] if system else [])
check(json.loads(apr(args).stdout)["prompt_tokens"] == chat["input_ids"], "--chat prompt ids")

# 5. bad input
def bad(args, code, needle):
    r = apr(args, code)
    check(needle in r.stderr.decode(), f"{args}: stderr lacks {needle!r}: {r.stderr!r}")


def copy_fixture(name):
    d = os.path.join(tmp, name)
    shutil.copytree(fx, d)
    return d


def edit_header(d, fn):
    """Rewrites model.safetensors with fn applied to its JSON header (data unchanged)."""
    p = os.path.join(d, "model.safetensors")
    blob = open(p, "rb").read()
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    fn(header)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    open(p, "wb").write(struct.pack("<Q", len(h)) + h + blob[8 + n:])


k1 = "model.layers.1.self_attn.k_proj.weight"
d = copy_fixture("missing")
edit_header(d, lambda h: h.__setitem__(k1.replace("weight", "wXight"), h.pop(k1)))
bad([d, "-p", "Hi"], 5, "contract")
bad([d, "-p", "Hi", "--skip-contract"], 3, k1)

q0 = "model.layers.0.self_attn.q_proj.weight"
d = copy_fixture("shape")
edit_header(d, lambda h: h[q0].__setitem__("shape", [128, 512]))
bad([d, "-p", "Hi"], 5, "contract")
bad([d, "-p", "Hi", "--skip-contract"], 3, "expected [256, 256]")

d = copy_fixture("arch")
cfg = json.load(open(os.path.join(d, "config.json")))
cfg["model_type"] = "rwkv"
cfg["architectures"] = ["RwkvForCausalLM"]
json.dump(cfg, open(os.path.join(d, "config.json"), "w"))
r = apr([d, "-p", "Hi", "--skip-contract"], 3)
check(b"not supported" in r.stderr or b"architecture" in r.stderr, f"arch: {r.stderr!r}")

d = copy_fixture("notok")
os.remove(os.path.join(d, "tokenizer.json"))
r = apr([d, "-p", "Hi", "--skip-contract"], 3)
check(b"tokenizer" in r.stderr, f"no tokenizer: {r.stderr!r}")

d = copy_fixture("emptyvocab")
tj = json.load(open(os.path.join(d, "tokenizer.json")))
tj["model"]["vocab"] = {}
tj["model"]["merges"] = []
tj["added_tokens"] = []
json.dump(tj, open(os.path.join(d, "tokenizer.json"), "w"))
r = subprocess.run([run, d, "-p", "Hi", "--skip-contract"], capture_output=True)
check(r.returncode == 3 and b"vocabulary" in r.stderr, f"empty vocabulary: {r.returncode} {r.stderr!r}")

bad([fx, "-p", "word " * 50, "--ctx", "8"], 3, "more than the context")
bad([os.path.join(tmp, "nonexistent.gguf"), "-p", "Hi"], 3, "nonexistent.gguf")
junk = os.path.join(tmp, "junk.gguf")
open(junk, "wb").write(b"GGUF" + os.urandom(60))
r = subprocess.run([run, junk, "-p", "Hi"], capture_output=True)
check(r.returncode == 3, f"junk file: exit {r.returncode} {r.stderr!r}")

for args in ([fx], [fx, "-p"], [fx, "-p", "x", "-n", "abc"], [fx, "-p", "x", "--top-p", "2"],
             [fx, "-p", "x", "--system", "s"], ["-p", "x"], [fx, "-p", "x", "--bogus"]):
    apr(args, 2)
check(apr(["--help"]).stdout.startswith(b"apr-run"), "--help")

print(f"run: {checks} checks passed")
EOF
