#!/usr/bin/env python3
"""Writes the malformed SafeTensors catalogue into tests/data/bad/safetensors/ (deterministic).

Each case is a file <case>.safetensors, or a checkpoint directory <case>/ when the damage is in
a companion file, in a shard index, or in a length prefix that stops the file from being
recognised as SafeTensors by content at all (rf_model_open reaches the SafeTensors reader
through the directory). Beside each case, <case>[.safetensors].expect holds one line: a
substring the error message must contain. Rebuild with:  python3 tests/data/bad/make_safetensors.py
"""
import json
import os
import shutil
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "safetensors")


def st_bytes(header, data=b"", length=None):
    """[u64 LE length][header text][data]; length overrides the true header length."""
    raw = header.encode("utf-8") if isinstance(header, str) else header
    n = len(raw) if length is None else length
    return struct.pack("<Q", n) + raw + data


def entry(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def header_of(tensors, metadata=None):
    """Compact JSON the way the reference writer spells it."""
    obj = {}
    if metadata is not None:
        obj["__metadata__"] = metadata
    obj.update(tensors)
    return json.dumps(obj, separators=(",", ":"))


def data_offset(header):
    return 8 + len(header.encode("utf-8"))


CASES = {}  # name -> (bytes or dict of files, expected substring)


def case(name, content, expect):
    assert name not in CASES, name
    CASES[name] = (content, expect)


def build():
    u8 = "U8"
    # -- header bytes --------------------------------------------------------------------------
    h = '{"a\xff":' + json.dumps(entry(u8, [1], 0, 1)) + "}"
    raw = h.encode("latin-1")
    case("header-not-utf8.safetensors", st_bytes(raw, b"\0"),
         "header is not valid UTF-8 at offset 11 (byte 0xff)")
    h = '{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]'  # no closing braces
    case("header-invalid-json.safetensors", st_bytes(h, b"\0"),
         "invalid JSON at offset %d" % (8 + len(h)))
    h = '{"w":{"dtype":"U8\x01","shape":[1],"data_offsets":[0,1]}}'
    case("header-control-char.safetensors", st_bytes(h, b"\0"),
         "control character 0x01 inside a string")
    h = '{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"scale":NaN}'
    case("header-nan.safetensors", st_bytes(h, b"\0" * 4),
         'key "scale": NaN is not a finite number')
    # -- schema ----------------------------------------------------------------------------------
    h = header_of({"w": entry("Q4_K", [32], 0, 18)})
    case("unknown-dtype.safetensors", st_bytes(h, b"\0" * 18), 'tensor "w": unknown dtype "Q4_K"')
    h = '{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"w":{"dtype":"U8","shape":[1],' \
        '"data_offsets":[1,2]}}'
    case("duplicate-key.safetensors", st_bytes(h, b"\0\0"),
         'duplicate key "w" in the top-level object')
    h = header_of({"w": entry(u8, [1], 0, 1)}, {"format": "pt", "version": 2})
    case("metadata-not-string.safetensors", st_bytes(h, b"\0"),
         '__metadata__ value of "version" is a number, expected a string')
    h = header_of({"w": entry(u8, [-4], 0, 4)})
    case("shape-negative.safetensors", st_bytes(h, b"\0" * 4), "shape[0] = -4 is negative")
    h = header_of({"w": entry(u8, [2, 2.5], 0, 5)})
    case("shape-float.safetensors", st_bytes(h, b"\0" * 5), "shape[1] = 2.5 is not an integer")
    # serde reads 4e0 as a float and refuses it for a usize, although its value is integral
    h = '{"w":{"dtype":"U8","shape":[4e0],"data_offsets":[0,4]}}'
    case("shape-exponent.safetensors", st_bytes(h, b"\0" * 4),
         "shape[0] = 4e0 is a floating-point number in JSON")
    # serde_json's recursion limit: 128 nested levels are refused even inside an ignored field
    h = ('{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":' + "[" * 126 + "]" * 126 +
         "}}")
    case("header-too-deep.safetensors", st_bytes(h, b"\0"), "nesting deeper than 127 levels")
    h = '{"w":{"dtype":"U8","shape":[1]}}'
    case("missing-data-offsets.safetensors", st_bytes(h, b""),
         'tensor "w": missing "data_offsets"')
    # -- offsets and sizes -------------------------------------------------------------------------
    h = header_of({"a": entry(u8, [4], 0, 4), "b": entry(u8, [4], 8, 12)})
    case("offsets-gap.safetensors", st_bytes(h, b"\1" * 12),
         'gap in the data: tensor "b" starts at data offset 8 (file offset %d)'
         % (data_offset(h) + 8))
    h = header_of({"a": entry(u8, [4], 0, 4), "b": entry(u8, [4], 2, 6)})
    case("offsets-overlap.safetensors", st_bytes(h, b"\1" * 6),
         'overlap: tensor "b" starts at data offset 2 (file offset %d)' % (data_offset(h) + 2))
    h = header_of({"a": entry(u8, [4], 4, 8)})
    case("offsets-first-not-zero.safetensors", st_bytes(h, b"\1" * 8),
         'gap at the start of the data: the first tensor "a" starts at data offset 4 '
         "(file offset %d)" % (data_offset(h) + 4))
    h = header_of({"a": entry(u8, [4], 8, 4)})
    case("offsets-reversed.safetensors", st_bytes(h, b"\1" * 8),
         "data_offsets [8, 4] end before they begin")
    h = header_of({"a": entry("F32", [4], 0, 16)})
    case("offsets-out-of-range.safetensors", st_bytes(h, b"\1" * 8),
         "reach past the end of the data: it would end at file offset %d but the file is %d bytes"
         % (data_offset(h) + 16, data_offset(h) + 8))
    h = header_of({"a": entry("F32", [4], 0, 12)})
    case("size-mismatch.safetensors", st_bytes(h, b"\1" * 12),
         "span 12 bytes but F32 shape [4] needs 16: size does not match the shape")
    h = header_of({"a": entry(u8, [4], 0, 4)})
    case("trailing-bytes.safetensors", st_bytes(h, b"\1" * 7),
         "3 trailing bytes after the last tensor: tensor data ends at file offset %d"
         % (data_offset(h) + 4))
    h = header_of({"a": entry("F32", [4294967296, 4294967296, 16], 0, 0)})
    case("shape-overflow.safetensors", st_bytes(h, b""),
         "element count of shape [4294967296,4294967296,16] overflows 64 bits")
    h = header_of({"a": entry("F4", [3], 0, 2)})
    case("f4-odd-bits.safetensors", st_bytes(h, b"\0\0"),
         "F4 shape [3] is 12 bits, not a whole number of bytes")
    # -- length prefix (directory cases: such files are not recognised as SafeTensors) ------------
    h = header_of({"a": entry(u8, [1], 0, 1)})
    case("header-past-eof", {"model.safetensors": st_bytes(h, b"\0", length=4096)},
         "header length 4096 (u64 at offset 0) runs past the end of the file")
    case("header-huge", {"model.safetensors": st_bytes(h, b"\0", length=1 << 63)},
         "header length 9223372036854775808 (u64 at offset 0) exceeds the 100000000-byte limit")
    arr = '[{"a":1}]   '
    case("not-object", {"model.safetensors": st_bytes(arr)},
         "header at offset 8 is an array, expected a JSON object")
    # -- companions and shards --------------------------------------------------------------------
    good_h = header_of({"model.norm.weight": entry("F32", [2], 0, 8)}, {"format": "pt"})
    good = st_bytes(good_h + " " * ((8 - len(good_h) % 8) % 8), struct.pack("<2f", 1.0, 1.0))
    nan_config = '{\n  "hidden_size": 2,\n  "rms_norm_eps": NaN\n}\n'
    case("nan-config", {"model.safetensors": good, "config.json": nan_config},
         'config.json: invalid JSON at offset %d: key "rms_norm_eps": NaN is not a finite number'
         % nan_config.index("NaN"))
    case("config-infinite", {"model.safetensors": good,
                             "config.json": '{"hidden_size": 2, "rope_theta": 1e999}\n'},
         'config.json: "rope_theta" is not a finite number')
    case("config-negative", {"model.safetensors": good,
                             "config.json": '{"hidden_size": -896}\n'},
         'config.json: "hidden_size" = -896 is negative')
    shard1 = st_bytes(header_of({"a": entry(u8, [2], 0, 2)}, {"format": "pt"}), b"\1\2")
    shard2 = st_bytes(header_of({"b": entry(u8, [2], 0, 2)}, {"format": "pt"}), b"\3\4")
    names = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]

    def index(weight_map):
        return json.dumps({"metadata": {"total_size": 4}, "weight_map": weight_map}, indent=2)

    case("shard-missing-tensor",
         {names[0]: shard1, names[1]: shard2,
          "model.safetensors.index.json": index({"a": names[0], "b": names[1], "c": names[1]})},
         'weight_map lists tensor "c" in shard "%s" but that shard does not hold it' % names[1])
    shard_ax = st_bytes(header_of({"a": entry(u8, [2], 0, 2), "extra": entry(u8, [2], 2, 4)},
                                  {"format": "pt"}), b"\1\2\3\4")
    case("shard-extra-tensor",
         {names[0]: shard_ax, "model.safetensors.index.json": index({"a": names[0]})},
         'shard "%s" holds tensor "extra" which the weight_map does not list (extra tensor)'
         % names[0])
    case("shard-duplicate-tensor",
         {names[0]: shard1, names[1]: shard1,
          "model.safetensors.index.json": index({"a": names[0], "x": names[1]})},
         'tensor "a" is also in')
    case("index-path-escape",
         {names[0]: shard1,
          "model.safetensors.index.json": index({"a": "../" + names[0]})},
         'names "../%s": expected a plain file name' % names[0])


def main():
    build()
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    for name, (content, expect) in sorted(CASES.items()):
        if isinstance(content, dict):
            os.makedirs(os.path.join(OUT, name))
            for fname, data in sorted(content.items()):
                mode = "w" if isinstance(data, str) else "wb"
                with open(os.path.join(OUT, name, fname), mode) as f:
                    f.write(data)
        else:
            with open(os.path.join(OUT, name), "wb") as f:
                f.write(content)
        with open(os.path.join(OUT, name + ".expect"), "w") as f:
            f.write(expect + "\n")
    print("wrote %d cases to %s" % (len(CASES), OUT))


if __name__ == "__main__":
    main()
