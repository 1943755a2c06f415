#!/usr/bin/env python3
"""Differential test: Rosetta's strict SafeTensors reader against the reference `safetensors`
library (Rust, through its Python binding) on a few thousand generated single-file inputs.

Not for: sharded checkpoints, companion files or the writer (test_safetensors_interop.py).

A fixed-seed generator makes valid files (every dtype string the installed library knows, ranks
0..8, zero-size tensors, scalars, `__metadata__` variants, unaligned data, key order and
whitespace variants) and broken ones (header length wrong / over the cap, bad JSON, wrong JSON
types, duplicate keys, reversed / gapped / overlapping / short / long offsets, size mismatches,
overflowing shapes, numbers written as floats or negative, unknown dtypes, invalid UTF-8, bad
whitespace, deep nesting, truncations, byte flips).

Per case, the reference decision is `safetensors.deserialize(bytes)` (the Rust reader's full
validation: read_metadata + Metadata::validate + the buffer-end check), cross-checked against
`safe_open(path)`; Rosetta's decision is `rf_safetensors_open_memory` (strict) and, for every
case, `rf_model_open(path)` (content detection + the same reader). When both accept, names,
dtypes, shapes, bytes of every tensor and the metadata must be equal. Every disagreement must
match an allowlist rule below (deliberate differences, documented in docs/formats/safetensors.md);
any other disagreement fails the test.

Env: ROSETTA_ST_DIFF_CASES (default 3000) scales the number of generated cases;
ROSETTA_ST_DIFF_SEED (default 20261122) picks another deterministic sequence.
Exit 77 (skip) only when numpy or safetensors is missing; CI installs both.
"""
import ctypes
import json
import os
import random
import struct
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rosetta_lib import RF_VALUE_STRING, Error, load_library, value_bytes  # noqa: E402

try:
    import safetensors
except ImportError as e:  # pragma: no cover - CI installs it
    print("SKIP: safetensors is needed (%s); run scripts/install-deps --python" % e,
          file=sys.stderr)
    sys.exit(77)

SEED = int(os.environ.get("ROSETTA_ST_DIFF_SEED", "20261122"))
N_CASES = int(os.environ.get("ROSETTA_ST_DIFF_CASES", "3000"))
MAX_HEADER = 100_000_000


# ---- Rosetta through ctypes (tests/interop/rosetta_lib.py) -----------------------------------

LIBR = load_library({
    "rf_safetensors_open_memory": (ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_uint64,
                                                     ctypes.c_char_p, ctypes.c_void_p,
                                                     ctypes.POINTER(Error)]),
})


def rosetta_view(m):
    """(tensors {name: (dtype, shape, bytes)}, metadata {key: value}) of an open model."""
    tensors = {}
    for i in range(LIBR.rf_model_n_tensors(m)):
        t = LIBR.rf_model_tensor(m, i).contents
        data = ctypes.string_at(t.data, t.nbytes) if t.nbytes else b""
        tensors[t.name.decode("utf-8", "surrogateescape")] = (
            LIBR.rf_dtype_name(t.dtype).decode(), list(t.shape[:t.ndim]), data)
    meta = {}
    for i in range(LIBR.rf_model_n_kv(m)):
        kv = LIBR.rf_model_kv(m, i).contents
        if kv.value.type == RF_VALUE_STRING:
            raw = value_bytes(kv.value)
            meta[kv.key.decode("utf-8", "surrogateescape")] = raw.decode("utf-8",
                                                                         "surrogateescape")
    return tensors, meta


def rosetta_memory(raw):
    err = Error()
    m = LIBR.rf_safetensors_open_memory(raw, len(raw), b"case", None, ctypes.byref(err))
    if not m:
        return False, err.message.decode("utf-8", "replace"), None
    view = rosetta_view(m)
    LIBR.rf_model_free(m)
    return True, "", view


def rosetta_path(path):
    err = Error()
    m = LIBR.rf_model_open(path.encode(), None, ctypes.byref(err))
    if not m:
        return False, err.message.decode("utf-8", "replace")
    LIBR.rf_model_free(m)
    return True, ""


# ---- the reference ---------------------------------------------------------------------------

def reference_bytes(raw):
    try:
        got = safetensors.deserialize(raw)
    except Exception as e:  # SafetensorError and friends: a rejection
        return False, str(e), None
    return True, "", {name: (info["dtype"], list(info["shape"]), bytes(info["data"]))
                      for name, info in got}


def reference_path(path):
    """(accepted, message, metadata) from safe_open, which reads the file lazily."""
    try:
        with safetensors.safe_open(path, "np") as f:
            meta = f.metadata()
            list(f.keys())
        return True, "", meta or {}
    except Exception as e:
        return False, str(e), None


