#!/usr/bin/env python3
"""gguf-py's dequantizers (gguf.quants) against Rosetta's scalar reference dequantizers.

For every type both support, blocks quantized by Rosetta and blocks of random bytes (with finite
f16 scale fields) are dequantized by both; the floats must agree within float rounding (gguf-py
evaluates in numpy float32 with its own operation order). Where gguf-py also quantizes (Q8_0,
Q4_0, Q4_1, Q5_0, Q5_1, BF16), its bytes are compared with Rosetta's and the number of identical
blocks is printed.

Rosetta is reached through its exported API (rf_quantize, rf_dequantize of librosetta-format.so)
with ROSETTA_SIMD=scalar, so that the scalar reference kernels run. IQ4_NL and IQ4_XS have no
quantizer in the API: only their random-byte blocks are compared.
Exit 77 (skip) only when numpy/gguf are missing.
"""
import ctypes
import os
import sys

try:
    import numpy as np
    from gguf import GGMLQuantizationType as T
    from gguf import quants
    from gguf.constants import GGML_QUANT_SIZES
except ImportError as e:  # loud skip: CI installs these
    print(f"test_quant_ggufpy: SKIP: {e}", file=sys.stderr)
    sys.exit(77)

BUILD = os.environ.get("ROSETTA_BUILD", "build")
TMP = os.path.join(os.environ.get("TEST_TMP", os.path.join(BUILD, "test-tmp")), "quant_ggufpy")

# Rosetta name, gguf-py type, byte offsets of f16 fields inside a block
TYPES = [
    ("q4_0", T.Q4_0, [0]),
    ("q4_1", T.Q4_1, [0, 2]),
    ("q5_0", T.Q5_0, [0]),
    ("q5_1", T.Q5_1, [0, 2]),
    ("q8_0", T.Q8_0, [0]),
    ("q2_K", T.Q2_K, [80, 82]),
    ("q3_K", T.Q3_K, [108]),
    ("q4_K", T.Q4_K, [0, 2]),
    ("q5_K", T.Q5_K, [0, 2]),
    ("q6_K", T.Q6_K, [208]),
    ("iq4_nl", T.IQ4_NL, [0]),
    ("iq4_xs", T.IQ4_XS, [0]),
    ("bf16", T.BF16, []),
    ("f16", T.F16, []),
]
GGUFPY_QUANTIZES = {"q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "bf16"}


class Error(ctypes.Structure):  # rf_error
    _fields_ = [("status", ctypes.c_int), ("message", ctypes.c_char * 1024)]


def load_rosetta():
    os.environ["ROSETTA_SIMD"] = "scalar"  # read by the library at its first kernel call
    so = os.path.join(BUILD, "libformat", "librosetta-format.so")
    if not os.path.exists(so):
        print(f"test_quant_ggufpy: FAIL: {so} is not built", file=sys.stderr)
        sys.exit(1)
    lib = ctypes.CDLL(so)
    lib.rf_quantize.restype = ctypes.c_int
    lib.rf_quantize.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64,
                                ctypes.c_uint64, ctypes.c_void_p, ctypes.c_void_p,
                                ctypes.POINTER(Error)]
    lib.rf_dequantize.restype = ctypes.c_int
    lib.rf_dequantize.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64,
                                  ctypes.POINTER(Error)]
    lib.rf_can_quantize.restype = ctypes.c_bool
    lib.rf_can_quantize.argtypes = [ctypes.c_int]
    lib.rf_simd_active.restype = ctypes.c_char_p
    return lib, so


