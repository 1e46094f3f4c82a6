#!/usr/bin/env bash
# Make sure Debian's PostGIS 3 for PostgreSQL 15 (postgresql-15-postgis-3) is
# installed, so that the PostGIS agreement test of geo.CellIndex
# (tests/integration/test_index_postgis.py) and `capcast bench target --postgis`
# can start a throwaway cluster with it. Idempotent: does nothing when the
# extension is already there. Prints what it did. Needs root (or sudo) and apt.
#
#   bash ops/postgis.sh            install when missing
#   bash ops/postgis.sh --check    exit 0 when installed, 1 when not; install nothing
set -euo pipefail

PACKAGE=postgresql-15-postgis-3
CONTROL=/usr/share/postgresql/15/extension/postgis.control
PG_BIN=/usr/lib/postgresql/15/bin

installed() {
    [ -f "$CONTROL" ] && [ -x "$PG_BIN/initdb" ] && [ -x "$PG_BIN/pg_ctl" ]
}

if installed; then
    echo "postgis: $PACKAGE already installed ($CONTROL)"
    exit 0
fi
if [ "${1:-}" = "--check" ]; then
    echo "postgis: $PACKAGE not installed"
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "postgis: apt-get not found; install $PACKAGE (PostgreSQL 15 with PostGIS 3) by hand" >&2
    exit 2
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "postgis: need root (or sudo) to apt-get install $PACKAGE" >&2
        exit 2
    fi
fi
export DEBIAN_FRONTEND=noninteractive
echo "postgis: apt-get update"
$SUDO apt-get update -qq
echo "postgis: apt-get install $PACKAGE (with postgresql-15)"
# The postgresql-common hook would create and start a cluster "main": the tests
# make their own throwaway cluster, so ask it not to.
if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
    $SUDO mkdir -p /etc/postgresql-common
    echo "create_main_cluster = false" | $SUDO tee /etc/postgresql-common/createcluster.conf >/dev/null
fi
$SUDO apt-get install -y -qq --no-install-recommends postgresql-15 "$PACKAGE" >/dev/null
if installed; then
    echo "postgis: installed $PACKAGE"
else
    echo "postgis: apt-get finished but $CONTROL or $PG_BIN is missing" >&2
    exit 1
fi
