#!/usr/bin/env python3
"""Writes the seed corpora (tests/fuzz/corpus/<target>/) and dictionaries (tests/fuzz/<target>.dict)
of the fuzz targets. Deterministic: the same inputs give the same bytes; run it again after
changing it and commit the result. Seeds are small, valid files of every format built from a
shrunken copy of the tiny-qwen2 fixture (its real tokenizer, config and tensor names), plus
slices of the fixtures' own headers. The bad-input catalogue (tests/data/bad/) is not copied:
run.sh and the replay tests use it in place.

Needs numpy, gguf (gguf-py), safetensors and torch (for BF16 / FP8 SafeTensors files).
Usage: python3 tests/fuzz/make_corpus.py
"""
import hashlib
import json
import os
import shutil
import struct
import sys
import tempfile
import zlib

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FUZZ = os.path.join(ROOT, "tests", "fuzz")
CORPUS = os.path.join(FUZZ, "corpus")
FIXTURE = os.path.join(ROOT, "fixtures", "tiny-qwen2")
SEP = b"\n--8<--\n"  # FZ_SEPARATOR in fuzz_common.h

rng = np.random.default_rng(20240616)

# ---- a shrunken Qwen2 ----------------------------------------------------------------------

HIDDEN, FF, HEADS, KV_HEADS, HEAD_DIM, VOCAB, LAYERS = 8, 16, 2, 1, 4, 64, 1


def qwen2_tensors(tied=False):
    """HF names -> float32 arrays, row-major [out, in]."""
    t = {"model.embed_tokens.weight": (VOCAB, HIDDEN), "model.norm.weight": (HIDDEN,)}
    for layer in range(LAYERS):
        p = f"model.layers.{layer}."
        t.update({
            p + "input_layernorm.weight": (HIDDEN,),
            p + "post_attention_layernorm.weight": (HIDDEN,),
            p + "self_attn.q_proj.weight": (HEADS * HEAD_DIM, HIDDEN),
            p + "self_attn.q_proj.bias": (HEADS * HEAD_DIM,),
            p + "self_attn.k_proj.weight": (KV_HEADS * HEAD_DIM, HIDDEN),
            p + "self_attn.k_proj.bias": (KV_HEADS * HEAD_DIM,),
            p + "self_attn.v_proj.weight": (KV_HEADS * HEAD_DIM, HIDDEN),
            p + "self_attn.v_proj.bias": (KV_HEADS * HEAD_DIM,),
            p + "self_attn.o_proj.weight": (HIDDEN, HEADS * HEAD_DIM),
            p + "mlp.gate_proj.weight": (FF, HIDDEN),
            p + "mlp.up_proj.weight": (FF, HIDDEN),
            p + "mlp.down_proj.weight": (HIDDEN, FF),
        })
    if not tied:
        t["lm_head.weight"] = (VOCAB, HIDDEN)
    return {k: (rng.standard_normal(s) * 0.05).astype(np.float32) for k, s in sorted(t.items())}


GGUF_NAMES = {
    "model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight", "input_layernorm.weight": "attn_norm.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight", "self_attn.q_proj.bias": "attn_q.bias",
    "self_attn.k_proj.weight": "attn_k.weight", "self_attn.k_proj.bias": "attn_k.bias",
    "self_attn.v_proj.weight": "attn_v.weight", "self_attn.v_proj.bias": "attn_v.bias",
    "self_attn.o_proj.weight": "attn_output.weight", "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight", "mlp.down_proj.weight": "ffn_down.weight",
}


def gguf_name(hf):
    if hf in GGUF_NAMES:
        return GGUF_NAMES[hf]
    parts = hf.split(".")  # model.layers.N.rest
    return f"blk.{parts[2]}." + GGUF_NAMES[".".join(parts[3:])]


def fixture_tokenizer():
    with open(os.path.join(FIXTURE, "tokenizer.json"), encoding="utf-8") as f:
        tok = json.load(f)
    by_id = sorted(tok["model"]["vocab"].items(), key=lambda kv: kv[1])
    vocab = [t for t, _ in by_id[:VOCAB - 3]] + [a["content"] for a in tok["added_tokens"]]
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"][:24]]
    return tok, vocab, merges