# ---- dtypes: the table, probed against the installed library --------------------------------

# name -> bits per element (the reference enum; newer names are probed, older libraries may not
# know some of them).
CANDIDATE_DTYPES = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "F8_E4M3FNUZ": 8,
    "F8_E5M2FNUZ": 8, "I16": 16, "U16": 16, "F16": 16, "BF16": 16, "I32": 32, "U32": 32,
    "F32": 32, "C64": 64, "F64": 64, "I64": 64, "U64": 64, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
}
# Spellings no version of the reference knows; they must be rejected by both.
UNKNOWN_DTYPES = ["f32", "FP32", "F8_E4M3FN", "Q4_K", "", " F32", "F32 ", "BF8", "C128", "U1",
                  "I4", "float32", "F8", "F8_E3M4", "bool", "U128"]


def probe_dtypes():
    """The dtype strings the installed library reads, with their bit width (found by trying
    every byte size for an 8-element tensor)."""
    known = {}
    for name, bits in CANDIDATE_DTYPES.items():
        for nbytes in range(1, 65):
            h = json.dumps({"t": {"dtype": name, "shape": [8], "data_offsets": [0, nbytes]}})
            raw = struct.pack("<Q", len(h)) + h.encode() + b"\0" * nbytes
            if reference_bytes(raw)[0]:
                known[name] = nbytes
                break
        if name in known and known[name] != bits:
            print("FAIL: the library reads %s as %d bits, the table says %d"
                  % (name, known[name], bits), file=sys.stderr)
            sys.exit(1)
    for name in UNKNOWN_DTYPES:
        h = json.dumps({"t": {"dtype": name, "shape": [8], "data_offsets": [0, 8]}})
        if reference_bytes(struct.pack("<Q", len(h)) + h.encode() + b"\0" * 8)[0]:
            print("note: the library reads %r; treated as a known dtype" % name, file=sys.stderr)
    return {n: b for n, b in CANDIDATE_DTYPES.items() if n in known}


DTYPES = probe_dtypes()


# ---- a model and its serialization -----------------------------------------------------------

def jstr(s, ascii_only=False):
    return json.dumps(s, ensure_ascii=ascii_only)


class Model:
    """Tensors in data order: [name, dtype, shape, data, begin, end]; metadata dict or None
    (absent) or the string 'null'; text knobs. Mutations edit fields or the serialized text."""

    def __init__(self):
        self.tensors = []
        self.meta = None
        self.key_order = []          # header key order: names and possibly "__metadata__"
        self.sep_item, self.sep_key = ",", ":"
        self.ascii = False
        self.lead = ""
        self.pad = ""
        self.extra_entries = []      # (key json text, value json text) appended raw
        self.entry_extra = {}        # name -> list of (key text, value text) inside the entry
        self.raw_values = {}         # (name, field) -> json text replacing the field's value
        self.trailing = b""

    def entry_text(self, t):
        name, dtype, shape, _, begin, end = t
        fields = [('"dtype"', jstr(dtype)), ('"shape"', "[" + ",".join(map(str, shape)) + "]"),
                  ('"data_offsets"', "[%d,%d]" % (begin, end))]
        out = []
        for k, v in fields:
            field = k.strip('"')
            out.append((k, self.raw_values.get((name, field), v)))
        out.extend(self.entry_extra.get(name, []))
        return "{" + self.sep_item.join(k + self.sep_key + v for k, v in out) + "}"

    def header(self):
        parts = []
        by_name = {t[0]: t for t in self.tensors}
        for key in self.key_order:
            if key == "__metadata__":
                if self.meta == "null":
                    v = "null"
                else:
                    v = "{" + self.sep_item.join(jstr(k, self.ascii) + self.sep_key +
                                                 jstr(x, self.ascii)
                                                 for k, x in self.meta.items()) + "}"
                parts.append('"__metadata__"' + self.sep_key + v)
            else:
                parts.append(jstr(key, self.ascii) + self.sep_key + self.entry_text(by_name[key]))
        for k, v in self.extra_entries:
            parts.append(k + self.sep_key + v)
        return (self.lead + "{" + self.sep_item.join(parts) + "}" + self.pad).encode("utf-8")

    def data(self):
        return b"".join(t[3] for t in self.tensors) + self.trailing

    def serialize(self, header=None):
        h = self.header() if header is None else header
        return struct.pack("<Q", len(h)) + h + self.data()


NAME_POOL = ["w", "bias", "model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight",
             "lm_head.weight", "a b", "ü/ñ", "名前", "tab\tin", "quote\"d", "back\\slash",
             "emoji 😀", "__metadata", "_", "x" * 40, "", "__METADATA__"]


