#!/usr/bin/env bash
# Static checks: ruff (lint, import order) and mypy --strict on the agent and clinic-central.
# Configuration is in pyproject.toml. Needs the .venv from scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/mypy ] && [ -x .venv/bin/ruff ] || bash scripts/setup.sh
echo "==> ruff"
.venv/bin/ruff check agent central
echo "==> mypy --strict"
.venv/bin/mypy
