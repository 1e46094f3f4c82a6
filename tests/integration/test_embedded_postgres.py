"""The embedded PostgreSQL (pgserver) that the store will use starts and answers on this machine.

The store arrives with the dispatcher issue; this test keeps the platform
honest until then: if pgserver cannot start a server here (a missing shared
library, a root-user refusal), CI says so now rather than later.
"""

from __future__ import annotations

import os
from pathlib import Path

import asyncpg
import pgserver
import pytest


async def test_embedded_server_starts_and_runs_sql(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # platformdirs warns when XDG_RUNTIME_DIR is unset (common in CI); give it one.
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", os.fspath(runtime))
    server = pgserver.get_server(tmp_path / "pgdata", cleanup_mode="stop")
    try:
        connection = await asyncpg.connect(server.get_uri())
        try:
            version = await connection.fetchval("SHOW server_version_num")
            assert int(version) >= 140000
            await connection.execute("CREATE TABLE probe (id int PRIMARY KEY, body text)")
            await connection.execute("INSERT INTO probe VALUES (1, 'capcast')")
            assert await connection.fetchval("SELECT body FROM probe WHERE id = 1") == "capcast"
        finally:
            await connection.close()
    finally:
        server.cleanup()