def elements(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def random_shape(rng, dtype):
    bits = DTYPES[dtype]
    for _ in range(50):
        rank = rng.choice([0, 1, 1, 2, 2, 2, 3, 4, 5, 8])
        shape = [rng.choice([0, 1, 1, 2, 3, 4, 5, 7, 8]) if rng.random() < 0.9 else 0
                 if rng.random() < 0.3 else rng.randint(1, 16) for _ in range(rank)]
        if elements(shape) * bits % 8 == 0 and elements(shape) * bits // 8 <= 2048:
            return shape
    return [8]


def random_model(rng):
    m = Model()
    n = rng.choice([0, 1, 1, 2, 3, 3, 4, 6])
    names = set()
    while len(names) < n:
        names.add(rng.choice(NAME_POOL) + ("" if rng.random() < 0.6 else ".%d" % rng.randint(0, 99)))
    offset = 0
    for name in rng.sample(sorted(names), len(names)):  # data order independent of key order
        dtype = rng.choice(sorted(DTYPES))
        shape = random_shape(rng, dtype)
        nbytes = elements(shape) * DTYPES[dtype] // 8
        data = bytes(rng.getrandbits(8) for _ in range(nbytes))
        m.tensors.append([name, dtype, shape, data, offset, offset + nbytes])
        offset += nbytes
    r = rng.random()
    if r < 0.35:
        m.meta = None
    elif r < 0.4:
        m.meta = "null"
    elif r < 0.5:
        m.meta = {}
    else:
        m.meta = {"format": rng.choice(["pt", "np", "tf", "mlx", ""])}
        for _ in range(rng.randint(0, 3)):
            m.meta[rng.choice(["k", "note", "ünï", "e\"sc", "nl\n", "😀", ""])] = rng.choice(
                ["v", "", "ünïcode \"quoted\"", "a\\b", "\u0001ctl", "x" * 100, "1", "{}"])
    m.key_order = [t[0] for t in m.tensors] + ([] if m.meta is None else ["__metadata__"])
    rng.shuffle(m.key_order)
    style = rng.random()
    if style < 0.2:
        m.sep_item, m.sep_key = ", ", ": "
    elif style < 0.25:
        m.sep_item, m.sep_key = ",\n  ", " : "
    m.ascii = rng.random() < 0.3
    if rng.random() < 0.5:  # pad like the reference writer: spaces up to a multiple of 8
        h = len(m.header())
        m.pad = " " * ((8 - (8 + h) % 8) % 8)
    elif rng.random() < 0.2:
        m.pad = rng.choice(["\t", "\n", "\r\n", "  \t\n"])
    if rng.random() < 0.05:
        m.lead = rng.choice([" ", "\n", "\t ", "\r\n"])
    return m


# ---- mutations: each returns the case bytes (and edits the model in place when convenient) --

def with_length(raw, n):
    return struct.pack("<Q", n & 0xFFFFFFFFFFFFFFFF) + raw[8:]


def hlen(raw):
    return struct.unpack("<Q", raw[:8])[0]


def need_tensors(m, rng, k=1):
    while len(m.tensors) < k:
        name = "filler%d" % len(m.tensors)
        begin = m.tensors[-1][5] if m.tensors else 0
        shape = [rng.randint(1, 6)]
        m.tensors.append([name, "F32", shape, bytes(4 * shape[0]), begin, begin + 4 * shape[0]])
        m.key_order.append(name)


def mut_len_big(m, rng):
    raw = m.serialize()
    return with_length(raw, hlen(raw) + rng.choice([1, 2, 7, 8, 100, len(raw), 1 << 20]))


def mut_len_small(m, rng):
    raw = m.serialize()
    return with_length(raw, max(0, hlen(raw) - rng.choice([1, 2, 3, 8, hlen(raw)])))


def mut_len_cap(m, rng):
    raw = m.serialize()
    return with_length(raw, rng.choice([MAX_HEADER + 1, MAX_HEADER, 1 << 32, 1 << 63,
                                        (1 << 64) - 1, (1 << 64) - 8]))


def mut_short_file(m, rng):
    return m.serialize()[:rng.randint(0, 7)]


def mut_truncate(m, rng):
    raw = m.serialize()
    return raw[:rng.randint(8, max(8, len(raw) - 1))]


def mut_flip(m, rng):
    raw = bytearray(m.serialize())
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(raw))
        raw[i] ^= 1 << rng.randrange(8)
    return bytes(raw)


