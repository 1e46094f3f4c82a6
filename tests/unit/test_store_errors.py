"""Driver errors become capcast's store errors at the boundary (no database needed)."""

from __future__ import annotations

import asyncpg

from dispatcher.errors import DatabaseUnavailable, StoreError
from dispatcher.store import translate_error


def test_a_connection_broken_mid_operation_is_an_outage_not_a_bug() -> None:
    # What asyncpg raised in the reliability test while PostgreSQL restarted.
    exc = asyncpg.InternalClientError("cannot switch to state 15; another operation (2) is "
                                      "in progress")
    translated = translate_error(exc, operation="claim_jobs", url="postgresql://db/capcast")
    assert isinstance(translated, DatabaseUnavailable)
    assert "claim_jobs" in str(translated) and "broke" in str(translated)


def test_refused_connections_and_timeouts_are_outages() -> None:
    refused = translate_error(ConnectionRefusedError(111, "Connection refused"), operation="x")
    assert isinstance(refused, DatabaseUnavailable) and "cannot reach" in str(refused)
    assert isinstance(translate_error(TimeoutError(), operation="x"), DatabaseUnavailable)


def test_programming_errors_are_not_translated() -> None:
    assert translate_error(TypeError("bad argument"), operation="x") is None
    assert isinstance(translate_error(StoreError("kept", operation="x"), operation="y"),
                      StoreError)
