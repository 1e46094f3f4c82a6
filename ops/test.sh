#!/usr/bin/env bash
# The whole test suite on a fresh machine: set up, lint, then unit,
# integration and end-to-end tests. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ops/setup.sh
# Real peers for the integration tests: PostGIS (the targeting agreement test),
# node-smpp (an SMPP implementation this project did not write) and Debian's
# Chromium (the console's browser test, driven by playwright).
bash ops/postgis.sh
bash ops/node-peers.sh
bash ops/browser.sh
echo "==> ruff"
.venv/bin/ruff check .
echo "==> mypy (strict: cap, geo, gateways, dispatcher)"
.venv/bin/mypy
echo "==> pytest"
exec .venv/bin/python -m pytest "$@"
