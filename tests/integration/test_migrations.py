"""Migrations: applied once each, under a lock, and they build exactly the declared schema."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from dispatcher import sql
from dispatcher.errors import MigrationError, SchemaNotReady
from dispatcher.store import Store, create_pool, migrate, migration_status

from .conftest import MakeDatabase

REPO = Path(__file__).resolve().parents[2]

# What the schema is, read from the catalog: every table, column, type, constraint,
# index, trigger, function, enum, sequence and privilege of the public schema.
# Columns are compared by name, not position: a migration can only add a column at
# the end, and schema.sql may keep related columns together.
CATALOG: dict[str, str] = {
    "tables": """
        SELECT c.relname, c.relkind::text, c.relpersistence::text,
               coalesce(c.relacl::text, '') AS acl
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
        ORDER BY 1""",
    "columns": """
        SELECT table_name, column_name, data_type, udt_name, is_nullable,
               coalesce(column_default, ''), is_identity, coalesce(identity_generation, ''),
               coalesce(character_maximum_length, -1), coalesce(numeric_precision, -1)
        FROM information_schema.columns WHERE table_schema = 'public'
        ORDER BY table_name, column_name""",
    "constraints": """
        SELECT cl.relname, co.conname, co.contype::text, pg_get_constraintdef(co.oid)
        FROM pg_constraint co JOIN pg_class cl ON cl.oid = co.conrelid
        JOIN pg_namespace n ON n.oid = cl.relnamespace
        WHERE n.nspname = 'public' ORDER BY 1, 2""",
    "indexes": """
        SELECT tablename, indexname, indexdef FROM pg_indexes
        WHERE schemaname = 'public' ORDER BY 1, 2""",
    "triggers": """
        SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid), t.tgenabled::text
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND NOT t.tgisinternal ORDER BY 1, 2""",
    "functions": """
        SELECT p.proname, pg_get_function_identity_arguments(p.oid), pg_get_functiondef(p.oid)
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'public' ORDER BY 1, 2""",
    "enums": """
        SELECT t.typname, string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
        FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid
        JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = 'public' GROUP BY t.typname ORDER BY 1""",
    "types": """
        SELECT t.typname, t.typtype::text FROM pg_type t
        JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = 'public' AND t.typtype NOT IN ('b', 'c')
        ORDER BY 1""",
    "sequences": """
        SELECT c.relname, s.seqtypid::regtype::text, s.seqstart, s.seqincrement, s.seqmax,
               s.seqcycle
        FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' ORDER BY 1""",
    "views": """
        SELECT viewname, definition FROM pg_views WHERE schemaname = 'public' ORDER BY 1""",
    "extensions": "SELECT extname FROM pg_extension ORDER BY 1",
}


async def snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    connection = await asyncpg.connect(url)
    try:
        return {name: [tuple(row) for row in await connection.fetch(query)]
                for name, query in CATALOG.items()}
    finally:
        await connection.close()


def differences(left: dict[str, list[tuple[Any, ...]]],
                right: dict[str, list[tuple[Any, ...]]]) -> list[str]:
    found = []
    for part in CATALOG:
        for row in sorted(set(left[part]) - set(right[part]), key=repr):
            found.append(f"{part}: only migrated: {row}")
        for row in sorted(set(right[part]) - set(left[part]), key=repr):
            found.append(f"{part}: only in schema.sql: {row}")
    return found


