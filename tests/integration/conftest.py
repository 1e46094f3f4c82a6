"""A real PostgreSQL for the integration tests, and a fresh migrated database per test.

The server is the one named by ``CAPCAST_TEST_DATABASE_URL`` (its user needs
CREATEDB; that database is only used to create and drop others), else an
embedded one (:class:`dispatcher.embedded.EmbeddedPostgres`) in a temporary
folder, started once per session with durability off (fsync and friends:
this data is thrown away) and removed at the end.

Once per session a template database is created and migrated; each test gets
its own ``CREATE DATABASE ... TEMPLATE`` copy (a file copy, a few tens of
milliseconds), dropped afterwards. Fixtures: ``postgres`` (the server),
``database_url``, ``pool``, ``store``, ``queue``, and ``make_database`` for
tests that need more (an empty database, a second copy).
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from dispatcher.embedded import EmbeddedPostgres
from dispatcher.queue import Queue, RetryPolicy
from dispatcher.store import Store, create_pool, migrate

if TYPE_CHECKING:
    from dispatcher.store import Pool

ENV = "CAPCAST_TEST_DATABASE_URL"


def with_database(url: str, database: str) -> str:
    """``url`` pointing at another database of the same server."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True, slots=True)
class PostgresServer:
    """The session's server: where to connect to create databases, and the template."""

    admin_url: str
    template: str
    embedded: bool

    def url(self, database: str) -> str:
        return with_database(self.admin_url, database)


async def _admin(url: str, *statements: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


async def _make_template(admin_url: str, name: str) -> None:
    await _admin(admin_url, f"CREATE DATABASE {quote(name)} TEMPLATE template0")
    pool = await create_pool(with_database(admin_url, name), min_size=1, max_size=1)
    try:
        await migrate(pool)
    finally:
        await pool.close()
    # No connections: CREATE DATABASE ... TEMPLATE needs none on the template.
    await _admin(admin_url, f"ALTER DATABASE {quote(name)} WITH IS_TEMPLATE true "
                            f"ALLOW_CONNECTIONS false")


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """The session's PostgreSQL with a migrated template database."""
    template = f"capcast_template_{uuid.uuid4().hex[:10]}"
    server: EmbeddedPostgres | None = None
    folder: Path | None = None
    admin_url = os.environ.get(ENV)
    if not admin_url:
        folder = tmp_path_factory.mktemp("capcast-pg")
        server = EmbeddedPostgres(folder)
        admin_url = asyncio.run(server.start())
        # Throwaway data: no need to survive a power cut, every need to be quick.
        asyncio.run(_admin(admin_url, "ALTER SYSTEM SET fsync = off",
                           "ALTER SYSTEM SET synchronous_commit = off",
                           "ALTER SYSTEM SET full_page_writes = off",
                           "SELECT pg_reload_conf()"))
    try:
        asyncio.run(_make_template(admin_url, template))
        yield PostgresServer(admin_url=admin_url, template=template, embedded=server is not None)
    finally:
        try:
            asyncio.run(_admin(admin_url,
                               f"ALTER DATABASE {quote(template)} WITH IS_TEMPLATE false",
                               f"DROP DATABASE IF EXISTS {quote(template)} WITH (FORCE)"))
        finally:
            if server is not None:
                asyncio.run(server.stop())
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)


MakeDatabase = Callable[..., Awaitable[str]]


@pytest.fixture
async def make_database(postgres: PostgresServer) -> AsyncIterator[MakeDatabase]:
    """A factory of new databases (their URLs), dropped after the test.

    ``await make_database()`` copies the migrated template; with ``empty=True``
    the database has no capcast schema at all (a copy of template0).
    """
    made: list[str] = []

    async def make(*, empty: bool = False) -> str:
        name = f"capcast_test_{uuid.uuid4().hex[:12]}"
        source = "template0" if empty else postgres.template
        await _admin(postgres.admin_url, f"CREATE DATABASE {quote(name)} TEMPLATE {source}")
        made.append(name)
        return postgres.url(name)

    yield make
    if made:
        await _admin(postgres.admin_url,
                     *(f"DROP DATABASE IF EXISTS {quote(n)} WITH (FORCE)" for n in made))


@pytest.fixture
async def database_url(make_database: MakeDatabase) -> str:
    """A fresh, migrated database of the test's own."""
    return await make_database()


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[Pool]:
    """A pool on the test's database (room for a listener and several workers)."""
    pool = await create_pool(database_url, min_size=1, max_size=12)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
def store(pool: Pool, database_url: str) -> Store:
    """The store on the test's database."""
    return Store(pool=pool, url=database_url)


@pytest.fixture
def queue(pool: Pool, database_url: str) -> Queue:
    """The queue on the test's database; backoff without jitter (predictable delays)."""
    return Queue(pool=pool, url=database_url,
                 retry=RetryPolicy(base_delay=0.2, factor=2.0, max_delay=5.0, jitter=0.0),
                 rng=random.Random(1))
