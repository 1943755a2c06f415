#!/usr/bin/env python3
"""SafeTensors interoperability between Rosetta and the `safetensors` library (PyPI).

1. Files written by safetensors (numpy API and the low-level TensorSpec API for BF16/F8/F4/C64,
   metadata, empty tensors, scalars, hand-made unaligned files, sharded sets with an index) are
   read by Rosetta through ctypes on librosetta-format.so with identical names, shapes, dtypes
   and bytes.
2. Files written by Rosetta (from models read from hand-laid-out files, so only the exported API
   is used) are read back by safetensors with identical content, and are byte-identical to what
   safetensors writes for the same tensors and metadata.
3. Each fixture (fixtures/tiny-qwen2*) loads: tensor count and shapes, config values equal
   config.json, tokenizer size equals tokenizer.json; writing it back reproduces every file.
4. A fixture taken through GGUF and written back as SafeTensors keeps its tensors, and the
   companion files rebuilt from the typed view describe the same config and tokenizer.
Exit 77 (skip) only when numpy or safetensors is missing; CI installs both.
"""
import ctypes
import json
import os
import shutil
import struct
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rosetta_lib import RF_VALUE_STRING, Error, load_library, value_bytes  # noqa: E402

try:
    import numpy as np
    import safetensors
    import safetensors.numpy as stnp
except ImportError as e:  # pragma: no cover - CI installs both
    print("SKIP: numpy and safetensors are needed (%s); run scripts/install-deps --python" % e,
          file=sys.stderr)
    sys.exit(77)

ROOT = os.environ.get("ROSETTA_ROOT", os.path.join(os.path.dirname(__file__), "../.."))

FAILURES = []
CHECKS = [0]


def check(cond, what):
    CHECKS[0] += 1
    if not cond:
        FAILURES.append(what)
        print("FAIL:", what, file=sys.stderr)


# ---- ctypes view of the library (tests/interop/rosetta_lib.py) -------------------------------

class WriteOptions(ctypes.Structure):  # rf_safetensors_write_options
    _fields_ = [("max_shard_size", ctypes.c_uint64), ("no_companions", ctypes.c_bool),
                ("regenerate_companions", ctypes.c_bool), ("provenance", ctypes.c_char_p)]


LIBR = load_library({
    "rf_safetensors_write": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_char_p,
                                            ctypes.POINTER(WriteOptions), ctypes.POINTER(Error)]),
}, structs={"rf_safetensors_write_options": WriteOptions})


def rosetta_open(path):
    err = Error()
    m = LIBR.rf_model_open(path.encode(), None, ctypes.byref(err))
    if not m:
        raise RuntimeError(err.message.decode())
    return m


def rosetta_tensors(m):
    """{name: (dtype string, shape list, bytes, source)} as Rosetta sees the model."""
    out = {}
    for i in range(LIBR.rf_model_n_tensors(m)):
        t = LIBR.rf_model_tensor(m, i).contents
        data = ctypes.string_at(t.data, t.nbytes) if t.nbytes else b""
        out[t.name.decode()] = (LIBR.rf_dtype_name(t.dtype).decode(), list(t.shape[:t.ndim]),
                                data, t.source)
    return out


def rosetta_metadata(m):
    out = {}
    for i in range(LIBR.rf_model_n_kv(m)):
        kv = LIBR.rf_model_kv(m, i).contents
        if kv.value.type == RF_VALUE_STRING:
            out[kv.key.decode()] = value_bytes(kv.value).decode()
    return out


def python_view(path):
    """{name: (dtype string, shape, bytes)} and metadata, as the safetensors library sees a file."""
    with open(path, "rb") as f:
        raw = f.read()
    tensors = {name: (info["dtype"], list(info["shape"]), bytes(info["data"]))
               for name, info in safetensors.deserialize(raw)}
    n = struct.unpack("<Q", raw[:8])[0]
    meta = json.loads(raw[8:8 + n]).get("__metadata__") or {}
    return tensors, meta


