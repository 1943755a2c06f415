#!/usr/bin/env python3
"""Records what Hugging Face transformers computes for a model, stage by stage, as a trace
container that `apr compare-inference --against TRACE MODEL` reads (format: docs/verifier.md,
"Trace container"). Needs torch and transformers (not installed by scripts/install-deps: they
are heavy); without them it prints SKIP and exits 77.

  hf_trace.py MODEL_DIR OUT [--prompt TEXT] [--greedy N]

The model runs in float32 (BF16 weights upcast exactly), eager attention, one thread. Forward
hooks on the decoder modules give Rosetta's stages: embedding (embed_tokens), attn_norm
(input_layernorm), q / k / v (q_proj / k_proj / v_proj, bias included), attn_out (o_proj's
input), o_proj, attn_residual (post_attention_layernorm's input), ffn_norm, gate, up, swiglu
(down_proj's input), down, layer_out (the decoder layer's output), final_norm (model.norm),
logits (lm_head) at every prompt position. q_rope / k_rope are computed inside the attention
function and are not recorded. The greedy continuation recomputes the whole sequence per step
(argmax over the tokenizer's ids, lowest id on ties).

The fixtures' traces (fixtures/*/reference/hf_trace.rtrc) were made with this script; the
tools test tests/tools/compare_hf.sh checks Rosetta against them without torch.
"""
import json
import os
import struct
import sys

PROMPT = "The cat sat on the mat. 42"


def main():
    args = sys.argv[1:]
    prompt, n_greedy = PROMPT, 8
    if "--prompt" in args:
        i = args.index("--prompt")
        prompt = args[i + 1]
        del args[i:i + 2]
    if "--greedy" in args:
        i = args.index("--greedy")
        n_greedy = int(args[i + 1])
        del args[i:i + 2]
    if len(args) != 2:
        raise SystemExit(__doc__)
    model_dir, out = args
    try:
        import numpy as np
        import torch
        import transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as e:
        print("SKIP: hf_trace.py needs torch and transformers (%s)" % e, file=sys.stderr)
        sys.exit(77)
    torch.set_num_threads(1)
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32,
                                                 attn_implementation="eager")
    model.eval()
    cfg = model.config
    ids = tok(prompt, add_special_tokens=False)["input_ids"]
    n = len(ids)
    captured = {}

    def keep(stage, layer, tensor):
        t = tensor[0] if isinstance(tensor, tuple) else tensor
        captured[(stage, layer)] = t.detach().reshape(n, -1).to(torch.float32).numpy().copy()

    hooks = []

    def out_hook(module, stage, layer):
        hooks.append(module.register_forward_hook(lambda m, i, o: keep(stage, layer, o)))

    def in_hook(module, stage, layer):
        hooks.append(module.register_forward_pre_hook(lambda m, i: keep(stage, layer, i[0])))

    inner = model.model
    out_hook(inner.embed_tokens, "embedding", -1)
    for l, layer in enumerate(inner.layers):
        a, mlp = layer.self_attn, layer.mlp
        out_hook(layer.input_layernorm, "attn_norm", l)
        out_hook(a.q_proj, "q", l)
        out_hook(a.k_proj, "k", l)
        out_hook(a.v_proj, "v", l)
        in_hook(a.o_proj, "attn_out", l)
        out_hook(a.o_proj, "o_proj", l)
        in_hook(layer.post_attention_layernorm, "attn_residual", l)
        out_hook(layer.post_attention_layernorm, "ffn_norm", l)
        out_hook(mlp.gate_proj, "gate", l)
        out_hook(mlp.up_proj, "up", l)
        in_hook(mlp.down_proj, "swiglu", l)
        out_hook(mlp.down_proj, "down", l)
        out_hook(layer, "layer_out", l)
    out_hook(inner.norm, "final_norm", -1)
    out_hook(model.lm_head, "logits", -1)
    with torch.no_grad():
        model(torch.tensor([ids]))
    for h in hooks:
        h.remove()
    n_valid = len(tok)
    seq = list(ids)
    greedy = []
    with torch.no_grad():
        for _ in range(n_greedy):
            logits = model(torch.tensor([seq])).logits[0, -1, :n_valid]
            nxt = int(torch.argmax(logits))  # first maximum: lowest id on ties
            greedy.append(nxt)
            seq.append(nxt)

    # The dtype signature Rosetta computes from the file: every matrix's GGML type code in role
    # order (embedding, head, then q k v o gate up down of each layer).
    from safetensors import safe_open
    codes = {"F32": 0, "F16": 1, "BF16": 30}
    dtypes = {}
    for fn in sorted(os.listdir(model_dir)):
        if fn.endswith(".safetensors"):
            with safe_open(os.path.join(model_dir, fn), "np" if False else "pt") as f:
                for k in f.keys():
                    dtypes[k] = str(f.get_slice(k).get_dtype())
    embd = dtypes["model.embed_tokens.weight"]
    sig = [codes[embd], codes[dtypes.get("lm_head.weight", embd)]]
    roles = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
             "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]
    for l in range(cfg.num_hidden_layers):
        sig += [codes[dtypes["model.layers.%d.%s.weight" % (l, r)]] for r in roles]
    level = "f32" if all(c == 0 for c in sig) else "f16/bf16"
    names = {0: "F32", 1: "F16", 30: "BF16"}

    order = ["embedding", "attn_norm", "q", "k", "v", "q_rope", "k_rope", "attn_out", "o_proj",
             "attn_residual", "ffn_norm", "gate", "up", "swiglu", "down", "layer_out",
             "final_norm", "logits"]
    tensors, payload, offset = [], [], 0
    for stage in order:
        layers = [-1] if stage in ("embedding", "final_norm", "logits") else \
            range(cfg.num_hidden_layers)
        for l in layers:
            if (stage, l) not in captured:
                continue
            a = np.ascontiguousarray(captured[(stage, l)], dtype="<f4")
            tensors.append({"stage": stage, "layer": l, "rows": int(a.shape[0]),
                            "cols": int(a.shape[1]), "offset": offset})
            payload.append(a.tobytes())
            offset += a.size
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    header = {
        "format": "rosetta-trace", "version": 1,
        "engine": "transformers %s float32 eager" % transformers.__version__,
        "label": os.path.basename(os.path.normpath(model_dir)), "prompt": prompt,
        "level": level, "dtypes": " ".join(sorted({names[c] for c in sig})),
        "dtype_sig": ",".join(str(c) for c in sig), "activations": "f32",
        "info": {"n_vocab": int(cfg.vocab_size), "n_embd": int(cfg.hidden_size),
                 "n_layers": int(cfg.num_hidden_layers),
                 "n_heads": int(cfg.num_attention_heads),
                 "n_kv_heads": int(cfg.num_key_value_heads), "head_dim": int(head_dim),
                 "n_ff": int(cfg.intermediate_size)},
        "tokens": ids, "greedy": greedy, "tensors": tensors,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    }
    raw = b"".join(payload)
    flags, stored = 0, raw
    try:
        import zstandard
        stored = zstandard.ZstdCompressor(level=19, write_checksum=True).compress(raw)
        flags = 1
    except ImportError:
        pass
    js = json.dumps(header, separators=(",", ":")).encode()
    with open(out, "wb") as f:
        f.write(b"RTRC" + struct.pack("<IIIQQ", 1, flags, len(js), len(stored), len(raw)))
        f.write(js)
        f.write(stored)
    print("hf_trace: %s: %d tokens, %d tensors, %d bytes" % (out, n, len(tensors),
                                                             32 + len(js) + len(stored)))


if __name__ == "__main__":
    main()
