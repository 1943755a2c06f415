#!/usr/bin/env bash
# docs/tools.md shows real output of the tools; it must be exactly what scripts/gen-tool-docs
# writes now, so that behaviour and documentation cannot drift apart.
set -euo pipefail
: "${ROSETTA_ROOT:?}" "${ROSETTA_BUILD:?}"
if [ ! -f "$ROSETTA_ROOT/docs/tools.md" ]; then
  echo "FAIL: docs/tools.md is missing: run scripts/gen-tool-docs" >&2
  exit 1
fi
exec "$ROSETTA_ROOT/scripts/gen-tool-docs" --check "$ROSETTA_BUILD"