class Builder:
    """A model for Rosetta's writer, through the exported API only: the tensors are laid out
    here byte by byte in a SafeTensors file in the order they are added (not the writer's
    order, data unaligned), with the metadata given, and that file is opened with
    rf_model_open; write() then runs rf_safetensors_write on it."""

    count = 0

    def __init__(self, tmp):
        self.tmp = tmp
        self.entries = []
        self.metadata = None

    def add(self, name, st_dtype, shape, data):
        self.entries.append((name, st_dtype, list(shape), data))

    def meta(self, key, value):
        self.metadata = dict(self.metadata or {}, **{key: value})

    def write(self, path, max_shard=0, provenance=None):
        Builder.count += 1
        src = os.path.join(self.tmp, "builder-%d.src.safetensors" % Builder.count)
        handmade_file(src, self.entries, self.metadata)
        m = rosetta_open(src)
        try:
            opts = WriteOptions(max_shard, False, False,
                                provenance.encode() if provenance else None)
            err = Error()
            rc = LIBR.rf_safetensors_write(m, path.encode(), ctypes.byref(opts), ctypes.byref(err))
            if rc != 0:
                raise RuntimeError(err.message.decode())
        finally:
            LIBR.rf_model_free(m)

    def free(self):
        pass


# ---- test data ------------------------------------------------------------------------------

def numpy_tensors():
    rng = np.random.default_rng(1234)
    return {
        "bool": rng.integers(0, 2, (3, 5)).astype(np.bool_),
        "u8": rng.integers(0, 256, (7,), dtype=np.uint8),
        "i8": rng.integers(-128, 128, (2, 3, 4), dtype=np.int8),
        "i16": rng.integers(-30000, 30000, (9,), dtype=np.int16),
        "u16": rng.integers(0, 65535, (4, 4), dtype=np.uint16),
        "i32": rng.integers(-2**31, 2**31 - 1, (5,), dtype=np.int32),
        "u32": rng.integers(0, 2**32 - 1, (3,), dtype=np.uint32, endpoint=True),
        "i64": rng.integers(-2**62, 2**62, (2, 2), dtype=np.int64),
        "u64": rng.integers(0, 2**63, (3,), dtype=np.uint64),
        "f16": rng.standard_normal((3, 7)).astype(np.float16),
        "f32": rng.standard_normal((4, 3, 2)).astype(np.float32),
        "f64": rng.standard_normal((5,)).astype(np.float64),
        "c64": (rng.standard_normal(3) + 1j * rng.standard_normal(3)).astype(np.complex64),
        "scalar": np.array(3.25, dtype=np.float32),
        "empty": np.zeros((0, 4), dtype=np.float32),
        "model.layers.0.weird name/ü": np.arange(6, dtype=np.int16),
    }


ST_NAME = {np.dtype(np.bool_): "BOOL", np.dtype(np.uint8): "U8", np.dtype(np.int8): "I8",
           np.dtype(np.int16): "I16", np.dtype(np.uint16): "U16", np.dtype(np.int32): "I32",
           np.dtype(np.uint32): "U32", np.dtype(np.int64): "I64", np.dtype(np.uint64): "U64",
           np.dtype(np.float16): "F16", np.dtype(np.float32): "F32", np.dtype(np.float64): "F64",
           np.dtype(np.complex64): "C64"}

# Types numpy has no dtype for, written through safetensors' TensorSpec: (spec dtype, ST name,
# element count, bytes).
RAW_TYPES = [("bfloat16", "BF16", 6, 12), ("float8_e4m3fn", "F8_E4M3", 5, 5),
             ("float8_e5m2", "F8_E5M2", 3, 3), ("float8_e8m0fnu", "F8_E8M0", 2, 2),
             ("float8_e4m3fnuz", "F8_E4M3FNUZ", 4, 4), ("float8_e5m2fnuz", "F8_E5M2FNUZ", 1, 1)]


