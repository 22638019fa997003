"""Shared fixtures: a real PostgreSQL server per test session, a fresh database per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from drain.store.migrate import migrate
from testkit.pg import create_database, drop_database, server_admin_url

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """Superuser URL of the session's PostgreSQL (embedded, or TEST_DATABASE_URL)."""
    with server_admin_url() as url:
        yield url


@pytest.fixture
async def database_url(pg_admin_url: str) -> AsyncIterator[str]:
    """URL of a new empty database, dropped after the test."""
    name, url = await create_database(pg_admin_url)
    try:
        yield url
    finally:
        await drop_database(pg_admin_url, name)


@pytest.fixture
async def migrated_url(database_url: str) -> str:
    """A fresh database with every migration of sql/migrations applied."""
    await migrate(database_url)
    return database_url
