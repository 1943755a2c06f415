#!/usr/bin/env python3
"""The contract files against their documented schema (docs/contracts.md), checked by tools
that share no code with Rosetta's loader:

1. Every file of contracts/ validates against contracts/schema/*.schema.json with the
   `jsonschema` library (draft 2020-12), and the rules the schema cannot state (identifiers of
   expressions, one dimension for vectors, the layer placeholder, unique names and ids, every flag
   set by every family, family = file name) are checked here in Python.
2. The families' sizes, evaluated with the layout's shape expressions (parsed here with Python's
   ast), add up to the parameter and tensor counts the family files state.
3. Mutated copies of the contracts are refused by both jsonschema/these checks and the C loader
   (`apr validate --contracts DIR`: exit 3, the file and JSON path in the message).
Exit 77 (skip) when jsonschema is missing; scripts/install-deps --python installs it.
"""
import ast
import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

try:
    import jsonschema
except ImportError as e:  # pragma: no cover - CI installs it
    print("SKIP: jsonschema is needed (%s); run scripts/install-deps --python" % e,
          file=sys.stderr)
    sys.exit(77)

ROOT = os.environ.get("ROSETTA_ROOT", os.path.join(os.path.dirname(__file__), "../.."))
APR_BIN = os.environ.get("APR_BIN")
CONTRACTS = os.path.join(ROOT, "contracts")
CONFIG_IDENTS = {"hidden_size", "num_layers", "num_heads", "num_kv_heads", "head_dim",
                 "intermediate_size", "vocab_size", "context_length", "tie_word_embeddings"}
SIZE_KEYS = {"hidden_size": "hidden_size", "num_layers": "num_layers", "num_heads": "num_heads",
             "num_kv_heads": "num_kv_heads", "head_dim": "head_dim",
             "intermediate_size": "intermediate_size", "vocab_size": "vocab_size",
             "context_length": "context_length"}

FAILURES = []
CHECKS = [0]


def check(cond, what):
    CHECKS[0] += 1
    if not cond:
        FAILURES.append(what)
        print("FAIL:", what, file=sys.stderr)


def load(path):
    with open(path) as f:
        return json.load(f)


def schema(name):
    s = load(os.path.join(CONTRACTS, "schema", name + ".schema.json"))
    jsonschema.Draft202012Validator.check_schema(s)
    return jsonschema.Draft202012Validator(s)


LAYOUT, FAMILY, QUALITY = schema("tensor-layout"), schema("family"), schema("quality")


def identifiers(expr):
    if isinstance(expr, int):
        return set()
    return set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", expr))


def evaluate(expr, values):
    """Integer value of a contract expression: + - * / (truncating), names, integers."""
    if isinstance(expr, int):
        return expr

    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.Name):
            return values[node.id]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -ev(node.operand)
        if isinstance(node, ast.BinOp):
            a, b = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Add):
                return a + b
            if isinstance(node.op, ast.Sub):
                return a - b
            if isinstance(node.op, ast.Mult):
                return a * b
            if isinstance(node.op, ast.Div):
                q = abs(a) // abs(b)
                return q if (a >= 0) == (b >= 0) else -q
        raise ValueError("not a contract expression: %r" % expr)

    return ev(ast.parse(expr, mode="eval"))


