#!/usr/bin/env bash
# The bad-input catalogue: every case in tests/data/bad/ (a file, or a directory for multi-file
# cases, with a sidecar <case>.expect holding a substring the error must contain) must make
# `apr inspect`, `apr inspect --json`, `apr tensors` and `apr tensors --stats` exit 3 with that
# substring on stderr, never crash (exit >= 128, a sanitizer report) or hang (timeout 20 s);
# the --json output of a damaged file must still be valid JSON.
set -euo pipefail
: "${APR_BIN:?}" "${ROSETTA_ROOT:?}" "${TEST_TMP:?}"
bad="$ROSETTA_ROOT/tests/data/bad"
tmp="$TEST_TMP/bad_inputs"
rm -rf "$tmp" && mkdir -p "$tmp"
apr="$APR_BIN/apr"

# The issue asks for at least 40 cases across the three formats (REQUIRED fails the test below
# it; TARGET only prints a loud note, for a tree where some format has not landed its files).
TARGET=40
REQUIRED=40

if [ ! -d "$bad" ]; then
  echo "SKIP: $bad does not exist yet: no bad-input cases to run" >&2
  exit 77
fi

# Cases: entries with a sidecar. Files without one are an error, except notes and generators.
cases=()
missing=()
while IFS= read -r -d '' entry; do
  case "$entry" in *.expect) continue ;; esac
  if [ -e "$entry.expect" ]; then
    cases+=("$entry")
    continue
  fi
  # Inside a directory case: part of that case.
  parent=$(dirname "$entry")
  inside=false
  while [ "$parent" != "$bad" ] && [ "$parent" != / ]; do
    [ -e "$parent.expect" ] && inside=true && break
    parent=$(dirname "$parent")
  done
  $inside && continue
  [ -d "$entry" ] && continue
  case "$entry" in *.py|*.md|*.txt|*.sh|*/README*) continue ;; esac
  missing+=("${entry#"$bad/"}")
done < <(find "$bad" -mindepth 1 -print0 | sort -z)

status=0
if [ ${#missing[@]} -gt 0 ]; then
  echo "FAIL: ${#missing[@]} file(s) in tests/data/bad have no .expect sidecar:" >&2
  printf '  %s\n' "${missing[@]}" >&2
  status=1
fi
if [ ${#cases[@]} -eq 0 ]; then
  echo "SKIP: no bad-input cases with .expect sidecars in $bad yet" >&2
  exit 77
fi

# Under make test-valgrind (ROSETTA_VALGRIND=1) every case runs through the two variants that
# reach the most code (inspect --json: the whole header and metadata; tensors --stats: every
# tensor's data), called as apr-<tool> (the dispatcher has its own test): 412 memcheck runs
# through the dispatcher took 18 minutes. The sanitizer build (make test-asan) runs all four.
variants=("inspect" "inspect --json" "tensors" "tensors --stats")
if [ "${ROSETTA_VALGRIND:-0}" = 1 ]; then
  variants=("inspect --json" "tensors --stats")
fi

failures=0
n=0
for entry in "${cases[@]}"; do
  rel=${entry#"$bad/"}
  expect=$(head -n 1 "$entry.expect" | tr -d '\r')
  if [ -z "$expect" ]; then
    echo "FAIL: $rel.expect is empty" >&2
    failures=$((failures + 1))
    continue
  fi
  n=$((n + 1))
  for variant in "${variants[@]}"; do
    tag="$n-${variant// /_}"
    set +e
    # shellcheck disable=SC2086 # variant is a tool name plus flags
    if [ "${ROSETTA_VALGRIND:-0}" = 1 ]; then
      # shellcheck disable=SC2086 # variant is a tool name plus flags
      timeout 60 "$APR_BIN/apr-${variant%% *}" ${variant#* } "$entry" >"$tmp/$tag.out" \
        2>"$tmp/$tag.err"
    else
      timeout 20 "$apr" $variant "$entry" >"$tmp/$tag.out" 2>"$tmp/$tag.err"
    fi
    rc=$?
    set -e
    problem=""
    if [ $rc -eq 124 ]; then
      problem="hung (killed by the timeout)"
    elif [ $rc -ge 128 ]; then
      problem="crashed (exit $rc, signal $((rc - 128)))"
    elif grep -qE "(Address|Undefined|Leak|Memory)Sanitizer|runtime error:" "$tmp/$tag.err"; then
      problem="sanitizer report"
    elif [ $rc -ne 3 ]; then
      problem="exit $rc, expected 3"
    elif ! grep -qF -- "$expect" "$tmp/$tag.err"; then
      problem="stderr lacks the expected '$expect'"
    fi
    [ "$variant" = "inspect --json" ] && printf '%s\t%s\n' "$tmp/$tag.out" "$rel" >>"$tmp/json-outputs"
    if [ -n "$problem" ]; then
      failures=$((failures + 1))
      echo "FAIL: apr $variant $rel: $problem" >&2
      sed 's/^/    stderr: /' "$tmp/$tag.err" | head -n 8 >&2
    fi
  done
done

# Every --json output parses (one Python process for all of them: interpreter start-up is slow).
if [ -s "$tmp/json-outputs" ]; then
  bad_json=$(python3 - "$tmp/json-outputs" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    path, rel = line.rstrip("\n").split("\t")
    try:
        json.load(open(path))
    except ValueError as e:
        print(f"FAIL: apr inspect --json {rel}: output is not valid JSON ({e})")
EOF
  )
  if [ -n "$bad_json" ]; then
    echo "$bad_json" >&2
    failures=$((failures + $(printf '%s\n' "$bad_json" | wc -l)))
  fi
fi

echo "bad inputs: $n cases, $((n * ${#variants[@]})) runs, $failures failures"
for dir in "$bad"/*/; do
  [ -d "$dir" ] || continue
  count=0
  for entry in "${cases[@]}"; do
    case "$entry" in "$dir"*) count=$((count + 1)) ;; esac
  done
  echo "  $(basename "$dir"): $count"
done
if [ "$n" -lt "$TARGET" ]; then
  echo "" >&2
  echo "************************************************************************" >&2
  echo "NOTE: only $n bad-input cases; the issue requires at least $TARGET across the" >&2
  echo "      three formats." >&2
  echo "************************************************************************" >&2
fi
if [ "$n" -lt "$REQUIRED" ]; then
  echo "FAIL: $n bad-input cases, at least $REQUIRED required" >&2
  status=1
fi
[ $failures -eq 0 ] || status=1
exit $status
