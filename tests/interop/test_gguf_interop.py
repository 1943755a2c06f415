#!/usr/bin/env python3
"""GGUF interoperability with gguf-py (llama.cpp's Python package), through librosetta-format.

1. Files written by gguf-py (F32, F16, BF16, Q8_0, Q4_K raw blocks, integer and F64 tensors,
   1-D to 4-D shapes, alignments 1/32/64/256, every metadata type, string arrays, nested arrays,
   a big-endian file) are read by Rosetta with identical names, shapes, dtypes, bytes and
   metadata (values as gguf-py was given them, not as Rosetta reports them).
2. Rosetta writes each of them back; gguf-py's GGUFReader reads the result with identical
   fields (raw encodings) and tensors, and little-endian sources come back byte for byte.
3. The tiny-qwen2 fixtures (SafeTensors) written to GGUF through the library: gguf-py sees the
   llama.cpp keys of docs/formats/gguf.md with the converter's types and the config's values, GGUF
   tensor names, reversed shapes and the SafeTensors bytes; tied models have no output.weight.
   Needs the SafeTensors reader; reported as skipped (not failed) while it is not in the build.
Exit 77 (skip) only when numpy or gguf are missing.
"""
import ctypes as C
import json
import os
import re
import shutil
import struct
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rosetta_lib import Error, load_library  # noqa: E402

try:
    import numpy as np
    from gguf import GGMLQuantizationType as Q
    from gguf import GGUFEndian, GGUFReader, GGUFWriter
    from gguf import GGUFValueType as VT
except ImportError as e:  # CI installs them (scripts/install-deps --python)
    print("SKIP: test_gguf_interop needs numpy and gguf (gguf-py): %s" % e, file=sys.stderr)
    sys.exit(77)

