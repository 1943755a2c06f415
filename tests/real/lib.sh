# Sourced by the tests/real/*.sh scripts (`make test-real`): finds the real-weights model
# (fixtures/real/README.md) or ends the test.
#
#   real_model TEST     sets MODEL to the cached, verified GGUF and T to a fresh scratch directory
#                       ($TEST_TMP/real/TEST, removed when the script exits successfully)
#
# When the model cannot be fetched: exit 1 under ROSETTA_ORACLE_REQUIRED=1 (CI: the real-weights
# checks must run), otherwise `SKIP: <reason>` on stderr and exit 77 (CTest skip).
real_model() {
  local test=$1
  : "${APR_BIN:?}" "${ROSETTA_ROOT:?}" "${ROSETTA_BUILD:?}" "${TEST_TMP:?}"
  if ! MODEL=$("$ROSETTA_ROOT/scripts/fetch-real-model" 2>"$TEST_TMP/fetch-real-model.$test.log"); then
    cat "$TEST_TMP/fetch-real-model.$test.log" >&2
    if [ "${ROSETTA_ORACLE_REQUIRED:-0}" = 1 ]; then
      echo "$test: FAIL: the real model could not be fetched (see above)" >&2
      exit 1
    fi
    echo "SKIP: $test: the real model could not be fetched (no PyPI?): $(tail -n 1 "$TEST_TMP/fetch-real-model.$test.log")" >&2
    exit 77
  fi
  T="$TEST_TMP/real/$test"
  rm -rf "$T"
  mkdir -p "$T"
  trap 'rc=$?; [ $rc -eq 0 ] && rm -rf "$T"; exit $rc' EXIT
}

# fail MESSAGE: prints FAIL and exits 1.
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
