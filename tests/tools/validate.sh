#!/usr/bin/env bash
# apr validate: every fixture passes in all three formats (GGUF and APR written by apr quantize);
# for every contract rule a crafted bad model (tests/tools/make_bad_models.py) is reported with
# exactly that rule, in SafeTensors and, where the break survives conversion, in GGUF and APR;
# exit codes (0 pass, 5 violation, warnings only with --strict, 3 unreadable, 2 usage); the
# contracts are read at run time (--contracts, ROSETTA_CONTRACTS).
set -euo pipefail
: "${APR_BIN:?}" "${ROSETTA_ROOT:?}" "${TEST_TMP:?}"
T="$TEST_TMP/validate"
rm -rf "$T" && mkdir -p "$T"
python3 -c 'import numpy' 2>/dev/null || { echo "SKIP: numpy is not installed (make test installs it)" >&2; exit 77; }
# Under Valgrind (make test-valgrind) every rule and format still runs once, without the GGUF
# copies of the crafted models and the repeated runs in other output modes: memcheck costs ~50x.
light=()
[ "${ROSETTA_VALGRIND:-0}" = 1 ] && light=(--no-gguf)
python3 "$ROSETTA_ROOT/tests/tools/make_bad_models.py" "$T/bad" --apr-bin "$APR_BIN" "${light[@]}"

exec python3 - "$APR_BIN" "$ROSETTA_ROOT" "$T" <<'EOF'
import json, os, shutil, subprocess, sys

apr_bin, root, tmp = sys.argv[1:4]
light = os.environ.get("ROSETTA_VALGRIND") == "1"
validate = os.path.join(apr_bin, "apr-validate")
quantize = os.path.join(apr_bin, "apr-quantize")
checks = 0


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    global checks
    if not cond:
        fail(msg)
    checks += 1


def run(*args, rc=None, env=None):
    p = subprocess.run([validate, *args], capture_output=True, text=True, timeout=120,
                       env=env)
    if rc is not None and p.returncode != rc:
        fail(f"apr validate {' '.join(args)}: exit {p.returncode}, expected {rc}\n"
             f"stdout: {p.stdout[-2000:]}\nstderr: {p.stderr[-2000:]}")
    return p


def run_json(*args, rc=None):
    p = run("--json", *args, rc=rc)
    try:
        return json.loads(p.stdout)
    except ValueError as e:
        fail(f"apr validate --json {' '.join(args)}: invalid JSON ({e}): {p.stdout[:500]}")


rule_ids = None

# ---- every fixture passes, in every format ---------------------------------------------------
for fx in ("tiny-qwen2",) if light else ("tiny-qwen2", "tiny-qwen2-tied", "tiny-qwen2-odd"):
    src = os.path.join(root, "fixtures", fx)
    models = [src]
    for fmt, ext, qtype in (("gguf", "gguf", "q8_0"),) + (() if light else (
                            ("gguf", "f32.gguf", "f32"),)) + (("apr", "apr", "bf16"),):
        out = os.path.join(tmp, f"{fx}.{ext}")
        subprocess.run([quantize, "-q", "--format", fmt, src, out, qtype], check=True,
                       stdout=subprocess.DEVNULL)
        models.append(out)
    if fx == "tiny-qwen2":  # widths of 256: the K-quant mix applies in GGUF and APR
        for fmt in ("gguf", "apr"):
            out = os.path.join(tmp, f"{fx}.q4_k_m.{fmt}")
            subprocess.run([quantize, "-q", "--format", fmt, src, out, "q4_k_m"], check=True,
                           stdout=subprocess.DEVNULL)
            models.append(out)
    for path in models:
        j = run_json("--strict", path, rc=0)
        check(j["passed"] is True and j["failures"] == 0 and j["violations"] == [],
              f"{path}: {j['violations'][:3]}")
        check(j["family"] == "qwen2" and j["size"] is None, f"{path}: family {j['family']}")
        ids = [r["id"] for r in j["rules"]]
        if rule_ids is None:
            rule_ids = ids
        check(ids == rule_ids, f"{path}: the same rules run for every format")
        by_id = {r["id"]: r for r in j["rules"]}
        check(by_id["layout.shape"]["checked"] > 0 and by_id["quality.nan_inf"]["checked"] > 0,
              f"{path}: rules checked nothing")
        if light:
            continue
        out = run(path, rc=0).stdout
        check(out.rstrip().endswith("0 violations") and "PASS" in out, f"{path}: {out[-300:]}")
check(len(rule_ids) >= 20 and len(set(rule_ids)) == len(rule_ids), f"rules: {rule_ids}")
doc = open(os.path.join(root, "docs", "contracts.md")).read()
undocumented = [r for r in rule_ids if f"`{r}`" not in doc and not r.startswith("quality.")]
undocumented += [r for r in rule_ids if r.startswith("quality.") and f"| `{r}` |" not in doc]
check(not undocumented, f"rules missing from docs/contracts.md: {undocumented}")
listed = json.loads(run("--list-rules", "--json", rc=0).stdout)
check([r["id"] for r in listed] == rule_ids, "--list-rules lists the rules that run")

