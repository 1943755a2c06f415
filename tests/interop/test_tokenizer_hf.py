#!/usr/bin/env python3
"""Rosetta's tokenizer against Hugging Face `tokenizers` on the corpus tests/data/tokenizer/
corpus.jsonl (code, prose, CJK and other scripts, emoji, whitespace runs, digits, contractions,
special and added tokens, non-NFC text, invalid UTF-8, seeded random mixtures).

For each distinct fixture tokenizer.json, Rosetta tokenizes every corpus entry (through the
helper build/tests/tokenize_corpus) from:
  - the fixture directory (tokenizer.json: NFC, the tokenizer.json regex), compared with
    tokenizers.Tokenizer.from_file(tokenizer.json);
  - GGUF and APR copies of the fixture written through the library (build/tests/write_formats),
    compared with the same Hugging Face tokenizer given what a GGUF carries: no normalizer (as
    llama.cpp, which never normalizes) and llama.cpp's spelling of the contractions
    (docs/tokenizer.md), unless Rosetta reports that the copy still normalizes;
with control tokens recognised (tokenizers' default) and not (encode_special_tokens = True).
Checks: equal ids; Rosetta's decode equals tokenizers' decode of the same ids; decode(encode(x))
== x for NFC text (the U+FFFD-repaired text for invalid UTF-8, which Hugging Face receives as
bytes.decode(errors="replace")).

With --gguf MODEL.gguf (tests/real/tokenizer.sh, the real Qwen2.5 vocabulary): an equivalent
Hugging Face tokenizer is built from the GGUF's tokens and merges (read with gguf-py: BPE model,
the Qwen2 split regex as llama.cpp spells it, byte-level pre-tokenizer and decoder, the control and
user-defined tokens as added tokens) and compared the same way with Rosetta on the GGUF itself.
Exit 77 (skip) when tokenizers is missing or the helpers are not built.
"""
import json
import os
import subprocess
import sys
import tempfile
import unicodedata

try:
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers
except ImportError as e:
    print("SKIP: test_tokenizer_hf needs tokenizers (pip install tokenizers): %s" % e,
          file=sys.stderr)
    sys.exit(77)

ROOT = os.environ.get("ROSETTA_ROOT",
                      os.path.join(os.path.dirname(os.path.abspath(__file__)), "../.."))
BUILD = os.environ.get("ROSETTA_BUILD", os.path.join(ROOT, "build"))
HELPER = os.path.join(BUILD, "tests", "tokenize_corpus")
WRITER = os.path.join(BUILD, "tests", "write_formats")
CORPUS = os.path.join(ROOT, "tests", "data", "tokenizer", "corpus.jsonl")

# The Qwen2 split as llama.cpp spells it (contractions as explicit classes).
QWEN2_LLAMA = (r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
               r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def load_corpus():
    entries = []
    with open(CORPUS, encoding="utf-8") as f:
        for line in f:
            e = json.loads(line)
            raw = bytes.fromhex(e["hex"]) if "hex" in e else e["text"].encode("utf-8")
            entries.append((e["kind"], raw))
    return entries


def rosetta(model, corpus, options):
    stdin = "".join(raw.hex() + "\n" for _, raw in corpus)
    out = subprocess.run([HELPER, model] + options, input=stdin.encode(), capture_output=True,
                         check=True)
    info = out.stderr.decode().splitlines()[0]
    results = []
    for line in out.stdout.decode().split("\n")[:len(corpus)]:
        if line.startswith("ERROR"):
            results.append((None, line))
            continue
        ids, text = line.split("\t")
        results.append(([int(x) for x in ids.split()], bytes.fromhex(text)))
    return info, results


def gguf_equivalent(hf, keep_normalizer):
    """The tokenizer a GGUF of this tokenizer.json stands for (see the module docstring)."""
    data = json.loads(hf.to_str())
    if not keep_normalizer:
        data["normalizer"] = None
    for p in data["pre_tokenizer"].get("pretokenizers", []):
        if p.get("type") == "Split":
            p["pattern"] = {"Regex": QWEN2_LLAMA}
    return Tokenizer.from_str(json.dumps(data))


def from_gguf(path):
    """An equivalent Hugging Face tokenizer built from a GGUF's vocabulary and merges."""
    import gguf
    reader = gguf.GGUFReader(path)

    def strings(key):
        f = reader.fields[key]
        return [bytes(f.parts[i]).decode("utf-8") for i in f.data]

    tokens = strings("tokenizer.ggml.tokens")
    merges = strings("tokenizer.ggml.merges")
    f = reader.fields["tokenizer.ggml.token_type"]
    types = [int(f.parts[i][0]) for i in f.data]
    vocab = {}
    for i, (t, ty) in enumerate(zip(tokens, types)):
        if ty != 5:  # UNUSED ([PAD...]) ids stay out
            vocab[t] = i
    pairs = [tuple(m.split(" ", 1)) for m in merges]
    tk = Tokenizer(models.BPE(vocab=vocab, merges=pairs, fuse_unk=False, byte_fallback=False))
    tk.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_LLAMA), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)])
    tk.decoder = decoders.ByteLevel()
    tk.add_special_tokens([AddedToken(t, special=True, normalized=False)
                           for t, ty in zip(tokens, types) if ty == 3])
    tk.add_tokens([AddedToken(t, special=False, normalized=False)
                   for t, ty in zip(tokens, types) if ty == 4])
    return tk


