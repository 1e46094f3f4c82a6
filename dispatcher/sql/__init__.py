"""capcast's SQL as data: named queries, the declared schema and the numbered migrations.

``queries.sql`` holds every statement the store and the queue run, each under
a ``-- name: NAME`` line; they are read once (on first use) and looked up by
name. ``schema.sql`` is the schema as declared; ``migrations/NNNN_name.sql``
build it step by step, and a test checks that both give the same database.

Modelled on procrastinate's ``sql/__init__.py``: SQL stays in ``.sql`` files
that a reader (and an editor's SQL mode) sees whole, not in Python strings.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType

__all__ = ["Migration", "migrations", "parse_queries", "queries", "query", "schema"]

_NAME_LINE = re.compile(r"^-- name: ([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)
_MIGRATION_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


def parse_queries(text: str) -> dict[str, str]:
    """Split a query file into ``{name: sql}`` at each ``-- name: NAME`` line.

    Text before the first name is the file's header and is dropped. Each
    query keeps its own comment lines; trailing whitespace and a final
    semicolon are removed.

    Raises:
        ValueError: a name appears twice or a query is empty.

    """
    parts = _NAME_LINE.split(text)
    found: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        sql = body.strip().rstrip(";").rstrip()
        if name in found:
            raise ValueError(f"query {name!r} is defined twice")
        if not [line for line in sql.splitlines() if not line.lstrip().startswith("--")]:
            raise ValueError(f"query {name!r} is empty")
        found[name] = sql
    return found


def _read(name: str) -> str:
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")


@functools.cache
def queries() -> Mapping[str, str]:
    """Every named query of ``queries.sql``, read and parsed once."""
    return MappingProxyType(parse_queries(_read("queries.sql")))


def query(name: str) -> str:
    """The SQL of the query called ``name``.

    Raises:
        KeyError: there is no such query (the message lists the close names).

    """
    try:
        return queries()[name]
    except KeyError:
        close = sorted(n for n in queries() if n.split("_")[0] == name.split("_")[0])
        raise KeyError(f"no query {name!r} in queries.sql"
                       + (f" (similar: {', '.join(close)})" if close else "")) from None


@functools.cache
def schema() -> str:
    """The declared schema, ``schema.sql``."""
    return _read("schema.sql")


@dataclass(frozen=True, slots=True, kw_only=True)
class Migration:
    """One numbered migration file.

    ``checksum`` is the SHA-256 of its text: an applied migration whose file
    changed afterwards is refused rather than silently skipped.
    """

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """SHA-256 (hex) of the migration's SQL text."""
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()

    @property
    def label(self) -> str:
        """``0001_initial``: how files, logs and ``capcast db status`` name it."""
        return f"{self.version:04d}_{self.name}"


@functools.cache
def migrations() -> tuple[Migration, ...]:
    """Every migration in ``migrations/``, in order.

    Raises:
        ValueError: a file is misnamed, or the numbers have a gap or a repeat
            (either would make two installations disagree about what is applied).

    """
    folder = resources.files(__name__).joinpath("migrations")
    found: list[Migration] = []
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _MIGRATION_FILE.match(entry.name)
        if match is None:
            raise ValueError(f"migration file {entry.name!r} is not named NNNN_name.sql")
        found.append(Migration(version=int(match[1]), name=match[2],
                               sql=entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise ValueError(f"migrations must be numbered 1, 2, 3... without gaps: expected "
                             f"{expected:04d}, found {migration.label}")
    return tuple(found)
