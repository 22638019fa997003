"""Shared fixtures: a real PostgreSQL server per test session, a fresh database per test."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from drain import speedups
from drain.store.migrate import migrate
from testkit.pg import create_database, drop_database, server_admin_url

DATA = Path(__file__).parent / "data"


def pytest_configure(config: pytest.Config) -> None:
    """Refuse to test stale extensions: the sources are what was edited.

    In an editable checkout the compiled decode modules sit beside their sources; after an
    edit without a rebuild (``pip install -e .``) the extensions would be tested instead of
    the edit. CI stops; elsewhere the run falls back to the sources, and says so.
    """
    old = speedups.stale()
    if not old:
        return
    message = (
        f"compiled decode modules older than their sources: {', '.join(old)}; "
        "rebuild with `pip install -e .`"
    )
    if os.environ.get("CI"):
        raise pytest.UsageError(message)
    if speedups.pure_python_requested() or any(m in sys.modules for m in speedups.COMPILED):
        return
    os.environ[speedups.PURE_PYTHON_ENV] = "1"  # for the drain processes the tests start
    speedups.use_pure_python()
    config.stash[_STALE_NOTE] = f"{message}; this run tests the sources"


_STALE_NOTE = pytest.StashKey[str]()


def pytest_report_header(config: pytest.Config) -> list[str]:
    """The decode path under test, compiled or the sources, on the report's first lines."""
    lines = [f"drain decode path: {speedups.summary()}"]
    if _STALE_NOTE in config.stash:
        lines.append(f"drain: {config.stash[_STALE_NOTE]}")
    return lines


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