def compare(label, hf, corpus, got, normalizes):
    failures = 0
    shown = 0
    for (kind, raw), (ids, text) in zip(corpus, got):
        src = raw.decode("utf-8", errors="replace")
        want = hf.encode(src, add_special_tokens=False).ids
        problem = None
        if ids is None:
            problem = "Rosetta failed: %s" % text
        elif ids != want:
            problem = "ids differ:\n    HF:      %s\n    Rosetta: %s" % (want[:40], ids[:40])
        else:
            hf_text = hf.decode(ids, skip_special_tokens=False).encode("utf-8")
            if text != hf_text:
                problem = "decode differs: HF %r, Rosetta %r" % (hf_text[:80], text[:80])
            elif (not normalizes or unicodedata.normalize("NFC", src) == src) and \
                    text != src.encode("utf-8"):
                problem = "decode(encode(x)) != x: %r" % text[:80]
        if problem:
            failures += 1
            if shown < 10:
                shown += 1
                print("FAIL %s [%s] %r: %s" % (label, kind, raw[:60], problem))
    return failures


def main():
    for need in (HELPER, WRITER):
        if not os.path.exists(need):
            print("SKIP: %s is not built" % need, file=sys.stderr)
            sys.exit(77)
    corpus = load_corpus()
    failures = checks = 0
    if len(sys.argv) == 3 and sys.argv[1] == "--gguf":
        hf = from_gguf(sys.argv[2])
        for special in (True, False):
            hf.encode_special_tokens = not special
            opts = [] if special else ["--no-special"]
            info, got = rosetta(sys.argv[2], corpus, opts)
            label = "%s (%s)" % (os.path.basename(sys.argv[2]),
                                 "specials" if special else "no specials")
            failures += compare(label, hf, corpus, got, "nfc=1" in info)
            checks += len(corpus)
    else:
        seen = set()
        tmp = tempfile.mkdtemp()
        for name in sorted(os.listdir(os.path.join(ROOT, "fixtures"))):
            fx = os.path.join(ROOT, "fixtures", name)
            path = os.path.join(fx, "tokenizer.json")
            if not os.path.exists(path):
                continue
            content = open(path, "rb").read()
            if content in seen:
                continue
            seen.add(content)
            hf = Tokenizer.from_file(path)
            gguf, apr = os.path.join(tmp, name + ".gguf"), os.path.join(tmp, name + ".apr")
            subprocess.run([WRITER, fx, "--gguf", gguf, "--apr", apr], check=True)
            for model, what in ((fx, "tokenizer.json"), (gguf, "GGUF"), (apr, "APR")):
                for special in (True, False):
                    opts = [] if special else ["--no-special"]
                    info, got = rosetta(model, corpus, opts)
                    nfc = "nfc=1" in info
                    ref = hf if what == "tokenizer.json" else gguf_equivalent(hf, nfc)
                    ref.encode_special_tokens = not special
                    label = "%s %s (%s, %s)" % (name, what, "specials" if special else
                                                "no specials", "NFC" if nfc else "no NFC")
                    failures += compare(label, ref, corpus, got, nfc)
                    checks += len(corpus)
            for f in (gguf, apr):
                os.unlink(f)
        os.rmdir(tmp)
    kinds = len({k for k, _ in corpus})
    print("test_tokenizer_hf: %d corpus entries (%d kinds), %d tokenizations compared with HF "
          "tokenizers %s: %d failures" % (len(corpus), kinds, checks,
                                          __import__("tokenizers").__version__, failures))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