def raw_tensor_file(path, metadata=None):
    """BF16/F8/F4 tensors from raw bytes through safetensors' low-level writer; None when this
    safetensors version has no TensorSpec."""
    spec = getattr(safetensors, "TensorSpec", None)
    if spec is None or not hasattr(safetensors, "serialize_file"):
        return None
    rng = np.random.default_rng(99)
    arrays, specs, want = [], {}, {}
    for i, (dt, st_name, elems, nbytes) in enumerate(RAW_TYPES):
        a = rng.integers(0, 256, nbytes, dtype=np.uint8)
        arrays.append(a)
        specs["raw.%d.%s" % (i, st_name)] = spec(dtype=dt, shape=(elems,),
                                                  data_ptr=a.ctypes.data, data_len=nbytes)
        want["raw.%d.%s" % (i, st_name)] = (st_name, [elems], a.tobytes())
    a = rng.integers(0, 256, 3, dtype=np.uint8)  # F4: pairs of 4-bit values per byte
    arrays.append(a)
    specs["raw.f4"] = spec(dtype="float4_e2m1fn_x2", shape=(3,), data_ptr=a.ctypes.data,
                           data_len=3)
    want["raw.f4"] = ("F4", [6], a.tobytes())
    safetensors.serialize_file(specs, path, metadata=metadata)
    return want


def handmade_file(path, entries, metadata=None, pad=False):
    """A SafeTensors file written here byte by byte (no library): entries is a list of
    (name, dtype, shape, bytes) in data order. Without pad the data is left unaligned."""
    header, offset = {}, 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, data in entries:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(e[3] for e in entries))
    return len(text)


# ---- 1. safetensors -> Rosetta ------------------------------------------------------------

