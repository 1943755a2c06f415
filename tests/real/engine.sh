#!/usr/bin/env bash
# Real weights: the engine on the genuine Qwen2.5-Coder-0.5B-Instruct Q4_K_M GGUF.
#  1. apr run --chat "What is 2+2? Answer with just the number." -n 16 answers 4; a code prompt
#     gives Python (a def and a return); no U+FFFD, no [PAD, no raw ids in the text; apr chat
#     from a pipe answers the same question with 4.
#  2. fast path vs reference path on two chat prompts (every prompt position): mean KL < 0.01.
#  3. against llama.cpp (the pinned libllama, tests/oracle/llama_engine.c) on four prompts with
#     32 greedy tokens, teacher-forced on llama.cpp's sequences: mean KL < 0.01, and the same
#     greedy continuation for at least 3 prompts or top-1 >= 99 % over the positions where
#     llama.cpp's top two logits are at least 0.05 apart. The figures are printed. Near-ties are
#     left out because llama.cpp does not agree with itself on them: its AVX2 build (the oracle)
#     and a -march=native AVX-512 build give top-1 97.2 % (99.6 % without near-ties), mean KL
#     6.3e-4 and identical 32-token continuations on 2 of these 4 prompts (docs/engine.md).
#  4. the fast path's MLP, run MLP_BLOCK rows of gate and up at a time (libinfer/src/cpu.c, mlp),
#     gives bit-identical logits at every position of a prompt of about 190 tokens to the MLP
#     computed whole (as with a trace hook), and so do batches of 48 tokens.
set -euo pipefail
. "$ROSETTA_ROOT/tests/real/lib.sh"
real_model engine

threads=2
out=$("$APR_BIN/apr-run" "$MODEL" --chat -p "What is 2+2? Answer with just the number." -n 16 \
  -t "$threads")
echo "apr run --chat 2+2: $out"
[ "$(echo "$out" | tr -d '[:space:]')" = 4 ] || fail "apr run answered '$out', expected 4"

"$APR_BIN/apr-run" "$MODEL" --chat -n 160 -t "$threads" --json \
  -p "Write a Python function that returns the n-th Fibonacci number." >"$T/code.json"
python3 - "$T/code.json" <<'PY' || fail "the code prompt's answer is not plausible Python"
import json, re, sys
r = json.load(open(sys.argv[1]))
text = r["text"]
print("apr run --chat code prompt:\n" + text)
bad = [why for why, hit in (("U+FFFD", "\ufffd" in text), ("[PAD", "[PAD" in text),
       ("a raw id", re.search(r"<\|?\d+\|?>|\[\d{5,}\]", text) is not None),
       ("no 'def'", "def " not in text), ("no 'return'", "return" not in text),
       ("fewer than 20 tokens", len(r["tokens"]) < 20)) if hit]
if bad:
    print("problems: " + ", ".join(bad), file=sys.stderr)
    sys.exit(1)
PY

chat=$(printf 'What is 2+2? Answer with just the number.\n/exit\n' |
  "$APR_BIN/apr-chat" "$MODEL" -t "$threads" -n 16)
echo "apr chat 2+2: $chat"
[ "$(echo "$chat" | tr -d '[:space:]')" = 4 ] || fail "apr chat answered '$chat', expected 4"

# the prompts' ids, from Rosetta's tokenizer
ids() { "$APR_BIN/apr-tokenize" --ids-only "$@" | tr ' ' ','; }
{
  ids --chat "$MODEL" "What is 2+2? Answer with just the number."
  ids --chat "$MODEL" "Write a Python function that returns the n-th Fibonacci number."
  ids --chat "$MODEL" "Explain what a hash table is in two sentences."
  ids "$MODEL" "def quicksort(arr):"
} >"$T/prompts.ids"
helper="$ROSETTA_BUILD/tests/engine_logits"

# 2. fast vs reference, prompt positions only (the reference path is slow)
head -n 2 "$T/prompts.ids" >"$T/two.ids"
"$helper" "$MODEL" --ids-file "$T/two.ids" --greedy 1 --reference --threads "$threads" \
  --logits "$T/ref.bin" >"$T/ref.jsonl"
