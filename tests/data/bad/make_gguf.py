#!/usr/bin/env python3
"""Generates the malformed GGUF catalogue in tests/data/bad/gguf/ (deterministic, stdlib only).

Each case is <name>.gguf plus <name>.gguf.expect: one line, a substring that Rosetta's error
message must contain when the file is opened (strict, as rf_model_open does by default). The
offsets in the expectations are computed here from the layout this script writes, independently
of the reader. Run: python3 tests/data/bad/make_gguf.py [--out DIR]
"""
import argparse
import os
import struct

GGUF = b"GGUF"
T_U8, T_U16, T_U32, T_I32, T_F32, T_BOOL, T_STRING, T_ARRAY = 0, 2, 4, 5, 6, 7, 8, 9
F32, F16, Q8_0, Q4_K = 0, 1, 8, 12


class Gguf:
    """Writes GGUF pieces and remembers where each one starts."""

    def __init__(self, endian="<"):
        self.e = endian
        self.b = bytearray()
        self.at = {}

    def mark(self, name):
        self.at[name] = len(self.b)

    def raw(self, data):
        self.b += data

    def u8(self, v):
        self.b += struct.pack("<B", v)

    def u32(self, v):
        self.b += struct.pack(self.e + "I", v)

    def u64(self, v):
        self.b += struct.pack(self.e + "Q", v)

    def f32(self, v):
        self.b += struct.pack(self.e + "f", v)

    def string(self, s):
        data = s.encode() if isinstance(s, str) else s
        self.u64(len(data))
        self.b += data

    def header(self, n_tensors, n_kv, version=3):
        self.raw(GGUF)
        self.u32(version)
        self.u64(n_tensors)
        self.u64(n_kv)

    def kv_string(self, key, value):
        self.mark("kv:" + key)
        self.string(key)
        self.u32(T_STRING)
        self.mark("val:" + key)
        self.string(value)

    def kv_u32(self, key, value):
        self.mark("kv:" + key)
        self.string(key)
        self.u32(T_U32)
        self.mark("val:" + key)
        self.u32(value)

    def tensor(self, name, ne, ggml_type, offset):
        self.mark("ti:" + name)
        self.string(name)
        self.mark("ndims:" + name)
        self.u32(len(ne))
        for i, d in enumerate(ne):
            self.mark("ne%d:%s" % (i, name))
            self.u64(d)
        self.mark("type:" + name)
        self.u32(ggml_type)
        self.mark("offset:" + name)
        self.u64(offset)

    def pad(self, alignment=32):
        while len(self.b) % alignment:
            self.b += b"\0"

    def data(self, n, fill=0x11):
        self.b += bytes([fill]) * n


def valid(endian="<"):
    """A small valid file: general.architecture, general.name, two F32 tensors."""
    g = Gguf(endian)
    g.header(2, 2)
    g.kv_string("general.architecture", "test")
    g.kv_string("general.name", "bad-input base")
    g.tensor("a.weight", [4, 2], F32, 0)
    g.tensor("b.bias", [4], F32, 32)
    g.mark("infos_end")
    g.pad()
    g.mark("data")
    g.data(32)
    g.data(16)
    g.mark("data_end")
    g.pad()
    return g


def one_tensor(ne, ggml_type, offset=0, name="t", data=64, n_kv=0):
    g = Gguf()
    g.header(1, n_kv)
    g.tensor(name, ne, ggml_type, offset)
    g.pad()
    g.data(data)
    return g