def mut_header_byte(m, rng):
    """Overwrite one header byte with a JSON-significant or odd byte."""
    raw = bytearray(m.serialize())
    n = hlen(raw)
    if n == 0:
        return bytes(raw)
    i = 8 + rng.randrange(n)
    raw[i] = ord(rng.choice('{}[]",:0-.e +\\tn\x00\x7f')) if rng.random() < 0.8 else rng.choice(
        [0x80, 0xc0, 0xff, 0xe2, 0xf0])
    return bytes(raw)


def mut_not_json(m, rng):
    h = rng.choice([b"{", b"}", b"{,}", b'{"a"}', b'{"a":}', b"{'a':1}", b"nul", b"{}}",
                    b'{"a":{"dtype":"F32",}}', b"[}", b"{}{}", b"", b"   ", b"\x00",
                    b'{"a":{"dtype":"F32" "shape":[1]}}', b"{/*c*/}", b"{\"a\":01}"])
    return struct.pack("<Q", len(h)) + h + m.data()


def mut_not_object(m, rng):
    h = rng.choice([b"[]", b'"x"', b"1", b"null", b"true", b"[{}]", b' "{}" '])
    return struct.pack("<Q", len(h)) + h


def mut_dup_tensor(m, rng):
    need_tensors(m, rng)
    t = rng.choice(m.tensors)
    m.extra_entries.append((jstr(t[0]), m.entry_text(t)))
    return m.serialize()


def mut_dup_tensor_differs(m, rng):
    """The same name twice with different entries (each valid alone)."""
    need_tensors(m, rng)
    t = rng.choice(m.tensors)
    other = list(t)
    other[2] = [0]
    other[4] = other[5] = m.tensors[-1][5]
    m.extra_entries.append((jstr(t[0]), m.entry_text(other)))
    return m.serialize()


def mut_dup_meta_key(m, rng):
    if not isinstance(m.meta, dict):
        m.meta = {}
        m.key_order.append("__metadata__")
    m.meta["dup"] = "first"
    h = m.header().decode()
    h = h.replace('"dup"' + m.sep_key + '"first"',
                  '"dup"' + m.sep_key + '"first"' + m.sep_item + '"dup"' + m.sep_key + '"second"', 1)
    return m.serialize(h.encode())


def mut_dup_metadata_object(m, rng):
    m.extra_entries.append(('"__metadata__"', rng.choice(['{}', '{"format":"pt"}', 'null'])))
    if m.meta is None:
        m.meta = {"format": "pt"}
        m.key_order.append("__metadata__")
    return m.serialize()


def mut_dup_field(m, rng):
    need_tensors(m, rng)
    t = rng.choice(m.tensors)
    field = rng.choice(["dtype", "shape", "data_offsets"])
    value = {"dtype": jstr(t[1]), "shape": json.dumps(t[2]),
             "data_offsets": json.dumps([t[4], t[5]])}[field]
    m.entry_extra.setdefault(t[0], []).append(('"%s"' % field, value))
    return m.serialize()


def mut_dup_unknown_field(m, rng):
    need_tensors(m, rng)
    t = rng.choice(m.tensors)
    m.entry_extra.setdefault(t[0], []).extend([('"extra"', "1"), ('"extra"', '"two"')])
    return m.serialize()


def mut_meta_value(m, rng):
    v = rng.choice(['1', '1.5', 'null', 'true', '[]', '{}', '["a"]', '{"a":"b"}'])
    m.extra_entries.append(('"__metadata__"', '{"format":"pt","k":%s}' % v))
    m.key_order = [k for k in m.key_order if k != "__metadata__"]
    m.meta = None
    return m.serialize()


def mut_meta_type(m, rng):
    v = rng.choice(['[]', '"pt"', '1', 'true', '[["format","pt"]]', 'null', '{}'])
    m.extra_entries.append(('"__metadata__"', v))
    m.key_order = [k for k in m.key_order if k != "__metadata__"]
    m.meta = None
    return m.serialize()


def mut_unknown_field(m, rng):
    need_tensors(m, rng)
    t = rng.choice(m.tensors)
    v = rng.choice(['1', '"s"', 'null', 'true', '[1,2]', '{"a":{"b":[]}}', '-1.5e3',
                    '123456789012345678901234567890', '"\\u00e9\\n"', '[' * 20 + ']' * 20])
    m.entry_extra.setdefault(t[0], []).append((jstr(rng.choice(["x", "offsets", "Dtype",
                                                                "name", "data_offsets "])), v))
    return m.serialize()


def mut_deep(m, rng):
    """Nesting inside an unknown field: serde_json stops at 128 levels."""
    need_tensors(m, rng)
    t = m.tensors[0]
    depth = rng.choice([1, 50, 124, 125, 126, 127, 200, 511, 512, 600])
    v = rng.choice(["[", '{"k":']) * depth
    v += "1" + ("]" if v.startswith("[") else "}") * depth
    m.entry_extra.setdefault(t[0], []).append(('"deep"', v))
    return m.serialize()