def python_to_rosetta(tmp):
    arrays = numpy_tensors()
    path = os.path.join(tmp, "np.safetensors")
    meta = {"format": "np", "note": "ünïcode \"quoted\"", "empty": ""}
    stnp.save_file(arrays, path, metadata=meta)
    m = rosetta_open(path)
    got = rosetta_tensors(m)
    check(sorted(got) == sorted(arrays), "numpy file: names %s" % sorted(got))
    for name, a in arrays.items():
        if name not in got:
            continue
        dtype, shape, data, _ = got[name]
        check(dtype == ST_NAME[a.dtype], "%s: dtype %s, expected %s" % (name, dtype,
                                                                         ST_NAME[a.dtype]))
        check(shape == list(a.shape), "%s: shape %s, expected %s" % (name, shape, list(a.shape)))
        check(data == a.tobytes(), "%s: bytes differ" % name)
    check(rosetta_metadata(m) == meta, "numpy file: metadata %s" % rosetta_metadata(m))
    LIBR.rf_model_free(m)

    raw_path = os.path.join(tmp, "raw.safetensors")
    want = raw_tensor_file(raw_path, metadata={"format": "pt"})
    if want is None:
        print("note: this safetensors has no TensorSpec; BF16/F8/F4 come from hand-made files only",
              file=sys.stderr)
    else:
        m = rosetta_open(raw_path)
        got = rosetta_tensors(m)
        for name, (dtype, shape, data) in want.items():
            check(name in got and got[name][:3] == (dtype, shape, data),
                  "raw %s: got %s" % (name, got.get(name, (None,))[:2]))
        check(len(got) == len(want), "raw file: %d tensors, expected %d" % (len(got), len(want)))
        LIBR.rf_model_free(m)

    # Hand-made, unaligned (no header padding): the library itself reads it, so must Rosetta.
    bf16 = struct.pack("<4H", 0x3F80, 0xC000, 0x7F80, 0x0001)
    f32 = struct.pack("<3f", 1.5, -2.25, 1e-30)
    path = os.path.join(tmp, "unaligned.safetensors")
    for odd_name in ("o", "od", "odd", "oddd"):  # one of these leaves the F32 data misaligned
        entries = [(odd_name, "U8", [1], b"\x07"), ("w", "F32", [3], f32),
                   ("b", "BF16", [2, 2], bf16)]
        n = handmade_file(path, entries)
        if (8 + n + 1) % 4 != 0:
            break
    check((8 + n + 1) % 4 != 0, "the hand-made file really puts F32 data off alignment")
    py, _ = python_view(path)
    m = rosetta_open(path)
    got = rosetta_tensors(m)
    for name, dtype, shape, data in entries:
        check(py[name] == (dtype, shape, data), "safetensors reads hand-made %s" % name)
        check(got[name][:3] == (dtype, shape, data), "Rosetta reads unaligned %s" % name)
    LIBR.rf_model_free(m)

    # Sharded set: shards by safetensors, index by hand.
    shard_dir = os.path.join(tmp, "sharded")
    os.makedirs(shard_dir)
    names = ["model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
             "model-00003-of-00003.safetensors"]
    parts = [{k: arrays[k] for k in ["f32", "i8", "scalar"]},
             {k: arrays[k] for k in ["f16", "u64"]},
             {k: arrays[k] for k in ["bool", "empty"]}]
    weight_map, total = {}, 0
    for fname, part in zip(names, parts):
        stnp.save_file(part, os.path.join(shard_dir, fname), metadata={"format": "pt"})
        for k, a in part.items():
            weight_map[k] = fname
            total += a.nbytes
    with open(os.path.join(shard_dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    m = rosetta_open(shard_dir)
    got = rosetta_tensors(m)
    check(LIBR.rf_model_n_files(m) == 3, "sharded: 3 files mapped")
    check(LIBR.rf_model_n_warnings(m) == 0, "sharded: no warnings")
    for k, fname in weight_map.items():
        dtype, shape, data, source = got[k]
        check(names[source] == fname, "sharded %s: source %d, expected %s" % (k, source, fname))
        check(data == arrays[k].tobytes() and shape == list(arrays[k].shape),
              "sharded %s: content" % k)
    check(len(got) == len(weight_map), "sharded: %d tensors" % len(got))
    LIBR.rf_model_free(m)

    # The index must agree with the shards: drop one entry and add a phantom one.
    bad_map = dict(weight_map)
    del bad_map["u64"]
    with open(os.path.join(shard_dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"weight_map": bad_map}, f)
    try:
        rosetta_open(shard_dir)
        check(False, "an index missing a tensor was accepted")
    except RuntimeError as e:
        check("extra tensor" in str(e) and "u64" in str(e), "extra tensor message: %s" % e)
    bad_map = dict(weight_map)
    bad_map["ghost"] = names[0]
    with open(os.path.join(shard_dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"weight_map": bad_map}, f)
    try:
        rosetta_open(shard_dir)
        check(False, "an index naming a phantom tensor was accepted")
    except RuntimeError as e:
        check("missing tensor" in str(e) and "ghost" in str(e), "missing tensor message: %s" % e)


# ---- 2. Rosetta -> safetensors -----------------------------------------------------------

def rosetta_to_python(tmp):
    arrays = numpy_tensors()
    for meta in (None, {"format": "pt"}):
        b = Builder(tmp)
        for name, a in arrays.items():
            b.add(name, ST_NAME[a.dtype], list(a.shape), a.tobytes())
        if meta:
            for k, v in meta.items():
                b.meta(k, v)
        ours = os.path.join(tmp, "rosetta-%s.safetensors" % ("meta" if meta else "plain"))
        b.write(ours)
        b.free()
        loaded = stnp.load_file(ours)
        check(sorted(loaded) == sorted(arrays), "safetensors reads Rosetta's names")
        for name, a in arrays.items():
            check(name in loaded and loaded[name].dtype == a.dtype and
                  loaded[name].shape == a.shape and loaded[name].tobytes() == a.tobytes(),
                  "safetensors reads Rosetta's %s" % name)
        with safetensors.safe_open(ours, "np") as f:
            check((f.metadata() or None) == meta, "metadata read back: %s" % f.metadata())
        theirs = os.path.join(tmp, "python-%s.safetensors" % ("meta" if meta else "plain"))
        stnp.save_file(arrays, theirs, metadata=meta)
        with open(ours, "rb") as f1, open(theirs, "rb") as f2:
            a_bytes, b_bytes = f1.read(), f2.read()
        check(a_bytes == b_bytes, "Rosetta's bytes equal safetensors.save_file's (metadata=%s): "
              "%d vs %d bytes" % (meta, len(a_bytes), len(b_bytes)))

    # BF16/F8/F4 from raw bytes: Rosetta's file equals the library's for the same specs.
    theirs = os.path.join(tmp, "raw-theirs.safetensors")
    want = raw_tensor_file(theirs, metadata={"format": "pt"})
    if want is not None:
        b = Builder(tmp)
        for name, (dtype, shape, data) in want.items():
            b.add(name, dtype, shape, data)
        b.meta("format", "pt")
        ours = os.path.join(tmp, "raw-ours.safetensors")
        b.write(ours)
        b.free()
        with open(ours, "rb") as f1, open(theirs, "rb") as f2:
            check(f1.read() == f2.read(), "raw dtypes: Rosetta's bytes equal the library's")
        py, meta = python_view(ours)
        check(py == want and meta == {"format": "pt"}, "raw dtypes read back by safetensors")

    # Read -> write of a file in canonical order gives the same bytes.
    src = os.path.join(tmp, "python-meta.safetensors")
    m = rosetta_open(src)
    out = os.path.join(tmp, "again.safetensors")
    opts = WriteOptions(0, False, False, None)
    err = Error()
    check(LIBR.rf_safetensors_write(m, out.encode(), ctypes.byref(opts), ctypes.byref(err)) == 0,
          "rewrite: %s" % err.message.decode())
    LIBR.rf_model_free(m)
    with open(src, "rb") as f1, open(out, "rb") as f2:
        check(f1.read() == f2.read(), "read + write is byte-identical")

    # Sharded output: every shard is a file the library reads; the index covers all of them.
    b = Builder(tmp)
    for name, a in arrays.items():
        b.add(name, ST_NAME[a.dtype], list(a.shape), a.tobytes())
    b.meta("format", "pt")
    shard_dir = os.path.join(tmp, "rosetta-shards")
    b.write(shard_dir, max_shard=64, provenance='{"tool":"interop-test"}')
    b.free()
    with open(os.path.join(shard_dir, "model.safetensors.index.json")) as f:
        index = json.load(f)
    files = sorted(set(index["weight_map"].values()))
    check(len(files) > 1, "max_shard_size 64 gives several shards (%d)" % len(files))
    check(index["metadata"]["total_size"] == sum(a.nbytes for a in arrays.values()),
          "total_size is the tensor byte count")
    seen = {}
    for fname in files:
        check(fname.startswith("model-0000") and "-of-%05d.safetensors" % len(files) in fname,
              "shard name %s" % fname)
        with safetensors.safe_open(os.path.join(shard_dir, fname), "np") as f:
            check(f.metadata() == {"format": "pt", "rosetta.provenance": '{"tool":"interop-test"}'},
                  "shard metadata %s" % f.metadata())
            for k in f.keys():
                check(index["weight_map"].get(k) == fname, "index places %s in %s" % (k, fname))
                seen[k] = f.get_tensor(k)
    check(sorted(seen) == sorted(arrays), "shards hold every tensor exactly once")
    for k, a in arrays.items():
        check(k in seen and seen[k].tobytes() == a.tobytes(), "shard content of %s" % k)


# ---- 3. fixtures ----------------------------------------------------------------------------

CONFIG_FIELDS = [("hidden_size", ["hidden_size"]), ("n_layers", ["num_hidden_layers"]),
                 ("n_heads", ["num_attention_heads"]), ("n_kv_heads", ["num_key_value_heads"]),
                 ("intermediate_size", ["intermediate_size"]), ("vocab_size", ["vocab_size"]),
                 ("context_length", ["max_position_embeddings"]),
                 ("rms_norm_eps", ["rms_norm_eps"]), ("bos_token_id", ["bos_token_id"]),
                 ("eos_token_id", ["eos_token_id"]), ("pad_token_id", ["pad_token_id"])]


def fixtures(tmp):
    base = os.path.join(ROOT, "fixtures")
    dirs = sorted(d for d in (os.listdir(base) if os.path.isdir(base) else [])
                  if d.startswith("tiny-qwen2") and
                  os.path.exists(os.path.join(base, d, "model.safetensors")))
    if not dirs:
        print("note: no fixtures/tiny-qwen2* on this branch yet; fixture checks not run",
              file=sys.stderr)
        return
    for d in dirs:
        path = os.path.join(base, d)
        m = rosetta_open(path)
        got = rosetta_tensors(m)
        py, meta = python_view(os.path.join(path, "model.safetensors"))
        check(len(got) == len(py), "%s: %d tensors, safetensors sees %d" % (d, len(got), len(py)))
        for name, (dtype, shape, data) in py.items():
            check(name in got and got[name][:3] == (dtype, shape, data), "%s: tensor %s" % (d, name))
        with open(os.path.join(path, "config.json")) as f:
            cfg = json.load(f)
        c = LIBR.rf_model_config_get(m).contents
        for field, keys in CONFIG_FIELDS:
            want = next((cfg[k] for k in keys if k in cfg and cfg[k] is not None), None)
            if want is None:
                continue
            check(getattr(c, field) == want, "%s: %s = %s, config.json says %s"
                  % (d, field, getattr(c, field), want))
        theta = cfg.get("rope_theta", (cfg.get("rope_parameters") or {}).get("rope_theta"))
        check(c.rope_theta == theta, "%s: rope_theta %s vs %s" % (d, c.rope_theta, theta))
        check(c.tie_word_embeddings == int(cfg.get("tie_word_embeddings", False)),
              "%s: tie flag" % d)
        check(c.architecture.decode() == cfg["model_type"], "%s: architecture" % d)
        check(c.rope_type == 2, "%s: NEOX rope" % d)
        check(("lm_head.weight" in got) == (not cfg.get("tie_word_embeddings", False)),
              "%s: lm_head present exactly when untied" % d)
        with open(os.path.join(path, "tokenizer.json")) as f:
            tj = json.load(f)
        ids = set(tj["model"]["vocab"].values()) | {t["id"] for t in tj.get("added_tokens", [])}
        tok = LIBR.rf_model_tokenizer(m).contents
        check(tok.n_tokens == max(ids) + 1 == len(ids), "%s: %d tokens, tokenizer.json has %d"
              % (d, tok.n_tokens, len(ids)))
        check(tok.n_merges == len(tj["model"]["merges"]), "%s: merges" % d)
        check(tok.pre == b"qwen2" and tok.model == b"gpt2", "%s: pre/model" % d)
        inv = {v: k for k, v in tj["model"]["vocab"].items()}
        for t in tj.get("added_tokens", []):
            inv[t["id"]] = t["content"]
        check(all(tok.tokens[i].decode() == inv[i] for i in range(tok.n_tokens)),
              "%s: every token text" % d)
        with open(os.path.join(path, "tokenizer_config.json")) as f:
            tc = json.load(f)
        if isinstance(tc.get("chat_template"), str):
            check(c.chat_template.decode() == tc["chat_template"], "%s: chat template" % d)
        # writing the fixture back reproduces every file byte for byte
        out = os.path.join(tmp, "fixture-" + d)
        opts = WriteOptions(0, False, False, None)
        err = Error()
        rc = LIBR.rf_safetensors_write(m, out.encode(), ctypes.byref(opts), ctypes.byref(err))
        check(rc == 0, "%s: write back: %s" % (d, err.message.decode()))
        for fname in sorted(os.listdir(path)):
            src = os.path.join(path, fname)
            if os.path.isfile(src) and (fname.endswith(".json") or fname.endswith(".safetensors")):
                with open(src, "rb") as f1, open(os.path.join(out, fname), "rb") as f2:
                    check(f1.read() == f2.read(), "%s: %s reproduced byte for byte" % (d, fname))
        LIBR.rf_model_free(m)


def gguf_to_safetensors(tmp):
    """fixture -> GGUF (Rosetta's GGUF writer) -> SafeTensors: the companion files are rebuilt
    from the typed view (GGUF carries no HF files) and must describe the same model."""
    if not hasattr(LIBR, "rf_gguf_write"):
        print("note: this build has no GGUF writer; GGUF -> SafeTensors not checked", file=sys.stderr)
        return
    LIBR.rf_gguf_write.restype = ctypes.c_int
    LIBR.rf_gguf_write.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p,
                                   ctypes.POINTER(Error)]
    base = os.path.join(ROOT, "fixtures")
    for d in ("tiny-qwen2", "tiny-qwen2-tied"):
        src = os.path.join(base, d)
        if not os.path.exists(os.path.join(src, "model.safetensors")):
            continue
        m = rosetta_open(src)
        gguf = os.path.join(tmp, d + ".gguf")
        err = Error()
        check(LIBR.rf_gguf_write(m, gguf.encode(), None, ctypes.byref(err)) == 0,
              "%s: GGUF write: %s" % (d, err.message.decode()))
        LIBR.rf_model_free(m)
        g = rosetta_open(gguf)
        out = os.path.join(tmp, "from-gguf-" + d)
        opts = WriteOptions(0, False, False, None)
        check(LIBR.rf_safetensors_write(g, out.encode(), ctypes.byref(opts), ctypes.byref(err)) == 0,
              "%s: SafeTensors write from GGUF: %s" % (d, err.message.decode()))
        LIBR.rf_model_free(g)
        a, _ = python_view(os.path.join(src, "model.safetensors"))
        b, meta = python_view(os.path.join(out, "model.safetensors"))
        # the GGUF writer stores vectors (norms, biases) as F32, as llama.cpp needs: the same
        # values widened exactly
        for name, (dtype, shape, data) in list(a.items()):
            if dtype == "BF16" and len(shape) <= 1:
                halves = struct.unpack("<%dH" % (len(data) // 2), data)
                a[name] = ("F32", shape, struct.pack("<%dI" % len(halves), *(h << 16 for h in halves)))
        check(a == b, "%s: tensors (HF names, shapes, bytes; vectors widened to F32) survive GGUF" % d)
        check(meta == {"format": "pt"}, "%s: metadata %s" % (d, meta))
        with open(os.path.join(src, "tokenizer.json")) as f1, \
                open(os.path.join(out, "tokenizer.json")) as f2:
            check(json.load(f1) == json.load(f2), "%s: tokenizer.json rebuilt identically" % d)
        with open(os.path.join(src, "config.json")) as f1, open(os.path.join(out, "config.json")) as f2:
            x, y = json.load(f1), json.load(f2)
        theta = x.get("rope_theta", (x.get("rope_parameters") or {}).get("rope_theta"))
        for k in ("architectures", "model_type", "hidden_size", "intermediate_size",
                  "num_attention_heads", "num_hidden_layers", "num_key_value_heads",
                  "max_position_embeddings", "rms_norm_eps", "tie_word_embeddings",
                  "bos_token_id", "eos_token_id", "vocab_size"):
            check(x.get(k) == y.get(k), "%s: config %s = %s, source %s" % (d, k, y.get(k), x.get(k)))
        check(y.get("rope_theta") == theta, "%s: rope_theta %s" % (d, y.get("rope_theta")))
        check(y.get("torch_dtype") == x.get("torch_dtype", x.get("dtype")), "%s: torch_dtype" % d)
        with open(os.path.join(src, "tokenizer_config.json")) as f1, \
                open(os.path.join(out, "tokenizer_config.json")) as f2:
            x, y = json.load(f1), json.load(f2)
        for k in ("chat_template", "eos_token", "pad_token", "bos_token", "add_bos_token",
                  "added_tokens_decoder"):
            check(x.get(k) == y.get(k), "%s: tokenizer_config %s" % (d, k))


def main():
    tmp = tempfile.mkdtemp(prefix="rosetta-st-interop-")
    try:
        python_to_rosetta(tmp)
        rosetta_to_python(tmp)
        fixtures(tmp)
        gguf_to_safetensors(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("safetensors interop: %d checks, %d failed (safetensors %s, numpy %s)"
          % (CHECKS[0], len(FAILURES), safetensors.__version__, np.__version__))
    sys.exit(1 if FAILURES else 0)


if __name__ == "__main__":
    main()