def small_tokenizer_json():
    tok, vocab, merges = fixture_tokenizer()
    small = dict(tok)
    small["model"] = dict(tok["model"])
    small["model"]["vocab"] = {t: i for i, t in enumerate(vocab[:VOCAB - 3])}
    small["model"]["merges"] = [m.split(" ") for m in merges]
    small["added_tokens"] = [dict(a, id=VOCAB - 3 + i) for i, a in enumerate(tok["added_tokens"])]
    return json.dumps(small, ensure_ascii=False, separators=(",", ":")).encode()


def read(path):
    with open(path, "rb") as f:
        return f.read()


# ---- SafeTensors ---------------------------------------------------------------------------

def st_bytes(tensors, metadata=None, torch_dtype=None):
    """SafeTensors bytes written by the reference library (torch for BF16/FP8). metadata holds at
    most one key: the Rust writer emits several keys in a random order."""
    import torch
    from safetensors.torch import save
    out = {}
    for name, arr in tensors.items():
        t = torch.from_numpy(np.ascontiguousarray(arr))
        out[name] = t.to(torch_dtype) if torch_dtype is not None else t
    return save(out, metadata=metadata)


def st_handmade(entries, metadata=None, pad=False, leading=b""):
    """SafeTensors by hand: entries = [(name, dtype, shape, raw bytes)], packed in that order."""
    header, off, data = {}, 0, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in entries:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [off, off + len(raw)]}
        off += len(raw)
        data += raw
    js = leading + json.dumps(header, separators=(",", ":")).encode()
    if pad:
        js += b" " * ((8 - (8 + len(js)) % 8) % 8)
    return struct.pack("<Q", len(js)) + js + data


def safetensors_seeds():
    import torch
    model = qwen2_tensors()
    seeds = {
        "qwen2-bf16.safetensors": st_bytes(model, {"format": "pt"}, torch.bfloat16),
        "qwen2-f32-nometa.safetensors": st_bytes(qwen2_tensors(tied=True)),
        "qwen2-f16.safetensors": st_bytes(model, {"format": "pt"}, torch.float16),
    }
    small = np.arange(6, dtype=np.float32).reshape(2, 3)
    every = {}
    for dt in ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16",
               "float32", "float64", "float8_e4m3fn", "float8_e5m2", "uint16", "uint32",
               "uint64"]:
        if hasattr(torch, dt):
            every[f"t_{dt}"] = torch.from_numpy(small).to(getattr(torch, dt))
    from safetensors.torch import save
    seeds["every-dtype.safetensors"] = save(every, metadata={"format": "pt"})
    seeds["scalar-empty.safetensors"] = save({
        "scalar": torch.tensor(1.5), "empty": torch.zeros((0, 4)), "vec": torch.ones(3)})
    # Unaligned data (no header padding), leading whitespace, odd dtypes by name.
    seeds["unaligned.safetensors"] = st_handmade(
        [("a", "F32", [3], struct.pack("<3f", 1, 2, 3)), ("b", "U8", [1], b"\x07"),
         ("c", "F64", [1], struct.pack("<d", 0.5))], {"format": "mlx"})
    seeds["leading-space.safetensors"] = st_handmade(
        [("w", "BF16", [2, 2], b"\x80\x3f" * 4)], pad=True, leading=b"  ")
    seeds["fp-small.safetensors"] = st_handmade(
        [("f4", "F4", [4], b"\x12\x34"), ("f6", "F6_E2M3", [4], b"\x00\x00\x00"),
         ("e8m0", "F8_E8M0", [2], b"\x7f\x80"), ("fnuz", "F8_E4M3FNUZ", [1], b"\x01"),
         ("c64", "C64", [1], b"\x00" * 8)])
    # Slices of the fixture: its real header with the first bytes of data (not a valid file,
    # but the real key set), and the bare header.
    fx = read(os.path.join(FIXTURE, "model.safetensors"))
    n = struct.unpack("<Q", fx[:8])[0]
    seeds["fixture-header-slice.safetensors"] = fx[:8 + n + 64]
    seeds["fixture-header-only.safetensors"] = fx[:8 + n]
    return seeds


