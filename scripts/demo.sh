#!/usr/bin/env bash
# Sets the machine up (scripts/setup.sh), then runs the agent end to end against a simulated
# clinic (router, UPS, meter) and a local broker, printing the readings as they arrive.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python scripts/demo.py "$@"