def problems(directory):
    """Every way the contracts of directory break the schema or the documented rules."""
    out = []
    layout = load(os.path.join(directory, "tensor-layout.json"))
    out += ["tensor-layout.json: " + e.message for e in LAYOUT.iter_errors(layout)]
    quality = load(os.path.join(directory, "quality.json"))
    out += ["quality.json: " + e.message for e in QUALITY.iter_errors(quality)]
    fam_dir = os.path.join(directory, "families")
    families = {f[:-5]: load(os.path.join(fam_dir, f))
                for f in sorted(os.listdir(fam_dir)) if f.endswith(".json")}
    for stem, fam in families.items():
        out += ["families/%s.json: %s" % (stem, e.message) for e in FAMILY.iter_errors(fam)]
    if out:
        return out
    flags = set(layout.get("flags", []))
    ph = layout["layer_placeholder"]
    if flags & CONFIG_IDENTS:
        out.append("a flag is also a config value")
    seen_ids, seen_names = set(), {}
    for i, role in enumerate(layout["roles"]):
        where = "$.roles[%d]" % i
        if role["role"] in seen_ids:
            out.append(where + ": duplicate role id")
        seen_ids.add(role["role"])
        if role["vector"] != (len(role["shape"]) == 1):
            out.append(where + ": vector disagrees with the shape")
        for d in role["shape"]:
            if identifiers(d) - CONFIG_IDENTS:
                out.append(where + ": unknown identifier in the shape")
        for key in ("required_if", "allowed_if"):
            if key in role and identifiers(role[key]) - CONFIG_IDENTS - flags:
                out.append(where + ": unknown identifier in " + key)
        for naming, name in role["names"].items():
            count = name.count(ph)
            if count != (1 if role["scope"] == "layer" else 0):
                out.append(where + ".names." + naming + ": placeholder")
            if name in seen_names and seen_names[name] != role["role"]:
                out.append(where + ".names." + naming + ": also a name of " + seen_names[name])
            seen_names[name] = role["role"]
    ids = [r["id"] for r in quality["rules"]]
    if len(ids) != len(set(ids)):
        out.append("quality.json: a rule is given twice")
    arch_owner = {}
    for stem, fam in families.items():
        if fam["family"] != stem:
            out.append("families/%s.json: family is not the file name" % stem)
        for flag in flags:
            if not isinstance(fam["constraints"].get(flag), bool):
                out.append("families/%s.json: flag %s not given" % (stem, flag))
        for names in fam["architectures"].values():
            for a in names:
                if a.lower() in arch_owner and arch_owner[a.lower()] != stem:
                    out.append("families/%s.json: %s also in %s" % (stem, a, arch_owner[a.lower()]))
                arch_owner[a.lower()] = stem
        size_names = [s["name"] for s in fam["sizes"]]
        if len(size_names) != len(set(size_names)):
            out.append("families/%s.json: duplicate size name" % stem)
    return out


# ---- 1. the repository's contracts --------------------------------------------------------------
found = problems(CONTRACTS)
check(found == [], "contracts/: %s" % found)
layout = load(os.path.join(CONTRACTS, "tensor-layout.json"))

# ---- 2. sizes add up -------------------------------------------------------------------------------
stated = 0
for f in sorted(os.listdir(os.path.join(CONTRACTS, "families"))):
    fam = load(os.path.join(CONTRACTS, "families", f))
    for size in fam["sizes"]:
        values = {k: size[k] for k in SIZE_KEYS}
        values["tie_word_embeddings"] = 1 if size["tie_word_embeddings"] else 0
        values.update({flag: int(fam["constraints"][flag]) for flag in layout["flags"]})
        params = tensors = 0
        for role in layout["roles"]:
            if not evaluate(role.get("required_if", "1"), values):
                continue
            n = 1
            for d in role["shape"]:
                n *= evaluate(d, values)
            copies = size["num_layers"] if role["scope"] == "layer" else 1
            params += n * copies
            tensors += copies
        if "parameters" in size:
            stated += 1
            check(params == size["parameters"],
                  "%s %s: shapes give %d parameters, the file says %d"
                  % (fam["family"], size["name"], params, size["parameters"]))
        if "tensors" in size:
            check(tensors == size["tensors"], "%s %s: %d tensors, the file says %d"
                  % (fam["family"], size["name"], tensors, size["tensors"]))
check(stated >= 9, "sizes with a stated parameter count: %d" % stated)

# ---- 3. mutations: both checkers refuse them ----------------------------------------------------


def mutate_layout(fn):
    def apply(d):
        p = os.path.join(d, "tensor-layout.json")
        j = load(p)
        fn(j)
        json.dump(j, open(p, "w"), indent=1)
    return apply


def mutate_family(name, fn):
    def apply(d):
        p = os.path.join(d, "families", name + ".json")
        j = load(p)
        fn(j)
        json.dump(j, open(p, "w"), indent=1)
    return apply


def mutate_quality(fn):
    def apply(d):
        p = os.path.join(d, "quality.json")
        j = load(p)
        fn(j)
        json.dump(j, open(p, "w"), indent=1)
    return apply


