#!/usr/bin/env bash
# Sets the machine up (scripts/setup.sh) and runs the whole test suite (options go to pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Two worker processes, a test file's tests in one of them (its peers and fixtures together):
# the peers mostly wait, so two share 2 cores well. TEST_WORKERS=0 runs in one process.
exec .venv/bin/python -m pytest -q -n "${TEST_WORKERS:-2}" --dist loadfile "$@"