async def execute(url: str, *statements: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


async def test_migrated_schema_equals_declared_schema(database_url: str,
                                                      make_database: MakeDatabase) -> None:
    declared = await make_database(empty=True)
    await execute(declared, sql.schema())
    migrated_snapshot, declared_snapshot = await snapshot(database_url), await snapshot(declared)
    assert differences(migrated_snapshot, declared_snapshot) == []
    # The comparison sees every kind of object it claims to.
    for part in ("tables", "columns", "constraints", "indexes", "triggers", "functions",
                 "enums", "sequences"):
        assert migrated_snapshot[part], part
    tables = {row[0] for row in migrated_snapshot["tables"]}
    assert tables == {"schema_migrations", "authorities", "alerts", "alert_references",
                      "inventory_versions", "jobs", "submissions", "receipts", "presence",
                      "audit_log", "feed_state", "feed_documents"}


@pytest.mark.parametrize("change", [
    "DROP INDEX jobs_lease_idx",
    "ALTER TABLE jobs ALTER COLUMN priority TYPE integer",
    "ALTER TABLE alerts ALTER COLUMN source DROP NOT NULL",
    "ALTER TYPE job_kind ADD VALUE 'fax'",
    "ALTER TABLE presence ADD CONSTRAINT presence_msisdn_check CHECK (msisdn <> '')",
    "DROP TRIGGER audit_log_no_truncate ON audit_log",
    "REVOKE ALL ON audit_log FROM PUBLIC; GRANT SELECT ON audit_log TO PUBLIC",
])
async def test_schema_comparison_notices_a_difference(make_database: MakeDatabase,
                                                      change: str) -> None:
    first, second = await make_database(), await make_database()
    await execute(second, change)
    assert differences(await snapshot(first), await snapshot(second))


async def test_migrate_applies_each_migration_once(make_database: MakeDatabase) -> None:
    url = await make_database(empty=True)
    pool = await create_pool(url, max_size=2)
    try:
        before = await migration_status(pool)
        assert before.version == 0 and [m.label for m in before.pending] == \
            [m.label for m in sql.migrations()]
        applied = await migrate(pool)
        assert [m.label for m in applied] == [m.label for m in sql.migrations()]
        assert await migrate(pool) == []
        after = await migration_status(pool)
        assert after.up_to_date and after.version == len(sql.migrations())
        assert [(m.version, m.checksum) for m in after.applied] == \
            [(m.version, m.checksum) for m in sql.migrations()]
    finally:
        await pool.close()


async def test_concurrent_migrations_take_turns(make_database: MakeDatabase) -> None:
    url = await make_database(empty=True)
    pools = [await create_pool(url, max_size=1) for _ in range(4)]
    try:
        results = await asyncio.gather(*(migrate(p) for p in pools))
        assert sorted(len(r) for r in results) == [0, 0, 0, len(sql.migrations())]
        async with pools[0].acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM schema_migrations") == \
                len(sql.migrations())
    finally:
        for p in pools:
            await p.close()


async def test_edited_migration_is_refused(pool: Any, database_url: str) -> None:
    async with pool.acquire() as conn:
        await conn.execute("UPDATE schema_migrations SET checksum = 'abc' WHERE version = 1")
    with pytest.raises(MigrationError, match="0001_initial changed after it was applied"):
        await migrate(pool)
    status = await migration_status(pool)
    assert not status.up_to_date and [c[0] for c in status.changed] == ["0001_initial"]


async def test_database_newer_than_the_code_is_refused(pool: Any) -> None:
    async with pool.acquire() as conn:
        await conn.execute("INSERT INTO schema_migrations (version, name, checksum) "
                           "VALUES (9999, 'from_the_future', 'x')")
    with pytest.raises(MigrationError, match=r"9999_from_the_future.*newer"):
        await migrate(pool)


async def test_failed_migration_applies_nothing_of_itself(
        make_database: MakeDatabase, monkeypatch: pytest.MonkeyPatch) -> None:
    url = await make_database(empty=True)
    broken = sql.Migration(version=len(sql.migrations()) + 1, name="broken",
                           sql="CREATE TABLE half_done (id int); SELECT no_such_function();")
    shipped = sql.migrations()
    monkeypatch.setattr(sql, "migrations", lambda: (*shipped, broken))
    pool = await create_pool(url, max_size=1)
    try:
        with pytest.raises(MigrationError, match=r"broken failed: .*no_such_function") as caught:
            await migrate(pool)
        assert caught.value.sqlstate == "42883"
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT to_regclass('half_done')") is None
            assert await conn.fetchval("SELECT max(version) FROM schema_migrations") == \
                len(shipped)
    finally:
        await pool.close()


async def test_unmigrated_database_is_named_as_such(make_database: MakeDatabase) -> None:
    url = await make_database(empty=True)
    pool = await create_pool(url, max_size=1)
    try:
        with pytest.raises(SchemaNotReady, match="capcast db migrate"):
            await Store(pool=pool).get_alert(1)
    finally:
        await pool.close()


async def test_every_query_prepares_and_is_used(pool: Any) -> None:
    # Prepared against the migrated schema: every table, column and type a query names
    # exists. presence_staging is a temporary table made by its sibling query.
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(sql.query("create_presence_staging"))
        for name, text in sql.queries().items():
            await conn.prepare(text), name
    source = "\n".join((REPO / "dispatcher" / f).read_text()
                       for f in ("store.py", "queue.py", "embedded.py"))
    used = set(re.findall(r'sql\.query\("([a-z0-9_]+)"\)', source))
    assert used == set(sql.queries())


def test_query_file_parser() -> None:
    text = "-- header\n-- name: one\n-- what it does\nSELECT 1;\n\n-- name: two\nSELECT 2\n"
    assert sql.parse_queries(text) == {"one": "-- what it does\nSELECT 1", "two": "SELECT 2"}
    with pytest.raises(ValueError, match="twice"):
        sql.parse_queries("-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;")
    with pytest.raises(ValueError, match="empty"):
        sql.parse_queries("-- name: a\n-- nothing here\n")
    with pytest.raises(KeyError, match=r"no query 'claim_job'.*claim_jobs"):
        sql.query("claim_job")
