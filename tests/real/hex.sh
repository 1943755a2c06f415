#!/usr/bin/env bash
# Real weights: apr hex on the genuine Qwen2.5-Coder-0.5B Q4_K_M GGUF (fixtures/real/README.md).
# --list and --header in milliseconds (headers only), offsets and key/value records equal
# gguf-py's, blocks of every quantized type of the file (Q4_K, Q5_0, Q6_K, Q8_0) and slices equal
# gguf-py's dequantization, --distribution equals numpy, --entropy flags nothing on the healthy
# file, --raw equals xxd, and the browser opens in tmux. Prints the figures it measured.
set -euo pipefail
. "$ROSETTA_ROOT/tests/real/lib.sh"
real_model hex
command -v xxd >/dev/null || fail "xxd is not installed (scripts/install-deps installs it)"
model=$MODEL

python3 - "$APR_BIN/apr-hex" "$model" <<'EOF'
import json, subprocess, sys, time

import numpy as np
import gguf

hexbin, model = sys.argv[1:3]
checks = 0


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    global checks
    if not cond:
        fail(msg)
    checks += 1


def run(*args, rc=0):
    t0 = time.monotonic()
    p = subprocess.run([hexbin, *args], capture_output=True, timeout=900)
    dt = time.monotonic() - t0
    if p.returncode != rc:
        fail(f"apr hex {' '.join(args)}: exit {p.returncode}: {p.stderr.decode()[:500]}")
    return p.stdout, dt


def run_json(*args):
    out, dt = run("--json", *args)
    return json.loads(out), dt


# headers only, in milliseconds (the best of three: the machine is shared)
best = {}
for mode in ("--list", "--header"):
    best[mode] = min(run_json(mode, model)[1] for _ in range(3))
    check(best[mode] < 0.5, f"{mode} took {best[mode] * 1000:.0f} ms on the 491 MB file")
lst, _ = run_json("--list", model)
hdr, _ = run_json("--header", model)
check(lst["valid"] and hdr["valid"], "the real file is reported damaged")
r = gguf.GGUFReader(model)
tensors = {t["name"]: t for t in lst["tensors"]}
check(len(tensors) == 291, f"{len(tensors)} tensors")
counts = {}
for t in r.tensors:
    mine = tensors[t.name]
    check(mine["start"] == t.data_offset and mine["size"] == t.n_bytes and
          mine["dtype"] == t.tensor_type.name, f"{t.name}: layout differs from gguf-py")
    counts[mine["dtype"]] = counts.get(mine["dtype"], 0) + 1
check(counts == {"Q5_0": 133, "Q8_0": 13, "Q6_K": 12, "Q4_K": 12, "F32": 121}, f"dtypes {counts}")
kvs = [x for x in hdr["regions"] if x["kind"] == "kv"]
fields = [f for f in r.fields.values() if not f.name.startswith("GGUF.")]
check(len(kvs) == len(fields), "key/value count")
for reg, f in zip(kvs, fields):
    check(reg["offset"] == f.offset and reg["size"] == sum(p.nbytes for p in f.parts),
          f"kv {f.name}")

# blocks and slices of each quantized type against gguf-py
by_type = {}
for t in r.tensors:
    by_type.setdefault(t.tensor_type.name, t)
for qname, t in sorted(by_type.items()):
    values = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32).ravel()
    if qname != "F32":
        blk, _ = run_json("--blocks", "--tensor", t.name, "--offset",
                          str(t.data_offset + 5 * gguf.GGML_QUANT_SIZES[t.tensor_type][1]), model)
        b = blk["tensors"][0]["blocks"][0]
        n = len(b["values"])
        check(b["index"] == 5 and np.array_equal(np.array(b["values"], dtype=np.float32),
                                                 values[5 * n:6 * n]),
              f"{t.name} ({qname}): block 5 differs from gguf-py")
    a = values.size // 2
    sl, _ = run_json("--slice", f"{a}:{a + 300}", "--tensor", t.name, model)
    check(np.array_equal(np.array(sl["tensors"][0]["values"], dtype=np.float32),
                         values[a:a + 300]), f"{t.name} ({qname}): slice differs from gguf-py")

