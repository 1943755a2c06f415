# Sourced by the tests/tools/*oracle*.sh scripts: builds (or finds cached) one of llama.cpp's
# libraries from the pinned llama-cpp-python sdist, or ends the test when that is impossible.
#
#   oracle_install TEST ggml|llama   sets oracle_dir to the install directory
#                                    (scripts/build-ggml-oracle, scripts/build-llama-oracle)
#
# When the build fails: exit 1 under ROSETTA_ORACLE_REQUIRED=1 (CI: a missing oracle is a
# failure), otherwise exit 77 (CTest SKIP) with the reason on stderr.
oracle_install() {
  local test=$1 which=$2
  if oracle_dir=$("$ROSETTA_ROOT/scripts/build-$which-oracle" "$ROSETTA_BUILD"); then
    return 0
  fi
  if [ "${ROSETTA_ORACLE_REQUIRED:-0}" = 1 ]; then
    echo "$test: FAIL: the $which oracle could not be built (see above)" >&2
    exit 1
  fi
  echo "$test: SKIP: the $which oracle could not be built (no llama-cpp-python sdist reachable?)" >&2
  exit 77
}