ROOT = os.environ.get("ROSETTA_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
TMP = os.environ.get("TEST_TMP") or tempfile.gettempdir()
os.makedirs(TMP, exist_ok=True)
WORK = tempfile.mkdtemp(prefix="gguf-interop-", dir=TMP)

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL: " + what, file=sys.stderr)
    return cond


# ---- ctypes view of the library (tests/interop/rosetta_lib.py) ---------------------------------

class WriteOptions(C.Structure):  # rf_gguf_write_options
    _fields_ = [("alignment", C.c_uint32), ("allow_nested_arrays", C.c_bool)]


lib = load_library({
    "rf_gguf_write": (C.c_int, [C.c_void_p, C.c_char_p, C.POINTER(WriteOptions),
                                C.POINTER(Error)]),
}, structs={"rf_gguf_write_options": WriteOptions})


def open_model(path):
    err = Error()
    m = lib.rf_model_open(path.encode(), None, C.byref(err))
    return m, err.message.decode(errors="replace")


def write_gguf(model, path, **kw):
    err = Error()
    opts = WriteOptions(**kw)
    st = lib.rf_gguf_write(model, path.encode(), C.byref(opts), C.byref(err))
    return st, err.message.decode(errors="replace")


def py_value(v):
    t = v.type
    if t in (0, 2, 4, 10):
        return v.as_.u
    if t in (1, 3, 5, 11):
        return v.as_.i
    if t in (6, 12):
        return v.as_.f
    if t == 7:
        return bool(v.as_.b)
    if t == 8:
        return C.string_at(v.as_.str.data, v.as_.str.len).decode()
    if t == 9:
        return [py_value(v.as_.arr.items[i]) for i in range(v.as_.arr.count)]
    raise ValueError("value type %d" % t)


def rosetta_kvs(model):
    out = []
    for i in range(lib.rf_model_n_kv(model)):
        kv = lib.rf_model_kv(model, i).contents
        elem = kv.value.as_.arr.elem_type if kv.value.type == 9 else None
        out.append((kv.key.decode(), kv.value.type, elem, py_value(kv.value)))
    return out


def rosetta_tensors(model):
    out = []
    for i in range(lib.rf_model_n_tensors(model)):
        t = lib.rf_model_tensor(model, i).contents
        data = C.string_at(t.data, t.nbytes) if t.nbytes else b""
        out.append((t.name.decode(), t.dtype, [t.shape[j] for j in range(t.ndim)], data))
    return out


# ---- 1 + 2: gguf-py files ----------------------------------------------------------------------

rng = np.random.default_rng(20240616)


def metadata_cases():
    """(key, gguf-py adder, value, expected rf type, expected elem type, expected value)."""
    f32 = float(np.float32(0.1))
    return [
        ("m.u8", "add_uint8", 250, 0, None, 250),
        ("m.i8", "add_int8", -7, 1, None, -7),
        ("m.u16", "add_uint16", 65535, 2, None, 65535),
        ("m.i16", "add_int16", -32768, 3, None, -32768),
        ("m.u32", "add_uint32", 4294967295, 4, None, 4294967295),
        ("m.i32", "add_int32", -123456789, 5, None, -123456789),
        ("m.f32", "add_float32", 0.1, 6, None, f32),
        ("m.bool", "add_bool", True, 7, None, True),
        ("m.string", "add_string", "h\u00e9llo \u2603 <|im_end|>", 8, None,
         "h\u00e9llo \u2603 <|im_end|>"),
        ("m.u64", "add_uint64", 2 ** 64 - 1, 10, None, 2 ** 64 - 1),
        ("m.i64", "add_int64", -(2 ** 63), 11, None, -(2 ** 63)),
        ("m.f64", "add_float64", -1.5e-300, 12, None, -1.5e-300),
        ("m.strings", "add_array", ["a", "", "\u0120the", "<|endoftext|>"], 9, 8,
         ["a", "", "\u0120the", "<|endoftext|>"]),
        ("m.ints", "add_array", [1, -2, 3], 9, 5, [1, -2, 3]),
        ("m.floats", "add_array", [0.5, -0.25], 9, 6, [0.5, -0.25]),
        ("m.bools", "add_array", [True, False], 9, 7, [True, False]),
        ("m.nested", "add_array", [[1, 2], [3]], 9, 9, [[1, 2], [3]]),
    ]


def tensor_cases(big_endian):
    """(name, array, raw dtype, ggml code, expected row-major element shape)."""
    cases = [
        ("f32.2d", rng.standard_normal((3, 4)).astype(np.float32), None, 0, [3, 4]),
        ("f16.1d", rng.standard_normal(5).astype(np.float16), None, 1, [5]),
        ("bf16.2d", rng.integers(0, 65535, (2, 8), dtype=np.uint16), Q.BF16, 30, [2, 8]),
        ("f32.3d", rng.standard_normal((2, 3, 5)).astype(np.float32), None, 0, [2, 3, 5]),
        ("f32.4d", rng.standard_normal((2, 1, 3, 2)).astype(np.float32), None, 0, [2, 1, 3, 2]),
        ("f32.one", np.array([42.0], dtype=np.float32), None, 0, [1]),
        ("i8", rng.integers(-128, 127, 7, dtype=np.int8), None, 24, [7]),
        ("i16", rng.integers(-30000, 30000, 3, dtype=np.int16), None, 25, [3]),
        ("i32", rng.integers(-2 ** 31, 2 ** 31 - 1, 6, dtype=np.int32), None, 26, [6]),
        ("i64", rng.integers(-2 ** 62, 2 ** 62, 2, dtype=np.int64), None, 27, [2]),
        ("f64", rng.standard_normal(3), None, 28, [3]),
    ]
    if not big_endian:  # quantized blocks have no defined byte order in big-endian files
        cases += [
            ("blk.0.q8_0.weight", rng.integers(0, 255, (3, 2 * 34), dtype=np.uint8), Q.Q8_0, 8,
             [3, 64]),
            ("blk.0.q4_k.weight", rng.integers(0, 255, (2, 144), dtype=np.uint8), Q.Q4_K, 12,
             [2, 256]),
        ]
    return cases


def write_with_gguf_py(path, alignment, big_endian):
    w = GGUFWriter(path, "testarch", endianess=GGUFEndian.BIG if big_endian else GGUFEndian.LITTLE)
    if alignment is not None:
        w.add_custom_alignment(alignment)
    meta = metadata_cases()
    for key, adder, value, *_ in meta:
        getattr(w, adder)(key, value)
    tensors = tensor_cases(big_endian)
    if not big_endian:  # a canonical quantized file carries the quantization version
        w.add_quantization_version(2)
    for name, arr, raw, *_ in tensors:
        w.add_tensor(name, arr, raw_dtype=raw)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return meta, tensors


def same_value(got, want):
    if isinstance(want, float):
        return isinstance(got, float) and (got == want or (got != got and want != want))
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(
            same_value(g, x) for g, x in zip(got, want))
    return got == want and type(got) is type(want)


def check_read(path, alignment, big_endian, meta, tensors):
    tag = os.path.basename(path)
    model, msg = open_model(path)
    if not check(model, "%s: Rosetta cannot read a gguf-py file: %s" % (tag, msg)):
        return None
    kvs = rosetta_kvs(model)
    expected = [("general.architecture", 8, None, "testarch")]
    if alignment is not None:
        expected.append(("general.alignment", 4, None, alignment))
    expected += [(k, t, e, v) for k, _, _, t, e, v in meta]
    if not big_endian:
        expected.append(("general.quantization_version", 4, None, 2))
    check(len(kvs) == len(expected), "%s: %d KV pairs, expected %d" % (tag, len(kvs), len(expected)))
    for got, want in zip(kvs, expected):
        check(got[:3] == want[:3], "%s: KV %s read as type %s/%s, expected %s/%s"
              % (tag, want[0], got[1], got[2], want[1], want[2]) if got[0] == want[0]
              else "%s: KV order: %s where %s was written" % (tag, got[0], want[0]))
        check(same_value(got[3], want[3]), "%s: %s = %r, expected %r" % (tag, want[0], got[3], want[3]))
    got_t = rosetta_tensors(model)
    check(len(got_t) == len(tensors), "%s: %d tensors, expected %d" % (tag, len(got_t), len(tensors)))
    for (name, dtype, shape, data), (wname, arr, _raw, code, wshape) in zip(got_t, tensors):
        check(name == wname, "%s: tensor %s where %s was written" % (tag, name, wname))
        check(dtype == code, "%s: %s dtype %d, expected ggml type %d" % (tag, name, dtype, code))
        check(shape == wshape, "%s: %s shape %s, expected %s" % (tag, name, shape, wshape))
        check(data == arr.tobytes(), "%s: %s bytes differ from what gguf-py was given" % (tag, name))
    return model


def reader_snapshot(path):
    r = GGUFReader(path)
    fields = [(f.name, [t for t in f.types], [bytes(p.tobytes()) for p in f.parts])
              for f in r.fields.values() if not f.name.startswith("GGUF.")]
    tensors = [(t.name, int(t.tensor_type), [int(x) for x in t.shape], bytes(t.data.tobytes()))
               for t in r.tensors]
    return fields, tensors


def check_write_back(model, src, big_endian):
    tag = os.path.basename(src)
    out = src + ".rosetta.gguf"
    st, msg = write_gguf(model, out, allow_nested_arrays=True)
    if not check(st == 0, "%s: Rosetta cannot write it back: %s" % (tag, msg)):
        return
    sf, st_ = reader_snapshot(src)
    of, ot = reader_snapshot(out)
    if big_endian:  # gguf-py reads the source's raw parts big-endian; compare decoded values
        r_src, r_out = GGUFReader(src), GGUFReader(out)
        check([f.name for f in r_src.fields.values()][3:] == [f.name for f in r_out.fields.values()][3:],
              "%s: keys differ after the write" % tag)
        for f in r_src.fields.values():
            if f.name.startswith("GGUF.") or f.name == "m.nested":
                continue
            g = r_out.fields[f.name]
            check(str(f.contents()) == str(g.contents()),
                  "%s: %s = %r after the write, %r before" % (tag, f.name, g.contents(), f.contents()))
        for a, b in zip(r_src.tensors, r_out.tensors):
            same_data = np.array_equal(a.data, b.data)
            if int(a.tensor_type) == 30:  # gguf-py hands BF16 out as raw bytes: swap them here
                same_data = np.array_equal(np.frombuffer(a.data.tobytes(), ">u2"),
                                           np.frombuffer(b.data.tobytes(), "<u2"))
            check(a.name == b.name and a.tensor_type == b.tensor_type and
                  list(a.shape) == list(b.shape) and same_data,
                  "%s: tensor %s differs after the write" % (tag, a.name))
        return
    check(sf == of, "%s: gguf-py sees different fields after Rosetta's write" % tag)
    check(st_ == ot, "%s: gguf-py sees different tensors after Rosetta's write" % tag)
    with open(src, "rb") as a, open(out, "rb") as b:
        check(a.read() == b.read(), "%s: the written file is not byte-identical" % tag)


def part_gguf_py():
    n = 0
    for alignment, big_endian in ((None, False), (1, False), (64, False), (256, False),
                                  (None, True)):
        path = os.path.join(WORK, "gguf-py-%s-%s.gguf" % (alignment or "default",
                                                          "be" if big_endian else "le"))
        meta, tensors = write_with_gguf_py(path, alignment, big_endian)
        model = check_read(path, alignment, big_endian, meta, tensors)
        if model:
            check_write_back(model, path, big_endian)
            lib.rf_model_free(model)
        n += 1
    print("gguf-py -> Rosetta -> gguf-py: %d files checked" % n)


# ---- 3: fixtures through the library -------------------------------------------------------------

HF_TO_GGUF = [
    (r"model\.embed_tokens\.weight", "token_embd.weight"),
    (r"model\.norm\.weight", "output_norm.weight"),
    (r"lm_head\.weight", "output.weight"),
    (r"model\.layers\.(\d+)\.self_attn\.([qkv])_proj\.(weight|bias)", r"blk.\1.attn_\2.\3"),
    (r"model\.layers\.(\d+)\.self_attn\.o_proj\.weight", r"blk.\1.attn_output.weight"),
    (r"model\.layers\.(\d+)\.input_layernorm\.weight", r"blk.\1.attn_norm.weight"),
    (r"model\.layers\.(\d+)\.post_attention_layernorm\.weight", r"blk.\1.ffn_norm.weight"),
    (r"model\.layers\.(\d+)\.mlp\.(gate|up|down)_proj\.weight", r"blk.\1.ffn_\2.weight"),
]


def gguf_name(hf):
    for pattern, repl in HF_TO_GGUF:
        if re.fullmatch(pattern, hf):
            return re.sub(pattern, repl, hf)
    raise KeyError(hf)


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        blob = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        out[name] = (info["dtype"], info["shape"], blob[a:b])
    return out


def field_value(r, key):
    f = r.fields.get(key)
    return None if f is None else f.contents()


def field_type(r, key):
    f = r.fields.get(key)
    return None if f is None else [t for t in f.types]


def check_fixture(name):
    src = os.path.join(ROOT, "fixtures", name)
    if not os.path.isdir(src):
        return "fixtures/%s is not in this tree" % name
    model, msg = open_model(src)
    if not model:
        return "the library cannot open %s yet: %s" % (name, msg)
    out = os.path.join(WORK, name + ".gguf")
    st, msg = write_gguf(model, out)
    lib.rf_model_free(model)
    if not check(st == 0, "%s: rf_gguf_write failed: %s" % (name, msg)):
        return None
    model, _ = open_model(src)
    again = out + ".again.gguf"
    write_gguf(model, again)
    lib.rf_model_free(model)
    with open(out, "rb") as a, open(again, "rb") as b:
        check(a.read() == b.read(), "%s: two writes of the same model differ" % name)
    with open(os.path.join(src, "config.json")) as f:
        cfg = json.load(f)
    with open(os.path.join(src, "tokenizer.json")) as f:
        tok = json.load(f)
    with open(os.path.join(src, "tokenizer_config.json")) as f:
        tok_cfg = json.load(f)
    r = GGUFReader(out)
    theta = cfg.get("rope_theta", cfg.get("rope_parameters", {}).get("rope_theta"))
    tied = cfg.get("tie_word_embeddings", False)
    expect = [
        ("general.architecture", [VT.STRING], "qwen2"),
        ("qwen2.block_count", [VT.UINT32], cfg["num_hidden_layers"]),
        ("qwen2.context_length", [VT.UINT32], cfg["max_position_embeddings"]),
        ("qwen2.embedding_length", [VT.UINT32], cfg["hidden_size"]),
        ("qwen2.feed_forward_length", [VT.UINT32], cfg["intermediate_size"]),
        ("qwen2.attention.head_count", [VT.UINT32], cfg["num_attention_heads"]),
        ("qwen2.attention.head_count_kv", [VT.UINT32], cfg["num_key_value_heads"]),
        ("qwen2.rope.freq_base", [VT.FLOAT32], float(np.float32(theta))),
        ("qwen2.attention.layer_norm_rms_epsilon", [VT.FLOAT32],
         float(np.float32(cfg["rms_norm_eps"]))),
        ("tokenizer.ggml.model", [VT.STRING], "gpt2"),
        ("tokenizer.ggml.pre", [VT.STRING], "qwen2"),
        ("tokenizer.ggml.bos_token_id", [VT.UINT32], cfg["bos_token_id"]),
        ("tokenizer.ggml.eos_token_id", [VT.UINT32], cfg["eos_token_id"]),
        ("tokenizer.ggml.padding_token_id", [VT.UINT32], cfg["pad_token_id"]),
        ("tokenizer.ggml.add_bos_token", [VT.BOOL], False),
        ("tokenizer.chat_template", [VT.STRING], tok_cfg["chat_template"]),
        ("general.quantization_version", [VT.UINT32], 2),
    ]
    for key, types, value in expect:
        check(field_type(r, key) == types, "%s: %s has types %s, expected %s"
              % (name, key, field_type(r, key), types))
        check(field_value(r, key) == value, "%s: %s = %r, expected %r"
              % (name, key, field_value(r, key), value))
    tokens = field_value(r, "tokenizer.ggml.tokens")
    types = field_value(r, "tokenizer.ggml.token_type")
    check(field_type(r, "tokenizer.ggml.tokens") == [VT.ARRAY, VT.STRING], "%s: tokens type" % name)
    check(field_type(r, "tokenizer.ggml.token_type") == [VT.ARRAY, VT.INT32], "%s: token_type" % name)
    check(tokens is not None and len(tokens) == cfg["vocab_size"],
          "%s: %s tokens, expected one per embedding row (%d)"
          % (name, tokens and len(tokens), cfg["vocab_size"]))
    vocab = dict(tok["model"]["vocab"])
    for added in tok.get("added_tokens", []):
        vocab[added["content"]] = added["id"]
    if tokens:
        wrong = [i for text, i in vocab.items() if tokens[i] != text]
        check(not wrong, "%s: %d tokens differ from tokenizer.json (first id %s)"
              % (name, len(wrong), wrong[:1]))
        fillers = range(len(vocab), cfg["vocab_size"])
        check(all(tokens[i] == "[PAD%d]" % i and types[i] == 5 for i in fillers),
              "%s: filler tokens are [PAD{id}] of type UNUSED" % name)
        for added in tok.get("added_tokens", []):
            check(types[added["id"]] == 3, "%s: special token %r is CONTROL" % (name, added["content"]))
    merges = field_value(r, "tokenizer.ggml.merges")
    want_merges = [m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]]
    check(merges == want_merges, "%s: merges differ from tokenizer.json" % name)

    st_tensors = read_safetensors(os.path.join(src, "model.safetensors"))
    got = {t.name: t for t in r.tensors}
    expected_names = {gguf_name(n) for n in st_tensors if not (tied and n == "lm_head.weight")}
    check(set(got) == expected_names, "%s: tensor names %s" % (name, sorted(set(got) ^ expected_names)))
    check(tied == ("output.weight" not in got), "%s: output.weight present iff untied" % name)
    for hf, (dtype, shape, data) in st_tensors.items():
        t = got.get(gguf_name(hf))
        if t is None:
            continue
        check([int(x) for x in t.shape] == list(reversed(shape)),
              "%s: %s ne %s, expected the reversed HF shape %s" % (name, hf, list(t.shape), shape))
        if len(shape) <= 1:
            # vectors (norms, biases) are widened to F32 as llama.cpp's converter stores them
            check(dtype == "BF16" and int(t.tensor_type) == 0, "%s: %s dtype %d, expected F32"
                  % (name, hf, int(t.tensor_type)))
            halves = struct.unpack("<%dH" % (len(data) // 2), data)
            widened = struct.pack("<%dI" % len(halves), *(h << 16 for h in halves))
            check(bytes(t.data.tobytes()) == widened,
                  "%s: %s F32 values differ from the SafeTensors file's BF16 values" % (name, hf))
        else:
            check(dtype == "BF16" and int(t.tensor_type) == 30, "%s: %s dtype" % (name, hf))
            check(bytes(t.data.tobytes()) == data,
                  "%s: %s bytes differ from the SafeTensors file" % (name, hf))
    print("fixture %s -> GGUF: %d tensors, %d KV pairs checked with gguf-py" % (name, len(got), len(r.fields) - 3))
    return None


def part_fixtures():
    for name in ("tiny-qwen2", "tiny-qwen2-tied", "tiny-qwen2-odd"):
        reason = check_fixture(name)
        if reason:
            print("NOTE: fixture check for %s not run: %s" % (name, reason), file=sys.stderr)


part_gguf_py()
part_fixtures()
if failures:
    print("%d interop check(s) failed; files kept in %s" % (len(failures), WORK), file=sys.stderr)
    sys.exit(1)
shutil.rmtree(WORK, ignore_errors=True)
print("test_gguf_interop: ok")
