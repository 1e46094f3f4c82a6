#!/usr/bin/env bash
# Install the npm packages of the SMPP peers that capcast's integration tests run
# (tests/peers/node-smpp: node-smpp 0.5.1, pinned by its committed package-lock.json).
# Runs `npm ci` only when node_modules is missing, so it is cheap to call before every
# test run. Needs node and npm; prints a notice and exits 0 without them (the tests that
# need the peer then skip with that reason).
set -euo pipefail
cd "$(dirname "$0")/.."
peer=tests/peers/node-smpp
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "node-peers: node/npm not found; the node-smpp peer tests will be skipped" >&2
    exit 0
fi
if [ ! -d "$peer/node_modules/smpp" ]; then
    echo "==> npm ci ($peer)"
    (cd "$peer" && npm ci --no-audit --no-fund --loglevel=error)
fi
