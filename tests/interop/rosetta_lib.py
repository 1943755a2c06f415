"""ctypes view of librosetta-format for the interop scripts: the public structs of
rosetta/status.h and rosetta/model.h, the value-type codes, and the library with the signatures of
the model API declared. One copy, so a layout change in model.h is mirrored in one place, and
load_library() checks every mirrored struct's size and field offsets against the C compiler's
(the helper build/tests/struct_layout prints them): a header change that is not mirrored here
fails loudly instead of corrupting memory. Only exported (RF_API) functions can be called.

Not for: format-specific option structs (each script declares the writer options it uses and
passes them to load_library(structs=...) to have them checked too).
"""
import ctypes as C
import json
import os
import subprocess
import sys

BUILD = os.environ.get("ROSETTA_BUILD",
                       os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../build"))
LIB_PATH = os.path.join(BUILD, "libformat", "librosetta-format.so")

RF_MAX_DIMS = 8
RF_VALUE_BOOL, RF_VALUE_STRING, RF_VALUE_ARRAY, RF_VALUE_U64 = 7, 8, 9, 10


class Error(C.Structure):  # rf_error
    _fields_ = [("status", C.c_int), ("message", C.c_char * 1024)]


class Tensor(C.Structure):  # rf_tensor
    _fields_ = [("name", C.c_char_p), ("dtype", C.c_int), ("ndim", C.c_int),
                ("shape", C.c_uint64 * RF_MAX_DIMS), ("data", C.c_void_p),
                ("nbytes", C.c_uint64), ("file_offset", C.c_uint64), ("source", C.c_uint32),
                ("row_stride", C.c_uint64)]


class Value(C.Structure):  # rf_value; fields below (it refers to itself through arrays)
    pass


class Str(C.Structure):
    _fields_ = [("data", C.c_void_p), ("len", C.c_uint64)]


class Arr(C.Structure):
    _fields_ = [("elem_type", C.c_int), ("count", C.c_uint64), ("items", C.POINTER(Value))]


class ValueUnion(C.Union):
    _fields_ = [("u", C.c_uint64), ("i", C.c_int64), ("f", C.c_double), ("b", C.c_bool),
                ("str", Str), ("arr", Arr)]


Value._fields_ = [("type", C.c_int), ("as_", ValueUnion)]


class KV(C.Structure):  # rf_kv
    _fields_ = [("key", C.c_char_p), ("value", Value)]


class OpenOptions(C.Structure):  # rf_open_options
    _fields_ = [("lenient", C.c_bool), ("architecture", C.c_char_p)]


class Config(C.Structure):  # rf_model_config
    _fields_ = [("architecture", C.c_char_p), ("name", C.c_char_p)] + \
        [(n, C.c_uint64) for n in ("hidden_size", "n_layers", "n_heads", "n_kv_heads", "head_dim",
                                   "intermediate_size", "vocab_size", "context_length")] + \
        [("rope_theta", C.c_double), ("rope_type", C.c_int), ("rms_norm_eps", C.c_double),
         ("tie_word_embeddings", C.c_int), ("bos_token_id", C.c_int64),
         ("eos_token_id", C.c_int64), ("pad_token_id", C.c_int64), ("chat_template", C.c_char_p)]


class Tokenizer(C.Structure):  # rf_tokenizer
    _fields_ = [("model", C.c_char_p), ("pre", C.c_char_p), ("n_tokens", C.c_uint64),
                ("tokens", C.POINTER(C.c_char_p)), ("token_types", C.POINTER(C.c_int32)),
                ("n_merges", C.c_uint64), ("merges", C.POINTER(C.c_char_p)),
                ("add_bos", C.c_bool)]


def string_value(raw):
    """An RF_VALUE_STRING value of the bytes raw (NUL-terminated copy kept alive by the value)."""
    buf = C.create_string_buffer(raw, len(raw) + 1)
    v = Value(type=RF_VALUE_STRING)
    v.as_.str = Str(C.cast(buf, C.c_void_p), len(raw))
    v.keep_alive = buf
    return v


def value_bytes(v):
    """The bytes of an RF_VALUE_STRING (or JSON) value."""
    return C.string_at(v.as_.str.data, v.as_.str.len) if v.as_.str.len else b""


_VP = C.c_void_p
_MODEL_API = {
    "rf_model_open": (_VP, [C.c_char_p, C.POINTER(OpenOptions), C.POINTER(Error)]),
    "rf_model_free": (None, [_VP]),
    "rf_model_format": (C.c_int, [_VP]),
    "rf_model_n_tensors": (C.c_size_t, [_VP]),
    "rf_model_tensor": (C.POINTER(Tensor), [_VP, C.c_size_t]),
    "rf_model_n_kv": (C.c_size_t, [_VP]),
    "rf_model_kv": (C.POINTER(KV), [_VP, C.c_size_t]),
    "rf_model_find_kv": (C.POINTER(KV), [_VP, C.c_char_p]),
    "rf_model_n_files": (C.c_size_t, [_VP]),
    "rf_model_n_warnings": (C.c_size_t, [_VP]),
    "rf_model_warning": (C.c_char_p, [_VP, C.c_size_t]),
    "rf_model_config_get": (C.POINTER(Config), [_VP]),
    "rf_model_tokenizer": (C.POINTER(Tokenizer), [_VP]),
    "rf_dtype_name": (C.c_char_p, [C.c_int]),
}


MIRRORS = {"rf_error": Error, "rf_tensor": Tensor, "rf_value": Value, "rf_kv": KV,
           "rf_open_options": OpenOptions, "rf_model_config": Config, "rf_tokenizer": Tokenizer}


def check_layouts(structs):
    """Exits 1 unless every ctypes class of structs ({C struct name: class}) has the C struct's
    size and field offsets."""
    helper = os.path.join(BUILD, "tests", "struct_layout")
    try:
        out = subprocess.run([helper], check=True, capture_output=True, text=True).stdout
        layouts = json.loads(out)
    except (OSError, subprocess.CalledProcessError, ValueError) as e:
        print("FAIL: cannot read the C struct layouts from %s: %s" % (helper, e), file=sys.stderr)
        sys.exit(1)
    bad = []
    for cname, cls in structs.items():
        want = layouts.get(cname)
        if want is None:
            bad.append("%s: not printed by struct_layout (add it there)" % cname)
            continue
        if C.sizeof(cls) != want["size"]:
            bad.append("%s: ctypes size %d, C size %d" % (cname, C.sizeof(cls), want["size"]))
        names = [f[0] for f in cls._fields_]
        if names != list(want["fields"]):
            bad.append("%s: ctypes fields %s, C fields %s" % (cname, names, list(want["fields"])))
        for name, offset in want["fields"].items():
            if hasattr(cls, name) and getattr(cls, name).offset != offset:
                bad.append("%s.%s: ctypes offset %d, C offset %d"
                           % (cname, name, getattr(cls, name).offset, offset))
    if bad:
        print("FAIL: the ctypes mirrors differ from the C headers:\n  " + "\n  ".join(bad),
              file=sys.stderr)
        sys.exit(1)


def load_library(extra=None, structs=None):
    """librosetta-format with the model API's signatures and those of extra
    ({name: (restype, argtypes)}) declared, after checking the layouts of the mirrored structs
    and of structs ({C struct name: ctypes class}). Exits 1 when the library is not built."""
    if not os.path.exists(LIB_PATH):
        print("FAIL: %s is not built (run make build)" % LIB_PATH, file=sys.stderr)
        sys.exit(1)
    check_layouts({**MIRRORS, **(structs or {})})
    lib = C.CDLL(LIB_PATH)
    for name, (res, args) in {**_MODEL_API, **(extra or {})}.items():
        fn = getattr(lib, name)
        fn.restype = res
        fn.argtypes = args
    return lib
