"""``capcast db migrate|status``: bring the database schema up to date, or say where it is."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from dispatcher.cli import EXIT_INVALID, EXIT_OK, Commands

if TYPE_CHECKING:
    from dispatcher.store import Pool

#: The environment variable naming the database when --database-url is not given.
DATABASE_URL_ENV = "CAPCAST_DATABASE_URL"


def register(commands: Commands) -> None:
    """Add ``capcast db migrate`` and ``capcast db status``."""
    db = commands.group("db", "the PostgreSQL database: migrations and status")
    where_help = (
        "The database is --database-url, else $" + DATABASE_URL_ENV + ", else an embedded "
        "PostgreSQL in --data-dir (default: $CAPCAST_DATA_DIR, else the user data folder), "
        "started for the command and stopped afterwards unless another capcast process uses "
        "it.")

    migrate = db.add_parser(
        "migrate", help="apply the pending schema migrations",
        description="Apply every pending numbered migration, each once and in its own "
                    "transaction; concurrent runs take turns. " + where_help + " Exit status: "
                    "0 up to date, 1 a migration failed or the database is unreachable or "
                    "newer than this capcast, 2 usage error.")
    _where(migrate)
    migrate.add_argument("--json", action="store_true",
                         help="print one JSON object: database, embedded, data_dir, applied, "
                              "version, up_to_date")
    migrate.set_defaults(handler=_cmd_migrate)

    status = db.add_parser(
        "status", help="show the applied and pending migrations",
        description="Show which migrations the database has and which are pending; changes "
                    "nothing (an embedded cluster that does not exist yet is not created). "
                    + where_help + " Exit status: 0 up to date, 1 migrations pending (or the "
                    "database is unreachable, newer, or has an edited migration), 2 usage "
                    "error.")
    _where(status)
    status.add_argument("--json", action="store_true",
                        help="print one JSON object: database, embedded, data_dir, version, "
                             "applied [{version, name, applied_at}], pending, unknown, "
                             "changed, up_to_date")
    status.set_defaults(handler=_cmd_status)


def _where(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--database-url", metavar="URL",
                       help="postgresql://USER@HOST:PORT/DB (prefer $" + DATABASE_URL_ENV +
                            ": a password on the command line is visible to other users)")
    group.add_argument("--data-dir", metavar="DIR",
                       help="capcast's data folder; the embedded cluster is DIR/postgres")


@dataclass(frozen=True, slots=True, kw_only=True)
class _Database:
    url: str
    embedded: bool
    data_dir: Path | None


def _target(args: argparse.Namespace) -> tuple[str | None, Path | None]:
    from dispatcher.embedded import default_data_dir

    if args.database_url:
        return args.database_url, None
    if args.data_dir is None and os.environ.get(DATABASE_URL_ENV):
        return os.environ[DATABASE_URL_ENV], None
    return None, Path(args.data_dir) if args.data_dir else default_data_dir()


@asynccontextmanager
async def _open(url: str | None, data_dir: Path | None) -> AsyncIterator[tuple[_Database, Pool]]:
    from dispatcher.embedded import EmbeddedPostgres
    from dispatcher.store import create_pool

    server = None
    if url is None:
        assert data_dir is not None
        server = EmbeddedPostgres(data_dir)
        url = await server.start()
    try:
        pool = await create_pool(url, min_size=1, max_size=2)
        try:
            yield _Database(url=url, embedded=server is not None, data_dir=data_dir), pool
        finally:
            await pool.close()
    finally:
        if server is not None:
            await server.stop()


def _fail(exc: Exception) -> int:
    print(f"capcast db: error: {exc}", file=sys.stderr)
    return EXIT_INVALID


def _header(db: _Database) -> str:
    from dispatcher.store import redact_url

    where = f" (embedded, {db.data_dir})" if db.embedded else ""
    return f"database: {redact_url(db.url)}{where}"


def _cmd_migrate(args: argparse.Namespace, out: TextIO) -> int:
    from dispatcher.errors import StoreError
    from dispatcher.store import migrate, migration_status, redact_url

    url, data_dir = _target(args)

    async def run() -> dict[str, Any]:
        async with _open(url, data_dir) as (db, pool):
            redacted = redact_url(db.url)
            applied = await migrate(pool, url=redacted)
            status = await migration_status(pool, url=redacted)
            return {"database": redacted, "embedded": db.embedded,
                    "data_dir": None if db.data_dir is None else str(db.data_dir),
                    "header": _header(db), "applied": [m.label for m in applied],
                    "version": status.version, "up_to_date": status.up_to_date}

    try:
        result = asyncio.run(run())
    except StoreError as exc:
        return _fail(exc)
    header = result.pop("header")
    if args.json:
        print(json.dumps(result), file=out)
    else:
        print(header, file=out)
        for label in result["applied"]:
            print(f"applied {label}", file=out)
        state = "up to date" if result["up_to_date"] else "NOT up to date"
        print(f"schema version {result['version']}, {state}"
              + ("" if result["applied"] else " (nothing to apply)"), file=out)
    return EXIT_OK if result["up_to_date"] else EXIT_INVALID


def _cmd_status(args: argparse.Namespace, out: TextIO) -> int:
    from dispatcher import sql
    from dispatcher.embedded import CLUSTER_FOLDER
    from dispatcher.errors import StoreError
    from dispatcher.store import migration_status, redact_url

    url, data_dir = _target(args)
    if url is None and data_dir is not None and \
            not (data_dir / CLUSTER_FOLDER / "PG_VERSION").exists():
        pending = [m.label for m in sql.migrations()]
        result: dict[str, Any] = {
            "database": None, "embedded": True, "data_dir": str(data_dir), "version": 0,
            "applied": [], "pending": pending, "unknown": [], "changed": [],
            "up_to_date": not pending}
        header = f"database: none yet (no embedded cluster in {data_dir / CLUSTER_FOLDER})"
    else:
        async def run() -> tuple[str, dict[str, Any]]:
            async with _open(url, data_dir) as (db, pool):
                redacted = redact_url(db.url)
                status = await migration_status(pool, url=redacted)
                return _header(db), {
                    "database": redacted, "embedded": db.embedded,
                    "data_dir": None if db.data_dir is None else str(db.data_dir),
                    "version": status.version,
                    "applied": [{"version": m.version, "name": m.name,
                                 "applied_at": m.applied_at.isoformat()}
                                for m in status.applied],
                    "pending": [m.label for m in status.pending],
                    "unknown": [m.label for m in status.unknown],
                    "changed": [label for label, _, _ in status.changed],
                    "up_to_date": status.up_to_date}

        try:
            header, result = asyncio.run(run())
        except StoreError as exc:
            return _fail(exc)
    if args.json:
        print(json.dumps(result), file=out)
    else:
        print(header, file=out)
        print(f"schema version {result['version']}: {len(result['applied'])} applied, "
              f"{len(result['pending'])} pending", file=out)
        for applied in result["applied"]:
            print(f"  applied  {applied['version']:04d}_{applied['name']}  "
                  f"{applied['applied_at']}", file=out)
        for label in result["pending"]:
            print(f"  pending  {label}", file=out)
        for label in result["unknown"]:
            print(f"  UNKNOWN  {label} (applied by a newer capcast)", file=out)
        for label in result["changed"]:
            print(f"  CHANGED  {label} (its file was edited after it was applied)", file=out)
    return EXIT_OK if result["up_to_date"] else EXIT_INVALID
