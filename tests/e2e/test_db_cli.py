"""``capcast db migrate|status`` as a user runs them, with an embedded server in a temp folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from dispatcher import sql
from dispatcher.embedded import EmbeddedPostgres

CAPCAST = Path(sys.executable).parent / "capcast"
LABELS = [m.label for m in sql.migrations()]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # As CI runs it: no XDG_RUNTIME_DIR, so platformdirs would warn if it were let.
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("XDG_RUNTIME_DIR", "CAPCAST_DATABASE_URL", "CAPCAST_DATA_DIR")}
    environment.update(env or {})
    return subprocess.run([str(CAPCAST), *args], capture_output=True, text=True, timeout=180,
                          env=environment, check=False)


def running(cluster: Path) -> bool:
    return (cluster / "postmaster.pid").exists()


def test_migrate_and_status_with_an_embedded_server(tmp_path: Path) -> None:
    data = tmp_path / "data"
    fresh = run("db", "status", "--data-dir", str(data), "--json")
    assert fresh.returncode == 1, fresh.stderr
    status = json.loads(fresh.stdout)
    assert status["database"] is None and status["version"] == 0
    assert status["pending"] == LABELS and not (data / "postgres").exists()

    first = run("db", "migrate", "--data-dir", str(data))
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert lines[0].startswith("database: postgresql://postgres@/capcast?host=")
    assert f"(embedded, {data})" in lines[0]
    assert lines[1:] == [*(f"applied {label}" for label in LABELS),
                         f"schema version {len(LABELS)}, up to date"]
    assert first.stderr == ""  # no platformdirs warning, no log noise
    assert (data / "postgres" / "PG_VERSION").exists()
    assert not running(data / "postgres")  # stopped again: nobody else used it

    again = run("db", "migrate", "--data-dir", str(data), "--json")
    assert again.returncode == 0, again.stderr
    result = json.loads(again.stdout)
    assert result == {"database": result["database"], "embedded": True, "data_dir": str(data),
                      "applied": [], "version": len(LABELS), "up_to_date": True}

    now = run("db", "status", "--data-dir", str(data), "--json")
    assert now.returncode == 0, now.stderr
    status = json.loads(now.stdout)
    assert [(a["version"], a["name"]) for a in status["applied"]] == \
        [(m.version, m.name) for m in sql.migrations()]
    assert status["pending"] == [] and status["up_to_date"] is True


async def test_a_running_embedded_server_is_reused_and_left_running(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path)
    url = await server.start()
    try:
        result = run("db", "migrate", "--data-dir", str(tmp_path), "--json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["applied"] == LABELS
        assert running(server.cluster_dir)  # our handle keeps it up
        connection = await asyncpg.connect(url)
        try:
            assert await connection.fetchval("SELECT count(*) FROM schema_migrations") == \
                len(LABELS)
        finally:
            await connection.close()
    finally:
        await server.stop()
    assert not running(server.cluster_dir)


def test_a_server_that_cannot_start_shows_its_log(tmp_path: Path) -> None:
    assert run("db", "migrate", "--data-dir", str(tmp_path)).returncode == 0
    with (tmp_path / "postgres" / "postgresql.conf").open("a") as conf:
        conf.write("\nshared_buffers = 'lots and lots'\n")
    result = run("db", "status", "--data-dir", str(tmp_path))
    assert result.returncode == 1
    message = result.stderr
    assert message.startswith(f"capcast db: error: the embedded PostgreSQL in "
                              f"{tmp_path / 'postgres'} did not start")
    assert "last lines of" in message and "shared_buffers" in message
    assert "Traceback" not in message


@pytest.mark.parametrize(("setup", "expected"), [
    ({"junk": "x"}, "is not empty and holds no PostgreSQL cluster"),
    ({"PG_VERSION": "15\n"}, "was made by PostgreSQL 15, but the embedded server is "
                             "PostgreSQL 16"),
])
def test_an_unusable_data_folder_is_refused_clearly(tmp_path: Path, setup: dict[str, str],
                                                    expected: str) -> None:
    cluster = tmp_path / "postgres"
    cluster.mkdir()
    for name, text in setup.items():
        (cluster / name).write_text(text)
    result = run("db", "migrate", "--data-dir", str(tmp_path))
    assert result.returncode == 1 and result.stdout == ""
    assert expected in result.stderr and str(cluster) in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in cluster.iterdir()) == sorted(setup)  # left as it was


def test_an_unreachable_server_is_named_without_its_password() -> None:
    url = "postgresql://capcast:hunter2@127.0.0.1:9/capcast"
    for args, env in ((["--database-url", url], None), ([], {"CAPCAST_DATABASE_URL": url})):
        result = run("db", "status", *args, env=env)
        assert result.returncode == 1
        assert "postgresql://capcast:***@127.0.0.1:9/capcast" in result.stderr
        assert "Connection refused" in result.stderr
        assert "hunter2" not in result.stderr + result.stdout


def test_url_and_data_dir_are_exclusive(tmp_path: Path) -> None:
    result = run("db", "migrate", "--database-url", "postgresql://x@h/db", "--data-dir",
                 str(tmp_path))
    assert result.returncode == 2 and "not allowed with argument" in result.stderr
