#!/usr/bin/env python3
"""apr convert checked by independent readers (docs/convert.md): safetensors + numpy for
SafeTensors, gguf-py for GGUF, struct + zlib.crc32 + json for APR (written here from the
format's rules, no Rosetta code), and the Hugging Face `tokenizers` library.

1. ST -> APR -> GGUF -> ST (`apr convert --chain st,apr,gguf,hf`) on each fixture: every tensor
   of the end equals the source bit for bit (BF16 as BF16; norms and biases, widened to F32 in
   the GGUF as llama.cpp's converter stores them, equal as values), the same names, and
   config.json, generation_config.json, tokenizer_config.json and tokenizer.json equal the
   fixture's (as JSON).
2. The key maps, key by key: every config field of contracts/metadata-map.json (validated
   against its JSON schema) read under its keys in the fixture's files, the GGUF and the APR,
   equal across the three; the GGUF's qwen2.* / general.* / tokenizer.ggml.* keys against
   config.json, tokenizer.json and tokenizer_config.json (the vocabulary padded to the
   embedding rows with [PAD{id}] entries, token types, merges, special ids, add_bos_token, chat
   template); the APR's typed keys and tokenizer.* keys against the same; and back: the config
   of a GGUF -> HF export without provenance (nothing carried, every field from the GGUF's own
   keys) equals the fixture's on every field of the map.
3. Every APR file this test makes Rosetta write (kept BF16, tied heads, quantized mixes, GGUF
   sources dequantized or requantized, with and without provenance) passes an independent check
   of its header CRC, metadata, index order, offsets, 64-byte alignment, zero padding, tensor
   sizes and footer CRC.
4. A GGUF -> Hugging Face export (without provenance: the tokenizer.json is built from the
   GGUF's vocabulary alone) loads in `tokenizers` and encodes the fixtures' prompts to the
   transformers reference ids, each id naming the same token as the GGUF's vocabulary.
5. A sharded checkpoint (two shards and model.safetensors.index.json, written here with struct +
   json) converts to the same tensors as the single file.
Exit 77 (skip) when a Python package is missing (unless ROSETTA_ORACLE_REQUIRED=1).
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

REQUIRED = os.environ.get("ROSETTA_ORACLE_REQUIRED") == "1"
try:
    import numpy as np
    import gguf
    from safetensors import safe_open
    from tokenizers import Tokenizer
except ImportError as e:  # installed by scripts/install-deps --python
    print("%s: test_convert_interop needs numpy, gguf, safetensors, tokenizers: %s"
          % ("FAIL" if REQUIRED else "SKIP", e), file=sys.stderr)
    sys.exit(1 if REQUIRED else 77)

ROOT = os.environ.get("ROSETTA_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("ROSETTA_BUILD", os.path.join(ROOT, "build"))
BIN = os.environ.get("APR_BIN", os.path.join(BUILD, "bin"))
TMP = os.environ.get("TEST_TMP") or tempfile.gettempdir()
os.makedirs(TMP, exist_ok=True)
WORK = tempfile.mkdtemp(prefix="convert-interop-", dir=TMP)
FIXTURES = ["tiny-qwen2", "tiny-qwen2-tied", "tiny-qwen2-odd"]
PROMPTS = ["plain", "code", "chat", "long"]

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL: " + what, file=sys.stderr)
    return cond


def convert(*args):
    cmd = [os.path.join(BIN, "apr-convert"), "-q"] + list(args)
    r = subprocess.run(cmd, capture_output=True, text=True)
    if not check(r.returncode == 0, "%s: exit %d: %s" % (" ".join(cmd), r.returncode, r.stderr)):
        raise SystemExit(1)
    return r.stdout


def fixture(name, f=""):
    return os.path.join(ROOT, "fixtures", name, f)


def load_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


# ---- SafeTensors, read with struct + json (values through numpy) -------------------------------

def read_st(path):
    with open(path, "rb") as f:
        blob = f.read()
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    header.pop("__metadata__", None)
    out = {}
    for name, info in header.items():
        s, e = info["data_offsets"]
        out[name] = (info["dtype"], tuple(info["shape"]), blob[8 + n + s:8 + n + e])
    return out


def as_f32(dtype, raw):
    if dtype == "F32":
        return np.frombuffer(raw, dtype=np.float32)
    if dtype == "BF16":
        return (np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
    if dtype == "F16":
        return np.frombuffer(raw, dtype=np.float16).astype(np.float32)
    raise ValueError(dtype)


# ---- APR, checked from the format's rules (no Rosetta code) --------------------------------------

APR_TYPES = {0: ("F32", 4), 1: ("F16", 2), 30: ("BF16", 2), 12: ("Q4_K", None),
             14: ("Q6_K", None), 128: ("APR_Q4", None), 129: ("APR_Q8", None)}


def align64(x):
    return (x + 63) // 64 * 64


def apr_tensor_bytes(code, shape):
    n = int(np.prod(shape)) if shape else 1
    name, size = APR_TYPES[code]
    if size:
        return n * size
    if name in ("Q4_K", "Q6_K"):
        block = 144 if name == "Q4_K" else 210
        if len(shape) == 2:
            return shape[0] * ((shape[1] + 255) // 256) * block
        return (n + 255) // 256 * block
    if name == "APR_Q4":
        return (n + 31) // 32 * 18
    return 4 + n if n else 0  # APR_Q8


def check_apr(path):
    """Every structural rule of an APR v2 file; returns (metadata, {name: (code, shape, raw)})."""
    label = os.path.relpath(path, WORK)
    with open(path, "rb") as f:
        b = f.read()
    ok = check(b[:4] == b"APR\0" and b[4] == 2 and b[5] == 0, label + ": magic / version")
    flags, count, meta_off, meta_size, index_off, data_off, crc = struct.unpack_from(
        "<HIQIQQI", b, 6)
    ok &= check(crc == zlib.crc32(b[:40] + b[44:64]) & 0xFFFFFFFF, label + ": header CRC")
    ok &= check(flags & 0x0400 and not flags & 0x0800, label + ": row-major flag")
    ok &= check(meta_off == 64 and index_off == align64(64 + meta_size), label + ": metadata")
    ok &= check(b[64 + meta_size:index_off] == b"\0" * (index_off - 64 - meta_size),
                label + ": metadata padding")
    meta = json.loads(b[64:64 + meta_size])
    pos, entries = index_off, []
    for _ in range(count):
        n = struct.unpack_from("<H", b, pos)[0]
        name = b[pos + 2:pos + 2 + n].decode()
        code, ndim = b[pos + 2 + n], b[pos + 3 + n]
        shape = list(struct.unpack_from("<%dQ" % ndim, b, pos + 4 + n))
        off, size = struct.unpack_from("<QQ", b, pos + 4 + n + 8 * ndim)
        entries.append((name, code, shape, off, size))
        pos += 4 + n + 8 * ndim + 16
    ok &= check(data_off == align64(pos) and data_off % 64 == 0, label + ": data offset")
    ok &= check(b[pos:data_off] == b"\0" * (data_off - pos), label + ": index padding")
    names = [e[0].encode() for e in entries]
    ok &= check(names == sorted(names), label + ": index not sorted by byte order")
    tensors, expect = {}, 0
    for name, code, shape, off, size in entries:
        ok &= check(code in APR_TYPES, "%s: %s: dtype code %d" % (label, name, code))
        ok &= check(off == expect, "%s: %s: offset %d, expected %d" % (label, name, off, expect))
        ok &= check((data_off + off) % 64 == 0, "%s: %s: not 64-byte aligned" % (label, name))
        if code in APR_TYPES:
            ok &= check(size == apr_tensor_bytes(code, shape),
                        "%s: %s: %d bytes for %s %s" % (label, name, size, APR_TYPES[code][0],
                                                       shape))
        end = data_off + off + size
        ok &= check(b[end:data_off + align64(off + size)] == b"\0" * (align64(size) - size),
                    "%s: %s: tensor padding" % (label, name))
        tensors[name] = (code, shape, b[data_off + off:end])
        expect = align64(off + size)
    data_end = data_off + expect
    ok &= check(len(b) == data_end + 4, label + ": file size %d, expected %d" % (len(b),
                                                                                 data_end + 4))
    ok &= check(struct.unpack_from("<I", b, data_end)[0] == zlib.crc32(b[:data_end]) & 0xFFFFFFFF,
                label + ": footer CRC")
    ok &= check(meta.get("tensor_shapes", {}) == {e[0]: e[2] for e in entries},
                label + ": tensor_shapes")
    apr_checked.append(label)
    return meta, tensors


apr_checked = []


# ---- 1 + 2: the chain and the key maps ----------------------------------------------------------

def gguf_fields(path):
    r = gguf.GGUFReader(path)
    out = {}
    for k, f in r.fields.items():
        if k.startswith("GGUF."):
            continue
        out[k] = f.contents()
    return out, r


def expected_vocab(name):
    """HF tokens by id (vocabulary + added tokens), their GGUF types, merges as 'a b'."""
    tok = load_json(fixture(name, "tokenizer.json"))
    by_id = {v: k for k, v in tok["model"]["vocab"].items()}
    types = {i: 1 for i in by_id}
    for a in tok["added_tokens"]:
        by_id[a["id"]] = a["content"]
        types[a["id"]] = 3 if a["special"] else 4
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]]
    return by_id, types, merges


def test_chain(name):
    out = os.path.join(WORK, "chain-" + name)
    convert("--chain", "st,apr,gguf,hf", fixture(name), "-o", out)
    src = read_st(fixture(name, "model.safetensors"))
    end = read_st(os.path.join(out, name + "-hf", "model.safetensors"))
    check(set(src) == set(end), "%s: names after the chain: %s" % (name, set(src) ^ set(end)))
    for t, (dtype, shape, raw) in src.items():
        if t not in end:
            continue
        d2, s2, r2 = end[t]
        check(s2 == shape, "%s: %s: shape %s -> %s" % (name, t, shape, s2))
        if d2 == dtype:
            check(r2 == raw, "%s: %s: %s bytes differ" % (name, t, dtype))
        else:  # widened to F32 on the way (norms, biases): the values are the same
            check(d2 == "F32" and np.array_equal(as_f32(dtype, raw).view(np.uint32),
                                                 as_f32(d2, r2).view(np.uint32)),
                  "%s: %s: %s -> %s changed values" % (name, t, dtype, d2))
    for f in ["config.json", "generation_config.json", "tokenizer_config.json",
              "tokenizer.json"]:
        check(load_json(fixture(name, f)) == load_json(os.path.join(out, name + "-hf", f)),
              "%s: %s differs after ST -> APR -> GGUF -> ST" % (name, f))

    cfg = load_json(fixture(name, "config.json"))
    tcfg = load_json(fixture(name, "tokenizer_config.json"))
    by_id, types, merges = expected_vocab(name)
    rows = cfg["vocab_size"]
    # the GGUF step, key by key
    g, _ = gguf_fields(os.path.join(out, name + ".gguf"))
    heads = cfg["num_attention_heads"]
    want = {
        "general.architecture": "qwen2",
        "qwen2.block_count": cfg["num_hidden_layers"],
        "qwen2.context_length": cfg["max_position_embeddings"],
        "qwen2.embedding_length": cfg["hidden_size"],
        "qwen2.feed_forward_length": cfg["intermediate_size"],
        "qwen2.attention.head_count": heads,
        "qwen2.attention.head_count_kv": cfg["num_key_value_heads"],
        "tokenizer.ggml.model": "gpt2",
        "tokenizer.ggml.pre": "qwen2",
        "tokenizer.ggml.eos_token_id": cfg["eos_token_id"],
        "tokenizer.ggml.padding_token_id": cfg["pad_token_id"],
        "tokenizer.ggml.bos_token_id": cfg["bos_token_id"],
        "tokenizer.ggml.add_bos_token": bool(tcfg.get("add_bos_token", False)),
        "tokenizer.chat_template": tcfg["chat_template"],
    }
    for k, v in want.items():
        check(g.get(k) == v, "%s: GGUF %s = %r, expected %r" % (name, k, g.get(k), v))
    theta = cfg.get("rope_theta", cfg.get("rope_parameters", {}).get("rope_theta"))
    check(g["qwen2.rope.freq_base"] == float(np.float32(theta)), name + ": GGUF rope.freq_base")
    check(g["qwen2.attention.layer_norm_rms_epsilon"] == float(np.float32(cfg["rms_norm_eps"])),
          name + ": GGUF layer_norm_rms_epsilon")
    head_dim = cfg.get("head_dim", cfg["hidden_size"] // heads)
    if head_dim * heads != cfg["hidden_size"]:
        check(g.get("qwen2.attention.key_length") == head_dim, name + ": GGUF key_length")
    tokens = [by_id.get(i, "[PAD%d]" % i) for i in range(rows)]
    check(list(g["tokenizer.ggml.tokens"]) == tokens,
          "%s: GGUF tokens are not the HF vocabulary padded with [PAD{id}] to %d" % (name, rows))
    check(list(g["tokenizer.ggml.token_type"]) == [types.get(i, 5) for i in range(rows)],
          name + ": GGUF token types")
    check(list(g["tokenizer.ggml.merges"]) == merges, name + ": GGUF merges")
    prov = {k[len("rosetta.provenance."):]: v for k, v in g.items()
            if k.startswith("rosetta.provenance.")}
    check(prov.get("source") == name + ".apr" and prov.get("source_format") == "apr" and
          prov.get("source_digest", "").startswith("xxh3-64:"), name + ": GGUF provenance")
    # the APR step, key by key
    meta, _ = check_apr(os.path.join(out, name + ".apr"))
    want = {"architecture": "qwen2", "hidden_size": cfg["hidden_size"],
            "num_layers": cfg["num_hidden_layers"], "num_heads": heads,
            "num_kv_heads": cfg["num_key_value_heads"], "vocab_size": rows,
            "intermediate_size": cfg["intermediate_size"],
            "max_position_embeddings": cfg["max_position_embeddings"], "rope_type": 2,
            "chat_template": tcfg["chat_template"],
            "tokenizer.bos_token_id": cfg["bos_token_id"],
            "tokenizer.eos_token_id": cfg["eos_token_id"],
            "tokenizer.padding_token_id": cfg["pad_token_id"],
            "tokenizer.add_bos_token": bool(tcfg.get("add_bos_token", False)),
            "tokenizer.model_type": "bpe", "tokenizer.pre_type": "qwen2",
            "tokenizer.vocabulary": [by_id[i] for i in range(len(by_id))],
            "tokenizer.token_type": [types[i] for i in range(len(by_id))],
            "tokenizer.merges": merges}
    for k, v in want.items():
        check(meta.get(k) == v, "%s: APR %s = %.80r, expected %.80r" % (name, k, meta.get(k), v))
    check(np.float32(meta["rope_theta"]) == np.float32(theta), name + ": APR rope_theta")
    check(np.float32(meta["rms_norm_eps"]) == np.float32(cfg["rms_norm_eps"]),
          name + ": APR rms_norm_eps")
    check(meta.get("rosetta.hf.config.json") == cfg, name + ": APR carries config.json")
    check(meta.get("rosetta.provenance", {}).get("source") == name, name + ": APR provenance")
    check(meta.get("tied_embeddings", False) == cfg.get("tie_word_embeddings", False) or
          not cfg.get("tie_word_embeddings"), name + ": APR tied_embeddings")

    # back from GGUF without provenance: every field of the config map from the GGUF's own keys
    plain = os.path.join(WORK, "plain-" + name)
    convert("--no-provenance", "--verify", os.path.join(out, name + ".gguf"), "-o", plain)
    back = load_json(os.path.join(plain, "config.json"))
    for k in ["hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
              "intermediate_size", "max_position_embeddings", "rms_norm_eps", "vocab_size",
              "bos_token_id", "eos_token_id", "pad_token_id", "tie_word_embeddings",
              "model_type"]:
        check(back.get(k) == cfg.get(k, False if k == "tie_word_embeddings" else None),
              "%s: GGUF -> HF config.json %s = %r, expected %r" % (name, k, back.get(k),
                                                                    cfg.get(k)))
    check(back.get("rope_theta") == theta, "%s: GGUF -> HF rope_theta" % name)
    back_t = load_json(os.path.join(plain, "tokenizer_config.json"))
    for k in ["chat_template", "add_bos_token", "eos_token", "pad_token", "bos_token"]:
        check(back_t.get(k) == tcfg.get(k), "%s: GGUF -> HF tokenizer_config %s = %.60r, "
              "expected %.60r" % (name, k, back_t.get(k), tcfg.get(k)))
    return plain


# ---- 2b: the configuration map of contracts/metadata-map.json, key by key ----------------------

def hf_value(name, key):
    """A 'file:key' of the map in the fixture's companion files (None when absent)."""
    if ":" not in key:
        path = fixture(name, key)
        return open(path, encoding="utf-8").read() if os.path.exists(path) else None
    f, k = key.split(":", 1)
    path = fixture(name, f)
    if not os.path.exists(path):
        return None
    v = load_json(path)
    for part in k.replace("[", ".[").split("."):
        if part.startswith("["):
            v = v[int(part[1:-1])] if isinstance(v, list) and len(v) > int(part[1:-1]) else None
        else:
            v = v.get(part) if isinstance(v, dict) else None
        if v is None:
            return None
    if f == "tokenizer_config.json" and k.endswith("_token"):  # a token: its id
        text = v if isinstance(v, str) else (v or {}).get("content")
        by_id, _, _ = expected_vocab(name)
        ids = [i for i, t in by_id.items() if t == text]
        return ids[0] if ids else None
    if isinstance(v, list) and k.endswith("_token_id"):  # generation_config's eos list
        return v[0]
    return v


