#!/usr/bin/env bash
# apr inspect on the fixtures and on files made here by independent writers. Every expected
# value comes from outside Rosetta: config.json and tokenizer files read with Python's json, the
# SafeTensors header parsed by hand, GGUF files written and re-read by gguf-py, and sparse
# multi-GiB files laid out byte by byte (inspect must not touch tensor data, so it is fast).
set -euo pipefail
: "${APR_BIN:?}" "${ROSETTA_ROOT:?}" "${TEST_TMP:?}"
tmp="$TEST_TMP/inspect"
rm -rf "$tmp" && mkdir -p "$tmp"

probe="$ROSETTA_ROOT/fixtures/tiny-qwen2/model.safetensors"
if ! "$APR_BIN/apr-inspect" "$probe" >/dev/null 2>"$tmp/probe.err" &&
   grep -q "not available in this build" "$tmp/probe.err"; then
  echo "SKIP: this build has no SafeTensors reader yet: $(cat "$tmp/probe.err")" >&2
  exit 77
fi

exec python3 - "$APR_BIN" "$ROSETTA_ROOT" "$tmp" "${ROSETTA_BUILD:-}" <<'EOF'
import json, math, os, re, struct, subprocess, sys, time, zlib

apr_bin, root, tmp, build = sys.argv[1:5]
inspect = os.path.join(apr_bin, "apr-inspect")
checks = 0


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    global checks
    if not cond:
        fail(msg)
    checks += 1


def run(*args, expect_rc=0):
    p = subprocess.run([inspect, *args], capture_output=True, timeout=60)
    if p.returncode != expect_rc:
        fail(f"apr inspect {' '.join(args)}: exit {p.returncode}, expected {expect_rc}\n"
             f"stderr: {p.stderr.decode(errors='replace')}")
    return p.stdout.decode(), p.stderr.decode()


def run_json(*args, expect_rc=0):
    out, err = run("--json", *args, expect_rc=expect_rc)
    try:
        return json.loads(out), err
    except ValueError as e:
        fail(f"apr inspect --json {' '.join(args)}: invalid JSON ({e})")


def st_header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    meta = header.pop("__metadata__", {})
    return n, header, meta


def prod(shape):
    p = 1
    for d in shape:
        p *= d
    return p


def close(a, b, rel=1e-6):
    return a is not None and abs(a - b) <= rel * max(abs(a), abs(b))


def human_field(text, key):
    """Value of a 'key   value' line of the human output (first match)."""
    m = re.search(r"^\s*" + re.escape(key) + r"\s{2,}(.*)$", text, re.M)
    return m.group(1) if m else None


