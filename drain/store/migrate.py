"""Apply the SQL migrations shipped in ``drain.sql/migrations`` (``sql/migrations`` in the repo).

Files are named ``NNNN_name.sql`` and applied in name order, each in its own transaction,
while holding a session-level advisory lock, so two ``drain migrate`` runs (two dynos'
release phases, two test processes) never apply the same file twice. Each applied file is
recorded in ``schema_migrations`` with its SHA-256; a recorded file whose content changed
is refused (:class:`MigrationError`): migrations are append-only, change the schema with
a new file.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from typing import Any, cast

import asyncpg

from drain.errors import MigrationError
from drain.resources import sql_dir
from drain.store.database import Conn, connect_kwargs

__all__ = ["MIGRATIONS_LOCK_KEY", "Migration", "apply_migrations", "load_migrations", "migrate"]

log = logging.getLogger(__name__)

#: pg_advisory_lock key held while migrating (ASCII 'drainmig' as a bigint).
MIGRATIONS_LOCK_KEY = 0x647261696E6D6967

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True, slots=True)
class Migration:
    """One migration file: ``version`` from its ``NNNN_`` prefix, ``checksum`` = SHA-256 hex."""

    version: int
    name: str
    sql: str
    checksum: str


def load_migrations() -> list[Migration]:
    """Read every ``migrations/NNNN_*.sql`` of the ``drain.sql`` package, in name order.

    Raises:
        MigrationError: a file name does not match ``NNNN_name.sql`` or two files share
            a version number.
    """
    root = sql_dir("migrations")
    found: list[Migration] = []
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue
        match = _NAME.match(entry.name)
        if match is None:
            raise MigrationError(f"migration file name must look like 0001_name.sql: {entry.name}")
        data = entry.read_bytes()
        found.append(
            Migration(
                version=int(match.group(1)),
                name=entry.name,
                sql=data.decode("utf-8"),
                checksum=hashlib.sha256(data).hexdigest(),
            )
        )
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migration files share a version number: {versions}")
    return found


async def apply_migrations(conn: Conn, migrations: list[Migration]) -> list[str]:
    """Apply ``migrations`` not yet recorded on ``conn``; return the names applied now.

    Holds the advisory lock :data:`MIGRATIONS_LOCK_KEY` for the duration (waiting for
    any other migrator to finish first).

    Raises:
        MigrationError: an applied migration's file changed (checksum differs) or was
            renamed. asyncpg.PostgresError: a migration's SQL failed (that file's
            transaction is rolled back; files applied before it stay applied).
    """
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATIONS_LOCK_KEY)
    try:
        await conn.execute(_CREATE_TABLE)
        rows = await conn.fetch("SELECT version, name, checksum FROM schema_migrations")
        applied = {int(r["version"]): (str(r["name"]), str(r["checksum"])) for r in rows}
        for m in migrations:
            if m.version not in applied:
                continue
            name, checksum = applied[m.version]
            if checksum != m.checksum or name != m.name:
                raise MigrationError(
                    f"migration {m.name} was applied as {name} with checksum {checksum[:12]}…, "
                    f"but the file now has checksum {m.checksum[:12]}…; applied migrations "
                    "must not change: add a new migration file instead"
                )
        done: list[str] = []
        for m in migrations:
            if m.version in applied:
                continue
            async with conn.transaction():
                await conn.execute(m.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    m.version,
                    m.name,
                    m.checksum,
                )
            log.info("applied migration %s", m.name)
            done.append(m.name)
        return done
    finally:
        if not conn.is_closed():
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATIONS_LOCK_KEY)


async def migrate(url: str) -> list[str]:
    """Apply the shipped migrations to the database at ``url``; return the names applied now.

    Idempotent: a second run applies nothing and returns ``[]``. Safe to run from
    several processes at once (advisory lock, see the module docstring).

    Raises:
        MigrationError: see :func:`apply_migrations`. ValueError: bad URL. OSError,
        asyncpg.PostgresError: the database could not be reached or refused a file.
    """
    migrations = load_migrations()
    kwargs = cast("dict[str, Any]", connect_kwargs(url))
    conn = await asyncpg.connect(statement_cache_size=0, **kwargs)
    try:
        return await apply_migrations(conn, migrations)
    finally:
        await conn.close()