def normal(field, value):
    t = field["type"]
    if value is None:
        return None
    if t == "real":
        return float(np.float32(value))
    if t == "string":
        value = str(value)
        # the class name of config.json's architectures, the model_type elsewhere
        return value.lower().replace("forcausallm", "")
    if t == "enum":
        names = {v: k for k, v in field["values"].items()}
        return names.get(value, value)
    return value


def test_metadata_map(name):
    path = os.path.join(ROOT, "contracts", "metadata-map.json")
    mapping = load_json(path)
    try:
        import jsonschema
        jsonschema.validate(mapping, load_json(os.path.join(ROOT, "contracts", "schema",
                                                            "metadata-map.schema.json")))
    except ImportError:
        pass
    out = os.path.join(WORK, "chain-" + name)
    g, _ = gguf_fields(os.path.join(out, name + ".gguf"))
    meta, _ = check_apr(os.path.join(out, name + ".apr"))
    checked = 0
    for field in mapping["config"]:
        seen = []
        for fmt, keys, lookup in (
                ("hf", field["hf"], lambda k: hf_value(name, k)),
                ("gguf", field["gguf"], lambda k: g.get(k.replace("{arch}", "qwen2"))),
                ("apr", field["apr"], lambda k: meta.get(k))):
            for k in keys:
                v = lookup(k)
                if v is not None:
                    seen.append((fmt, k, normal(field, v)))
                    break
        need = 0 if "derived" in field else 2  # derived: may be implied everywhere
        check(len({f for f, _, _ in seen}) >= need,
              "%s: map field %s: found in %s only" % (name, field["field"], seen))
        check(len({repr(v) for _, _, v in seen}) <= 1,
              "%s: map field %s differs between formats: %s" % (name, field["field"], seen))
        checked += len(seen)
    return checked