def rosetta_quantize(lib, qtype, x):
    """Rosetta's bytes for x as one row of qtype (rf_dtype values are the ggml codes), or None
    when the API has no quantizer for it."""
    if not lib.rf_can_quantize(int(qtype)):
        return None
    block, size = GGML_QUANT_SIZES[qtype]
    out = np.zeros(x.size // block * size, dtype=np.uint8)
    err = Error()
    st = lib.rf_quantize(int(qtype), x.ctypes.data, out.ctypes.data, 1, x.size, None, None,
                         ctypes.byref(err))
    if st != 0:
        raise RuntimeError(err.message.decode())
    return out


def rosetta_dequantize(lib, qtype, data, n):
    y = np.empty(n, dtype=np.float32)
    err = Error()
    if lib.rf_dequantize(int(qtype), data.ctypes.data, y.ctypes.data, n, ctypes.byref(err)) != 0:
        raise RuntimeError(err.message.decode())
    return y


def compare(name, what, mine, theirs):
    """Equal within float rounding: |a - b| <= 1e-6 |b| + 1e-6 * max|b| of the row set."""
    exact = int(np.sum(mine.view(np.uint32) == theirs.view(np.uint32)))
    scale = float(np.max(np.abs(theirs))) if theirs.size else 0.0
    diff = np.abs(mine.astype(np.float64) - theirs.astype(np.float64))
    bound = 1e-6 * np.abs(theirs.astype(np.float64)) + 1e-6 * scale
    bad = np.nonzero(~(diff <= bound))[0]
    if bad.size:
        i = int(bad[0])
        print(f"test_quant_ggufpy: {name} {what}: {bad.size} of {mine.size} values differ beyond float rounding; "
              f"first at element {i}: rosetta {mine[i]!r} gguf-py {theirs[i]!r}", file=sys.stderr)
        return False, exact
    return True, exact


def main():
    lib, where = load_rosetta()
    simd = lib.rf_simd_active().decode()
    print(f"test_quant_ggufpy: Rosetta kernels from {where} (simd: {simd})")
    if simd != "scalar":
        print("test_quant_ggufpy: FAIL: ROSETTA_SIMD=scalar was not honoured", file=sys.stderr)
        return 1
    rng = np.random.default_rng(7)
    ok = True
    n = 256 * 96
    for name, qtype, f16_fields in TYPES:
        block, size = GGML_QUANT_SIZES[qtype]
        # rows of Gaussian values with magnitudes 1e-4 .. 1e3, plus ggml's cosine pattern
        x = (rng.standard_normal(n) * np.repeat(10.0 ** rng.uniform(-4, 3, n // 256), 256)).astype(np.float32)
        x[: 256 * 8] = (0.1 + 2.0 * np.cos(np.arange(256 * 8) + 5.0)).astype(np.float32)
        q = rosetta_quantize(lib, qtype, x)
        good, exact = True, 0
        if q is not None:
            good, exact = compare(name, "dequantize (Rosetta-quantized blocks)",
                                  rosetta_dequantize(lib, qtype, q, n),
                                  quants.dequantize(q, qtype).reshape(-1))
        ok &= good
        # random bytes with finite random f16 scales
        nb = n // block
        raw = rng.integers(0, 256, size=(nb, size), dtype=np.uint8)
        for off in f16_fields:
            h = (rng.standard_normal(nb) * 0.05).astype(np.float16)
            raw[:, off:off + 2] = h.view(np.uint8).reshape(nb, 2)
        if name in ("bf16", "f16"):
            vals = (rng.standard_normal(n) * 10.0).astype(np.float32)
            raw = (vals.view(np.uint32) >> 16).astype(np.uint16) if name == "bf16" else vals.astype(np.float16)
            raw = raw.view(np.uint8).reshape(nb, size)
        raw = np.ascontiguousarray(raw).reshape(-1)
        good2, exact2 = compare(name, "dequantize (random-byte blocks)",
                                rosetta_dequantize(lib, qtype, raw, n), quants.dequantize(raw, qtype).reshape(-1))
        ok &= good2
        blocks = 2 * nb if q is not None else nb
        line = (f"test_quant_ggufpy: {name:6s} {'ok  ' if good and good2 else 'FAIL'}: dequantize "
                f"{blocks} blocks ({exact + exact2} of {blocks * block} values bit-identical, the rest "
                f"within rounding)")
        if name in GGUFPY_QUANTIZES:
            theirs = quants.quantize(x, qtype).reshape(-1)
            same = int(np.sum(np.all(theirs.reshape(nb, size) == q.reshape(nb, size), axis=1)))
            line += f"; gguf-py quantize: {same} of {nb} blocks byte-identical to Rosetta"
        print(line)
    if not ok:
        print("test_quant_ggufpy: FAIL", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
