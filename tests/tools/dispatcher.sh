#!/usr/bin/env bash
# The apr dispatcher and the common behaviour of every installed tool (docs/design.md section 6):
# apr --help lists each apr-* program, an unknown tool exits 2 with a suggestion, every tool
# answers --help (exit 0), --version and --describe, and a usage error exits 2 with nothing on
# stdout (stdout carries results only).
set -euo pipefail
: "${APR_BIN:?}" "${TEST_TMP:?}"
tmp="$TEST_TMP/dispatcher"
rm -rf "$tmp" && mkdir -p "$tmp"
apr="$APR_BIN/apr"
checks=0
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { checks=$((checks + 1)); }

# run OUT_PREFIX CMD...: stdout to OUT_PREFIX.out, stderr to OUT_PREFIX.err, exit code in $rc
run() {
  local prefix=$1; shift
  set +e; "$@" >"$prefix.out" 2>"$prefix.err"; rc=$?; set -e
}

tools=()
for exe in "$APR_BIN"/apr-*; do
  [ -x "$exe" ] && [ -f "$exe" ] && tools+=("$(basename "$exe")")
done
[ ${#tools[@]} -ge 3 ] || fail "expected at least apr-detect, apr-inspect, apr-tensors in $APR_BIN, found ${tools[*]:-none}"

# apr --help lists every tool with its one-line description.
run "$tmp/help" "$apr" --help
[ $rc -eq 0 ] || fail "apr --help exited $rc"
for t in "${tools[@]}"; do
  name=${t#apr-}
  desc=$("$APR_BIN/$t" --describe)
  [ -n "$desc" ] || fail "$t --describe printed nothing"
  grep -qxF "$(printf '  %-18s %s' "$name" "$desc")" "$tmp/help.out" \
    || fail "apr --help does not list '$name' with its description '$desc'"
  ok
done

# No arguments: usage on stdout is fine, but the exit code says usage error.
run "$tmp/none" "$apr"
[ $rc -eq 2 ] || fail "apr without arguments exited $rc, expected 2"; ok

# apr --version names the build features.
run "$tmp/version" "$apr" --version
[ $rc -eq 0 ] && grep -qE '^apr-dispatcher [0-9]+\.[0-9]+\.[0-9]+ \(simd: [a-z0-9]+, cuda: (on|off)\)$' "$tmp/version.out" \
  || fail "apr --version: rc $rc, output '$(cat "$tmp/version.out")'"; ok

# Unknown tools: exit 2, a suggestion for a near miss, nothing on stdout.
run "$tmp/typo" "$apr" inspec x
[ $rc -eq 2 ] || fail "apr inspec exited $rc, expected 2"
[ ! -s "$tmp/typo.out" ] || fail "apr inspec wrote to stdout: $(cat "$tmp/typo.out")"
grep -q "Did you mean 'apr inspect'" "$tmp/typo.err" || fail "no suggestion for 'inspec': $(cat "$tmp/typo.err")"; ok
run "$tmp/unknown" "$apr" zzzzzzzzzz
[ $rc -eq 2 ] && [ ! -s "$tmp/unknown.out" ] && grep -q "not an apr tool" "$tmp/unknown.err" \
  || fail "apr zzzzzzzzzz: rc $rc, stderr '$(cat "$tmp/unknown.err")'"; ok
run "$tmp/slash" "$apr" ../bin/apr-detect
[ $rc -eq 2 ] || fail "apr with a path as tool name exited $rc, expected 2"; ok
run "$tmp/badopt" "$apr" --no-such-option
[ $rc -eq 2 ] && [ ! -s "$tmp/badopt.out" ] || fail "apr --no-such-option: rc $rc"; ok

for t in "${tools[@]}"; do
  name=${t#apr-}
  # --help: exit 0, a usage line, the exit codes, nothing on stderr; same through the dispatcher.
  run "$tmp/$name-help" "$APR_BIN/$t" --help
  [ $rc -eq 0 ] || fail "$t --help exited $rc"
  grep -q "^usage: apr $name" "$tmp/$name-help.out" || fail "$t --help has no 'usage: apr $name' line"
  grep -q "Exit codes:" "$tmp/$name-help.out" || fail "$t --help does not document exit codes"
  [ ! -s "$tmp/$name-help.err" ] || fail "$t --help wrote to stderr"
  cmp -s "$tmp/$name-help.out" <("$apr" "$name" --help) || fail "apr $name --help differs from $t --help"
  cmp -s "$tmp/$name-help.out" <("$apr" help "$name") || fail "apr help $name differs from $t --help"
  ok
  # --version: "apr-NAME X.Y.Z (simd: LEVEL, cuda: on|off)".
  run "$tmp/$name-version" "$APR_BIN/$t" --version
  [ $rc -eq 0 ] && grep -qE "^$t [0-9]+\.[0-9]+\.[0-9]+ \(simd: [a-z0-9]+, cuda: (on|off)\)$" "$tmp/$name-version.out" \
    || fail "$t --version: rc $rc, output '$(cat "$tmp/$name-version.out")'"
  ok
  # A usage error: exit 2, a message naming the tool on stderr, nothing on stdout.
  run "$tmp/$name-badopt" "$APR_BIN/$t" --no-such-option-xyz "$tmp/none"
  [ $rc -eq 2 ] || fail "$t --no-such-option-xyz exited $rc, expected 2"
  [ ! -s "$tmp/$name-badopt.out" ] || fail "$t wrote to stdout on a usage error: $(head -c 200 "$tmp/$name-badopt.out")"
  grep -q "^$t: " "$tmp/$name-badopt.err" || fail "$t usage error does not start with '$t: ': $(cat "$tmp/$name-badopt.err")"
  # one line naming the option (docs/reliability.md, "Hostile environments": getopt's own
  # message with the build path is off)
  [ "$(wc -l <"$tmp/$name-badopt.err")" -eq 1 ] &&
    grep -qF "unknown option '--no-such-option-xyz'" "$tmp/$name-badopt.err" ||
    fail "$t: the option error is not one line naming the option: $(cat "$tmp/$name-badopt.err")"
  ok
  # A missing input file: exit 3 (unreadable input), the path named on stderr, no stdout noise.
  # (Only for tools that take a model file; all current tools do.)
  run "$tmp/$name-missing" "$APR_BIN/$t" "$tmp/does-not-exist.gguf"
  if [ $rc -ne 2 ]; then
    [ $rc -eq 3 ] || fail "$t on a missing file exited $rc, expected 3"
    grep -q "does-not-exist.gguf" "$tmp/$name-missing.err" || fail "$t does not name the missing file on stderr"
    [ ! -s "$tmp/$name-missing.out" ] || fail "$t wrote to stdout for a missing file: $(head -c 200 "$tmp/$name-missing.out")"
    ok
  fi
done

# apr --help runs each tool with an argument list, not through a shell: a directory whose name
# holds a quote, a space and $(...) still lists every tool with its summary.
odd="$tmp/it's a \$(dir)"
mkdir -p "$odd"
cp "$APR_BIN/apr" "$APR_BIN/apr-detect" "$APR_BIN/apr-inspect" "$odd/"
run "$tmp/odd-help" "$odd/apr" --help
[ $rc -eq 0 ] || fail "apr --help in '$odd' exited $rc"
grep -qE "^  detect +print the format" "$tmp/odd-help.out" && grep -qE "^  inspect +show" "$tmp/odd-help.out" \
  || fail "apr --help in a directory named with a quote lost the summaries: $(cat "$tmp/odd-help.out")"
ok

echo "dispatcher: ${#tools[@]} tools, $checks checks passed"
