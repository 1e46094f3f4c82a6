#!/usr/bin/env bash
# The main job on a fresh machine: set up, then validate the bundled CAP
# examples (alerts, a signed alert, a feed). Later this becomes the demo of the
# whole service. Extra arguments go to `capcast cap validate`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ops/setup.sh
exec .venv/bin/capcast cap validate "$@" examples/cap
