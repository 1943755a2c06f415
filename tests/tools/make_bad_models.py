#!/usr/bin/env python3
"""Crafted bad models for the contract rules (docs/contracts.md): each case copies a fixture
(Hugging Face layout), breaks exactly one thing, and states which rule ids `apr validate` must
report for it and nothing else. Used by tests/tools/validate.sh; also a source of bad inputs
for tools that stop on contract violations.

    make_bad_models.py OUTDIR [--apr-bin DIR [--no-gguf]]

writes OUTDIR/<case>/ (config.json, tokenizer files, model.safetensors) or OUTDIR/<case>.apr /
.gguf, and OUTDIR/cases.json: [{"case", "path", "rules", "warning_only"}]. With --apr-bin
(the directory of apr-quantize) some cases are also written as GGUF (converted with
`apr quantize ... f32 --format gguf`) and the RoPE case as APR. SafeTensors is read and written
here with struct and json only; BF16 values go through numpy as uint16 bit patterns.
"""
import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import zlib

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(ROOT, "fixtures")


# ---- SafeTensors ---------------------------------------------------------------------------

def read_st(path):
    """Tensors in file order: name -> [dtype, shape, raw bytes]; plus __metadata__."""
    with open(path, "rb") as f:
        blob = f.read()
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    meta = header.pop("__metadata__", None)
    base = 8 + n
    tensors = {}
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        s, e = info["data_offsets"]
        tensors[name] = [info["dtype"], list(info["shape"]), blob[base + s:base + e]]
    return tensors, meta


def write_st(path, tensors, meta):
    header = {}
    offset = 0
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
    if meta is not None:
        header["__metadata__"] = meta
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for _, _, raw in tensors.values():
            f.write(raw)