# ---- every rule has a crafted bad model that triggers exactly it --------------------------------
cases = json.load(open(os.path.join(tmp, "bad", "cases.json")))
triggered = set()
for c in cases:
    want = sorted(c["rules"])
    rc = 0 if c["warning_only"] else 5
    j = run_json(c["path"], rc=rc)
    got = sorted({v["rule"] for v in j["violations"]})
    check(got == want, f"{c['case']}: rules {got}, expected exactly {want}")
    for v in j["violations"]:
        check(v["expected"] and v["found"] and v["message"] and v["rule"] in v["message"] or
              v["expected"] in v["message"], f"{c['case']}: violation text {v}")
        check(v["severity"] == ("warning" if c["warning_only"] else "error"),
              f"{c['case']}: severity {v['severity']}")
    failed = {r["id"]: r["failed"] for r in j["rules"]}
    check(all(failed[r] > 0 for r in want) and
          all(n == 0 for r, n in failed.items() if r not in want),
          f"{c['case']}: rule table {failed}")
    check(j["passed"] is c["warning_only"], f"{c['case']}: passed {j['passed']}")
    if light:
        triggered.update(want)
        continue
    if c["warning_only"]:
        check(run_json("--strict", c["path"], rc=5)["passed"] is False,
              f"{c['case']}: --strict fails on warnings")
    text = run(c["path"], rc=rc).stdout
    for r in want:
        check(("warn " if c["warning_only"] else "FAIL ") + r in text,
              f"{c['case']}: '{r}' not listed in the text output:\n{text}")
    triggered.update(want)
missing = sorted(set(rule_ids) - triggered)
check(not missing, f"rules without a crafted bad model: {missing}")
print(f"{len(cases)} crafted bad models, {len(triggered)} rules", file=sys.stderr)

bad = {c["case"]: c["path"] for c in cases}
# --rules selects a class: quality breaks pass the structural rules and the other way round
run("--rules", "structural", bad["nan_inf"], rc=0)
run("--rules", "quality", bad["missing_tensor"], rc=0)
check(all(r["class"] == "quality" for r in run_json("--rules", "quality", bad["nan_inf"],
                                                     rc=5)["rules"]), "--rules quality")
# --arch: the family of another architecture
run("--arch", "qwen2", bad["unknown_architecture"], rc=0)
j = run_json("--arch", "llama", "--rules", "structural",
             os.path.join(root, "fixtures", "tiny-qwen2"), rc=5)
check({v["rule"] for v in j["violations"]} == {"layout.bias_presence", "config.rope_type"},
      f"--arch llama: {j['violations'][:3]}")

# ---- the contracts are read at run time ----------------------------------------------------------
mine = os.path.join(tmp, "contracts")
shutil.copytree(os.path.join(root, "contracts"), mine)
q = os.path.join(mine, "quality.json")
text = open(q).read()
open(q, "w").write(text.replace('"embedding": 0.5', '"embedding": 0.7'))
run("--contracts", mine, bad["zero_fraction"], rc=0)  # 60 % zeros is now allowed
env = dict(os.environ, ROSETTA_CONTRACTS=mine)
run(bad["zero_fraction"], rc=0, env=env)
run("--contracts", os.path.join(root, "contracts"), bad["zero_fraction"], rc=5, env=env)
check(run_json("--contracts", mine, bad["zero_fraction"])["contracts"] == mine, "contracts dir")
open(q, "w").write(text.replace('"quality.l2"', '"quality.l3"'))
p = run("--contracts", mine, os.path.join(root, "fixtures", "tiny-qwen2"), rc=3)
check("quality.json: $.rules[" in p.stderr and "quality.l3" in p.stderr, p.stderr)
run(os.path.join(root, "fixtures", "tiny-qwen2"), rc=3,
    env=dict(os.environ, ROSETTA_CONTRACTS=os.path.join(tmp, "nowhere")))

# ---- unreadable input, usage -----------------------------------------------------------------------
cut = os.path.join(tmp, "cut.gguf")
with open(os.path.join(tmp, "tiny-qwen2.gguf"), "rb") as f:
    open(cut, "wb").write(f.read()[:5000])
p = run(cut, rc=3)
check("cut.gguf" in p.stderr and p.stdout == "", f"truncated file: {p.stderr}")
run(os.path.join(tmp, "no-such-file.gguf"), rc=3)
run(rc=2)
run("--rules", "some", cut, rc=2)
run(cut, cut, rc=2)
run("--bogus", cut, rc=2)
check("--strict" in run("--help", rc=0).stdout, "--help")
print(f"validate: {checks} checks passed", file=sys.stderr)
EOF
