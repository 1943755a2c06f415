#!/usr/bin/env bash
# The tokenizer and chat template on the real Qwen2.5-Coder-0.5B-Instruct GGUF (make test-real;
# fixtures/real/README.md), against three independent references:
#   1. llama.cpp's own Qwen2 test vectors (tests/data/tokenizer/llama_vocab_qwen2.json, from
#      llama.cpp's models/ggml-vocab-qwen2.gguf.inp/.out) and the anchors of docs/tokenizer.md;
#   2. llama.cpp's library (the pinned libllama, vocabulary only, through tests/oracle/
#      llama_tokenize.c) on the whole corpus tests/data/tokenizer/corpus.jsonl, with and without
#      special-token parsing: equal ids and equal detokenized text. Invalid UTF-8 entries go to
#      llama.cpp repaired (U+FFFD per maximal subpart, as Rosetta reads them), because llama.cpp
#      replaces each bad byte on its own (docs/tokenizer.md); how many also agree unrepaired is
#      reported (leaving out the ones llama.cpp aborts on: its decoder reads F4 90.. and F5..F7
#      leads as code points beyond U+10FFFF and throws an uncaught std::invalid_argument);
#   3. Hugging Face tokenizers with a tokenizer built from the GGUF's vocabulary and merges
#      (tests/interop/test_tokenizer_hf.py --gguf), and Python jinja2 on the model's chat template
#      (tests/interop/test_chat_template.py --gguf);
# plus `apr tokenize --chat` on the ChatML prompt of docs/tokenizer.md against llama.cpp.
#
# Run by `make test-real` (CTest label real); also by hand: tests/real/tokenizer.sh (the
# environment defaults to this checkout and build/). SKIP without the model, a failure under
# ROSETTA_ORACLE_REQUIRED=1 (CI) (tests/real/lib.sh); the llama.cpp oracle likewise
# (tests/oracle/oracle_build.sh). Exit 0 pass, 1 fail, 77 skip.
set -euo pipefail
ROSETTA_ROOT=${ROSETTA_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
ROSETTA_BUILD=${ROSETTA_BUILD:-$ROSETTA_ROOT/build}
APR_BIN=${APR_BIN:-$ROSETTA_BUILD/bin}
TEST_TMP=${TEST_TMP:-$ROSETTA_BUILD/test-tmp}
export ROSETTA_ROOT ROSETTA_BUILD APR_BIN TEST_TMP
mkdir -p "$TEST_TMP"
# shellcheck source=tests/real/lib.sh
. "$ROSETTA_ROOT/tests/real/lib.sh"
real_model tokenizer
model=$MODEL
for need in "$ROSETTA_BUILD/tests/tokenize_corpus" "$APR_BIN/apr-tokenize"; do
  [ -x "$need" ] || fail "$need is not built"
done

# shellcheck source=tests/oracle/oracle_build.sh
. "$ROSETTA_ROOT/tests/oracle/oracle_build.sh"
oracle_install tokenizer_real llama
install=$oracle_dir
harness="$ROSETTA_BUILD/oracle/llama/llama_tokenize"
src="$ROSETTA_ROOT/tests/oracle/llama_tokenize.c"
if [ ! -x "$harness" ] || [ "$src" -nt "$harness" ] || [ "$install/VERSION" -nt "$harness" ]; then
  mkdir -p "$(dirname "$harness")"
  cc -std=c11 -O1 -Wall -Wextra -Werror -D_GNU_SOURCE -I"$install/include" "$src" \
    -o "$harness.tmp.$$" -L"$install/lib" -lllama -lggml -lggml-base -Wl,-rpath,"$install/lib"
  mv "$harness.tmp.$$" "$harness"
fi

failures=0

# 1 and 2: llama.cpp's vectors and the corpus, against Rosetta and llama.cpp
python3 - "$model" "$harness" "$T" <<'PY' || failures=$((failures + 1))
import json, os, subprocess, sys
model, harness, tmp = sys.argv[1:4]
root, build = os.environ["ROSETTA_ROOT"], os.environ["ROSETTA_BUILD"]
helper = os.path.join(build, "tests", "tokenize_corpus")

def llama_aborts(raw):
    """Whether llama.cpp's UTF-8 reader (unicode.cpp, unicode_cpt_from_utf8: lead-byte classes
    only, no range checks) yields a code point beyond U+10FFFF, which it then rejects with an
    exception nothing catches."""
    i = 0
    while i < len(raw):
        b = raw[i]
        n = 1 if b < 0x80 else 0 if b < 0xC0 else 2 if b < 0xE0 else 3 if b < 0xF0 else \
            4 if b < 0xF8 else 0
        if n == 0 or i + n > len(raw) or any(c & 0xC0 != 0x80 for c in raw[i + 1:i + n]):
            i += 1
            continue
        if n == 4 and ((b & 7) << 18 | (raw[i + 1] & 0x3F) << 12) > 0x10FFFF:
            return True
        i += n
    return False

def run(cmd, texts):
    out = subprocess.run(cmd, input="".join(t.hex() + "\n" for t in texts).encode(),
                         capture_output=True, check=True).stdout.decode()
    rows = []
    for line in out.split("\n")[:len(texts)]:
        if line.startswith("ERROR"):
            rows.append((None, line))
        else:
            ids, text = line.split("\t")
            rows.append(([int(x) for x in ids.split()], bytes.fromhex(text)))
    return rows

failures = 0
vectors = json.load(open(os.path.join(root, "tests/data/tokenizer/llama_vocab_qwen2.json"),
                         encoding="utf-8"))["vectors"]
texts = [v["text"].encode() for v in vectors]
for v, (ids, _) in zip(vectors, run([helper, model], texts)):
    if ids != v["ids"]:
        failures += 1
        print("FAIL llama.cpp vector %r: expected %s, Rosetta %s" % (v["text"][:60], v["ids"], ids))
print("llama.cpp Qwen2 vectors: %d, %d failures" % (len(vectors), failures))

corpus = []
for line in open(os.path.join(root, "tests/data/tokenizer/corpus.jsonl"), encoding="utf-8"):
    e = json.loads(line)
    raw = bytes.fromhex(e["hex"]) if "hex" in e else e["text"].encode()
    corpus.append((e["kind"], raw))
raws = [r for _, r in corpus]
repaired = [r.decode("utf-8", errors="replace").encode() for r in raws]
for opts in ([], ["--no-special"]):
    mode = "no specials" if opts else "specials"
    ros = run([helper, model] + opts, raws)
    lla = run([harness] + opts + [model], repaired)
    safe = [not llama_aborts(r) for r in raws]
    lla_raw = iter(run([harness] + opts + [model], [r for r, ok in zip(raws, safe) if ok]))
    bad = 0
    invalid = agree_raw = aborts = 0
    for (kind, raw), ok, (rid, rtext), (lid, ltext) in zip(corpus, safe, ros, lla):
        lrid = next(lla_raw)[0] if ok else None
        if raw != raw.decode("utf-8", errors="replace").encode():
            invalid += 1
            aborts += not ok
            agree_raw += lrid == rid
        if rid != lid:
            bad += 1
            if bad <= 10:
                print("FAIL llama.cpp (%s) [%s] %r:\n  llama.cpp: %s\n  Rosetta:   %s"
                      % (mode, kind, raw[:60], lid[:40], (rid or [])[:40]))
        elif rtext != ltext:
            bad += 1
            if bad <= 10:
                print("FAIL llama_detokenize (%s) [%s] %r: llama.cpp %r, Rosetta %r"
                      % (mode, kind, raw[:60], ltext[:60], rtext[:60]))
    failures += bad
    print("llama.cpp corpus (%s): %d entries, %d differ; invalid UTF-8: %d entries, %d equal "
          "even unrepaired, %d that llama.cpp aborts on unrepaired"
          % (mode, len(corpus), bad, invalid, agree_raw, aborts))
sys.exit(1 if failures else 0)
PY

# 3: Hugging Face tokenizers and jinja2
ROSETTA_BUILD=$ROSETTA_BUILD python3 "$ROSETTA_ROOT/tests/interop/test_tokenizer_hf.py" \
  --gguf "$model" || failures=$((failures + 1))
ROSETTA_BUILD=$ROSETTA_BUILD python3 "$ROSETTA_ROOT/tests/interop/test_chat_template.py" \
  --gguf "$model" || failures=$((failures + 1))

# apr tokenize --chat: the ChatML prompt of docs/tokenizer.md, and the same ids from llama.cpp
prompt='What is 2+2? Answer with just the number.'
got=$("$APR_BIN/apr-tokenize" --ids-only --chat "$model" "$prompt")
printf '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\n%s<|im_end|>\n<|im_start|>assistant\n' \
  "$prompt" >"$T/chatml.txt"
want=$({ od -An -tx1 -v "$T/chatml.txt" | tr -d ' \n'; echo; } | "$harness" "$model" | cut -f1)
if [ "$got" = "$want" ] && [ -n "$got" ]; then
  echo "apr tokenize --chat: $(wc -w <<<"$got") ids, equal to llama.cpp's"
else
  echo "FAIL apr tokenize --chat: $got"
  echo "  llama.cpp:              $want"
  failures=$((failures + 1))
fi
[ "$("$APR_BIN/apr-tokenize" --ids-only "$model" 'Hello world')" = "9707 1879" ] ||
  { echo "FAIL apr tokenize 'Hello world' is not 9707 1879"; failures=$((failures + 1)); }

echo "tokenizer (real): $failures failed parts"
[ "$failures" -eq 0 ]
