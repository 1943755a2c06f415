#!/usr/bin/env python3
"""APR v2 files written by Rosetta, checked by an independent reader written here from the format.

There is no Python APR library, so this script carries its own minimal implementation of APR v2
(docs/formats/apr.md; struct + zlib.crc32 + json, plus an LZ4 block decoder and a
re-implementation of serde_json's output rules) and never uses Rosetta to judge Rosetta's output:

1. The golden model of aprender's APR v2 specification (its tensors in a SafeTensors file written
   here, opened with rf_model_open, its metadata from that file and from
   rf_apr_write_options.extra) written by rf_apr_write equals the file this script lays out from
   the format's rules (and the specification's SHA-256).
2. Each fixture (tiny-qwen2, -tied, -odd; SafeTensors BF16) written to APR through the API:
   header fields and CRC, index order and packing, 64-byte data alignment and zero padding,
   footer CRC, tensor names / shapes / dtype codes / bytes equal to the SafeTensors file (read
   here with struct + json), lm_head.weight a copy of the embedding for tied models, metadata
   values equal to config.json and tokenizer.json, and the metadata bytes equal to what this
   script's serde_json re-implementation produces for the parsed object.
3. Read -> write through the library reproduces each APR file byte for byte.
4. LZ4-compressed output decodes (with the pure-Python decoder below) to the uncompressed image;
   zstd output has one frame whose declared content size is the image size.
5. serde_json number formatting: 20,000 random f64 and f32 bit patterns formatted by the library
   (its internal formatter, through the helper build/tests/serde_numbers) equal this script's
   formatting from Python's shortest repr (f64) and numpy's shortest float32 digits (f32).
Only the library's exported API is called through ctypes.
Exit 77 (skip) only when the library is not built or numpy is missing.
"""
import ctypes as C
import hashlib
import json
import math
import os
import random
import struct
import subprocess
import sys
import tempfile
import zlib
from decimal import Decimal

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rosetta_lib import (BUILD, KV, RF_VALUE_U64, Config, Error, Value,  # noqa: E402
                         load_library)

try:
    import numpy as np
except ImportError as e:  # installed in CI by scripts/install-deps --python
    print("SKIP: test_apr_interop needs numpy: %s" % e, file=sys.stderr)
    sys.exit(77)