def mut_missing_field(m, rng):
    need_tensors(m, rng)
    t = rng.choice(m.tensors)
    field = rng.choice(["dtype", "shape", "data_offsets"])
    h = m.header().decode()
    entry = m.entry_text(t)
    keep = [p for p in entry[1:-1].split(m.sep_item) if not p.startswith('"%s"' % field)]
    # shape/data_offsets contain commas only when sep_item is ","; rebuild from fields instead
    fields = {"dtype": jstr(t[1]), "shape": json.dumps(t[2], separators=(",", ":")),
              "data_offsets": "[%d,%d]" % (t[4], t[5])}
    del fields[field]
    new = "{" + ",".join('"%s":%s' % kv for kv in fields.items()) + "}"
    del keep
    return m.serialize(h.replace(entry, new, 1).encode())


def mut_entry_type(m, rng):
    need_tensors(m, rng)
    t = rng.choice(m.tensors)
    m.extra_entries.append((jstr("other" + t[0]), rng.choice(['null', '[]', '"x"', '1', 'true',
                                                               '{}'])))
    return m.serialize()


def mut_field_type(m, rng):
    need_tensors(m, rng)
    t = rng.choice(m.tensors)
    field = rng.choice(["dtype", "shape", "data_offsets"])
    m.raw_values[(t[0], field)] = rng.choice(['null', '1', '"F32"', '{}', '[]', '[[1]]', 'true',
                                              '["1"]', '[1,2,3]', '[0]', '"[0,4]"'])
    return m.serialize()


def mut_number_spelling(m, rng):
    """A shape or offset number written as a float, negative, with an exponent, or too large."""
    need_tensors(m, rng)
    t = rng.choice(m.tensors)
    field = rng.choice(["shape", "data_offsets"])
    vals = list(t[2]) if field == "shape" else [t[4], t[5]]
    if not vals:
        field, vals = "data_offsets", [t[4], t[5]]
    i = rng.randrange(len(vals))
    v = vals[i]
    spelled = rng.choice(["%d.0" % v, "%de0" % v, "%dE0" % v, "%d.5" % v, "-%d" % v, "-0",
                          "%de+0" % v, "%d.000" % v, "%d" % (v - 1) if v else "-1",
                          "1e400", "18446744073709551616", "%d" % (v + (1 << 64))])
    texts = [str(x) for x in vals]
    texts[i] = spelled
    m.raw_values[(t[0], field)] = "[" + ",".join(texts) + "]"
    return m.serialize()


def mut_big_zero_shape(m, rng):
    """Huge dimensions next to a zero: 0 elements for the reference unless the product of the
    dimensions before the zero overflows."""
    big = rng.choice([1 << 53, (1 << 53) + 1, 1 << 60, (1 << 64) - 1, 1 << 32, 1 << 33])
    shape = rng.choice([[big, 0], [0, big], [big, big, 0], [0, big, big], [big, 2, 0],
                        [3, big, 0]])
    begin = m.tensors[-1][5] if m.tensors else 0
    m.tensors.append(["zero_big", rng.choice(sorted(DTYPES)), shape, b"", begin, begin])
    m.key_order.append("zero_big")
    return m.serialize()


def mut_shape_overflow(m, rng):
    shape = rng.choice([[1 << 32, 1 << 32], [1 << 32, 1 << 31, 2], [1 << 62, 4], [1 << 40, 1 << 30],
                        [1 << 61, 1], [(1 << 53), (1 << 11)]])
    begin = m.tensors[-1][5] if m.tensors else 0
    m.tensors.append(["ovf", rng.choice(["F32", "U8", "F4", "C64"]), shape, b"", begin, begin + 8])
    m.trailing = b"\0" * 8
    m.key_order.append("ovf")
    return m.serialize()


def mut_size_mismatch(m, rng):
    need_tensors(m, rng)
    t = rng.choice(m.tensors)
    r = rng.random()
    if r < 0.4 and t[2]:
        i = rng.randrange(len(t[2]))
        t[2][i] += rng.choice([1, -1]) if t[2][i] else 1
    elif r < 0.7:
        t[1] = rng.choice([d for d in sorted(DTYPES) if DTYPES[d] != DTYPES[t[1]]] or ["F64"])
    else:
        t[2] = t[2] + [rng.choice([0, 2, 3])]
    return m.serialize()


