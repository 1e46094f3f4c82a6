"""Fixtures of the e2e tests: the integration tests' PostgreSQL, a fresh database per test.

The server (embedded, or ``CAPCAST_TEST_DATABASE_URL``) and the per-test
copies of the migrated template come from :mod:`tests.integration.conftest`;
they are imported here so that the e2e tests use the very same machinery.
"""

from __future__ import annotations

from tests.integration.conftest import database_url, make_database, postgres

__all__ = ["database_url", "make_database", "postgres"]
