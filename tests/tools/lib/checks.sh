# Helpers sourced by the tools' end-to-end shell tests (not a test itself: tests/CMakeLists.txt
# runs tests/tools/*.sh only). Set TEST_NAME (the prefix of failure lines) and T (the test's
# directory, where "err" holds the last command's stderr) before using them; count failures in
# $fails and exit non-zero at the end when it is not 0.

# require_python MODULE...: the Python modules a test needs, else SKIP (exit 77), or FAIL
# (exit 1) under ROSETTA_ORACLE_REQUIRED=1 as in CI.
require_python() {
  local imports
  imports=$(printf 'import %s; ' "$@")
  python3 -c "$imports" 2>/dev/null && return 0
  if [ "${ROSETTA_ORACLE_REQUIRED:-0}" = 1 ]; then
    echo "FAIL: the Python packages $* are missing" >&2
    exit 1
  fi
  echo "SKIP: the Python packages $* are missing (scripts/install-deps --python)" >&2
  exit 77
}

fails=0
fail() {
  echo "$TEST_NAME: FAIL: $*" >&2
  fails=$((fails + 1))
}
run() { # run OUTFILE ERRFILE CMD... -> exit code
  local out=$1 err=$2
  shift 2
  "$@" >"$out" 2>"$err"
}
expect() { # expect CASE WANT_RC GOT_RC
  [ "$3" -eq "$2" ] || fail "$1: exit $3, expected $2 ($(head -c 400 "$T/err"))"
}
has() { # has CASE FILE TEXT: FILE contains TEXT (fixed string)
  grep -qF -- "$3" "$2" || fail "$1: '$3' not in $(basename "$2"): $(head -c 400 "$2")"
}
lacks() { # lacks CASE FILE TEXT
  grep -qF -- "$3" "$2" && fail "$1: '$3' in $(basename "$2"): $(head -c 400 "$2")"
}