def bf16_to_f32(raw):
    return (np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def f32_to_bf16(values):
    """Round to nearest even; NaN stays NaN."""
    bits = np.asarray(values, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(np.asarray(values, dtype=np.float32))
    rounded[nan] = 0x7FC0
    return rounded.tobytes()


def random_bf16(shape, seed, scale=0.05):
    rng = np.random.default_rng(seed)
    return f32_to_bf16(rng.standard_normal(int(np.prod(shape))).astype(np.float32) * scale)


# ---- cases -----------------------------------------------------------------------------------

class Model:
    """A fixture copy being broken: tensors (ordered dict) and config.json."""

    def __init__(self, fixture):
        self.dir = os.path.join(FIXTURES, fixture)
        self.tensors, self.meta = read_st(os.path.join(self.dir, "model.safetensors"))
        with open(os.path.join(self.dir, "config.json")) as f:
            self.config = json.load(f)

    def values(self, name):
        return bf16_to_f32(self.tensors[name][2]).copy().reshape(self.tensors[name][1])

    def set_values(self, name, values):
        self.tensors[name][2] = f32_to_bf16(values.reshape(-1))

    def write(self, out):
        os.makedirs(out)
        for f in os.listdir(self.dir):
            if f.endswith(".json"):
                shutil.copy(os.path.join(self.dir, f), out)
        with open(os.path.join(out, "config.json"), "w") as f:
            json.dump(self.config, f, indent=2)
        # the SafeTensors reader takes config.json from beside the file; the copy of it kept in
        # the metadata by some writers is not used, so the fixture's metadata stays as is
        write_st(os.path.join(out, "model.safetensors"), self.tensors, self.meta)


def case_missing_tensor(m):
    del m.tensors["model.layers.1.mlp.up_proj.weight"]


def case_shape(m):
    m.tensors["model.layers.0.self_attn.k_proj.weight"][1] = [256, 128]  # was [128, 256]


def case_embedding_shape(m):
    m.tensors["model.embed_tokens.weight"][1] = [256, 1024]  # [hidden, vocab]: transposed


def case_lm_head_shape(m):
    m.tensors["lm_head.weight"][1] = [256, 1024]


def case_bias_presence(m):
    del m.tensors["model.layers.0.self_attn.q_proj.bias"]


def case_extra_layer(m):
    src = m.tensors["model.layers.1.mlp.up_proj.weight"]
    m.tensors["model.layers.2.mlp.up_proj.weight"] = list(src)


def case_extra_role(m):
    m.tensors["model.layers.0.self_attn.q_norm.weight"] = ["BF16", [64], random_bf16([64], 1)]


def case_duplicate_role(m):
    m.tensors["token_embd.weight"] = list(m.tensors["model.embed_tokens.weight"])


def case_unknown_tensor(m):
    m.tensors["model.layers.0.mlp.experts.0.w1"] = ["BF16", [4, 256], random_bf16([4, 256], 2)]


def case_unknown_architecture(m):
    m.config["model_type"] = "mamba"
    m.config["architectures"] = ["MambaForCausalLM"]


def case_missing_value(m):
    del m.config["intermediate_size"]


def case_value_range(m):
    m.config["rms_norm_eps"] = 2.0


def case_gqa(m):
    """3 KV heads for 4 query heads, with k/v tensors of the matching size (3 x 64)."""
    m.config["num_key_value_heads"] = 3
    for layer in range(m.config["num_hidden_layers"]):
        for p in ("k", "v"):
            w = f"model.layers.{layer}.self_attn.{p}_proj"
            m.tensors[w + ".weight"] = ["BF16", [192, 256], random_bf16([192, 256], 10 + layer)]
            m.tensors[w + ".bias"] = ["BF16", [192], random_bf16([192], 20 + layer)]


def case_head_dim_odd(m):
    """head_dim 63: every attention tensor sized for it (4 x 63 queries, 2 x 63 keys)."""
    m.config["head_dim"] = 63
    for layer in range(m.config["num_hidden_layers"]):
        a = f"model.layers.{layer}.self_attn."
        sizes = {"q_proj.weight": [252, 256], "q_proj.bias": [252], "k_proj.weight": [126, 256],
                 "k_proj.bias": [126], "v_proj.weight": [126, 256], "v_proj.bias": [126],
                 "o_proj.weight": [256, 252]}
        for i, (name, shape) in enumerate(sizes.items()):
            m.tensors[a + name] = ["BF16", shape, random_bf16(shape, 100 * layer + i)]


def case_vocab_size(m):
    m.config["vocab_size"] = 1000  # the embedding has 1024 rows


def case_special_ids(m):
    m.config["bos_token_id"] = 5000


def case_nan(m):
    w = m.values("model.layers.0.mlp.up_proj.weight")
    w[3, 7] = np.nan
    m.set_values("model.layers.0.mlp.up_proj.weight", w)


def case_zeros(m):
    e = m.values("model.embed_tokens.weight")
    e[:, :154] = 0  # 60 % of every row; no row entirely zero
    m.set_values("model.embed_tokens.weight", e)


def case_l2(m):
    w = m.values("model.layers.0.self_attn.o_proj.weight")
    m.set_values("model.layers.0.self_attn.o_proj.weight", w * np.float32(1e-30))


def case_constant(m):
    w = m.values("model.layers.1.mlp.down_proj.weight")
    w[:] = 0.5
    m.set_values("model.layers.1.mlp.down_proj.weight", w)


def case_spot_rows(m):
    e = m.values("model.embed_tokens.weight")
    e[[102, 512, 921]] = 0  # 10 %, 50 %, 90 % of 1024 rows
    m.set_values("model.embed_tokens.weight", e)


def case_dead_rows(m):
    e = m.values("model.embed_tokens.weight")
    dead = [r for r in range(0, 1024, 3) if r not in (102, 512, 921)]  # 33 % of the rows
    e[dead] = 0
    m.set_values("model.embed_tokens.weight", e)


def case_dequantize(m):
    rng = np.random.default_rng(3)
    m.tensors["model.layers.0.mlp.up_proj.weight"] = [
        "F8_E4M3", [768, 256], rng.integers(1, 120, 768 * 256, dtype=np.uint8).tobytes()]


# (case, fixture, mutation, rules reported, only warnings, also as GGUF)
CASES = [
    ("missing_tensor", "tiny-qwen2", case_missing_tensor, ["layout.missing_tensor"], False, True),
    ("shape", "tiny-qwen2", case_shape, ["layout.shape"], False, True),
    ("embedding_shape", "tiny-qwen2", case_embedding_shape, ["layout.embedding_shape"], False,
     False),
    ("lm_head_shape", "tiny-qwen2", case_lm_head_shape, ["layout.lm_head_shape"], False, False),
    ("bias_presence", "tiny-qwen2-odd", case_bias_presence, ["layout.bias_presence"], False,
     True),
    ("extra_layer", "tiny-qwen2", case_extra_layer, ["layout.extra_tensor"], False, True),
    ("extra_role", "tiny-qwen2-tied", case_extra_role, ["layout.extra_tensor"], False, False),
    ("duplicate_role", "tiny-qwen2", case_duplicate_role, ["layout.duplicate_role"], False,
     False),
    ("unknown_tensor", "tiny-qwen2", case_unknown_tensor, ["layout.unknown_tensor"], True, True),
    ("unknown_architecture", "tiny-qwen2", case_unknown_architecture,
     ["family.unknown_architecture"], False, False),
    ("missing_value", "tiny-qwen2", case_missing_value, ["config.missing_value"], False, False),
    ("value_range", "tiny-qwen2", case_value_range, ["config.value_range"], False, False),
    ("gqa_divisible", "tiny-qwen2", case_gqa, ["config.gqa_divisible"], False, False),
    ("head_dim_even", "tiny-qwen2", case_head_dim_odd, ["config.head_dim_even"], False, False),
    ("vocab_size", "tiny-qwen2", case_vocab_size, ["vocab.size_mismatch"], False, False),
    ("special_ids", "tiny-qwen2", case_special_ids, ["vocab.special_ids"], False, False),
    ("nan_inf", "tiny-qwen2", case_nan, ["quality.nan_inf"], False, True),
    ("zero_fraction", "tiny-qwen2", case_zeros, ["quality.zero_fraction"], False, True),
    ("l2", "tiny-qwen2", case_l2, ["quality.l2"], False, True),
    ("constant", "tiny-qwen2", case_constant, ["quality.constant"], False, True),
    ("spot_rows", "tiny-qwen2-tied", case_spot_rows, ["quality.spot_rows"], False, True),
    ("dead_rows", "tiny-qwen2", case_dead_rows, ["quality.dead_rows"], False, True),
    ("dequantize", "tiny-qwen2", case_dequantize, ["quality.dequantize"], True, False),
]


# ---- APR: the RoPE type, which only APR metadata states on its own ---------------------------

def apr_rope_norm(apr_bin, out_dir):
    """The fixture as APR (apr quantize bf16) with metadata rope_type 0 (NORM) instead of 2;
    the footer CRC-32 (over every preceding byte, apr-v2.md) recomputed."""
    path = os.path.join(out_dir, "rope_type.apr")
    subprocess.run([os.path.join(apr_bin, "apr-quantize"), "-q", "--format", "apr",
                    os.path.join(FIXTURES, "tiny-qwen2"), path, "bf16"], check=True,
                   stdout=subprocess.DEVNULL)
    with open(path, "rb") as f:
        blob = bytearray(f.read())
    old, new = b'"rope_type":2', b'"rope_type":0'
    at = blob.find(old)
    if at < 0 or blob.find(old, at + 1) >= 0:
        sys.exit(f"make_bad_models: {path}: expected one {old!r} in the metadata")
    blob[at:at + len(old)] = new
    blob[-4:] = struct.pack("<I", zlib.crc32(bytes(blob[:-4])) & 0xFFFFFFFF)
    with open(path, "wb") as f:
        f.write(blob)
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--apr-bin", help="directory of apr-quantize: also write GGUF and APR cases")
    ap.add_argument("--no-gguf", action="store_true",
                    help="with --apr-bin: write the APR case but no GGUF copies")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    listing = []
    for name, fixture, mutate, rules, warning_only, as_gguf in CASES:
        m = Model(fixture)
        mutate(m)
        path = os.path.join(args.out, name)
        shutil.rmtree(path, ignore_errors=True)
        m.write(path)
        listing.append({"case": name, "path": path, "rules": rules,
                        "warning_only": warning_only})
        if as_gguf and args.apr_bin and not args.no_gguf:
            gguf = path + ".gguf"
            subprocess.run([os.path.join(args.apr_bin, "apr-quantize"), "-q", "--format", "gguf",
                            path, gguf, "f32"], check=True, stdout=subprocess.DEVNULL)
            listing.append({"case": name + ".gguf", "path": gguf, "rules": rules,
                            "warning_only": warning_only})
    if args.apr_bin:
        listing.append({"case": "rope_type.apr", "path": apr_rope_norm(args.apr_bin, args.out),
                        "rules": ["config.rope_type"], "warning_only": False})
    with open(os.path.join(args.out, "cases.json"), "w") as f:
        json.dump(listing, f, indent=1)


if __name__ == "__main__":
    main()