# distribution of a Q5_0 attention weight against numpy
t = [t for t in r.tensors if t.name == "blk.0.attn_q.weight"][0]
v = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float64).ravel()
ds, dt_dist = run_json("--distribution", "--tensor", t.name, model)
d = ds["tensors"][0]
check(d["count"] == v.size and d["min"] == v.min() and d["max"] == v.max(), "min/max/count")
check(abs(d["mean"] - v.mean()) <= 1e-9 * max(1, abs(v.mean())) and
      abs(d["std"] - v.std()) <= 1e-9 * v.std(), "mean/std")
for key, p in (("p1", 1), ("p50", 50), ("p99", 99)):
    check(abs(d["quantiles"][key] - np.percentile(v, p)) <= 1e-12, f"quantile {key}")
big, dt_big = run_json("--distribution", "--tensor", "token_embd.weight", model)
check(big["tensors"][0]["quantile_method"] == "histogram" and
      big["tensors"][0]["count"] == 151936 * 896, "token_embd distribution")

# entropy over all 491 MB: a healthy file, dense quantized data
ent, dt_ent = run_json("--entropy", model)
check(ent["flagged"] == 0, f"{ent['flagged']} regions flagged on the healthy file")
q = [x["entropy"] for x in ent["regions"] if x.get("dtype") in ("Q4_K", "Q5_0", "Q6_K", "Q8_0")]
check(min(q) > 6.0, f"quantized data entropy {min(q)}")

# the contracts: every tensor has its role and expected shape, nothing is missing
ct, _ = run_json("--contract", model)
check(ct["family"] == "qwen2" and ct["mismatches"] == 0 and ct["swaps"] == 0 and
      ct["without_role"] == 0 and not ct["missing"] and len(ct["tensors"]) == 291,
      f"--contract: {ct['mismatches']} mismatches, {ct['missing'][:3]} missing")
check({t["names"]["gguf"] for t in ct["tensors"] if t["critical"]} ==
      {"token_embd.weight", "output.weight"}, "critical roles")

# xxd
for off, lim in ((0, 256), (0x5ac166, 64), (491400064 - 100, 200)):
    mine, _ = run("--raw", "--offset", hex(off), "--limit", str(lim), model)
    theirs = subprocess.run(["xxd", "-s", str(off), "-l", str(lim), model], capture_output=True,
                            check=True).stdout
    check(mine == theirs, f"--raw at {off:#x} differs from xxd")
out, _ = run(model)
check(b"GGUF v3, little-endian" in out and b"output.weight" in out, "summary")

print(f"hex real: {checks} checks; --list {best['--list'] * 1000:.0f} ms, --header "
      f"{best['--header'] * 1000:.0f} ms (best of 3); --distribution of 802,816 values "
      f"{dt_dist:.2f} s, of 136,134,656 values {dt_big:.1f} s; --entropy of 491 MB {dt_ent:.1f} s")
EOF

# the browser opens the real file and quits
if command -v tmux >/dev/null; then
  socket="rosetta-hex-real-$$"
  tm() { tmux -L "$socket" -f /dev/null "$@"; }
  tui_done() { tm kill-server 2>/dev/null || true; }
  status="$T/tui-status"
  rm -f "$status"
  tm new-session -d -s hex -x 150 -y 45 "'$APR_BIN/apr-hex' --tui '$model'; echo \$? > '$status'"
  for _ in $(seq 100); do
    tm capture-pane -p -t hex | grep -qF "tensors (291)" && break
    sleep 0.2
  done
  tm capture-pane -p -t hex | grep -qF "tensors (291)" || { tui_done; fail "the browser did not open"; }
  tm send-keys -t hex g && tm send-keys -t hex -l 0x5ac180 && tm send-keys -t hex Enter
  for _ in $(seq 100); do
    tm capture-pane -p -t hex | grep -qF "data > output.weight" && break
    sleep 0.2
  done
  tm capture-pane -p -t hex | grep -qF "data > output.weight" || { tui_done; fail "goto in the browser"; }
  tm send-keys -t hex q
  for _ in $(seq 50); do [ -s "$status" ] && break; sleep 0.2; done
  [ "$(cat "$status" 2>/dev/null)" = 0 ] || { tui_done; fail "the browser did not quit cleanly"; }
  tui_done
  echo "hex real: the browser opened the file, went to the data and quit"
fi