def mut_offsets(m, rng):
    need_tensors(m, rng, 2)
    kind = rng.choice(["reversed", "gap", "overlap", "start", "end_short", "end_long",
                       "swap", "zero_mid", "trailing", "data_short", "huge_end"])
    i = rng.randrange(len(m.tensors))
    t = m.tensors[i]
    if kind == "reversed":
        t[4], t[5] = t[5], t[4]
        if t[4] == t[5]:
            t[4] += 1
    elif kind == "gap":
        for u in m.tensors[i:]:
            u[4] += 1
            u[5] += 1
        t[3] = b"\0" + t[3]  # keep the buffer length right: the hole is real bytes
    elif kind == "overlap" and i > 0:
        for u in m.tensors[i:]:
            u[4] -= 1
            u[5] -= 1
        m.tensors[i - 1][3] = m.tensors[i - 1][3][:-1] if m.tensors[i - 1][3] else b""
    elif kind == "start":
        for u in m.tensors:
            u[4] += 4
            u[5] += 4
        m.tensors[0][3] = b"\0" * 4 + m.tensors[0][3]
    elif kind == "end_short":
        m.tensors[-1][3] = m.tensors[-1][3][:-1]
    elif kind == "end_long" or kind == "trailing":
        m.trailing = b"\0" * rng.randint(1, 9)
    elif kind == "swap":
        a, b = rng.sample(range(len(m.tensors)), 2)
        m.tensors[a][4:6], m.tensors[b][4:6] = m.tensors[b][4:6], m.tensors[a][4:6]
    elif kind == "zero_mid":
        pos = rng.choice([0] + [u[5] for u in m.tensors])
        m.tensors.append(["zero_%d" % pos, "F32", [0, 3], b"", pos, pos])
        m.key_order.append("zero_%d" % pos)
        m.tensors.sort(key=lambda u: (u[4], u[5]))
    elif kind == "data_short":
        return m.serialize()[:-1]
    elif kind == "huge_end":
        t[5] = rng.choice([1 << 53, (1 << 64) - 1, 1 << 63])
    return m.serialize()


def mut_dtype(m, rng):
    need_tensors(m, rng)
    t = rng.choice(m.tensors)
    m.raw_values[(t[0], "dtype")] = jstr(rng.choice(UNKNOWN_DTYPES))
    return m.serialize()


def mut_utf8(m, rng):
    bad = rng.choice([b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xe2\x82", b"\xf4\x90\x80\x80",
                      b"\x80", b"\xf0\x9f\x98"])
    h = m.header()
    where = rng.choice(["name", "meta", "end", "pad"])
    if where == "name" and m.tensors:
        old = jstr(m.tensors[0][0], m.ascii).encode()
        h = h.replace(old, old[:-1] + bad + b'"', 1)
    elif where == "meta" and b'"format"' in h:
        h = h.replace(b'"format"', b'"form' + bad + b'at"', 1)
    elif where == "pad":
        h = h + bad
    else:
        h = h[:-1] + bad + h[-1:] if h.endswith(b"}") else h + bad
    return m.serialize(h)


def mut_escapes(m, rng):
    """Names and metadata with JSON escapes: valid ones must decode identically."""
    name = rng.choice(['"a\\u0000b"', '"\\ud800"', '"\\udc00x"', '"\\ud83d\\ude00"', '"\\/x"',
                       '"\\u00e9"', '"\\b\\f\\n\\r\\t"', '"\\x41"', '"\\U0041"', '"\\u12"',
                       '"\\ud83dx"', '"a\x01b"', '"a\x7fb"'])
    begin = m.tensors[-1][5] if m.tensors else 0
    if rng.random() < 0.5:
        m.extra_entries.append((name, '{"dtype":"U8","shape":[2],"data_offsets":[%d,%d]}'
                                % (begin, begin + 2)))
        m.trailing = b"ab"
    else:
        m.extra_entries.append(('"__metadata__"', '{"k":%s,%s:"v"}' % (name, name)))
        m.key_order = [k for k in m.key_order if k != "__metadata__"]
        m.meta = None
    return m.serialize()


def mut_whitespace(m, rng):
    """Padding and leading bytes: JSON whitespace is space, tab, LF, CR only."""
    ws = rng.choice([" ", "\t", "\n", "\r", "\x0c", "\x0b", "\x00", "\u00a0", "\u2028",
                     "\ufeff", "\x1c", "\x85"])
    h = m.header()
    if rng.random() < 0.5:
        h = h + ws.encode() * rng.randint(1, 8)
    else:
        h = ws.encode() * rng.randint(1, 3) + h
    return m.serialize(h)


