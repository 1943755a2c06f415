#!/usr/bin/env bash
# `make install` gives libraries a program can link: the build tree is installed into a scratch
# prefix (cmake --install, as make install runs it), and a small program using only the public
# headers is compiled against the installed headers and linked twice through rosetta-format.pc,
# once with the shared library and once with the static one (kernels folded in, private
# dependencies from Libs.private / Requires.private). Both must run and agree on the fixture:
# open it, convert it to GGUF with rf_convert, reopen the result.
set -euo pipefail
: "${ROSETTA_ROOT:?}" "${ROSETTA_BUILD:?}" "${TEST_TMP:?}"
if [ "${ROSETTA_VALGRIND:-0}" = 1 ]; then
  echo "SKIP: install runs no apr tool (nothing for memcheck)" >&2
  exit 77
fi
if grep -q '^ROSETTA_SANITIZE:BOOL=ON' "$ROSETTA_BUILD/CMakeCache.txt" 2>/dev/null; then
  echo "SKIP: install links plain programs; a sanitizer build's libraries need the sanitizer runtime" >&2
  exit 77
fi
fail() { echo "install: FAIL: $*" >&2; exit 1; }
command -v pkg-config >/dev/null || fail "pkg-config is missing (scripts/install-deps build)"
CC=${CC:-cc}
T="$TEST_TMP/install"
rm -rf "$T"
mkdir -p "$T"
cmake --install "$ROSETTA_BUILD" --prefix "$T/prefix" >"$T/install.log" 2>&1 \
  || fail "cmake --install: $(tail -5 "$T/install.log")"
pc=$(find "$T/prefix" -name rosetta-format.pc | head -n 1)
[ -n "$pc" ] || fail "no rosetta-format.pc installed"
export PKG_CONFIG_PATH="$(dirname "$pc")"
# the .pc names the configured prefix; the scratch prefix replaces it, as a relocated install
pc() { pkg-config --define-variable=prefix="$T/prefix" "$@" rosetta-format; }
libdir=$(pc --variable=libdir)
[ -f "$libdir/librosetta-format.a" ] && [ -e "$libdir/librosetta-format.so" ] \
  || fail "static and shared libraries not both installed in $libdir"
[ ! -e "$(pc --variable=includedir)/rosetta/io.h" ] \
  || fail "a private header (io.h) was installed"

cat >"$T/prog.c" <<'C'
#include <stdio.h>

#include "rosetta/convert.h"
#include "rosetta/model.h"
#include "rosetta/quant.h"
#include "rosetta/version.h"

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    rf_error err = {0};
    rf_model *m = rf_model_open(argv[1], NULL, &err);
    if (!m) {
        fprintf(stderr, "%s\n", err.message);
        return 3;
    }
    rf_convert_params p = rf_convert_params_default();
    p.quantize = true;
    p.plan = rf_quant_plan_options_default(RF_MIX_Q8_0);
    rf_status st = rf_convert(m, &p, argv[2], NULL, &err);
    rf_model *back = st == RF_OK ? rf_model_open(argv[2], NULL, &err) : NULL;
    if (!back) {
        fprintf(stderr, "%s\n", err.message);
        rf_model_free(m);
        return 4;
    }
    printf("rosetta %s: %zu tensors in, %zu out, %s first\n", ROSETTA_VERSION, rf_model_n_tensors(m),
           rf_model_n_tensors(back), rf_dtype_name(rf_model_tensor(back, 0)->dtype));
    rf_model_free(back);
    rf_model_free(m);
    return 0;
}
C
cflags=$(pc --cflags)
# shellcheck disable=SC2046
$CC -std=c11 -Wall -Werror $cflags "$T/prog.c" -o "$T/prog-shared" $(pc --libs) \
  -Wl,-rpath,"$libdir" 2>"$T/cc-shared.log" || fail "linking with the shared library: $(cat "$T/cc-shared.log")"
static_libs=$(pc --static --libs | sed 's/-lrosetta-format/-l:librosetta-format.a/')
# shellcheck disable=SC2086
$CC -std=c11 -Wall -Werror $cflags "$T/prog.c" -o "$T/prog-static" $static_libs \
  2>"$T/cc-static.log" || fail "linking with the static library: $(cat "$T/cc-static.log")"
deps_static=$(ldd "$T/prog-static") deps_shared=$(ldd "$T/prog-shared")
case "$deps_static" in
  *librosetta-format*) fail "the static program depends on librosetta-format.so" ;;
esac
case "$deps_shared" in
  *"$libdir/librosetta-format.so"*) ;;
  *) fail "the shared program does not use the installed librosetta-format.so: $deps_shared" ;;
esac
a=$("$T/prog-shared" "$ROSETTA_ROOT/fixtures/tiny-qwen2" "$T/shared.gguf") || fail "shared program failed"
b=$("$T/prog-static" "$ROSETTA_ROOT/fixtures/tiny-qwen2" "$T/static.gguf") || fail "static program failed"
[ "$a" = "$b" ] || fail "shared and static programs disagree: '$a' vs '$b'"
case "$a" in
  *": 27 tensors in, 27 out, "*) ;;
  *) fail "unexpected output: $a" ;;
esac
cmp -s "$T/shared.gguf" "$T/static.gguf" || fail "shared and static programs wrote different files"
echo "install: shared and static links work ($a)"
rm -rf "$T"