ROOT = os.environ.get("ROSETTA_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
TMP = os.environ.get("TEST_TMP") or tempfile.gettempdir()
os.makedirs(TMP, exist_ok=True)
WORK = tempfile.mkdtemp(prefix="apr-interop-", dir=TMP)

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL: " + what, file=sys.stderr)
    return cond


# ---- ctypes view of the library (tests/interop/rosetta_lib.py) -------------------------------

class WriteOptions(C.Structure):  # rf_apr_write_options
    _fields_ = [("compression", C.c_int), ("zstd_level", C.c_int), ("metadata", C.c_int),
                ("model_type", C.c_char_p), ("name", C.c_char_p), ("extra", C.c_void_p),
                ("n_extra", C.c_size_t), ("extra_flags", C.c_uint16)]


lib = load_library({
    "rf_apr_write": (C.c_int, [C.c_void_p, C.c_char_p, C.POINTER(WriteOptions),
                               C.POINTER(Error)]),
}, structs={"rf_apr_write_options": WriteOptions})

COMPRESS_LZ4, COMPRESS_ZSTD = 1, 2
METADATA_KEEP = 1


def write_apr(model, path, compression=0):
    err = Error()
    opts = WriteOptions(compression=compression)
    st = lib.rf_apr_write(model, path.encode(), C.byref(opts), C.byref(err))
    check(st == 0, "rf_apr_write %s: %s" % (path, err.message.decode()))
    return st == 0


def open_model(path):
    err = Error()
    m = lib.rf_model_open(path.encode(), None, C.byref(err))
    check(m, "rf_model_open %s: %s" % (path, err.message.decode()))
    return m


# ---- serde_json's output rules (docs/formats/apr.md), re-implemented -----------------------------

def serde_layout(negative, digits, exp10, single):
    """ryu's layout for shortest digits D with the first digit at 10^exp10."""
    n = len(digits)
    e = exp10 - n + 1
    kk = n + e
    hi, lo = (13, -6) if single else (16, -5)
    s = "-" if negative else ""
    if e >= 0 and kk <= hi:
        return s + digits + "0" * (kk - n) + ".0"
    if 0 < kk <= hi:
        return s + digits[:kk] + "." + digits[kk:]
    if lo < kk <= 0:
        return s + "0." + "0" * (-kk) + digits
    if n == 1:
        return s + digits + "e" + str(kk - 1)
    return s + digits[0] + "." + digits[1:] + "e" + str(kk - 1)


def shortest(text):
    """Digits and decimal exponent of the first digit of a shortest decimal text."""
    sign, digits, exp = Decimal(text).as_tuple()
    d = "".join(map(str, digits)).rstrip("0") or "0"
    exp += len(digits) - len(d)  # value = d x 10^exp
    return d, exp + len(d) - 1


def serde_f64(x):
    if x != x or x in (float("inf"), float("-inf")):
        return "null"
    if x == 0:
        return "-0.0" if math.copysign(1.0, x) < 0 else "0.0"
    digits, exp10 = shortest(repr(abs(x)))  # Python's repr: shortest round-trip, nearest
    return serde_layout(x < 0, digits, exp10, False)


def serde_f32(x):
    x = np.float32(x)
    if not np.isfinite(x):
        return "null"
    if x == 0:
        return "-0.0" if np.signbit(x) else "0.0"
    digits, exp10 = shortest(np.format_float_scientific(abs(x), unique=True, trim="-"))
    return serde_layout(bool(x < 0), digits, exp10, True)


def serde_string(s):
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch in "\b\f\n\r\t":
            out.append({"\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}[ch])
        elif o < 0x20:
            out.append("\\u%04x" % o)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


F32_FIELDS = {"rope_theta", "rms_norm_eps"}
TYPED = ["model_type", "name", "description", "author", "license", "data_source", "data_license",
         "version", "source", "original_format", "created_at", "total_size", "param_count",
         "quantization", "sharding", "chat_template", "chat_format", "special_tokens",
         "architecture", "hf_architecture", "hf_model_type", "hidden_size", "num_layers",
         "num_heads", "num_kv_heads", "vocab_size", "intermediate_size",
         "max_position_embeddings", "rope_theta", "rope_type", "rms_norm_eps", "head_dim",
         "num_experts", "num_experts_per_tok", "moe_intermediate_size"]
ALWAYS = {"model_type", "license", "data_source", "data_license", "total_size", "param_count"}


def serde_value(v, single=False):
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return serde_f32(v) if single else serde_f64(v)
    if isinstance(v, str):
        return serde_string(v)
    if isinstance(v, list):
        return "[" + ",".join(serde_value(x) for x in v) + "]"
    keys = sorted(v, key=lambda k: k.encode())  # serde_json Map: BTreeMap order
    return "{" + ",".join(serde_string(k) + ":" + serde_value(v[k]) for k in keys) + "}"


def serde_metadata(obj):
    """AprV2Metadata as serde_json::to_vec writes it: typed fields in declaration order (skipped
    when absent unless always written), then the custom keys in byte order (Rosetta's rule)."""
    parts = []
    for k in TYPED:
        if k in obj and (obj[k] is not None or k in ALWAYS):
            parts.append(serde_string(k) + ":" + serde_value(obj[k], k in F32_FIELDS))
        elif k in ALWAYS:
            parts.append(serde_string(k) + ":" + ("\"\"" if k == "model_type" else
                                                   "0" if k in ("total_size", "param_count")
                                                   else "null"))
    for k in sorted((k for k in obj if k not in TYPED), key=lambda k: k.encode()):
        parts.append(serde_string(k) + ":" + serde_value(obj[k]))
    return "{" + ",".join(parts) + "}"


# ---- an independent APR v2 reader --------------------------------------------------------------

def align64(x):
    return (x + 63) & ~63


def parse_apr(data, label):
    """Checks every structural rule of docs/formats/apr.md; returns (header, metadata, tensors)."""
    ok = check(len(data) >= 64, "%s: shorter than the header" % label)
    if not ok:
        return None
    magic, vmaj, vmin, flags, count, mo, ms, tio, dof, crc = struct.unpack_from(
        "<4sBBHIQIQQI", data, 0)
    check(magic == b"APR\0" and (vmaj, vmin) == (2, 0), "%s: magic/version" % label)
    check(crc == zlib.crc32(data[0:40] + data[44:64]), "%s: header CRC" % label)
    check(data[44:64] == bytes(20), "%s: reserved bytes not zero" % label)
    check(flags & 0x0400, "%s: row-major flag" % label)
    check(mo == 64, "%s: metadata_offset %d" % (label, mo))
    meta_bytes = data[64:64 + ms]
    check(data[64 + ms:tio] == bytes(tio - 64 - ms), "%s: metadata padding" % label)
    check(tio == 64 + align64(ms), "%s: tensor_index_offset" % label)
    meta = json.loads(meta_bytes.decode("utf-8"))
    pos = tio
    tensors = []
    for _ in range(count):
        (nl,) = struct.unpack_from("<H", data, pos)
        name = data[pos + 2:pos + 2 + nl].decode("utf-8")
        code, nd = data[pos + 2 + nl], data[pos + 3 + nl]
        dims = list(struct.unpack_from("<%dQ" % nd, data, pos + 4 + nl))
        off, size = struct.unpack_from("<QQ", data, pos + 4 + nl + 8 * nd)
        tensors.append((name, code, dims, off, size))
        pos += 20 + nl + 8 * nd
    check(dof == tio + align64(pos - tio), "%s: data_offset" % label)
    check(data[pos:dof] == bytes(dof - pos), "%s: index padding" % label)
    names = [t[0].encode() for t in tensors]
    check(names == sorted(names) and len(set(names)) == len(names), "%s: index order" % label)
    running = 0
    out = {}
    for name, code, dims, off, size in tensors:
        check(off == running, "%s: %s offset %d, expected %d" % (label, name, off, running))
        start = dof + off
        check(start % 64 == 0, "%s: %s not aligned" % (label, name))
        pad = align64(size) - size
        check(data[start + size:start + size + pad] == bytes(pad), "%s: %s padding" % (label, name))
        out[name] = (code, dims, data[start:start + size])
        running += align64(size)
    check(len(data) == dof + running + 4, "%s: file size %d" % (label, len(data)))
    (footer,) = struct.unpack_from("<I", data, len(data) - 4)
    check(footer == zlib.crc32(data[:-4]), "%s: footer CRC" % label)
    return {"flags": flags, "count": count, "meta_bytes": meta_bytes}, meta, out


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack_from("<Q", data, 0)
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        out[name] = (info["dtype"], info["shape"], data[8 + n + b:8 + n + e])
    return out, header.get("__metadata__", {})


def lz4_block_decode(src, size):
    out = bytearray()
    i = 0
    while i < len(src):
        token = src[i]
        i += 1
        lit = token >> 4
        if lit == 15:
            while True:
                b = src[i]
                i += 1
                lit += b
                if b != 255:
                    break
        out += src[i:i + lit]
        i += lit
        if i >= len(src):
            break
        off = src[i] | (src[i + 1] << 8)
        i += 2
        ml = token & 15
        if ml == 15:
            while True:
                b = src[i]
                i += 1
                ml += b
                if b != 255:
                    break
        ml += 4
        if off >= ml:
            start = len(out) - off
            out += out[start:start + ml]
        else:
            for _ in range(ml):
                out.append(out[-off])
    check(len(out) == size, "LZ4 block decodes to %d bytes, prefix says %d" % (len(out), size))
    return bytes(out)


# ---- 1. the golden vector -----------------------------------------------------------------------

def golden_from_spec():
    meta = (b'{"model_type":"linear_regression","name":"golden-v2","license":null,'
            b'"data_source":null,"data_license":null,"version":"0.0.0-golden",'
            b'"created_at":"1700000000","total_size":0,"param_count":8}')
    def ent(name, shape, off, size):
        return (struct.pack("<H", len(name)) + name + bytes([0, len(shape)])
                + b"".join(struct.pack("<Q", d) for d in shape) + struct.pack("<QQ", off, size))
    index = ent(b"bias", [1], 0, 4) + ent(b"weights", [8], 64, 32)
    tio = 64 + align64(len(meta))
    dof = tio + align64(len(index))
    h = bytearray(64)
    h[0:6] = b"APR\0\x02\x00"
    struct.pack_into("<HIQIQQ", h, 6, 0x0400, 2, 64, len(meta), tio, dof)
    struct.pack_into("<I", h, 40, zlib.crc32(bytes(h[:40]) + bytes(h[44:])))
    body = bytes(h) + meta + bytes(tio - 64 - len(meta)) + index + bytes(dof - tio - len(index))
    body += struct.pack("<f", 0.125) + bytes(60) + struct.pack("<8f", 1, 2, .5, -.5, 4, -2, .25, 8)
    body += bytes(32)
    return body + struct.pack("<I", zlib.crc32(body))


def test_golden():
    # The tensors in a SafeTensors file (bias first in data order, the writer sorts by name);
    # the string metadata in its __metadata__, the numbers as typed extra keys.
    entries = [("bias", [1], struct.pack("<f", 0.125)),
               ("weights", [8], struct.pack("<8f", 1, 2, .5, -.5, 4, -2, .25, 8))]
    header, offset = {"__metadata__": {"version": "0.0.0-golden",
                                       "model_type": "linear_regression",
                                       "created_at": "1700000000", "name": "golden-v2"}}, 0
    for name, shape, raw in entries:
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    src = os.path.join(WORK, "golden-src.safetensors")
    with open(src, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(e[2] for e in entries))
    m = open_model(src)
    if not m:
        return
    extra = (KV * 2)()
    for k, (key, v) in enumerate([("param_count", 8), ("total_size", 0)]):
        extra[k].key = key.encode()
        extra[k].value = Value(type=RF_VALUE_U64)
        extra[k].value.as_.u = v
    path = os.path.join(WORK, "golden.apr")
    err = Error()
    opts = WriteOptions(metadata=METADATA_KEEP, extra=C.cast(extra, C.c_void_p), n_extra=2)
    check(lib.rf_apr_write(m, path.encode(), C.byref(opts), C.byref(err)) == 0,
          "rf_apr_write golden: %s" % err.message.decode())
    lib.rf_model_free(m)
    data = open(path, "rb").read()
    spec = golden_from_spec()
    check(data == spec, "golden: Rosetta's bytes differ from the spec's layout")
    check(hashlib.sha256(data).hexdigest() ==
          "047642c8a09f5807466374928c28e370855ddb96f527d4445ee359a591594c2c", "golden: SHA-256")
    parse_apr(data, "golden")


# ---- 2-4. the fixtures --------------------------------------------------------------------------

def tokenizer_lists(model_dir):
    tj = json.load(open(os.path.join(model_dir, "tokenizer.json"), encoding="utf-8"))
    vocab = {i: t for t, i in tj["model"]["vocab"].items()}
    for a in tj.get("added_tokens", []):
        vocab[a["id"]] = a["content"]
    tokens = [vocab[i] for i in range(len(vocab))]
    merges = [m if isinstance(m, str) else " ".join(m) for m in tj["model"]["merges"]]
    return tokens, merges


def test_fixture(name):
    model_dir = os.path.join(ROOT, "fixtures", name)
    if not os.path.isdir(model_dir):
        print("SKIP part: fixture %s is not in this checkout" % name, file=sys.stderr)
        return
    m = open_model(model_dir)
    if not m:
        return
    path = os.path.join(WORK, name + ".apr")
    ok = write_apr(m, path)
    lib.rf_model_free(m)
    if not ok:
        return
    data = open(path, "rb").read()
    parsed = parse_apr(data, name)
    if not parsed:
        return
    hdr, meta, tensors = parsed
    st, st_meta = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    codes = {"BF16": 30, "F16": 1, "F32": 0}
    for tname, (dtype, shape, raw) in st.items():
        got = tensors.get(tname)
        if not check(got is not None, "%s: tensor %s missing" % (name, tname)):
            continue
        check(got[0] == codes[dtype], "%s: %s dtype code %d" % (name, tname, got[0]))
        check(got[1] == shape, "%s: %s shape %s vs %s" % (name, tname, got[1], shape))
        check(got[2] == raw, "%s: %s bytes differ" % (name, tname))
    tied = "lm_head.weight" not in st
    expected = set(st) | ({"lm_head.weight"} if tied else set())
    check(set(tensors) == expected, "%s: tensor set %s" % (name, sorted(set(tensors) ^ expected)))
    if tied:
        check(tensors["lm_head.weight"][2] == st["model.embed_tokens.weight"][2],
              "%s: lm_head.weight is not a copy of the embedding" % name)
        check(meta.get("tied_embeddings") is True, "%s: tied_embeddings flag" % name)
    else:
        check("tied_embeddings" not in meta, "%s: untied model flagged as tied" % name)
    rope = cfg.get("rope_parameters", {}).get("rope_theta", cfg.get("rope_theta"))
    for key, want in [("architecture", cfg["model_type"]), ("model_type", "Qwen2"),
                      ("name", name), ("hidden_size", cfg["hidden_size"]),
                      ("num_layers", cfg["num_hidden_layers"]),
                      ("num_heads", cfg["num_attention_heads"]),
                      ("num_kv_heads", cfg["num_key_value_heads"]),
                      ("vocab_size", cfg["vocab_size"]),
                      ("intermediate_size", cfg["intermediate_size"]),
                      ("max_position_embeddings", cfg["max_position_embeddings"]),
                      ("rope_type", 2), ("source_metadata", st_meta),
                      ("tensor_shapes", {k: v[1] for k, v in tensors.items()}),
                      ("param_count", sum(int(np.prod(v[1])) for v in tensors.values()))]:
        check(meta.get(key) == want, "%s: metadata %s = %r, expected %r"
              % (name, key, meta.get(key), want))
    check(float(np.float32(meta.get("rope_theta", 0))) == float(np.float32(rope)),
          "%s: rope_theta" % name)
    check(float(np.float32(meta.get("rms_norm_eps", 0))) == float(np.float32(cfg["rms_norm_eps"])),
          "%s: rms_norm_eps" % name)
    tokens, merges = tokenizer_lists(model_dir)
    check(meta.get("tokenizer.vocabulary") == tokens, "%s: tokenizer.vocabulary" % name)
    check(meta.get("tokenizer.vocab_size") == len(tokens), "%s: tokenizer.vocab_size" % name)
    check(meta.get("tokenizer.merges") == merges, "%s: tokenizer.merges" % name)
    check(meta.get("tokenizer.eos_token_id") == cfg.get("eos_token_id"), "%s: eos id" % name)
    tc = json.load(open(os.path.join(model_dir, "tokenizer_config.json"), encoding="utf-8"))
    check(meta.get("chat_template") == tc.get("chat_template"), "%s: chat_template" % name)
    mine = serde_metadata(meta).encode("utf-8")
    check(mine == hdr["meta_bytes"], "%s: metadata bytes differ from serde_json's rules at %s"
          % (name, next((i for i in range(min(len(mine), len(hdr["meta_bytes"])))
                         if mine[i] != hdr["meta_bytes"][i]), "the end")))

    # the library reads back the config and tokenizer it read from the SafeTensors original
    # (pad id and add_bos are not part of aprender's SafeTensors-path metadata)
    src, back = open_model(model_dir), open_model(path)
    if src and back:
        a, b = lib.rf_model_config_get(src).contents, lib.rf_model_config_get(back).contents
        for f, _ in Config._fields_:
            if f in ("name", "pad_token_id"):
                continue
            check(getattr(a, f) == getattr(b, f), "%s: config %s: SafeTensors %r, APR %r"
                  % (name, f, getattr(a, f), getattr(b, f)))
        ta, tb = lib.rf_model_tokenizer(src).contents, lib.rf_model_tokenizer(back).contents
        for f in ("model", "pre", "n_tokens", "n_merges"):
            check(getattr(ta, f) == getattr(tb, f), "%s: tokenizer %s: %r vs %r"
                  % (name, f, getattr(ta, f), getattr(tb, f)))
        check(all(ta.tokens[i] == tb.tokens[i] for i in range(ta.n_tokens)),
              "%s: tokens differ after the round trip" % name)
    for x in (src, back):
        if x:
            lib.rf_model_free(x)

    # 3. read -> write is the identity
    m = open_model(path)
    if m:
        again = os.path.join(WORK, name + ".again.apr")
        if write_apr(m, again):
            check(open(again, "rb").read() == data, "%s: read -> write is not byte-identical" % name)
        lib.rf_model_free(m)

    # 4. compressed outputs
    m = open_model(model_dir)
    if not m:
        return
    for method, flag, ext in [(COMPRESS_LZ4, 0x0001, "lz4"), (COMPRESS_ZSTD, 0x0002, "zst")]:
        os.makedirs(os.path.join(WORK, ext), exist_ok=True)  # same stem: same "name" key
        cpath = os.path.join(WORK, ext, name + ".apr")
        if not write_apr(m, cpath, method):
            continue
        c = open(cpath, "rb").read()
        (flags,) = struct.unpack_from("<H", c, 6)
        check(flags == 0x0400 | flag, "%s %s: flags 0x%04x" % (name, ext, flags))
        check(struct.unpack_from("<I", c, 40)[0] == zlib.crc32(c[:40] + c[44:64]),
              "%s %s: header CRC" % (name, ext))
        check(c[8:40] == data[8:40], "%s %s: header offsets differ from the plain file" % (name, ext))
        if method == COMPRESS_LZ4:
            (size,) = struct.unpack_from("<I", c, 64)
            image = c[:64] + lz4_block_decode(c[68:], size)
            check(image[64:-4] == data[64:-4], "%s lz4: decoded image differs" % name)
            check(struct.unpack_from("<I", image, len(image) - 4)[0] == zlib.crc32(image[:-4]),
                  "%s lz4: footer CRC of the image" % name)
        else:
            check(c[64:68] == b"\x28\xb5\x2f\xfd", "%s zst: frame magic" % name)
            fhd = c[68]
            fcs_code, single = fhd >> 6, (fhd >> 5) & 1
            size_len = [1 if single else 0, 2, 4, 8][fcs_code]
            at = 69 + (0 if single else 1)
            raw = c[at:at + size_len] + bytes(8 - size_len)
            (fcs,) = struct.unpack("<Q", raw)
            if size_len == 2:
                fcs += 256
            check(fcs == len(data) - 64, "%s zst: frame content size %d, image %d"
                  % (name, fcs, len(data) - 64))
        r = open_model(cpath)
        if r:
            lib.rf_model_free(r)
    lib.rf_model_free(m)


# ---- 5. number formatting ----------------------------------------------------------------------

def lib_format_all(items):
    """The library's formatting of [(kind, value)] ("d" f64, "f" f32) through serde_numbers."""
    helper = os.path.join(BUILD, "tests", "serde_numbers")
    lines = []
    for kind, x in items:
        if kind == "d":
            lines.append("d %016x" % struct.unpack("<Q", struct.pack("<d", x))[0])
        else:
            lines.append("f %08x" % struct.unpack("<I", struct.pack("<f", x))[0])
    p = subprocess.run([helper], input="\n".join(lines) + "\n", capture_output=True, text=True)
    if not check(p.returncode == 0, "serde_numbers: exit %d: %s" % (p.returncode, p.stderr)):
        return [None] * len(items)
    return p.stdout.split("\n")[:len(items)]


def test_numbers():
    rng = random.Random(20240616)
    edge64 = [1e-6, 1e6, 0.1, 1e15, 1e16, 1e-5, 1.2e-5, 5e-324, 1.7976931348623157e308,
              2.2250738585072014e-308, 9007199254740993.0, 123456789.125, -0.0, 0.0, 1e22, 1e23,
              float(np.float32(1e-6)), float(np.float32(0.1)), 2.0 ** -1022, 2.0 ** 60]
    values = []
    for i in range(20000 + len(edge64)):
        if i < len(edge64):
            x = edge64[i]
        else:
            x = struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0]
            if x != x:
                continue
            if i % 3 == 0:  # also plain-looking values, where the positional layouts apply
                x = rng.uniform(-1e6, 1e6) * 10.0 ** rng.randint(-8, 8)
        values.append(("d", x))
    edge32 = [1e-6, 1e6, 1e12, 1e13, 0.3, 16777216.0, 3.4028235e38, 1.4e-45, 1.17549435e-38, -2.5]
    for i in range(20000 + len(edge32)):
        if i < len(edge32):
            x = float(np.float32(edge32[i]))
        else:
            x = float(np.frombuffer(struct.pack("<I", rng.getrandbits(32)), dtype=np.float32)[0])
            if x != x or abs(x) == float("inf"):
                continue
            if i % 3 == 0:
                x = float(np.float32(rng.uniform(-1e4, 1e4) * 10.0 ** rng.randint(-9, 9)))
        values.append(("f", x))
    got = lib_format_all(values)
    bad = {"d": 0, "f": 0}
    for (kind, x), g in zip(values, got):
        want = serde_f64(x) if kind == "d" else serde_f32(x)
        if g != want:
            bad[kind] += 1
            if bad[kind] <= 5:
                print("%s %r: library %s, expected %s" % ("f64" if kind == "d" else "f32", x, g,
                                                         want), file=sys.stderr)
    check(bad["d"] == 0, "%d f64 values formatted unlike serde_json" % bad["d"])
    check(bad["f"] == 0, "%d f32 values formatted unlike serde_json" % bad["f"])


def main():
    test_golden()
    for name in ("tiny-qwen2", "tiny-qwen2-tied", "tiny-qwen2-odd"):
        test_fixture(name)
    test_numbers()
    if failures:
        print("test_apr_interop: %d failure(s)" % len(failures), file=sys.stderr)
        return 1
    print("test_apr_interop: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
