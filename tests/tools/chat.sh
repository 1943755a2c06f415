#!/usr/bin/env bash
# apr chat on a fixture, stdin from a pipe: each reply equals apr run --chat on the whole
# conversation so far (the history is kept and the cached prefix reused: -v reports it);
# /clear forgets, /system restarts with a system message, unknown commands are reported;
# Ctrl-C (SIGINT) during a reply stops the reply, not the session; end of input ends it.
set -euo pipefail
: "${APR_BIN:?}" "${ROSETTA_ROOT:?}" "${TEST_TMP:?}"
tmp="$TEST_TMP/chat"
rm -rf "$tmp" && mkdir -p "$tmp"
fx="$ROSETTA_ROOT/fixtures/tiny-qwen2"

printf 'Hello there\nHow are you?\n/bogus\n/clear\nHello there\n/system Be brief.\nHi\n' |
  "$APR_BIN/apr-chat" "$fx" -n 6 -v >"$tmp/out.txt" 2>"$tmp/err.txt" ||
  { echo "FAIL: apr chat exited $?: $(cat "$tmp/err.txt")" >&2; exit 1; }

python3 - "$APR_BIN" "$fx" "$tmp" <<'EOF'
import json, subprocess, sys
apr_bin, fx, tmp = sys.argv[1:4]
out = open(f"{tmp}/out.txt", encoding="utf-8", errors="replace").read()
err = open(f"{tmp}/err.txt").read()
replies = out.split("\n\n")[:-1]
if len(replies) != 4:
    sys.exit(f"FAIL: {len(replies)} replies, expected 4: {out!r}")
if "unknown command /bogus" not in err:
    sys.exit(f"FAIL: /bogus not reported: {err!r}")
stats = [l for l in err.splitlines() if "prompt tokens" in l]
if len(stats) != 4 or "(0 reused)" in stats[1]:
    sys.exit(f"FAIL: the second turn reused no cached tokens: {stats}")

# the same conversations through apr run --chat (one user message each) and by hand (two)
def run(args):
    r = subprocess.run([f"{apr_bin}/apr-run", fx, "-n", "6"] + args, capture_output=True,
                       check=True)
    return r.stdout.decode("utf-8", "replace")[:-1]

first = run(["--chat", "-p", "Hello there"])
if replies[0] != first or replies[2] != first:
    sys.exit(f"FAIL: chat replies {replies[0]!r} / {replies[2]!r}, apr run --chat {first!r}")
if replies[3] != run(["--chat", "--system", "Be brief.", "-p", "Hi"]):
    sys.exit(f"FAIL: the reply after /system differs from apr run --chat --system")
tok = subprocess.run([f"{apr_bin}/apr-tokenize", "--ids-only", "--chat", fx, "Hello there"],
                     capture_output=True, check=True).stdout.decode().split()
print(f"chat: 4 replies as apr run gives them ({len(tok)}-token first prompt); {stats[1]}")
EOF

# SIGINT while a long reply is generated: the session goes on and reads /exit
mkfifo "$tmp/in"
"$APR_BIN/apr-chat" "$fx" -n -1 --ctx 4096 <"$tmp/in" >"$tmp/sig.txt" 2>&1 &
pid=$!
exec 3>"$tmp/in"
echo "Tell me a long story" >&3
sleep 0.5
kill -INT "$pid" 2>/dev/null || true
sleep 0.2
echo "/exit" >&3
exec 3>&-
rc=0
wait "$pid" || rc=$?
[ "$rc" -eq 0 ] || { echo "FAIL: apr chat exited $rc after SIGINT: $(tail -c 400 "$tmp/sig.txt")" >&2; exit 1; }
rm -rf "$tmp"
echo "chat: SIGINT stopped the reply, not the session"
