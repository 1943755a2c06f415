#!/usr/bin/env python3
"""Writes corrupted copies of a model, one planted fault each, for tests/tools/compare_inference.sh
and tests/real/compare.sh: the verifier must report each as a divergence at the stage the fault
feeds. Edits are made in place on a copy (same length, so every offset stays valid): GGUF has no
checksum; APR's footer CRC-32 is recomputed (the metadata edits keep its length, so the header
and its CRC are unchanged).

usage: plant_faults.py FAULT IN OUT [FAULT IN OUT ...] [--layer L]

L is 1 unless --layer says otherwise; FAULT@L plants one fault at layer L (swap_up_rows@11).

  q4k_scale      GGUF: blk.L.attn_k.weight (Q4_K): one scale byte of its first super-block
                 flipped                                                  -> layer L, k
  q4k_scale_down GGUF: the same in blk.L.ffn_down.weight (Q4_K)            -> layer L, down
  swap_up_rows   GGUF: rows 0 and 1 of blk.L.ffn_up.weight swapped         -> layer L, up
  zero_qkv_bias  GGUF: blk.L.attn_q/k/v.bias set to zeros                  -> layer L, q
  transpose_o    GGUF (F32/F16/BF16): blk.L.attn_output.weight stored transposed (square, so
                 the shape reads the same)                                 -> layer L, o_proj
  transpose_gate GGUF (F32/F16/BF16): blk.L.ffn_gate.weight stored transposed with its two
                 dimensions swapped                                        -> refused (shape)
  rope_theta     GGUF: qwen2.rope.freq_base = 10000                        -> layer 0, q_rope
  rope_norm      APR: rope_type 2 (NEOX) -> 0 (NORM)                       -> layer 0, q_rope
  vocab_shift    GGUF: tokenizer.ggml.tokens / token_type rotated by one   -> tokens
  zero_head      GGUF: output.weight all zeros                             -> logits
  zero_eps       GGUF: qwen2.attention.layer_norm_rms_epsilon = 0          -> layer 0, attn_norm
"""
import mmap
import shutil
import struct
import sys
import zlib

GGUF_SCALAR = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
# ggml type -> (block elements, block bytes) for the types these faults touch
GGML_BLOCK = {0: (1, 4), 1: (1, 2), 30: (1, 2), 8: (32, 34), 12: (256, 144), 14: (256, 210),
              6: (32, 22), 2: (32, 18), 13: (256, 176), 10: (256, 84), 11: (256, 110)}


class Gguf:
    """Offsets of every metadata value and tensor of a GGUF file (little-endian, v2/v3)."""

    def __init__(self, data):
        self.data = data
        if data[:4] != b"GGUF":
            raise SystemExit("plant_faults: not a GGUF file")
        n_tensors, n_kv = struct.unpack_from("<QQ", data, 8)
        at = 24
        self.kv = {}  # key -> (type, value offset, value end)
        for _ in range(n_kv):
            key, at = self._str(at)
            vtype = struct.unpack_from("<I", data, at)[0]
            start = at + 4
            end = self._skip(vtype, start)
            self.kv[key] = (vtype, start, end)
            at = end
        self.tensors = {}  # name -> dict(dims_at, dims, type, offset)
        for _ in range(n_tensors):
            name, at = self._str(at)
            n_dims = struct.unpack_from("<I", data, at)[0]
            dims_at = at + 4
            dims = list(struct.unpack_from("<%dQ" % n_dims, data, dims_at))
            at = dims_at + 8 * n_dims
            ttype, offset = struct.unpack_from("<IQ", data, at)
            at += 12
            self.tensors[name] = dict(dims_at=dims_at, dims=dims, type=ttype, offset=offset)
        align = 32
        if "general.alignment" in self.kv:
            align = struct.unpack_from("<I", data, self.kv["general.alignment"][1])[0]
        self.data_start = (at + align - 1) // align * align

    def _str(self, at):
        n = struct.unpack_from("<Q", self.data, at)[0]
        return self.data[at + 8:at + 8 + n].decode("utf-8"), at + 8 + n

    def _skip(self, vtype, at):
        if vtype in GGUF_SCALAR:
            return at + GGUF_SCALAR[vtype]
        if vtype == 8:
            return at + 8 + struct.unpack_from("<Q", self.data, at)[0]
        if vtype == 9:
            etype, count = struct.unpack_from("<IQ", self.data, at)
            at += 12
            for _ in range(count):
                at = self._skip(etype, at)
            return at
        raise SystemExit("plant_faults: unknown GGUF value type %d" % vtype)

    def tensor(self, name):
        if name not in self.tensors:
            raise SystemExit("plant_faults: no tensor %s" % name)
        t = self.tensors[name]
        n = 1
        for d in t["dims"]:
            n *= d
        be, bb = GGML_BLOCK[t["type"]]
        return self.data_start + t["offset"], n // be * bb, t


def set_f32(buf, g, key, value):
    vtype, at, _ = g.kv[key]
    if vtype != 6:
        raise SystemExit("plant_faults: %s is not an f32" % key)
    struct.pack_into("<f", buf, at, value)