# ---- the fixtures, as a file and as a directory -------------------------------------------
for name in ("tiny-qwen2", "tiny-qwen2-tied", "tiny-qwen2-odd"):
    fx = os.path.join(root, "fixtures", name)
    st = os.path.join(fx, "model.safetensors")
    cfg = json.load(open(os.path.join(fx, "config.json")))
    tok_json = json.load(open(os.path.join(fx, "tokenizer.json")))
    tok_cfg = json.load(open(os.path.join(fx, "tokenizer_config.json")))
    hlen, tensors, st_meta = st_header(st)

    j, err = run_json(st)
    check(err == "", f"{name}: a clean fixture printed diagnostics: {err}")
    check(j["valid"] is True and j["error"] is None, f"{name}: valid/error {j['valid']} {j['error']}")
    check(j["format"] == "safetensors", f"{name}: format {j['format']}")
    check(j["file"] == st, f"{name}: file {j['file']}")
    check(j["tensor_count"] == len(tensors), f"{name}: tensor_count {j['tensor_count']} != {len(tensors)}")
    params = sum(prod(t["shape"]) for t in tensors.values())
    check(j["parameter_count"] == params, f"{name}: parameter_count {j['parameter_count']} != {params}")
    check(j["data_offset"] == 8 + hlen, f"{name}: data_offset {j['data_offset']} != {8 + hlen}")
    check(j["alignment"] is None, f"{name}: alignment {j['alignment']} for SafeTensors")
    check(any(f["path"] == st and f["size"] == os.path.getsize(st) for f in j["files"]),
          f"{name}: files {j['files']} lacks {st} with its size")
    check(j["file_size"] == sum(f["size"] for f in j["files"]), f"{name}: file_size is not the sum of files")
    hist = {}
    for t in tensors.values():
        h = hist.setdefault(t["dtype"], [0, 0, 0])
        h[0] += 1
        h[1] += prod(t["shape"])
        h[2] += t["data_offsets"][1] - t["data_offsets"][0]
    got = {d["dtype"]: [d["tensors"], d["parameters"], d["bytes"]] for d in j["dtypes"]}
    check(got == hist, f"{name}: dtype histogram {got} != {hist}")

    c = j["config"]
    heads = cfg["num_attention_heads"]
    theta = cfg.get("rope_theta", (cfg.get("rope_parameters") or {}).get("rope_theta"))
    expect = {
        "architecture": cfg["model_type"],
        "hidden_size": cfg["hidden_size"],
        "n_layers": cfg["num_hidden_layers"],
        "n_heads": heads,
        "n_kv_heads": cfg["num_key_value_heads"],
        "head_dim": cfg.get("head_dim") or cfg["hidden_size"] // heads,
        "intermediate_size": cfg["intermediate_size"],
        "vocab_size": cfg["vocab_size"],
        "context_length": cfg["max_position_embeddings"],
        "tie_word_embeddings": cfg["tie_word_embeddings"],
        "rope_type": "neox",
    }
    for k, v in expect.items():
        check(c[k] == v, f"{name}: config.{k} = {c[k]!r}, config.json says {v!r}")
    check(close(c["rope_theta"], theta), f"{name}: rope_theta {c['rope_theta']} != {theta}")
    check(close(c["rms_norm_eps"], cfg["rms_norm_eps"]), f"{name}: rms_norm_eps {c['rms_norm_eps']}")
    added = {t["id"]: t["content"] for t in tok_json["added_tokens"]}
    for key, cfg_key in (("bos_token", "bos_token_id"), ("eos_token", "eos_token_id"),
                         ("pad_token", "pad_token_id")):
        want = cfg.get(cfg_key)
        got_tok = c[key]
        if want is None:
            continue
        check(got_tok is not None and got_tok["id"] == want, f"{name}: {key} {got_tok} != id {want}")
        if want in added:
            check(got_tok["token"] == added[want], f"{name}: {key} text {got_tok['token']!r} != {added[want]!r}")
    check(c["chat_template"] == tok_cfg["chat_template"], f"{name}: chat_template differs from tokenizer_config.json")

    t = j["tokenizer"]
    check(t is not None, f"{name}: no tokenizer although tokenizer.json is beside the weights")
    n_tokens = max(list(tok_json["model"]["vocab"].values()) + list(added)) + 1
    check(t["tokens"] == n_tokens, f"{name}: tokenizer tokens {t['tokens']} != {n_tokens}")
    check(t["merges"] == len(tok_json["model"]["merges"]), f"{name}: merges {t['merges']}")
    check(t["add_bos"] is bool(tok_cfg.get("add_bos_token", False)), f"{name}: add_bos {t['add_bos']}")
    special = {i for i, x in ((x["id"], x) for x in tok_json["added_tokens"]) if x["special"]}
    control = {x["id"] for x in t["control_tokens"] or []}
    check(special <= control, f"{name}: control tokens {sorted(control)} lack special ids {sorted(special)}")
    for x in t["control_tokens"] or []:
        if x["id"] in added:
            check(x["token"] == added[x["id"]], f"{name}: control token {x}")

    for k, v in st_meta.items():
        check(any(m["key"].endswith(k) and m["value"] == v for m in j["metadata"]),
              f"{name}: __metadata__ {k}={v!r} not among the metadata keys")
    for m in j["metadata"]:
        check(set(m) >= {"key", "type", "value"}, f"{name}: metadata entry {m} lacks key/type/value")

    # The human output shows the same facts, aligned as 'key  value'.
    out, err = run(st)
    check(err == "", f"{name}: human output printed diagnostics: {err}")
    check(human_field(out, "tensors") == f"{len(tensors):,}", f"{name}: human 'tensors' line: {human_field(out, 'tensors')}")
    check(human_field(out, "parameters") == f"{params:,}", f"{name}: human 'parameters' line")
    for k in ("hidden_size", "n_layers", "n_heads", "n_kv_heads", "intermediate_size", "vocab_size"):
        check(human_field(out, k) == str(expect[k]), f"{name}: human '{k}' line: {human_field(out, k)}")
    check(human_field(out, "architecture") == cfg["model_type"], f"{name}: human architecture")
    check(re.search(r"^\s*BF16\s+%d\s" % len(tensors), out, re.M), f"{name}: human dtype table lacks 'BF16 {len(tensors)}'")
    check("chat_template" in out and "--full prints it" in out, f"{name}: chat template not summarized")
    full, _ = run("--full", st)
    phrase = "created by Alibaba Cloud"
    if phrase in tok_cfg["chat_template"]:
        check(phrase in full and phrase not in out, f"{name}: only --full prints the chat template")

    # A directory holding the checkpoint gives the same model.
    jd, err = run_json(fx)
    check(jd["tensor_count"] == len(tensors) and jd["parameter_count"] == params,
          f"{name}: directory form differs: {jd['tensor_count']} tensors")
    check(jd["config"] == c, f"{name}: directory form has a different config")