paths=$("$helper" "$MODEL" --ids-file "$T/two.ids" --greedy 1 --threads "$threads" \
  --teacher "$T/ref.jsonl" --against "$T/ref.bin" | tail -n 1)
python3 - "$paths" <<'PY' || fail "fast path vs reference path"
import json, sys
s = json.loads(sys.argv[1])
print(f"fast vs reference: {s['positions']} positions, top-1 {s['top1']:.4f}, "
      f"mean KL {s['kl_mean']:.3g}, max KL {s['kl_max']:.3g}, NMSE {s['nmse_max']:.3g}")
sys.exit(0 if s["kl_mean"] < 0.01 else 1)
PY

# 3. against llama.cpp
. "$ROSETTA_ROOT/tests/oracle/oracle_build.sh"
oracle_install engine_real llama
harness="$ROSETTA_BUILD/oracle/llama/llama_engine"
src="$ROSETTA_ROOT/tests/oracle/llama_engine.c"
if [ ! -x "$harness" ] || [ "$src" -nt "$harness" ] || [ "$oracle_dir/VERSION" -nt "$harness" ]; then
  cc -std=c11 -O1 -Wall -Wextra -Werror -I"$oracle_dir/include" "$src" -o "$harness.tmp.$$" \
    -L"$oracle_dir/lib" -lllama -lggml -lggml-base -lm -Wl,-rpath,"$oracle_dir/lib"
  mv "$harness.tmp.$$" "$harness"
fi
"$harness" "$MODEL" --ids-file "$T/prompts.ids" --greedy 32 --threads "$threads" \
  --logits "$T/llama.bin" >"$T/llama.jsonl"
"$helper" "$MODEL" --ids-file "$T/prompts.ids" --greedy 32 --threads "$threads" \
  --teacher "$T/llama.jsonl" --against "$T/llama.bin" --margin 0.05 >"$T/rosetta.jsonl"
python3 - "$T/rosetta.jsonl" <<'PY' || fail "Rosetta vs llama.cpp on the real model"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
for p in lines[:-1]:
    print(f"prompt {p['prompt']}: greedy identical for {p['greedy_same']}/32 tokens, top-1 "
          f"{p['top1']:.4f}, mean KL {p['kl_mean']:.3g}")
s = lines[-1]
print(f"vs llama.cpp: {s['positions']} positions, top-1 {s['top1']:.4f} ({s['top1_clear']:.4f} "
      f"without near-ties), mean KL {s['kl_mean']:.3g}, max KL {s['kl_max']:.3g}, greedy "
      f"identical on {s['greedy_equal']}/{s['prompts']} prompts")
ok = s["greedy_equal"] >= 3 or s["top1_clear"] >= 0.99
sys.exit(0 if ok and s["kl_mean"] < 0.01 else 1)
PY

# 4. the blocked MLP: the same bits as the whole MLP, and for any split of a long prompt
ids "$MODEL" "$(head -n 12 "$ROSETTA_ROOT/docs/engine.md")" >"$T/long.ids"
n_long=$(tr ',' '\n' <"$T/long.ids" | wc -l)
[ "$n_long" -gt 100 ] || fail "the long prompt has only $n_long tokens"
"$helper" "$MODEL" --ids-file "$T/long.ids" --greedy 2 --threads "$threads" \
  --logits "$T/long-default.bin" >/dev/null
"$helper" "$MODEL" --ids-file "$T/long.ids" --greedy 2 --threads "$threads" --batch 48 \
  --logits "$T/long-48.bin" >/dev/null
"$helper" "$MODEL" --ids-file "$T/long.ids" --greedy 2 --threads "$threads" --trace \
  --logits "$T/long-whole.bin" >/dev/null
cmp -s "$T/long-default.bin" "$T/long-whole.bin" ||
  fail "a $n_long-token prompt: the blocked MLP and the whole MLP give different logits"
cmp -s "$T/long-default.bin" "$T/long-48.bin" ||
  fail "a $n_long-token prompt: one batch and batches of 48 give different logits"
rm -f "$T"/long-*.bin
echo "blocked MLP: $n_long-token prompt, logits identical to the whole MLP and to batches of 48"