# ---- 3: APRs of every kind --------------------------------------------------------------------

def test_aprs():
    d = os.path.join(WORK, "aprs")
    os.makedirs(d)
    for name in FIXTURES:
        convert(fixture(name), "-o", os.path.join(d, name + ".apr"))
        convert("--no-provenance", fixture(name), "-o", os.path.join(d, name + "-plain.apr"))
        convert("--quantize", "q4_k_m", "--verify", fixture(name), "-o",
                os.path.join(d, name + "-q4km.apr"))
        convert("--quantize", "q8_0", fixture(name), "-o", os.path.join(d, name + "-q8.gguf"))
        convert("--verify", os.path.join(d, name + "-q8.gguf"), "-o",
                os.path.join(d, name + "-from-q8.apr"))
    convert("--requantize", "q6_k", "--verify", os.path.join(d, "tiny-qwen2-q8.gguf"), "-o",
            os.path.join(d, "requantized-q6k.apr"))
    convert("--requantize", "apr_q8", "--verify", os.path.join(d, "tiny-qwen2-q8.gguf"), "-o",
            os.path.join(d, "requantized-aprq8.apr"))
    for f in sorted(os.listdir(d)):
        if f.endswith(".apr"):
            meta, tensors = check_apr(os.path.join(d, f))
            if "tied" in f or "odd" in f:  # aprender keeps a tied head as a copy
                check(tensors.get("lm_head.weight", (0, 0, b"1"))[2] ==
                      tensors.get("model.embed_tokens.weight", (0, 0, b"2"))[2],
                      f + ": lm_head.weight is not a copy of the embedding")
            if "plain" in f:
                check(not any(k.startswith("rosetta.") for k in meta),
                      f + ": --no-provenance wrote rosetta keys")
    codes = {APR_TYPES[c][0] for f in os.listdir(d) if f.endswith(".apr")
             for c, _, _ in check_apr(os.path.join(d, f))[1].values()}
    check({"BF16", "F32", "Q4_K", "Q6_K", "APR_Q8"} <= codes, "APR dtypes covered: %s" % codes)