def rule(j, rule_id):
    return next(r for r in j["rules"] if r["id"] == rule_id)


MUTATIONS = [
    ("unknown role key", "tensor-layout.json", "$.roles[0]",
     mutate_layout(lambda j: j["roles"][0].update(requred_if="1"))),
    ("shape not an expression", "tensor-layout.json", "$.roles[4].shape[1]",
     mutate_layout(lambda j: j["roles"][4]["shape"].__setitem__(1, {"a": 1}))),
    ("unknown identifier", "tensor-layout.json", "$.roles[6].shape[0]",
     mutate_layout(lambda j: j["roles"][6]["shape"].__setitem__(0, "num_kv_head*head_dim"))),
    ("vector with two dimensions", "tensor-layout.json", "$.roles[1].vector",
     mutate_layout(lambda j: j["roles"][1].update(vector=False))),
    ("per-layer name without placeholder", "tensor-layout.json", "$.roles[3].names.hf",
     mutate_layout(lambda j: j["roles"][3]["names"].update(hf="model.input_layernorm.weight"))),
    ("two roles, one name", "tensor-layout.json", "$.roles[6].names.gguf",
     mutate_layout(lambda j: j["roles"][6]["names"].update(gguf="blk.{layer}.attn_q.weight"))),
    ("bad kind", "tensor-layout.json", "$.roles[0].kind",
     mutate_layout(lambda j: j["roles"][0].update(kind="embeddings"))),
    ("flag missing in a family", "families/qwen2.json", "$.constraints",
     mutate_family("qwen2", lambda j: j["constraints"].pop("qkv_bias"))),
    ("family is not the file name", "families/llama.json", "$.family",
     mutate_family("llama", lambda j: j.update(family="llama2"))),
    ("size with 0 layers", "families/qwen2.json", "$.sizes[1].num_layers",
     mutate_family("qwen2", lambda j: j["sizes"][1].update(num_layers=0))),
    ("rms eps out of range", "families/qwen3.json", "$.sizes[0].rms_norm_eps",
     mutate_family("qwen3", lambda j: j["sizes"][0].update(rms_norm_eps=1.5))),
    ("architecture in two families", "families/qwen3.json", "$.architectures",
     mutate_family("qwen3", lambda j: j["architectures"]["gguf"].append("qwen2"))),
    ("unknown quality rule", "quality.json", "$.rules[0].id",
     mutate_quality(lambda j: j["rules"][0].update(id="quality.entropy"))),
    ("fraction above 1", "quality.json", "$.rules[2].max_fraction.weight",
     mutate_quality(lambda j: rule(j, "quality.zero_fraction")["max_fraction"].update(weight=2))),
    ("quality rule twice", "quality.json", "given twice",
     mutate_quality(lambda j: j["rules"].append(copy.deepcopy(j["rules"][1])))),
]

validate = os.path.join(APR_BIN, "apr-validate") if APR_BIN else None
if not validate or not os.access(validate, os.X_OK):
    print("note: APR_BIN not set; the C loader is not compared", file=sys.stderr)
    validate = None
tmp = tempfile.mkdtemp(prefix="contracts-schema-")
try:
    for what, file, where, apply in MUTATIONS:
        d = os.path.join(tmp, re.sub(r"\W+", "_", what))
        shutil.copytree(CONTRACTS, d)
        apply(d)
        check(problems(d) != [], "%s: accepted by the schema checks" % what)
        if validate:
            p = subprocess.run([validate, "--contracts", d, "--rules", "structural",
                                os.path.join(ROOT, "fixtures", "tiny-qwen2")],
                               capture_output=True, text=True, timeout=60)
            check(p.returncode == 3, "%s: apr validate exit %d, expected 3 (%s)"
                  % (what, p.returncode, p.stderr.strip()))
            check(file in p.stderr and where in p.stderr,
                  "%s: message lacks '%s' and '%s': %s" % (what, file, where, p.stderr.strip()))
finally:
    shutil.rmtree(tmp, ignore_errors=True)

print("contracts schema: %d checks, %d failures" % (CHECKS[0], len(FAILURES)), file=sys.stderr)
sys.exit(1 if FAILURES else 0)
