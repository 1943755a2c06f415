#!/usr/bin/env python3
"""Generates the malformed APR v2 catalogue in tests/data/bad/apr/ (deterministic, stdlib only).

Every case starts from the golden model of spec/apr-v2.md 21.1 (F32 tensors `bias` [1] and
`weights` [8]; metadata 189 bytes at 64, index at 256, data at 384, footer at 512), laid out here
from the spec's rules, then damaged in one way. Header fields that a case changes get a fresh
header CRC (and the footer a fresh CRC) so that the intended check, not a checksum, fires.
Each case is <name>.apr plus <name>.apr.expect: one line, a substring Rosetta's error message must
contain when the file is opened strictly (rf_model_open's default).
Run: python3 tests/data/bad/make_apr.py [--out DIR]
"""
import argparse
import os
import struct
import zlib

F32 = 0
META = (b'{"model_type":"linear_regression","name":"golden-v2","license":null,"data_source":null,'
        b'"data_license":null,"version":"0.0.0-golden","created_at":"1700000000","total_size":0,'
        b'"param_count":8}')
WEIGHTS = struct.pack("<8f", 1, 2, 0.5, -0.5, 4, -2, 0.25, 8)
BIAS = struct.pack("<f", 0.125)


def align64(x):
    return (x + 63) & ~63


def entry(name, code, shape, offset, size):
    n = name.encode() if isinstance(name, str) else name
    return (struct.pack("<H", len(n)) + n + bytes([code, len(shape)])
            + b"".join(struct.pack("<Q", d) for d in shape) + struct.pack("<QQ", offset, size))


class Apr:
    """An APR v2 file as parts. build() lays it out by the spec (section 2), then applies header
    overrides (fields a case damages), then computes the header CRC and the footer CRC."""

    def __init__(self):
        self.magic = b"APR\0"
        self.version = (2, 0)
        self.flags = 0x0400
        self.meta = META
        self.tensors = [("bias", F32, [1], BIAS), ("weights", F32, [8], WEIGHTS)]
        self.entries = None   # raw index bytes replacing the computed ones
        self.offsets = None   # relative data offsets replacing the packed ones
        self.header = {}      # overrides: count, meta_size, tio, dof

    def build(self):
        offsets = self.offsets or []
        index = b""
        data = bytearray()
        pos = 0
        for i, (name, code, shape, payload) in enumerate(self.tensors):
            off = offsets[i] if offsets else pos
            index += entry(name, code, shape, off, len(payload))
            pos += align64(len(payload))
            if off + len(payload) <= (1 << 16):  # far-away extents are left out of the file
                data += bytes(max(0, align64(off + len(payload)) - len(data)))
                data[off:off + len(payload)] = payload
        if self.entries is not None:
            index = self.entries
        tio = 64 + align64(len(self.meta))
        dof = tio + align64(len(index))
        fields = {"count": len(self.tensors), "meta_size": len(self.meta), "tio": tio, "dof": dof}
        fields.update(self.header)
        h = bytearray(64)
        h[0:4] = self.magic
        h[4], h[5] = self.version
        struct.pack_into("<HIQIQQ", h, 6, self.flags, fields["count"], 64, fields["meta_size"],
                         fields["tio"], fields["dof"])
        struct.pack_into("<I", h, 40, zlib.crc32(bytes(h[0:40]) + bytes(h[44:64])))
        body = bytes(h) + self.meta + bytes(tio - 64 - len(self.meta))
        body += index + bytes(dof - tio - len(index)) + bytes(data)
        return body + struct.pack("<I", zlib.crc32(body))


def golden():
    return Apr().build()


def lz4_literals(data):
    """One raw LZ4 block holding data as literals only (a valid block, no matches)."""
    n = len(data)
    token = (15 if n >= 15 else n) << 4
    out = bytes([token])
    if n >= 15:
        rest = n - 15
        while rest >= 255:
            out += b"\xff"
            rest -= 255
        out += bytes([rest])
    return out + data


