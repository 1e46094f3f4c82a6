#!/usr/bin/env bash
# Make sure Debian's Chromium (package chromium, /usr/bin/chromium) is installed, so
# that the console's browser test (tests/integration/test_console.py) can drive it
# headless through the Python playwright package. playwright's own browser download
# (`playwright install`) is never used: it fetches a build from outside the package
# registries. Idempotent: does nothing when /usr/bin/chromium is there. Prints what it
# did. Needs root (or sudo) and apt-get.
#
#   bash ops/browser.sh            install when missing
#   bash ops/browser.sh --check    exit 0 when installed, 1 when not; install nothing
#
# Under CI=true a browser that cannot be installed is an error (exit 1 or 2): the
# console test must run there. Elsewhere the script says what to do and exits 0; the
# test then skips with that reason.
set -euo pipefail

PACKAGE=chromium
BROWSER=/usr/bin/chromium

installed() {
    [ -x "$BROWSER" ]
}

# A failure to install: fatal in CI, advice elsewhere.
give_up() {
    local code=$1
    shift
    echo "browser: $*" >&2
    if [ "${CI:-}" = "true" ]; then
        exit "$code"
    fi
    echo "browser: the console's browser test will be skipped; install Debian's" \
         "$PACKAGE package (apt-get install $PACKAGE) to run it" >&2
    exit 0
}

if installed; then
    echo "browser: $PACKAGE already installed ($BROWSER)"
    exit 0
fi
if [ "${1:-}" = "--check" ]; then
    echo "browser: $PACKAGE not installed ($BROWSER missing)"
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    give_up 2 "apt-get not found; cannot install $PACKAGE ($BROWSER)"
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        give_up 2 "need root (or password-less sudo) to apt-get install $PACKAGE"
    fi
fi
export DEBIAN_FRONTEND=noninteractive
echo "browser: apt-get update"
if ! $SUDO apt-get update -qq; then
    give_up 1 "apt-get update failed"
fi
echo "browser: apt-get install $PACKAGE"
if ! $SUDO apt-get install -y -qq --no-install-recommends "$PACKAGE" >/dev/null; then
    give_up 1 "apt-get install $PACKAGE failed"
fi
if installed; then
    echo "browser: installed $PACKAGE ($("$BROWSER" --version 2>/dev/null || echo "$BROWSER"))"
else
    give_up 1 "apt-get finished but $BROWSER is missing"
fi
