#!/usr/bin/env bash
# apr hex --tui driven in tmux (send-keys, capture-pane): the tensor list, the structure tree,
# the hex pane, the decode pane following the cursor (region path, the bytes as every dtype, the
# tensor element), the histogram, / search, n next, g goto, ? help, q quit; and a damaged file.
# tmux runs on a private socket (-L) that the test removes. SKIP without tmux, except in CI
# (ROSETTA_ORACLE_REQUIRED=1), where it is a failure.
set -euo pipefail
: "${APR_BIN:?}" "${ROSETTA_ROOT:?}" "${TEST_TMP:?}"
tmp="$TEST_TMP/hex_tui"
rm -rf "$tmp" && mkdir -p "$tmp"
if ! command -v tmux >/dev/null; then
  if [ "${ROSETTA_ORACLE_REQUIRED:-0}" = 1 ]; then
    echo "FAIL: tmux is missing (scripts/install-deps installs it)" >&2
    exit 1
  fi
  echo "SKIP: tmux is not installed (scripts/install-deps installs it)" >&2
  exit 77
fi

socket="rosetta-hex-tui-$$"
tm() { tmux -L "$socket" -f /dev/null "$@"; }
cleanup() { tm kill-server 2>/dev/null || true; }
trap cleanup EXIT
# Under Valgrind every screen takes seconds to draw.
patience=15
[ "${ROSETTA_VALGRIND:-0}" = 1 ] && patience=120

fail() {
  echo "FAIL: $*" >&2
  echo "--- screen ---" >&2
  tm capture-pane -p -t hex >&2 || true
  exit 1
}

# wait_for TEXT: until the screen shows TEXT (fixed string).
wait_for() {
  local deadline=$((SECONDS + patience))
  while [ $SECONDS -lt $deadline ]; do
    if tm capture-pane -p -t hex 2>/dev/null | grep -qF -- "$1"; then
      return 0
    fi
    sleep 0.2
  done
  fail "the screen never showed '$1'"
}

# expect_not TEXT: the screen does not show TEXT now.
expect_not() {
  if tm capture-pane -p -t hex | grep -qF -- "$1"; then
    fail "the screen shows '$1'"
  fi
}

keys() { tm send-keys -t hex "$@"; }
text() { tm send-keys -t hex -l "$1"; }

# start FILE: apr hex --tui FILE in a 150x45 terminal; its exit status goes to $tmp/status.
start() {
  rm -f "$tmp/status"
  tm new-session -d -s hex -x 150 -y 45 \
    "'$APR_BIN/apr-hex' --tui '$1'; echo \$? > '$tmp/status'"
}

# quit [STATUS]: q, then the program must end with STATUS (0; 3 for a damaged file).
quit() {
  keys q
  local deadline=$((SECONDS + patience))
  while [ ! -s "$tmp/status" ] && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
  [ -s "$tmp/status" ] || fail "q did not quit"
  [ "$(cat "$tmp/status")" = "${1:-0}" ] || fail "exit status $(cat "$tmp/status") after q"
}

gguf="$tmp/tiny.gguf"
# made with the plain build's apr even under Valgrind (quantize is checked by its own tests)
apr="$APR_BIN/apr"
[ -n "${ROSETTA_BUILD:-}" ] && [ -x "$ROSETTA_BUILD/bin/apr" ] && apr="$ROSETTA_BUILD/bin/apr"
"$apr" quantize -q --format gguf "$ROSETTA_ROOT/fixtures/tiny-qwen2" "$gguf" q4_k_m >/dev/null

# ---- the tensor list, the hex pane, the decode pane -------------------------------------------
start "$gguf"
wait_for "tensors (27)"
wait_for "Q6_K    output.weight"
wait_for "data > output.weight"          # the decode pane follows the selected tensor
wait_for "element 0 [0, 0] (first of block 0, 256 values) = "
wait_for "histogram output.weight"
tm capture-pane -p -t hex | grep -qE '^ *-?[0-9.e-]+ #+' || fail "no histogram bars"
first=$("$APR_BIN/apr-hex" --list --json "$gguf" | python3 -c \
  'import json,sys; t=json.load(sys.stdin)["tensors"]; print("%x" % t[0]["start"], "%x" % t[1]["start"], t[1]["name"])')
set -- $first
wait_for "offset 0x$1 ("
keys Down
wait_for "data > $3"
wait_for "offset 0x$2 ("

# ---- g: goto an offset; the bytes under the cursor as every dtype -----------------------------
keys g
wait_for "goto offset"
text "0x18"
keys Enter
wait_for "offset 0x18 (24)"
wait_for "metadata > kv[0] > key"
wait_for 'kv key [0x18, +28): "general.architecture"'
wait_for "u8 20  i8 20  u16 20  i16 20  u32 20  i32 20  u64 20  i64 20"
wait_for "f16 1.19209e-06  bf16 1.83671e-39"
wait_for "00000010: "
# the cursor moves by bytes and rows
keys Right Right Right Right
wait_for "offset 0x1c (28)"
keys Down
wait_for "offset 0x2c (44)"
# a bad offset is refused
keys g
text "0xZZ"
keys Enter
wait_for "not an offset: '0xZZ'"

# ---- t: the structure tree; / search; n next ---------------------------------------------------
keys t
wait_for "structure ("
keys /
wait_for "search:"
text "ffn_up"
keys Enter
wait_for "found 'ffn_up' at 0x"
keys n
wait_for "found 'ffn_up' at 0x"
keys t
wait_for "tensors (27)"
keys /
text "blk.1.ffn_down"
keys Enter
wait_for "found 'blk.1.ffn_down' at 0x"
wait_for "histogram blk.1.ffn_down.weight"
keys /
text "no-such-tensor"
keys Enter
wait_for "not found: 'no-such-tensor'"

# ---- ?: help; Tab; q ----------------------------------------------------------------------------
keys "?"
wait_for "apr hex --tui: keys"
wait_for "Press any key."
keys x
sleep 0.3
expect_not "Press any key."
keys Tab                 # g moved the focus to the hex pane: Tab gives it back to the list
wait_for "tensors (27) *"
keys Tab
wait_for "hex *"
keys End
size=$(stat -c %s "$gguf")
wait_for "offset 0x$(printf %x $((size - 1))) ($((size - 1)))"
quit

# ---- a damaged file --------------------------------------------------------------------------------
start "$ROSETTA_ROOT/tests/data/bad/apr/bad_header_crc.apr"
wait_for "DAMAGED"
keys g
text "40"
keys Enter
wait_for "offset 0x28 (40)"
wait_for "header > header checksum"
wait_for "DAMAGED (header checksum): header CRC mismatch (offset 40)"
quit 3

# ---- colours: header fields and damaged bytes are coloured in the hex pane ---------------------
start "$ROSETTA_ROOT/tests/data/bad/apr/bad_header_crc.apr"
wait_for "DAMAGED"
# header fields cyan (36), the damaged header checksum (stored c0 3b at offset 42) white on red
coloured() {
  local screen
  screen=$(tm capture-pane -e -p -t hex)
  grep -qF $'\033[36m4150' <<<"$screen" && grep -qF $'\033[41mc03b' <<<"$screen"
}
deadline=$((SECONDS + patience))
until coloured; do
  [ $SECONDS -lt $deadline ] || fail "the magic is not coloured as a header field, or the damaged checksum not marked"
  sleep 0.2
done
quit 3
echo "hex_tui: every key and pane checked"
