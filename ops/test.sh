#!/usr/bin/env bash
# The whole test suite on a fresh machine: set up, lint, then unit,
# integration and end-to-end tests. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ops/setup.sh
echo "==> ruff"
.venv/bin/ruff check .
echo "==> mypy (strict, sans-IO packages)"
.venv/bin/mypy
echo "==> pytest"
exec .venv/bin/python -m pytest "$@"
