#!/usr/bin/env bash
# The main job on a fresh machine: set up (.venv), then run `capcast demo`: an
# embedded PostgreSQL, SMSC and CBC simulators, a sample inventory of three
# operators and the service, with a real CAP alert sent through the HTTP API.
# It keeps serving on http://127.0.0.1:8080 until Ctrl-C. Extra arguments go to
# `capcast demo` (for example `--once --json`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash ops/setup.sh
exec .venv/bin/capcast demo "$@"