def rotate_strings(buf, g, key):
    vtype, at, end = g.kv[key]
    etype, count = struct.unpack_from("<IQ", buf, at)
    items, p = [], at + 12
    for _ in range(count):
        n = struct.unpack_from("<Q", buf, p)[0]
        items.append(bytes(buf[p + 8:p + 8 + n]))
        p += 8 + n
    items = items[1:] + items[:1]
    out = b"".join(struct.pack("<Q", len(s)) + s for s in items)
    assert len(out) == end - at - 12
    buf[at + 12:end] = out


def rotate_ints(buf, g, key):
    vtype, at, end = g.kv[key]
    etype, count = struct.unpack_from("<IQ", buf, at)
    size = GGUF_SCALAR[etype]
    body = bytes(buf[at + 12:end])
    buf[at + 12:end] = body[size:] + body[:size]


def plant_gguf(fault, buf, layer):
    g = Gguf(buf)
    if fault in ("q4k_scale", "q4k_scale_down"):
        name = "blk.%d.%s.weight" % (layer, "attn_k" if fault == "q4k_scale" else "ffn_down")
        off, size, t = g.tensor(name)
        if t["type"] != 12:
            raise SystemExit("plant_faults: %s is not Q4_K" % name)
        buf[off + 4] ^= 0x15  # scales[0] of super-block 0: bytes d(2) dmin(2) scales(12) qs(128)
    elif fault == "swap_up_rows":
        off, size, t = g.tensor("blk.%d.ffn_up.weight" % layer)
        rows = t["dims"][1]
        row = size // rows
        a, b = bytes(buf[off:off + row]), bytes(buf[off + row:off + 2 * row])
        if a == b:
            raise SystemExit("plant_faults: rows 0 and 1 are equal")
        buf[off:off + row], buf[off + row:off + 2 * row] = b, a
    elif fault == "zero_qkv_bias":
        for p in ("q", "k", "v"):
            off, size, _ = g.tensor("blk.%d.attn_%s.bias" % (layer, p))
            buf[off:off + size] = bytes(size)
    elif fault in ("transpose_o", "transpose_gate"):
        name = "blk.%d.%s.weight" % (layer, "attn_output" if fault == "transpose_o" else "ffn_gate")
        off, size, t = g.tensor(name)
        if t["type"] not in (0, 1, 30):
            raise SystemExit("plant_faults: %s must be F32/F16/BF16" % name)
        cols, rows = t["dims"]  # GGUF ne: innermost first
        es = GGML_BLOCK[t["type"]][1]
        src = bytes(buf[off:off + size])
        out = bytearray(size)
        for r in range(rows):
            for c in range(cols):
                # element (r, c) of the stored matrix goes to (c, r) of the transposed one
                d = (c * rows + r) * es
                s = (r * cols + c) * es
                out[d:d + es] = src[s:s + es]
        buf[off:off + size] = out
        if fault == "transpose_gate":
            struct.pack_into("<QQ", buf, t["dims_at"], rows, cols)
    elif fault == "rope_theta":
        set_f32(buf, g, "qwen2.rope.freq_base", 10000.0)
    elif fault == "zero_eps":
        set_f32(buf, g, "qwen2.attention.layer_norm_rms_epsilon", 0.0)
    elif fault == "vocab_shift":
        rotate_strings(buf, g, "tokenizer.ggml.tokens")
        if "tokenizer.ggml.token_type" in g.kv:
            rotate_ints(buf, g, "tokenizer.ggml.token_type")
    elif fault == "zero_head":
        off, size, _ = g.tensor("output.weight")
        buf[off:off + size] = bytes(size)
    else:
        raise SystemExit("plant_faults: unknown fault %s" % fault)


def plant_apr(fault, buf):
    if fault != "rope_norm":
        raise SystemExit("plant_faults: fault %s needs a GGUF file" % fault)
    old, new = b'"rope_type":2', b'"rope_type":0'
    at = buf.find(old)
    if at < 0 or buf.find(old, at + 1) >= 0:
        raise SystemExit("plant_faults: no single \"rope_type\":2 in the APR metadata")
    buf[at:at + len(old)] = new
    struct.pack_into("<I", buf, len(buf) - 4, zlib.crc32(bytes(buf[:-4])) & 0xFFFFFFFF)


def plant(fault, src, dst, layer):
    """Copies src to dst and plants fault in the copy, in place through a memory map (only the
    bytes of the fault are rewritten: cheap on a multi-GB model)."""
    shutil.copyfile(src, dst)
    with open(dst, "r+b") as f, mmap.mmap(f.fileno(), 0) as buf:
        if buf[:4] == b"GGUF":
            plant_gguf(fault, buf, layer)
        elif buf[:4] == b"APR\0":
            plant_apr(fault, buf)
        else:
            raise SystemExit("plant_faults: %s is neither GGUF nor APR" % src)
        buf.flush()


def main():
    args = sys.argv[1:]
    layer = 1
    if "--layer" in args:
        i = args.index("--layer")
        layer = int(args[i + 1])
        del args[i:i + 2]
    if not args or len(args) % 3 != 0:
        raise SystemExit(__doc__)
    for i in range(0, len(args), 3):
        fault, _, at = args[i].partition("@")
        plant(fault, args[i + 1], args[i + 2], int(at) if at else layer)


if __name__ == "__main__":
    main()