def cases():
    out = {}
    v = valid()
    b = bytes(v.b)

    # --- truncated at every section boundary -------------------------------------------------
    out["truncated_magic"] = (b[:2], "unknown format (offset 0)")
    out["truncated_version"] = (b[:6], "version needs 4 bytes at offset 4, only 2 remain")
    out["truncated_counts"] = (b[:20], "key/value count needs 8 bytes at offset 16, only 4 remain")
    k = v.at["kv:general.name"]
    out["truncated_kv_key"] = (b[:k + 12],
                               "key length 12 at offset %d exceeds the 4 bytes left" % k)
    val = v.at["val:general.name"]
    out["truncated_kv_value"] = (b[:val + 10],
                                 "string value length 14 at offset %d exceeds the 2 bytes left"
                                 % val)
    t = v.at["type:b.bias"]
    out["truncated_tensor_info"] = (b[:t + 2],
                                    "tensor info 1 ('b.bias'): type needs 4 bytes at offset %d"
                                    % t)
    out["truncated_before_data"] = (b[:v.at["infos_end"]],
                                    "data section would start at offset %d" % v.at["data"])
    out["truncated_data"] = (b[:v.at["data"] + 40],
                             "tensor info 1 ('b.bias'): data offset out of range")

    # --- absurd counts and lengths --------------------------------------------------------------
    g = Gguf()
    g.header(0, 1 << 63)
    g.data(64)
    out["kv_count_2_63"] = (bytes(g.b), "key/value count 9223372036854775808 at offset 16")
    g = Gguf()
    g.header(1 << 40, 1)
    g.kv_u32("x", 1)
    out["tensor_count_huge"] = (bytes(g.b), "tensor count 1099511627776 at offset 8 is impossible")
    g = Gguf()
    g.header(0, 1)
    g.string("general.name")
    g.u32(T_STRING)
    g.mark("s")
    g.u64(1 << 62)
    g.raw(b"short")
    out["string_length_past_eof"] = (bytes(g.b),
                                     "string value length 4611686018427387904 at offset %d"
                                     % g.at["s"])
    g = Gguf()
    g.header(0, 1)
    g.string("tokenizer.ggml.tokens")
    g.u32(T_ARRAY)
    g.mark("arr")
    g.u32(T_STRING)
    g.u64(1000000)
    g.string("one")
    out["array_count_past_eof"] = (bytes(g.b),
                                   "array of 1000000 string values at offset %d" % g.at["arr"])
    g = Gguf()
    g.header(0, 1)
    g.string("big")
    g.u32(T_ARRAY)
    g.mark("arr")
    g.u32(T_U8)
    g.u64(1 << 31)
    g.data(64)
    out["array_count_over_limit"] = (bytes(g.b),
                                     "array length 2147483648 at offset %d exceeds ggml's limit"
                                     % (g.at["arr"] + 4))

    # --- unknown types --------------------------------------------------------------------------
    g = Gguf()
    g.header(0, 1)
    g.string("odd")
    g.mark("type")
    g.u32(13)
    g.u32(0)
    out["unknown_value_type"] = (bytes(g.b), "unknown value type 13 at offset %d" % g.at["type"])
    g = Gguf()
    g.header(0, 1)
    g.string("odd")
    g.u32(T_ARRAY)
    g.mark("arr")
    g.u32(200)
    g.u64(1)
    g.u32(0)
    out["unknown_array_type"] = (bytes(g.b),
                                 "unknown array element type 200 at offset %d" % g.at["arr"])
    g = one_tensor([32], 99)
    out["unknown_tensor_type"] = (bytes(g.b),
                                  "unknown tensor type 99 at offset %d" % g.at["type:t"])
    g = one_tensor([32], 4)
    out["removed_type_q4_2"] = (bytes(g.b), "type 4 (Q4_2) at offset %d was removed" % g.at["type:t"])
    g = one_tensor([32], 31)
    out["removed_type_q4_0_4_4"] = (bytes(g.b),
                                    "type 31 (Q4_0_4_4) at offset %d was removed" % g.at["type:t"])

    # --- shapes ---------------------------------------------------------------------------------
    g = one_tensor([1, 1, 1, 1, 2], F32)
    out["n_dims_5"] = (bytes(g.b), "5 dimensions at offset %d" % g.at["ndims:t"])
    g = one_tensor([1 << 31, 1 << 31, 1 << 2], F32)
    out["ne_product_overflow"] = (bytes(g.b), "shape (2147483648, 2147483648, 4) at offset %d: "
                                  "element count overflows int64" % g.at["ndims:t"])
    g = one_tensor([4, (1 << 64) - 1], F32)
    out["ne_negative"] = (bytes(g.b), "dimension 1 at offset %d is -1" % g.at["ne1:t"])
    g = one_tensor([100, 2], Q4_K, data=512)
    out["ne0_not_block_multiple"] = (bytes(g.b),
                                     "type Q4_K has 100 elements per row (ne[0]) at offset %d, "
                                     "not a multiple of the block size 256" % g.at["ne0:t"])

    # --- offsets --------------------------------------------------------------------------------
    g = one_tensor([4], F32, offset=8)
    out["offset_misaligned"] = (bytes(g.b), "data offset 8 (stored at offset %d) is misaligned"
                                % g.at["offset:t"])
    g = Gguf()
    g.header(2, 0)
    g.tensor("a", [4], F32, 0)
    g.tensor("b", [4], F32, 64)
    g.pad()
    g.data(96)
    out["offset_gap"] = (bytes(g.b), "data offset 64 (stored at offset %d), expected 32"
                         % g.at["offset:b"])
    g = Gguf()
    g.header(2, 0)
    g.tensor("a", [8], F32, 32)
    g.tensor("b", [8], F32, 0)
    g.pad()
    g.data(64)
    out["offset_out_of_order"] = (bytes(g.b), "data offset 32 (stored at offset %d), expected 0"
                                  % g.at["offset:a"])
    g = one_tensor([64], F32, data=100)
    out["offset_out_of_range"] = (bytes(g.b), "data offset out of range: 256 bytes at data offset 0")

    # --- names and keys -------------------------------------------------------------------------
    g = Gguf()
    g.header(2, 0)
    g.tensor("w", [4], F32, 0)
    g.tensor("w", [4], F32, 32)
    g.pad()
    g.data(64)
    out["duplicate_tensor_names"] = (bytes(g.b), "duplicate tensor name at offset %d (first at "
                                     "offset %d)" % (g.at["ti:w"], 24))
    g = Gguf()
    g.header(0, 2)
    g.kv_u32("general.file_type", 1)
    first = g.at["kv:general.file_type"]
    g.kv_u32("general.file_type", 2)
    out["duplicate_keys"] = (bytes(g.b), "duplicate key at offset %d (first at offset %d)"
                             % (g.at["kv:general.file_type"], first))
    g = Gguf()
    g.header(0, 1)
    g.string("")
    g.u32(T_U8)
    g.u8(0)
    g.data(8)
    out["empty_key"] = (bytes(g.b), "key/value pair 0 at offset 24 has an empty key")
    g = one_tensor([4], F32, name="n" * 64)
    out["tensor_name_too_long"] = (bytes(g.b), "name of 64 bytes at offset 24 is too long")

    # --- alignment ------------------------------------------------------------------------------
    for value, name in ((0, "alignment_zero"), (3, "alignment_three")):
        g = Gguf()
        g.header(1, 1)
        g.kv_u32("general.alignment", value)
        g.tensor("t", [4], F32, 0)
        g.pad()
        g.data(32)
        out[name] = (bytes(g.b), "general.alignment = %d at offset %d is not a non-zero power "
                     "of two" % (value, g.at["val:general.alignment"]))
    g = Gguf()
    g.header(0, 1)
    g.string("general.alignment")
    g.u32(T_U16)
    g.mark("val")
    g.raw(struct.pack("<H", 32))
    g.data(8)
    out["alignment_wrong_type"] = (bytes(g.b), "general.alignment at offset %d has type u16, "
                                   "expected u32" % g.at["val"])

    # --- versions -------------------------------------------------------------------------------
    for version, expect in ((0, "invalid GGUF version 0 at offset 4"),
                            (1, "GGUF version 1 at offset 4 is no longer supported"),
                            (4, "GGUF version 4 at offset 4 is newer")):
        g = Gguf()
        g.header(0, 0, version=version)
        out["version_%d" % version] = (bytes(g.b), expect)

    # --- nested arrays --------------------------------------------------------------------------
    g = Gguf()
    g.header(0, 1)
    g.string("nested")
    g.u32(T_ARRAY)
    g.u32(T_ARRAY)
    g.u64(1)
    g.mark("inner")
    g.u32(T_U32)
    g.u64(5)
    g.u32(1)
    out["nested_array_truncated"] = (bytes(g.b), "array of 5 u32 values at offset %d"
                                     % g.at["inner"])
    g = Gguf()
    g.header(0, 1)
    g.string("nested")
    g.u32(T_ARRAY)
    for _ in range(20):
        g.u32(T_ARRAY)
        g.u64(1)
    g.u32(T_U8)
    g.u64(0)
    out["nested_array_too_deep"] = (bytes(g.b), "arrays nested more than 16 deep")

    # --- big-endian quantized data (its block byte order is undefined) ----------------------------
    g = Gguf(">")
    g.header(1, 0)
    g.tensor("q", [32], Q8_0, 0)
    g.pad()
    g.data(64)
    out["big_endian_quantized"] = (bytes(g.b), "quantized type Q8_0 in a big-endian file")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "gguf"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for name in os.listdir(args.out):  # remove stale cases
        if name.endswith(".gguf") or name.endswith(".gguf.expect"):
            os.remove(os.path.join(args.out, name))
    made = cases()
    for name, (data, expect) in sorted(made.items()):
        with open(os.path.join(args.out, name + ".gguf"), "wb") as f:
            f.write(data)
        with open(os.path.join(args.out, name + ".gguf.expect"), "w") as f:
            f.write(expect + "\n")
    print("wrote %d malformed GGUF files to %s" % (len(made), args.out))


if __name__ == "__main__":
    main()