def compressed(flag, payload):
    g = bytearray(golden()[:64])
    struct.pack_into("<H", g, 6, 0x0400 | flag)
    struct.pack_into("<I", g, 40, zlib.crc32(bytes(g[0:40]) + bytes(g[44:64])))
    return bytes(g) + payload


def cases():
    g = golden()
    assert len(g) == 516 and zlib.crc32(g[:512]) == 0x550F3F35, "golden layout drifted"
    out = {}

    out["truncated_header"] = (g[:40], "truncated header: the file has 40 bytes")
    out["truncated_in_metadata"] = (g[:150], "metadata at offset 64 with metadata_size 189 "
                                    "(header offset 20) extends past the end of the file (150 bytes)")
    out["truncated_at_index"] = (g[:256], "data offset 384 (header offset 32) is past the end "
                                 "of the file (256 bytes)")
    out["truncated_in_index"] = (g[:300], "data offset 384 (header offset 32) is past the end")
    out["truncated_at_data"] = (g[:384], "tensor 'bias' (index entry at offset 256): data at "
                                "offset 384 + 4 bytes")
    out["truncated_in_data"] = (g[:460], "tensor 'weights' (index entry at offset 288): data at "
                                "offset 448 + 32 bytes")
    out["truncated_in_footer"] = (g[:514], "truncated footer: 2 of its 4 bytes at offset 512")

    b = bytearray(g)
    b[41] ^= 0xff
    out["bad_header_crc"] = (bytes(b), "header CRC mismatch (offset 40): stored 0x3bc07302, "
                             "computed 0x3bc08c02")
    b = bytearray(g)
    b[512] ^= 0x01
    out["bad_footer_crc"] = (bytes(b), "footer CRC mismatch (offset 512): stored 0x550f3f34, "
                             "computed 0x550f3f35")

    a = Apr()
    a.header["meta_size"] = 100000
    out["metadata_size_past_eof"] = (a.build(), "metadata_size 100000 (header offset 20) extends "
                                     "past the end of the file")
    a = Apr()
    a.header["count"] = 0xFFFFFFFF
    out["huge_tensor_count"] = (a.build(), "tensor_count 4294967295 (header offset 8) cannot fit")
    a = Apr()
    a.entries = struct.pack("<H", 0xFFFF) + entry("bias", F32, [1], 0, 4)[2:] + \
        entry("weights", F32, [8], 64, 32)
    out["name_length_past_end"] = (a.build(), "tensor index entry 0 at offset 256: name length "
                                   "65535 runs past the index")
    a = Apr()
    a.tensors[1] = ("weights", 77, [8], WEIGHTS)
    out["unknown_dtype"] = (a.build(), "tensor 'weights' (index entry at offset 288): unknown "
                            "dtype code 77 at offset 297")
    a = Apr()
    a.tensors = [a.tensors[1], a.tensors[0]]
    out["unsorted_index"] = (a.build(), "tensor index not sorted at entry 1 (offset 291): 'bias' "
                             "comes after 'weights'")
    a = Apr()
    a.tensors[1] = ("bias", F32, [8], WEIGHTS)
    out["duplicate_name"] = (a.build(), "'bias' duplicates 'bias'")
    a = Apr()
    a.tensors[0] = ("bias", F32, [8], WEIGHTS)
    a.offsets = [0, 16]
    out["overlapping_tensors"] = (a.build(), "tensors 'bias' (data at offset 384, 32 bytes) and "
                                  "'weights' (data at offset 400) overlap")
    a = Apr()
    a.offsets = [0, 1 << 40]
    out["tensor_offset_out_of_range"] = (a.build(), "tensor 'weights' (index entry at offset 288): "
                                         "data at offset 1099511628160")
    a = Apr()
    a.flags = 0x0800
    out["column_major_flag"] = (a.build(), "column-major layout flag 0x0800 is set")
    a = Apr()
    a.flags = 0x0404
    out["encrypted_flag"] = (a.build(), "encrypted (flag 0x0004)")

    bad_json = META[:-1] + b",}"
    a = Apr()
    a.meta = bad_json
    out["invalid_json"] = (a.build(), "invalid JSON at offset %d: expected '\"' starting an "
                           "object key, found '}'" % (64 + len(bad_json) - 1))
    a = Apr()
    a.meta = b'{"model_type":"t","rope_theta":NaN}'
    out["nan_in_metadata"] = (a.build(), "invalid JSON at offset %d" % (64 + 31))
    a = Apr()
    a.meta = META.replace(b"golden-v2", b"golden\xff\xfe2")
    out["invalid_utf8_metadata"] = (a.build(), "invalid UTF-8 at offset %d (byte 0xff)"
                                    % (64 + META.index(b"golden-v2") + 6))
    a = Apr()
    a.meta = b'["not","an","object"]'
    out["metadata_not_object"] = (a.build(), "metadata (offset 64): expected a JSON object, found an array")
    a = Apr()
    a.tensors[1] = ("weights", F32, [1 << 32, 1 << 32, 2], WEIGHTS)
    out["shape_product_overflow"] = (a.build(), "tensor 'weights' (index entry at offset 288): "
                                     "shape product overflows")
    a = Apr()
    a.tensors[1] = ("weights", F32, [9], WEIGHTS)
    out["size_mismatch"] = (a.build(), "32 bytes stored (offset 315), but F32 with shape [9] "
                            "needs 36")
    a = Apr()
    a.tensors[1] = ("weights", F32, [1] * 9, WEIGHTS)
    out["too_many_dims"] = (a.build(), "9 dimensions")
    a = Apr()
    a.header["tio"] = 128
    out["index_overlaps_metadata"] = (a.build(), "tensor index offset 128 (header offset 24) "
                                      "overlaps the metadata, which ends at offset 253")
    a = Apr()
    a.header["dof"] = 192
    out["data_before_index"] = (a.build(), "data offset 192 (header offset 32) is before the "
                                "tensor index offset 256")

    payload = g[64:]
    corrupt = bytearray(lz4_literals(payload))
    corrupt[0] = 0x0F  # no literals, then a match whose offset points before the output
    out["lz4_corrupt"] = (compressed(0x0001, struct.pack("<I", len(payload)) + bytes(corrupt[:40])),
                          "corrupt LZ4 block at offset 68")
    out["lz4_size_bomb"] = (compressed(0x0001, struct.pack("<I", 0xFFFFFFF0) + lz4_literals(b"x")),
                            "more than 1024x expansion")
    # a zstd frame header declaring 452 bytes, then a block header announcing a raw block far
    # longer than the data that follows
    zframe = bytes([0x28, 0xB5, 0x2F, 0xFD, 0x60]) + struct.pack("<H", 452 - 256) + \
        bytes([0xF1, 0xFF, 0x0F]) + b"\x00" * 16
    out["zstd_corrupt"] = (compressed(0x0002, zframe), "corrupt zstd frame at offset 64")
    out["both_compression_flags"] = (compressed(0x0003, b"\x00" * 16),
                                     "both compression flags (LZ4 0x0001 and zstd 0x0002)")

    tsp = bytes.fromhex("41505200010000000050535417" "6ddab1") + bytes(61)
    out["aprender_tsp"] = (tsp, "aprender-tsp model (not APR v2)")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "apr"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for name, (data, expect) in sorted(cases().items()):
        with open(os.path.join(args.out, name + ".apr"), "wb") as f:
            f.write(data)
        with open(os.path.join(args.out, name + ".apr.expect"), "w") as f:
            f.write(expect + "\n")
    print("wrote %d cases to %s" % (len(cases()), args.out))


if __name__ == "__main__":
    main()
