#!/usr/bin/env python3
"""Writes a GGUF shaped like Qwen2.5-1.5B (hidden 1536, 28 layers, 12 / 2 heads, FF 8960, vocab
151936, tied head) with random F16 weights, for the speed benchmark (bench/infer); speed does not
depend on the values. The tokenizer and chat template are copied from a real Qwen2.5 GGUF (the
0.5B of scripts/fetch-real-model shares the vocabulary), so llama.cpp and Rosetta both load it.
Never committed: scripts/bench-infer makes it in the build tree and quantizes it with
`apr quantize` (q4_k_m, q8_0).

usage: make_qwen2_1p5b.py TOKENIZER_SOURCE.gguf OUT.gguf [--seed N]
"""
import argparse
import sys

import numpy as np
import gguf

HIDDEN, LAYERS, HEADS, KV_HEADS, FF, VOCAB = 1536, 28, 12, 2, 8960, 151936
HEAD_DIM = HIDDEN // HEADS
KV = KV_HEADS * HEAD_DIM


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("source")
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=1536)
    a = ap.parse_args()
    src = gguf.GGUFReader(a.source)
    w = gguf.GGUFWriter(a.out, "qwen2")
    w.add_name("Qwen2.5-1.5B-shaped random weights (Rosetta benchmark)")
    w.add_context_length(32768)
    w.add_embedding_length(HIDDEN)
    w.add_block_count(LAYERS)
    w.add_feed_forward_length(FF)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_rope_freq_base(1000000.0)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    copied = 0
    for field in src.fields.values():
        if not field.name.startswith("tokenizer."):
            continue
        vtype = field.types[0]
        if vtype == gguf.GGUFValueType.ARRAY:
            sub = field.types[1]
            if sub == gguf.GGUFValueType.STRING:
                vals = [bytes(field.parts[i]).decode("utf-8") for i in field.data]
            else:
                vals = [field.parts[i].tolist()[0] for i in field.data]
            w.add_array(field.name, vals)
        elif vtype == gguf.GGUFValueType.STRING:
            w.add_string(field.name, bytes(field.parts[field.data[0]]).decode("utf-8"))
        else:
            w.add_key_value(field.name, field.parts[field.data[0]].tolist()[0], vtype)
        copied += 1
    if copied == 0:
        sys.exit(f"{a.source}: no tokenizer.* keys to copy")

    rng = np.random.default_rng(a.seed)

    def mat(rows, cols, scale):
        return (rng.standard_normal((rows, cols), dtype=np.float32) * scale).astype(np.float16)

    def vec(n, mean, scale):
        return (mean + rng.standard_normal(n, dtype=np.float32) * scale).astype(np.float32)

    w.add_tensor("token_embd.weight", mat(VOCAB, HIDDEN, 0.02))
    w.add_tensor("output_norm.weight", vec(HIDDEN, 1.0, 0.1))
    for l in range(LAYERS):
        p = f"blk.{l}."
        w.add_tensor(p + "attn_norm.weight", vec(HIDDEN, 1.0, 0.1))
        w.add_tensor(p + "attn_q.weight", mat(HIDDEN, HIDDEN, HIDDEN ** -0.5))
        w.add_tensor(p + "attn_q.bias", vec(HIDDEN, 0.0, 0.1))
        w.add_tensor(p + "attn_k.weight", mat(KV, HIDDEN, HIDDEN ** -0.5))
        w.add_tensor(p + "attn_k.bias", vec(KV, 0.0, 0.1))
        w.add_tensor(p + "attn_v.weight", mat(KV, HIDDEN, HIDDEN ** -0.5))
        w.add_tensor(p + "attn_v.bias", vec(KV, 0.0, 0.02))
        w.add_tensor(p + "attn_output.weight", mat(HIDDEN, HIDDEN, 0.3 * HIDDEN ** -0.5))
        w.add_tensor(p + "ffn_norm.weight", vec(HIDDEN, 1.0, 0.1))
        w.add_tensor(p + "ffn_gate.weight", mat(FF, HIDDEN, HIDDEN ** -0.5))
        w.add_tensor(p + "ffn_up.weight", mat(FF, HIDDEN, HIDDEN ** -0.5))
        w.add_tensor(p + "ffn_down.weight", mat(HIDDEN, FF, FF ** -0.5))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    main()