# ---- 4: tokenizers loads the exported tokenizer.json --------------------------------------------

def test_tokenizers(name, plain_dir):
    tok = Tokenizer.from_file(os.path.join(plain_dir, "tokenizer.json"))
    g, _ = gguf_fields(os.path.join(WORK, "chain-" + name, name + ".gguf"))
    vocab = list(g["tokenizer.ggml.tokens"])
    for p in PROMPTS:
        ref = load_json(fixture(name, "reference/%s.json" % p))
        enc = tok.encode(ref["text"], add_special_tokens=False)
        check(enc.ids == ref["input_ids"], "%s %s: tokenizers ids %s..., transformers %s..."
              % (name, p, enc.ids[:8], ref["input_ids"][:8]))
        check([vocab[i] for i in enc.ids] == enc.tokens,
              "%s %s: ids name other tokens in the GGUF vocabulary" % (name, p))


# ---- 5: a sharded checkpoint --------------------------------------------------------------------

def test_sharded():
    name = "tiny-qwen2"
    d = os.path.join(WORK, "sharded")
    os.makedirs(d)
    for f in os.listdir(fixture(name)):
        if f.endswith(".json"):
            shutil.copy(fixture(name, f), d)
    src = read_st(fixture(name, "model.safetensors"))
    names = sorted(src)
    weight_map = {}
    for k, part in enumerate([names[:len(names) // 2], names[len(names) // 2:]]):
        shard = "model-%05d-of-00002.safetensors" % (k + 1)
        header, offset, blobs = {"__metadata__": {"format": "pt"}}, 0, []
        for t in part:
            dtype, shape, raw = src[t]
            header[t] = {"dtype": dtype, "shape": list(shape),
                         "data_offsets": [offset, offset + len(raw)]}
            offset += len(raw)
            blobs.append(raw)
            weight_map[t] = shard
        text = json.dumps(header, separators=(",", ":")).encode()
        text += b" " * (-len(text) % 8)
        with open(os.path.join(d, shard), "wb") as f:
            f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
        # the safetensors library reads the shard back as the same tensors
        with safe_open(os.path.join(d, shard), "np") as f:
            check(sorted(f.keys()) == sorted(part), shard + ": safetensors reads other names")
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": sum(len(v[2]) for v in src.values())},
                   "weight_map": weight_map}, f)
    convert("--verify", os.path.join(d, "model.safetensors.index.json"), "-o",
            os.path.join(WORK, "sharded.apr"))
    _, a = check_apr(os.path.join(WORK, "sharded.apr"))
    convert(fixture(name), "-o", os.path.join(WORK, "single.apr"))
    _, b = check_apr(os.path.join(WORK, "single.apr"))
    check(a == b, "a sharded checkpoint converts to other tensors than the single file")


def main():
    if not os.path.exists(os.path.join(BIN, "apr-convert")):
        print("SKIP: apr-convert is not built", file=sys.stderr)
        return 77
    for name in FIXTURES:
        plain = test_chain(name)
        test_tokenizers(name, plain)
        n = test_metadata_map(name)
        print("test_convert_interop: %s: %d keys of the metadata map compared" % (name, n))
    test_aprs()
    test_sharded()
    print("test_convert_interop: %d APR files checked, %d failure(s)"
          % (len(set(apr_checked)), len(failures)))
    if not failures:
        shutil.rmtree(WORK, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