def index_seeds():
    model = qwen2_tensors()
    names = sorted(model)
    shards = [names[: len(names) // 2], names[len(names) // 2:]]
    seeds = {}
    for n_shards in (2, 3):
        groups = [names[k::n_shards] for k in range(n_shards)] if n_shards == 3 else shards
        files = [f"model-{k + 1:05d}-of-00003.safetensors" for k in range(n_shards)]
        weight_map = {name: files[k] for k, g in enumerate(groups) for name in g}
        total = sum(model[name].nbytes for name in names)
        index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
        parts = [json.dumps(index, indent=2).encode()]
        for g in groups:
            parts.append(st_bytes({name: model[name] for name in g}, {"format": "pt"}))
        seeds[f"sharded-{n_shards}.bin"] = SEP.join(parts)
    # Index only (the shards are missing), and an index naming a shard twice per tensor set.
    idx = {"metadata": {"total_size": 8}, "weight_map": {"a": "model-00001-of-00003.safetensors"}}
    seeds["index-only.bin"] = json.dumps(idx).encode()
    return seeds


def dir_seeds():
    import torch
    seeds = {}
    tok_json = small_tokenizer_json()
    for fixture in ("tiny-qwen2", "tiny-qwen2-tied", "tiny-qwen2-odd"):
        d = os.path.join(ROOT, "fixtures", fixture)
        tied = "tied" in fixture or "odd" in fixture
        weights = st_bytes(qwen2_tensors(tied=tied), {"format": "pt"}, torch.bfloat16)
        parts = [weights, read(os.path.join(d, "config.json")),
                 read(os.path.join(d, "generation_config.json")), tok_json,
                 read(os.path.join(d, "tokenizer_config.json"))]
        seeds[f"{fixture}.bin"] = SEP.join(parts)
    seeds["weights-and-config.bin"] = SEP.join(
        [st_bytes(qwen2_tensors(tied=True)), read(os.path.join(FIXTURE, "config.json"))])
    return seeds


# ---- GGUF ------------------------------------------------------------------------------------

def gguf_file(build, endian_big=False):
    import gguf
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "x.gguf")
        endian = gguf.GGUFEndian.BIG if endian_big else gguf.GGUFEndian.LITTLE
        w = gguf.GGUFWriter(path, "qwen2", endianess=endian)
        build(w, gguf)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        return read(path)


def gguf_qwen2(w, gguf, tensor_dtype=np.float32, with_tokenizer=True, extra=None):
    _, vocab, merges = fixture_tokenizer()
    w.add_name("tiny-qwen2-fuzz-seed")
    w.add_context_length(4096)
    w.add_embedding_length(HIDDEN)
    w.add_block_count(LAYERS)
    w.add_feed_forward_length(FF)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_rope_freq_base(1000000.0)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_file_type(1 if tensor_dtype == np.float16 else 0)
    if with_tokenizer:
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre("qwen2")
        w.add_token_list(vocab)
        w.add_token_types([1] * (len(vocab) - 3) + [3, 3, 3])
        w.add_token_merges(merges)
        w.add_eos_token_id(VOCAB - 1)
        w.add_pad_token_id(VOCAB - 3)
        w.add_bos_token_id(VOCAB - 3)
        w.add_add_bos_token(False)
        w.add_chat_template("{% for m in messages %}<|im_start|>{{ m.role }}\n"
                            "{{ m.content }}<|im_end|>\n{% endfor %}")
    if extra:
        extra(w, gguf)
    for name, arr in qwen2_tensors().items():
        w.add_tensor(gguf_name(name), arr.astype(tensor_dtype))


def gguf_every_kv_type(w, gguf):
    w.add_uint8("test.u8", 200)
    w.add_int8("test.i8", -100)
    w.add_uint16("test.u16", 60000)
    w.add_int16("test.i16", -30000)
    w.add_uint32("test.u32", 4000000000)
    w.add_int32("test.i32", -2000000000)
    w.add_float32("test.f32", 0.1)
    w.add_bool("test.bool", True)
    w.add_string("test.string", "héllo\x00world")
    w.add_uint64("test.u64", 2**63 + 5)
    w.add_int64("test.i64", -2**62)
    w.add_float64("test.f64", -1e300)
    w.add_array("test.arr_u8", [1, 2, 3])
    w.add_array("test.arr_str", ["a", "", "ccc"])
    w.add_array("test.arr_f32", [0.5, -0.25])
    w.add_array("test.arr_bool", [True, False])
    w.add_array("test.arr_empty", [])
    w.add_array("test.arr_nested", [[1, 2], [3]])
    w.add_uint32("general.alignment", 64)


def gguf_quantized(w, gguf):
    w.add_uint32("general.quantization_version", 2)
    # Raw quantized blocks: one Q8_0 row (34 B / 32), one Q4_K and one Q6_K super-block.
    q8 = np.frombuffer(bytes(range(34)) * 2, dtype=np.uint8).reshape(1, 68)
    w.add_tensor("q8.weight", q8, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    q4k = np.frombuffer(bytes((k * 7) % 256 for k in range(144)), dtype=np.uint8).reshape(1, 144)
    w.add_tensor("q4k.weight", q4k, raw_dtype=gguf.GGMLQuantizationType.Q4_K)
    q6k = np.frombuffer(bytes((k * 13) % 256 for k in range(210)), dtype=np.uint8).reshape(1, 210)
    w.add_tensor("q6k.weight", q6k, raw_dtype=gguf.GGMLQuantizationType.Q6_K)
    bf16 = np.frombuffer(b"\x80\x3f" * 8, dtype=np.uint8).reshape(2, 8)
    w.add_tensor("bf16.weight", bf16, raw_dtype=gguf.GGMLQuantizationType.BF16)
    w.add_tensor("i32.weight", np.arange(4, dtype=np.int32))
    w.add_tensor("f64.weight", np.arange(3, dtype=np.float64))
    w.add_tensor("rank4.weight", np.ones((1, 2, 1, 3), dtype=np.float32))


def gguf_seeds():
    seeds = {
        "qwen2-f32.gguf": gguf_file(lambda w, g: gguf_qwen2(w, g)),
        "qwen2-f16-notok.gguf": gguf_file(
            lambda w, g: gguf_qwen2(w, g, np.float16, with_tokenizer=False)),
        "qwen2-big-endian.gguf": gguf_file(lambda w, g: gguf_qwen2(w, g, with_tokenizer=False),
                                           endian_big=True),
        "every-kv-type.gguf": gguf_file(lambda w, g: gguf_every_kv_type(w, g)),
        "quantized.gguf": gguf_file(lambda w, g: gguf_quantized(w, g)),
        "empty.gguf": gguf_file(lambda w, g: None),
    }
    return seeds


# ---- APR v2 (docs/formats/apr.md) ----------------------------------------------------------------

def align64(n):
    return (n + 63) & ~63


APR_CODES = {"F32": 0, "F16": 1, "F64": 3, "I32": 4, "I64": 5, "I8": 6, "U8": 7, "Q4_K": 12,
             "Q6_K": 14, "BF16": 30, "APR_Q4": 128, "APR_Q8": 129}


def apr_file(tensors, metadata, flags=0x0400, magic=b"APR\x00", footer=True, sort=True,
             streaming_order=False):
    """tensors = [(name, dtype code, shape, raw bytes)]; metadata = dict (insertion order kept)."""
    meta = json.dumps(metadata, ensure_ascii=False, separators=(",", ":")).encode()
    entries = sorted(tensors, key=lambda t: t[0].encode()) if sort else list(tensors)
    data_order = list(reversed(entries)) if streaming_order else entries
    offsets, off = {}, 0
    for name, _, _, raw in data_order:
        offsets[name] = off
        off += align64(len(raw))
    index = b""
    for name, code, shape, raw in entries:
        nb = name.encode()
        index += struct.pack("<H", len(nb)) + nb + struct.pack("<BB", code, len(shape))
        index += b"".join(struct.pack("<Q", d) for d in shape)
        index += struct.pack("<QQ", offsets[name], len(raw))
    index_off = 64 + align64(len(meta))
    data_off = index_off + align64(len(index))
    header = bytearray(64)
    header[0:4] = magic
    header[4:6] = b"\x02\x00"
    struct.pack_into("<HIQIQQ", header, 6, flags, len(entries), 64, len(meta), index_off, data_off)
    crc = zlib.crc32(bytes(header[0:40]) + bytes(header[44:64]))
    struct.pack_into("<I", header, 40, crc)
    body = meta + b"\x00" * (align64(len(meta)) - len(meta))
    body += index + b"\x00" * (align64(len(index)) - len(index))
    for _, _, _, raw in data_order:
        body += raw + b"\x00" * (align64(len(raw)) - len(raw))
    image = bytes(header) + body
    if footer:
        image += struct.pack("<I", zlib.crc32(image))
    return image


def apr_qwen2_metadata(tied=False):
    _, vocab, merges = fixture_tokenizer()
    m = {"model_type": "qwen2", "name": "tiny-qwen2-fuzz-seed", "license": None,
         "data_source": None, "data_license": None, "original_format": "safetensors",
         "total_size": 0, "param_count": 1234,
         "chat_template": "{% for m in messages %}<|im_start|>{{ m.content }}<|im_end|>{% endfor %}",
         "chat_format": "chatml",
         "special_tokens": {"bos_token": None, "eos_token": "<|im_end|>", "unk_token": None,
                            "pad_token": "<|endoftext|>", "im_start_token": "<|im_start|>",
                            "im_end_token": "<|im_end|>"},
         "architecture": "qwen2", "hf_architecture": "Qwen2ForCausalLM", "hf_model_type": "qwen2",
         "hidden_size": HIDDEN, "num_layers": LAYERS, "num_heads": HEADS,
         "num_kv_heads": KV_HEADS, "vocab_size": VOCAB, "intermediate_size": FF,
         "max_position_embeddings": 4096, "rope_theta": 1000000.0, "rope_type": 2,
         "rms_norm_eps": 0.000001, "head_dim": HEAD_DIM,
         "source_metadata": {"format": "pt"},
         "tensor_shapes": {},
         "tokenizer.bos_token_id": VOCAB - 3, "tokenizer.eos_token_id": VOCAB - 1,
         "tokenizer.merges": merges, "tokenizer.model_type": "bpe",
         "tokenizer.vocab_size": len(vocab), "tokenizer.vocabulary": vocab}
    if tied:
        m["tied_embeddings"] = True
    return m


def bf16_bytes(arr):
    u = arr.astype(np.float32).view(np.uint32)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype("<u2").tobytes()


def apr_seeds():
    model = qwen2_tensors()
    meta = apr_qwen2_metadata()
    meta["tensor_shapes"] = {k: list(v.shape) for k, v in sorted(model.items())}
    f32 = [(k, 0, v.shape, v.astype("<f4").tobytes()) for k, v in model.items()]
    bf16 = [(k, 30, v.shape, bf16_bytes(v)) for k, v in model.items()]
    golden_meta = {"model_type": "linear_regression", "name": "golden-v2", "license": None,
                   "data_source": None, "data_license": None, "version": "0.0.0-golden",
                   "created_at": "1700000000", "total_size": 0, "param_count": 8}
    golden = [("weights", 0, (8,), struct.pack("<8f", 1, 2, 0.5, -0.5, 4, -2, 0.25, 8)),
              ("bias", 0, (1,), struct.pack("<f", 0.125))]
    every = [
        ("f16", 1, (2, 2), b"\x00\x3c" * 4), ("f64", 3, (2,), struct.pack("<2d", 1, -1)),
        ("i32", 4, (3,), struct.pack("<3i", 1, -2, 3)), ("i64", 5, (1,), struct.pack("<q", -9)),
        ("i8", 6, (4,), b"\x01\xff\x02\xfe"), ("u8", 7, (4,), b"\x01\x02\x03\x04"),
        ("q4k", 12, (1, 256), bytes((k * 7) % 256 for k in range(144))),
        ("q6k", 14, (1, 256), bytes((k * 13) % 256 for k in range(210))),
        ("bf16", 30, (2,), b"\x80\x3f\x00\xc0"),
        ("apr_q4", 128, (40,), (b"\x00\x3c" + bytes(range(16))) * 2),
        ("apr_q8", 129, (5,), struct.pack("<f", 0.5) + b"\x01\x02\x03\x04\x7f"),
        ("legacy_q4", 8, (32,), b"\x00\x3c" + bytes(16)),
        ("legacy_q8", 9, (2,), struct.pack("<f", 1.0) + b"\x05\xfb"),
        ("scalar", 0, (), struct.pack("<f", 3.0)), ("empty", 0, (0, 4), b""),
    ]
    seeds = {
        "golden-v2.apr": apr_file(golden, golden_meta),
        "qwen2-f32.apr": apr_file(f32, meta),
        "qwen2-bf16-tied.apr": apr_file(bf16, apr_qwen2_metadata(tied=True)),
        "every-dtype.apr": apr_file(every, {"model_type": "test", "total_size": 0,
                                            "param_count": 0, "num_hidden_layers": 2,
                                            "n_embd": 8, "layer_norm_eps": 1e-5}),
        "apr2-magic-no-footer.apr": apr_file(golden, golden_meta, flags=0x0020, magic=b"APR2",
                                             footer=False),
        "streaming-order.apr": apr_file(golden + every[:3], golden_meta, streaming_order=True),
        "gguf-names.apr": apr_file([("blk.0.attn_q.weight", 0, (2, 2), bytes(16)),
                                    ("token_embd.weight", 0, (4, 2), bytes(32))],
                                   {"model_type": "qwen2", "architecture": "qwen2"}),
        "no-tensors.apr": apr_file([], {"model_type": "", "total_size": 0, "param_count": 0}),
    }
    # realizar-style compressed files, with streams made by hand (no Python LZ4/zstd needed):
    # an LZ4 block of literals only, and a zstd frame of one raw block.
    image = apr_file(golden, golden_meta, flags=0x0401)
    seeds["lz4.apr"] = image[:64] + struct.pack("<I", len(image) - 64) + lz4_literals(image[64:])
    image = apr_file(golden, golden_meta, flags=0x0402)
    seeds["zstd.apr"] = image[:64] + zstd_raw_frame(image[64:])
    return seeds


def lz4_literals(data):
    n = len(data)
    if n < 15:
        return bytes([n << 4]) + data
    out, rest = bytearray([0xF0]), n - 15
    while rest >= 255:
        out.append(255)
        rest -= 255
    out.append(rest)
    return bytes(out) + data


def zstd_raw_frame(data):
    assert len(data) < 128 * 1024
    # Frame header descriptor: single segment, 4-byte frame content size (FCS flag 2).
    frame = struct.pack("<I", 0xFD2FB528) + bytes([0xA0]) + struct.pack("<I", len(data))
    block_header = (len(data) << 3) | (0 << 1) | 1  # last block, raw
    return frame + struct.pack("<I", block_header)[:3] + data


def apr_compressed_seeds():
    """fuzz_apr_compressed inputs: mode byte + header + uncompressed body (or verbatim stream)."""
    seeds = {}
    golden_like = apr_seeds()
    for name in ("golden-v2.apr", "qwen2-f32.apr", "every-dtype.apr"):
        image = golden_like[name]
        stem = name[:-4]
        seeds[f"{stem}-lz4.bin"] = b"\x00" + image
        seeds[f"{stem}-zstd.bin"] = b"\x01" + image
    seeds["verbatim-lz4.bin"] = b"\x02" + golden_like["lz4.apr"]
    seeds["verbatim-zstd.bin"] = b"\x03" + golden_like["zstd.apr"]
    return seeds


# ---- dictionaries ----------------------------------------------------------------------------

JSON_TOKENS = ['{', '}', '[', ']', ':', ',', '"', 'null', 'true', 'false', '-1', '0', '1e308',
               '18446744073709551615', '9223372036854775808', '1.5', '"\\u0000"', '"\\ud800"',
               '\\"', ' ']
ST_TOKENS = ['__metadata__', 'dtype', 'shape', 'data_offsets', 'format', 'pt', 'BOOL', 'U8',
             'I8', 'I16', 'U16', 'F16', 'BF16', 'I32', 'U32', 'F32', 'F64', 'I64', 'U64', 'C64',
             'F8_E5M2', 'F8_E4M3', 'F8_E8M0', 'F8_E4M3FNUZ', 'F8_E5M2FNUZ', 'F6_E2M3', 'F6_E3M2',
             'F4', 'weight_map', 'metadata', 'total_size', 'model-00001-of-00003.safetensors',
             'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors',
             'model.embed_tokens.weight', 'lm_head.weight']
HF_TOKENS = ['architectures', 'Qwen2ForCausalLM', 'model_type', 'qwen2', 'hidden_size',
             'intermediate_size', 'num_attention_heads', 'num_hidden_layers',
             'num_key_value_heads', 'head_dim', 'vocab_size', 'max_position_embeddings',
             'rope_theta', 'rope_parameters', 'rope_type', 'rms_norm_eps', 'tie_word_embeddings',
             'bos_token_id', 'eos_token_id', 'pad_token_id', 'torch_dtype', 'bfloat16', 'model',
             'vocab', 'merges', 'added_tokens', 'content', 'special', 'id', 'type', 'BPE',
             'pre_tokenizer', 'ByteLevel', 'chat_template', 'add_bos_token', 'bos_token',
             'eos_token', 'added_tokens_decoder', '<|im_end|>', '<|endoftext|>',
             SEP.decode()]
GGUF_TOKENS = ['GGUF', 'general.architecture', 'general.alignment', 'general.name',
               'general.file_type', 'general.quantization_version', 'qwen2',
               'qwen2.context_length', 'qwen2.embedding_length', 'qwen2.block_count',
               'qwen2.feed_forward_length', 'qwen2.attention.head_count',
               'qwen2.attention.head_count_kv', 'qwen2.rope.freq_base',
               'qwen2.attention.layer_norm_rms_epsilon', 'tokenizer.ggml.model',
               'tokenizer.ggml.pre', 'tokenizer.ggml.tokens', 'tokenizer.ggml.token_type',
               'tokenizer.ggml.merges', 'tokenizer.ggml.scores', 'tokenizer.ggml.bos_token_id',
               'tokenizer.ggml.eos_token_id', 'tokenizer.ggml.padding_token_id',
               'tokenizer.ggml.add_bos_token', 'tokenizer.chat_template', 'gpt2',
               'token_embd.weight', 'output.weight', 'blk.0.attn_q.weight']
APR_TOKENS = ['APR\x00', 'APR2', 'APRN', 'APR1', 'APRT', 'model_type', 'name', 'license',
              'data_source', 'data_license', 'version', 'source', 'original_format',
              'created_at', 'total_size', 'param_count', 'quantization', 'quant_type', 'bits',
              'block_size', 'symmetric', 'sharding', 'shard_count', 'shard_index', 'pattern',
              'chat_template', 'chat_format', 'chatml', 'special_tokens', 'bos_token',
              'eos_token', 'unk_token', 'pad_token', 'im_start_token', 'im_end_token',
              'architecture', 'hf_architecture', 'hf_model_type', 'hidden_size', 'num_layers',
              'num_heads', 'num_kv_heads', 'vocab_size', 'intermediate_size',
              'max_position_embeddings', 'rope_theta', 'rope_type', 'rms_norm_eps', 'head_dim',
              'num_experts', 'num_experts_per_tok', 'moe_intermediate_size', 'tensor_shapes',
              'tied_embeddings', 'tokenizer.vocabulary', 'tokenizer.vocab_size',
              'tokenizer.bos_token_id', 'tokenizer.eos_token_id', 'tokenizer.pre_type',
              'tokenizer.merges', 'tokenizer.scores', 'source_metadata', 'tokenizer.model_type',
              'tokenizer.model', 'tokenizer.token_type', 'tokenizer.padding_token_id',
              'tokenizer.add_bos_token', 'tokenizer.chat_template', 'n_embd', 'n_layer',
              'num_hidden_layers', 'num_attention_heads', 'num_key_value_heads', 'hidden_dim',
              'd_model', 'n_layers', 'n_heads', 'n_head', 'n_kv_heads', 'n_vocab', 'ffn_dim',
              'intermediate_dim', 'n_inner', 'max_seq_len', 'context_length', 'n_ctx',
              'layer_norm_eps', 'norm_eps', 'lm_head.weight']
# Binary tokens: little-endian type codes, lengths and the compression magics.
BINARY_TOKENS = [b"\x00\x00\x00\x00", b"\x01\x00\x00\x00", b"\x03\x00\x00\x00",
                 b"\x08\x00\x00\x00", b"\x09\x00\x00\x00", b"\x0c\x00\x00\x00",
                 b"\xff\xff\xff\xff", b"\xff\xff\xff\xff\xff\xff\xff\xff",
                 b"\x00\x00\x00\x00\x00\x00\x00\x80", b"\x00\x00\x00\x40\x00\x00\x00\x00",
                 b"\x00\x04", b"\x00\x08", b"\x01\x04", b"\x02\x04", b"\x28\xb5\x2f\xfd",
                 b"\x80", b"\x81", b"\x1e"]


def dict_entry(tok):
    raw = tok if isinstance(tok, bytes) else tok.encode()
    return '"' + "".join(chr(b) if 0x20 <= b < 0x7F and b not in (0x22, 0x5C)
                         else f"\\x{b:02x}" for b in raw) + '"'


def write_dict(target, *groups):
    seen, lines = set(), [f"# {target}: format keywords (generated by make_corpus.py)"]
    for group in groups:
        for tok in group:
            e = dict_entry(tok)
            if e not in seen:
                seen.add(e)
                lines.append(e)
    with open(os.path.join(FUZZ, f"{target}.dict"), "w", encoding="ascii") as f:
        f.write("\n".join(lines) + "\n")


# ---- main ------------------------------------------------------------------------------------

def write_corpus(target, seeds):
    d = os.path.join(CORPUS, target)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for name, data in sorted(seeds.items()):
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
    total = sum(len(v) for v in seeds.values())
    print(f"{target}: {len(seeds)} seeds, {total} bytes")


def main():
    st = safetensors_seeds()
    gg = gguf_seeds()
    ap = apr_seeds()
    write_corpus("fuzz_safetensors", st)
    write_corpus("fuzz_safetensors_index", index_seeds())
    write_corpus("fuzz_safetensors_dir", dir_seeds())
    write_corpus("fuzz_gguf", gg)
    write_corpus("fuzz_apr", ap)
    write_corpus("fuzz_apr_compressed", apr_compressed_seeds())
    model = {}
    for group in (st, gg, ap):
        for name, data in group.items():
            if len(data) <= 16384:
                model[name] = data
    write_corpus("fuzz_model", model)

    write_dict("fuzz_safetensors", JSON_TOKENS, ST_TOKENS, BINARY_TOKENS)
    write_dict("fuzz_safetensors_index", JSON_TOKENS, ST_TOKENS, [SEP.decode()])
    write_dict("fuzz_safetensors_dir", JSON_TOKENS, ST_TOKENS, HF_TOKENS)
    write_dict("fuzz_gguf", GGUF_TOKENS, BINARY_TOKENS)
    write_dict("fuzz_apr", APR_TOKENS, JSON_TOKENS, BINARY_TOKENS)
    write_dict("fuzz_apr_compressed", APR_TOKENS, JSON_TOKENS, BINARY_TOKENS)
    write_dict("fuzz_model", GGUF_TOKENS, APR_TOKENS, ST_TOKENS, JSON_TOKENS, BINARY_TOKENS)
    digest = hashlib.sha256()
    paths = sorted(os.path.relpath(os.path.join(r, f), CORPUS)
                   for r, _, fs in os.walk(CORPUS) for f in fs)
    for rel in paths:
        digest.update(rel.encode() + b"\0" + read(os.path.join(CORPUS, rel)))
    print(f"corpus: {len(paths)} files, sha256 {digest.hexdigest()}")

if __name__ == "__main__":
    sys.exit(main())
