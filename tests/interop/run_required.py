#!/usr/bin/env python3
"""Runs one interop script (tests/CMakeLists.txt registers every test_*.py through this file).

A script exits 77 (SKIP, with its reason on stderr) when a Python package or another outside
piece it compares against is missing. Locally that is a skip; under ROSETTA_ORACLE_REQUIRED=1
(CI, .ci/run) it is a failure, as for the llama.cpp oracle tests: CI must run every check.

usage: run_required.py SCRIPT [ARGS...]
"""
import os
import subprocess
import sys

if len(sys.argv) < 2:
    sys.exit("usage: run_required.py SCRIPT [ARGS...]")
rc = subprocess.call([sys.executable] + sys.argv[1:])
if rc == 77 and os.environ.get("ROSETTA_ORACLE_REQUIRED") == "1":
    print("FAIL: %s skipped (see above), and ROSETTA_ORACLE_REQUIRED=1 (CI) requires every check "
          "to run: install what it needs (scripts/install-deps python)"
          % os.path.basename(sys.argv[1]), file=sys.stderr)
    sys.exit(1)
sys.exit(rc)
