#!/usr/bin/env bash
# The fuzz tests with a long budget (the suite runs them with a few seconds each):
#   scripts/fuzz.sh            # 20000 examples per entry point
#   scripts/fuzz.sh 100000 -k snmp
set -euo pipefail
cd "$(dirname "$0")/.."
EXAMPLES=${1:-20000}
shift || true
FUZZ_EXAMPLES=$EXAMPLES exec .venv/bin/python -m pytest -q -o timeout=0 tests/fuzz "$@"