def mut_sub_byte(m, rng):
    """F4 / F6 tensors whose bit count is or is not a whole number of bytes."""
    dtype = rng.choice([d for d in ("F4", "F6_E2M3", "F6_E3M2") if d in DTYPES] or ["U8"])
    shape = rng.choice([[1], [2], [3], [4], [5], [8], [3, 2], [1, 3], [0, 3], [7, 7]])
    nbits = elements(shape) * DTYPES[dtype]
    nbytes = nbits // 8 + rng.choice([0, 0, 1])
    begin = m.tensors[-1][5] if m.tensors else 0
    m.tensors.append(["sub", dtype, shape, bytes(nbytes), begin, begin + nbytes])
    m.key_order.append("sub")
    return m.serialize()


def mut_many_dims(m, rng):
    rank = rng.choice([8, 9, 10, 16, 33])
    shape = [1] * rank
    begin = m.tensors[-1][5] if m.tensors else 0
    m.tensors.append(["rank%d" % rank, "U8", shape, b"r", begin, begin + 1])
    m.key_order.append("rank%d" % rank)
    return m.serialize()


def mut_empty_file_header(m, rng):
    h = rng.choice([b"{}", b'{"__metadata__":{}}', b'{"__metadata__":null}', b"{} ", b" {}"])
    tail = rng.choice([b"", b"", b"x"])
    return struct.pack("<Q", len(h)) + h + tail


MUTATIONS = [
    (mut_len_big, 3), (mut_len_small, 3), (mut_len_cap, 2), (mut_short_file, 1),
    (mut_truncate, 5), (mut_flip, 10), (mut_header_byte, 8), (mut_not_json, 2),
    (mut_not_object, 1), (mut_dup_tensor, 2), (mut_dup_tensor_differs, 1), (mut_dup_meta_key, 2),
    (mut_dup_metadata_object, 1), (mut_dup_field, 2), (mut_dup_unknown_field, 1),
    (mut_meta_value, 2), (mut_meta_type, 2), (mut_unknown_field, 3), (mut_deep, 2),
    (mut_missing_field, 2), (mut_entry_type, 1), (mut_field_type, 3), (mut_number_spelling, 5),
    (mut_big_zero_shape, 2), (mut_shape_overflow, 2), (mut_size_mismatch, 5), (mut_offsets, 10),
    (mut_dtype, 2), (mut_sub_byte, 2), (mut_utf8, 3), (mut_escapes, 3), (mut_whitespace, 4), (mut_many_dims, 1),
    (mut_empty_file_header, 1),
]


def generate(rng):
    m = random_model(rng)
    if rng.random() < 0.3:
        return "valid", m.serialize()
    funcs = [f for f, w in MUTATIONS for _ in range(w)]
    f = rng.choice(funcs)
    return f.__name__[4:], f(m, rng)


# ---- allowlist: deliberate, documented differences ------------------------------------------

def header_json(raw):
    """The header parsed with every object as a list of pairs (duplicates kept), or None."""
    if len(raw) < 8:
        return None
    n = hlen(raw)
    if n > len(raw) - 8:
        return None
    try:
        text = raw[8:8 + n].decode("utf-8")
        return json.loads(text, object_pairs_hook=lambda pairs: ("obj", pairs))
    except (ValueError, RecursionError):
        return None


def has_duplicate_keys(node):
    if isinstance(node, tuple) and node[0] == "obj":
        keys = [k for k, _ in node[1]]
        if len(keys) != len(set(keys)):
            return True
        return any(has_duplicate_keys(v) for _, v in node[1])
    if isinstance(node, list):
        return any(has_duplicate_keys(v) for v in node)
    return False


def has_nul_string(node):
    if isinstance(node, tuple) and node[0] == "obj":
        return any("\0" in k or has_nul_string(v) for k, v in node[1])
    if isinstance(node, list):
        return any(has_nul_string(v) for v in node)
    return isinstance(node, str) and "\0" in node


def max_rank(node):
    if not (isinstance(node, tuple) and node[0] == "obj"):
        return 0
    best = 0
    for k, v in node[1]:
        if k != "__metadata__" and isinstance(v, tuple) and v[0] == "obj":
            for fk, fv in v[1]:
                if fk == "shape" and isinstance(fv, list):
                    best = max(best, len(fv))
    return best