# ---- GGUF written by gguf-py (if this build reads GGUF) ------------------------------------
try:
    import numpy as np
    import gguf
except ImportError as e:
    np = gguf = None
    print(f"NOTE: GGUF checks skipped: {e}", file=sys.stderr)

gg_path = os.path.join(tmp, "gguf-py.gguf")
gguf_read = False
if gguf is not None:
    fx = os.path.join(root, "fixtures", "tiny-qwen2")
    cfg = json.load(open(os.path.join(fx, "config.json")))
    tok_json = json.load(open(os.path.join(fx, "tokenizer.json")))
    vocab = sorted(tok_json["model"]["vocab"].items(), key=lambda kv: kv[1])
    tokens = [t for t, _ in vocab] + [t["content"] for t in tok_json["added_tokens"]]
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok_json["model"]["merges"]]
    w = gguf.GGUFWriter(gg_path, "qwen2")
    w.add_custom_alignment(64)
    w.add_name("tiny gguf-py test")
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_head_count_kv(cfg["num_key_value_heads"])
    w.add_rope_freq_base(1e6)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types([1] * (len(tokens) - 3) + [3, 3, 3])
    w.add_token_merges(merges)
    w.add_bos_token_id(997)
    w.add_eos_token_id(999)
    w.add_uint8("test.u8", 200)
    w.add_int8("test.i8", -100)
    w.add_uint16("test.u16", 65000)
    w.add_int16("test.i16", -32000)
    w.add_int64("test.i64", -(1 << 40))
    w.add_uint64("test.u64_big", (1 << 63) + 5)
    w.add_float64("test.f64", 0.1)
    w.add_bool("test.bool", True)
    w.add_string("test.unicode", "h\u00e9llo \u2713 \"quoted\"\n")
    w.add_array("test.floats", [1.5, -2.25, 3.0])
    with open(os.path.join(fx, "model.safetensors"), "rb") as f:
        raw = f.read()
    hlen, tensors, _ = st_header(os.path.join(fx, "model.safetensors"))
    for tname, t in sorted(tensors.items(), key=lambda kv: kv[1]["data_offsets"][0])[:6]:
        a, b = t["data_offsets"]
        bits = np.frombuffer(raw, dtype="<u2", count=(b - a) // 2, offset=8 + hlen + a)
        values = (bits.astype(np.uint32) << 16).view(np.float32).reshape(t["shape"])
        w.add_tensor(tname, values.astype(np.float16 if values.ndim == 2 else np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    probe = subprocess.run([inspect, gg_path], capture_output=True)
    if b"not available in this build" in probe.stderr:
        print("NOTE: GGUF checks skipped: this build has no GGUF reader yet", file=sys.stderr)
    else:
        gguf_read = True
        reader = gguf.GGUFReader(gg_path)
        j, err = run_json(gg_path)
        check(j["valid"] and j["format"] == "gguf" and j["version"] == "3", f"gguf: {j['format']} {j['version']}")
        check(j["alignment"] == 64, f"gguf: alignment {j['alignment']}, gguf-py wrote 64")
        check(j["data_offset"] == reader.data_offset, f"gguf: data_offset {j['data_offset']} != {reader.data_offset}")
        check(j["gguf"]["byte_order"] == "little" and j["gguf"]["data_offset"] == reader.data_offset,
              f"gguf: layout {j['gguf']}")
        check(j["gguf"]["kv_count"] == len([k for k in reader.fields if not k.startswith("GGUF.")]),
              f"gguf: kv_count {j['gguf']['kv_count']}")
        check(j["tensor_count"] == len(reader.tensors), f"gguf: tensor_count {j['tensor_count']}")
        check(j["parameter_count"] == sum(int(t.n_elements) for t in reader.tensors), "gguf: parameter_count")
        got = {d["dtype"]: d["tensors"] for d in j["dtypes"]}
        want = {}
        for t in reader.tensors:
            want[t.tensor_type.name] = want.get(t.tensor_type.name, 0) + 1
        check(got == want, f"gguf: dtypes {got} != {want}")
        meta = {m["key"]: m for m in j["metadata"]}
        # gguf-py's reader adds three pseudo-fields (GGUF.*) that are not KV pairs.
        fields = {k: v for k, v in reader.fields.items() if not k.startswith("GGUF.")}
        check(list(meta) == list(fields), f"gguf: keys {list(meta)} != {list(fields)} (order kept)")
        type_names = {"UINT8": "u8", "INT8": "i8", "UINT16": "u16", "INT16": "i16", "UINT32": "u32",
                      "INT32": "i32", "FLOAT32": "f32", "BOOL": "bool", "STRING": "string",
                      "ARRAY": "array", "UINT64": "u64", "INT64": "i64", "FLOAT64": "f64"}
        for key, field in fields.items():
            m = meta[key]
            check(m["type"] == type_names[field.types[0].name], f"gguf: {key} type {m['type']} != {field.types[0].name}")
            if field.types[0].name == "ARRAY":
                values = field.contents()
                check(m["elem_type"] == type_names[field.types[1].name], f"gguf: {key} elem_type {m['elem_type']}")
                check(m["count"] == len(values), f"gguf: {key} count {m['count']} != {len(values)}")
                check(m["truncated"] == (len(values) > len(m["value"])), f"gguf: {key} truncated flag")
                for a, b in zip(m["value"], values):
                    check(a == b if not isinstance(b, float) else close(a, b), f"gguf: {key} item {a!r} != {b!r}")
            else:
                want_v = field.contents()
                got_v = m["value"]
                if isinstance(got_v, str) and field.types[0].name in ("UINT64", "INT64"):
                    got_v = int(got_v)  # beyond 2^53: a decimal string, exact
                ok = close(got_v, want_v) if isinstance(want_v, float) else got_v == want_v
                check(ok, f"gguf: {key} = {got_v!r}, gguf-py reads {want_v!r}")
        check(meta["test.u64_big"]["value"] == str((1 << 63) + 5), "gguf: u64 beyond 2^53 must be an exact string")
        check(meta["tokenizer.ggml.tokens"]["truncated"] is True, "gguf: the token list is not summarized")
        jf, _ = run_json("--full", gg_path)
        full_tokens = next(m for m in jf["metadata"] if m["key"] == "tokenizer.ggml.tokens")
        check(full_tokens["value"] == tokens and full_tokens["truncated"] is False, "gguf: --full token list differs")
        c = j["config"]
        check((c["architecture"], c["hidden_size"], c["n_layers"], c["n_heads"], c["n_kv_heads"],
               c["context_length"], c["intermediate_size"]) ==
              ("qwen2", cfg["hidden_size"], cfg["num_hidden_layers"], cfg["num_attention_heads"],
               cfg["num_key_value_heads"], cfg["max_position_embeddings"], cfg["intermediate_size"]),
              f"gguf: config {c}")
        check(close(c["rope_theta"], 1e6) and close(c["rms_norm_eps"], 1e-6, 1e-6), "gguf: rope_theta / rms_norm_eps")
        check(j["tokenizer"]["tokens"] == len(tokens) and j["tokenizer"]["merges"] == len(merges),
              f"gguf: tokenizer {j['tokenizer']['tokens']} tokens, {j['tokenizer']['merges']} merges")
        check(j["tokenizer"]["model"] == "gpt2" and j["tokenizer"]["pre"] == "qwen2", "gguf: tokenizer model/pre")
        check({x["id"] for x in j["tokenizer"]["control_tokens"]} == {997, 998, 999}, "gguf: control tokens")
        out, _ = run(gg_path)
        check(human_field(out, "alignment") == "64", f"gguf: human alignment {human_field(out, 'alignment')}")
        check(re.search(r"^\s*tokenizer\.ggml\.tokens\s+array\s+\[string \u00d7 %d\] \"" % len(tokens), out, re.M),
              "gguf: human output does not summarize the token list as [string × N]")
        shown = '"h\u00e9llo \u2713 \\"quoted\\"\\n"'
        check(re.search(r"^\s*test\.unicode\s+string\s+" + re.escape(shown) + "$", out, re.M),
              f"gguf: human output does not quote and escape strings as {shown}")
        check(re.search(r"^\s*test\.i64\s+i64\s+-1099511627776$", out, re.M), "gguf: human i64 value")
        full, _ = run("--full", gg_path)
        check(full.count('"') > out.count('"') + 2 * (len(tokens) - 8), "gguf: --full does not print every token")

# ---- a big-endian GGUF: values byte-swapped on read ----------------------------------------
if gguf_read:
    be_path = os.path.join(tmp, "big-endian.gguf")
    w = gguf.GGUFWriter(be_path, "llama", endianess=gguf.GGUFEndian.BIG)
    w.add_uint32("test.u32", 0x01020304)
    w.add_float32("test.f32", 1.25)
    w.add_array("test.i16s", [1, -2, 300])
    w.add_string("test.s", "big")
    w.add_tensor("w", np.arange(12, dtype=np.float32).reshape(3, 4))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    jb, err = run_json(be_path)
    check(jb["valid"] and jb["gguf"]["byte_order"] == "big", f"big-endian gguf: {jb.get('gguf')} {err}")
    mb = {m["key"]: m["value"] for m in jb["metadata"]}
    check(mb["test.u32"] == 0x01020304 and mb["test.f32"] == 1.25 and mb["test.s"] == "big",
          f"big-endian gguf: values {mb}")
    check(mb["test.i16s"] in ([1, -2, 300],), f"big-endian gguf: array {mb['test.i16s']}")
    out, _ = run(be_path)
    check(human_field(out, "byte order") == "big-endian", "big-endian gguf: human byte order")

# ---- GGUF and APR copies of the fixtures written through the library ----------------------
# The expected values still come from config.json and the SafeTensors header, not from Rosetta.
helper = os.path.join(build, "tests", "write_formats") if build else ""
notes = []
if not os.access(helper, os.X_OK):
    notes.append("library-written GGUF/APR checks skipped: no write_formats helper in ROSETTA_BUILD")
else:
    for name in ("tiny-qwen2", "tiny-qwen2-tied", "tiny-qwen2-odd"):
        fx = os.path.join(root, "fixtures", name)
        cfg = json.load(open(os.path.join(fx, "config.json")))
        hlen, tensors, _ = st_header(os.path.join(fx, "model.safetensors"))
        params = sum(prod(t["shape"]) for t in tensors.values())
        for fmt in ("gguf", "apr"):
            out_path = os.path.join(tmp, f"{name}.{fmt}")
            p = subprocess.run([helper, fx, f"--{fmt}", out_path], capture_output=True, text=True)
            check(p.returncode == 0, f"write_formats {name} --{fmt}: {p.stderr}")
            j, err = run_json("--checksums", out_path)
            check(j["valid"] and j["format"] == fmt, f"{name}.{fmt}: valid {j['valid']} format {j['format']} {err}")
            c = j["config"]
            theta = cfg.get("rope_theta", (cfg.get("rope_parameters") or {}).get("rope_theta"))
            for key, want in (("architecture", cfg["model_type"]), ("hidden_size", cfg["hidden_size"]),
                              ("n_layers", cfg["num_hidden_layers"]), ("n_heads", cfg["num_attention_heads"]),
                              ("n_kv_heads", cfg["num_key_value_heads"]),
                              ("intermediate_size", cfg["intermediate_size"]), ("vocab_size", cfg["vocab_size"]),
                              ("context_length", cfg["max_position_embeddings"]),
                              ("tie_word_embeddings", cfg["tie_word_embeddings"])):
                check(c[key] == want, f"{name}.{fmt}: config.{key} = {c[key]!r}, config.json says {want!r}")
            check(close(c["rope_theta"], theta) and close(c["rms_norm_eps"], cfg["rms_norm_eps"]),
                  f"{name}.{fmt}: rope_theta {c['rope_theta']} rms_norm_eps {c['rms_norm_eps']}")
            for key, cfg_key in (("bos_token", "bos_token_id"), ("eos_token", "eos_token_id")):
                check(c[key] is not None and c[key]["id"] == cfg[cfg_key], f"{name}.{fmt}: {key} {c[key]}")
            tied_copy = fmt == "apr" and cfg["tie_word_embeddings"]  # APR stores lm_head as a copy
            extra = cfg["vocab_size"] * cfg["hidden_size"] if tied_copy else 0
            check(j["tensor_count"] == len(tensors) + (1 if tied_copy else 0),
                  f"{name}.{fmt}: {j['tensor_count']} tensors, the SafeTensors file has {len(tensors)}")
            check(j["parameter_count"] == params + extra, f"{name}.{fmt}: parameter_count {j['parameter_count']}")
            if fmt == "apr":
                a = j["apr"]
                check(a["header_checksum"]["valid"] and a["header_checksum"]["stored"] == a["header_checksum"]["computed"],
                      f"{name}.apr: header checksum {a['header_checksum']}")
                check(a["footer_checksum"]["present"] and a["footer_checksum"]["valid"],
                      f"{name}.apr: footer checksum {a['footer_checksum']}")
                raw = open(out_path, "rb").read()
                check(a["header_checksum"]["stored"] == struct.unpack_from("<I", raw, 40)[0] ==
                      zlib.crc32(raw[:40] + raw[44:64]), f"{name}.apr: header CRC differs from zlib's")
                check(a["footer_checksum"]["stored"] == struct.unpack_from("<I", raw, len(raw) - 4)[0] ==
                      zlib.crc32(raw[:-4]), f"{name}.apr: footer CRC differs from zlib's")
                check(a["flags"] & 0x0400 and "row-major" in a["flag_names"], f"{name}.apr: flags {a['flags']:#x}")
                check(j["data_offset"] == struct.unpack_from("<Q", raw, 32)[0], f"{name}.apr: data_offset")
                out, _ = run(out_path)
                check(re.search(r"^header CRC\s+0x%08x valid$" % a["header_checksum"]["stored"], out, re.M),
                      f"{name}.apr: human header CRC line")
                # Small files are verified whole without being asked.
                check(re.search(r"^footer CRC\s+0x%08x valid$" % a["footer_checksum"]["stored"], out, re.M),
                      f"{name}.apr: human footer CRC line")

    # Damage only a CRC covers: a flipped byte in the APR header's reserved area (strict readers
    # refuse the file, the lenient one still reads it all), and one in the tensor data (found by
    # the footer CRC).
    good = os.path.join(tmp, "tiny-qwen2.apr")
    raw = bytearray(open(good, "rb").read())
    jg, _ = run_json(good)
    hdr_bad = os.path.join(tmp, "header-crc.apr")
    raw[50] ^= 1
    open(hdr_bad, "wb").write(raw)
    jb, err = run_json(hdr_bad, expect_rc=3)
    check(jb["valid"] is False and "header CRC mismatch" in jb["error"] and "header CRC mismatch" in err,
          f"header-crc.apr: error {jb['error']!r}, stderr {err!r}")
    check(jb["apr"]["header_checksum"]["valid"] is False, "header-crc.apr: header checksum reported valid")
    check(jb["tensor_count"] == jg["tensor_count"] and jb["config"] == jg["config"],
          "header-crc.apr: the lenient reader should still show every tensor and the config")
    out, err = run(hdr_bad, expect_rc=3)
    check(re.search(r"^header CRC\s+MISMATCH: stored 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}$", out, re.M),
          "header-crc.apr: human output does not show the mismatch")
    raw[50] ^= 1
    data_bad = os.path.join(tmp, "footer-crc.apr")
    raw[jg["data_offset"] + 100] ^= 0x40
    open(data_bad, "wb").write(raw)
    for args in (["--checksums", data_bad], [data_bad]):
        jf, err = run_json(*args, expect_rc=3)
        check(jf["valid"] is False and jf["apr"]["footer_checksum"]["valid"] is False and "footer CRC" in err,
              f"footer-crc.apr {args}: {jf['apr']['footer_checksum']} {err!r}")

# ---- speed and no data access: sparse multi-GiB files --------------------------------------
def sparse(path, head, total):
    with open(path, "wb") as f:
        f.write(head)
        f.truncate(total)

big_st = os.path.join(tmp, "big.safetensors")
hdr = json.dumps({"__metadata__": {"format": "pt"},
                  "big.weight": {"dtype": "BF16", "shape": [65536, 32768], "data_offsets": [0, 1 << 32]},
                  "small.bias": {"dtype": "F32", "shape": [4], "data_offsets": [1 << 32, (1 << 32) + 16]}}).encode()
hdr += b" " * (-len(hdr) % 8)
sparse(big_st, struct.pack("<Q", len(hdr)) + hdr, 8 + len(hdr) + (1 << 32) + 16)

def gguf_string(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b

big_gg = os.path.join(tmp, "big.gguf")
head = b"GGUF" + struct.pack("<IQQ", 3, 1, 1)
head += gguf_string("general.architecture") + struct.pack("<I", 8) + gguf_string("llama")
head += gguf_string("big.weight") + struct.pack("<I", 2) + struct.pack("<QQ", 32768, 65536)
head += struct.pack("<IQ", 1, 0)  # F16 at data offset 0
head += b"\0" * (-len(head) % 32)
sparse(big_gg, head, len(head) + (1 << 32))

def crc32_zeros(crc, n):
    """zlib.crc32(data + bytes(n)) from crc = zlib.crc32(data), in log(n) steps: appending a
    zero bit updates the (inverted) CRC register by a fixed linear map over GF(2)."""
    def apply(m, v):
        r, i = 0, 0
        while v:
            if v & 1:
                r ^= m[i]
            v, i = v >> 1, i + 1
        return r
    def square(m):
        return [apply(m, col) for col in m]
    m = [0xEDB88320] + [1 << (i - 1) for i in range(1, 32)]  # one zero bit
    for _ in range(3):
        m = square(m)  # one zero byte
    s = crc ^ 0xFFFFFFFF
    while n:
        if n & 1:
            s = apply(m, s)
        m, n = square(m), n >> 1
    return s ^ 0xFFFFFFFF

check(crc32_zeros(zlib.crc32(b"abc"), 1000) == zlib.crc32(b"abc" + bytes(1000)), "crc32_zeros")
big_apr = os.path.join(tmp, "big.apr")
meta = b'{"model_type":"qwen2","architecture":"qwen2"}'
entry = struct.pack("<H", 10) + b"big.weight" + struct.pack("<BB", 30, 2) + struct.pack("<QQ", 65536, 32768)
entry += struct.pack("<QQ", 0, 1 << 32)
a64 = lambda n: (n + 63) // 64 * 64
index_at = 64 + a64(len(meta))
data_at = index_at + a64(len(entry))
hdr = bytearray(b"APR\0\x02\x00" + struct.pack("<HIQIQQ", 0x0400, 1, 64, len(meta), index_at, data_at) + bytes(24))
hdr[40:44] = struct.pack("<I", zlib.crc32(bytes(hdr[:40]) + bytes(hdr[44:])))
head = bytes(hdr) + meta + bytes(a64(len(meta)) - len(meta)) + entry + bytes(a64(len(entry)) - len(entry))
with open(big_apr, "wb") as f:
    f.write(head)
    f.truncate(len(head) + (1 << 32))
    f.seek(len(head) + (1 << 32))
    f.write(struct.pack("<I", crc32_zeros(zlib.crc32(head), 1 << 32)))

# Files this large have their APR footer CRC verified only with --checksums.
for path, fmt in ((big_st, "safetensors"), (big_gg, "gguf"), (big_apr, "apr")):
    probe = subprocess.run([inspect, path], capture_output=True)
    if b"not available in this build" in probe.stderr:
        print(f"NOTE: {fmt} speed check skipped: no reader in this build", file=sys.stderr)
        continue
    best = None
    for _ in range(3):
        t0 = time.monotonic()
        j, err = run_json(path)
        dt = time.monotonic() - t0
        best = dt if best is None else min(best, dt)
    check(j["valid"] and j["parameter_count"] == 65536 * 32768 + (4 if fmt == "safetensors" else 0),
          f"{fmt} 4 GiB: parameter_count {j['parameter_count']}")
    check(j["file_size"] == os.path.getsize(path), f"{fmt} 4 GiB: file_size")
    print(f"{fmt}: inspect of a 4 GiB file: {best * 1000:.1f} ms")
    if fmt == "apr":
        check(j["apr"]["footer_checksum"] is None, "apr 4 GiB: footer verified without --checksums")
        out, _ = run(path)
        check(re.search(r"^footer CRC\s+not checked \(4\.0 GiB file; --checksums reads it all\)$", out, re.M),
              "apr 4 GiB: human footer line")
        if os.environ.get("ROSETTA_VALGRIND") == "1":
            # Reading 4 GiB under memcheck takes minutes; the --checksums path itself runs under
            # memcheck on the fixture files above.
            notes.append("apr 4 GiB --checksums not repeated under ROSETTA_VALGRIND (4 GiB read)")
        else:
            jc, _ = run_json("--checksums", path)
            check(jc["apr"]["footer_checksum"]["valid"] is True,
                  f"apr 4 GiB --checksums: {jc['apr']['footer_checksum']}")
    check(best < 0.5 or os.environ.get("ROSETTA_VALGRIND") == "1",  # valgrind: seconds to start
          f"{fmt}: inspect of a 4 GiB file took {best * 1000:.0f} ms (headers only should be milliseconds)")

# ---- usage errors -------------------------------------------------------------------------
run(expect_rc=2)
run(big_st, big_gg, expect_rc=2)
run("--bogus", big_st, expect_rc=2)
checks += 3
for note in notes:
    print("NOTE: " + note, file=sys.stderr)
print(f"inspect: {checks} checks passed")
EOF