# Each rule: (id, explanation, predicate(raw) -> bool, allowed (reference, rosetta) decisions,
# a substring Rosetta's message must contain, so that a rule cannot hide a rejection for another
# reason).
ALLOW = [
    ("duplicate-keys",
     "Rosetta rejects any repeated JSON key (tensor names, __metadata__ keys, unknown fields); "
     "serde silently keeps the last tensor / metadata value and ignores repeated unknown fields",
     lambda raw: has_duplicate_keys(header_json(raw)), {(True, False)}, "duplicate key"),
    ("nul-in-string",
     "Rosetta refuses \\u0000 in header strings: tensor names and metadata are C strings in its "
     "model view, and cJSON would silently cut \"a\\u0000b\" to \"a\"; serde keeps the NUL",
     lambda raw: has_nul_string(header_json(raw)), {(True, False)}, "\\u0000 (NUL)"),
    ("rank-above-8",
     "Rosetta's model view holds at most RF_MAX_DIMS = 8 dimensions (RF_ERR_UNSUPPORTED); the "
     "reference has no rank limit",
     lambda raw: max_rank(header_json(raw)) > 8, {(True, False)},
     "dimensions, Rosetta handles at most 8"),
]


# ---- the run -----------------------------------------------------------------------------------

def main():
    rng = random.Random(SEED)
    start = time.monotonic()
    counts = {"cases": 0, "both-accept": 0, "both-reject": 0}
    allowed = {rule[0]: 0 for rule in ALLOW}
    kinds = {}
    failures = []
    tmp = tempfile.mkdtemp(prefix="st-diff-")
    path = os.path.join(tmp, "case.safetensors")
    try:
        for i in range(N_CASES):
            kind, raw = generate(rng)
            counts["cases"] += 1
            ref_ok, ref_msg, ref_view = reference_bytes(raw)
            ros_ok, ros_msg, ros_view = rosetta_memory(raw)
            with open(path, "wb") as f:
                f.write(raw)
            ref_path_ok, ref_path_msg, ref_meta = reference_path(path)
            ros_path_ok, ros_path_msg = rosetta_path(path)
            k = kinds.setdefault(kind, [0, 0])
            k[0] += 1
            k[1] += ref_ok
            tag = "case %d (%s, %d bytes)" % (i, kind, len(raw))
            if ref_path_ok != ref_ok:
                failures.append("%s: the reference disagrees with itself: deserialize %s, "
                                "safe_open %s (%s%s)" % (tag, ref_ok, ref_path_ok, ref_msg,
                                                         ref_path_msg))
                continue
            if ros_path_ok != ros_ok:
                failures.append("%s: rf_model_open %s but rf_safetensors_open_memory %s (%s%s)"
                                % (tag, ros_path_ok, ros_ok, ros_path_msg, ros_msg))
                continue
            if ref_ok == ros_ok:
                if not ref_ok:
                    counts["both-reject"] += 1
                    continue
                counts["both-accept"] += 1
                tensors, meta = ros_view
                if tensors != ref_view:
                    diff = sorted(n for n in set(tensors) | set(ref_view)
                                  if tensors.get(n) != ref_view.get(n))
                    failures.append("%s: both accept but tensors differ: %s" % (tag, diff[:5]))
                if meta != ref_meta:
                    failures.append("%s: both accept but metadata differs: rosetta %r, "
                                    "reference %r" % (tag, meta, ref_meta))
                continue
            rule = next((r for r in ALLOW if (ref_ok, ros_ok) in r[3] and r[4] in ros_msg and
                         r[2](raw)), None)
            if rule:
                allowed[rule[0]] += 1
                continue
            failures.append("%s: reference %s%s, rosetta %s%s\n    header: %r" % (
                tag, "accepts" if ref_ok else "rejects", "" if ref_ok else " (%s)" % ref_msg,
                "accepts" if ros_ok else "rejects", "" if ros_ok else " (%s)" % ros_msg,
                raw[8:8 + min(hlen(raw) if len(raw) >= 8 else 0, 300)]))
    finally:
        for name in os.listdir(tmp):
            os.unlink(os.path.join(tmp, name))
        os.rmdir(tmp)
    elapsed = time.monotonic() - start
    print("dtypes read by safetensors %s: %s" % (safetensors.__version__, " ".join(sorted(DTYPES))))
    print("generators (cases / reference accepts): " +
          ", ".join("%s %d/%d" % (k, v[0], v[1]) for k, v in sorted(kinds.items())))
    for rule_id, why, _, _, _ in ALLOW:
        print("allowed difference %s: %d (%s)" % (rule_id, allowed[rule_id], why))
    for f in failures[:400]:
        print("FAIL:", f, file=sys.stderr)
    print("summary: %d cases, %d both-accept, %d both-reject, %s, %d unexplained "
          "disagreements, %.1f s" % (counts["cases"], counts["both-accept"],
                                     counts["both-reject"],
                                     ", ".join("%d allowed %s" % (v, k) for k, v in allowed.items()),
                                     len(failures), elapsed))
    passed = 0 if failures else 1
    print("%d passed, %d failed" % (passed, 1 - passed))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
