"""Migrations: applied once, in order, under an advisory lock; changed files refused."""

from __future__ import annotations

import asyncio
import dataclasses

import asyncpg
import pytest

from drain.errors import MigrationError
from drain.store.migrate import apply_migrations, load_migrations, migrate


def test_shipped_migrations_are_numbered_and_ordered() -> None:
    migrations = load_migrations()
    names = [m.name for m in migrations]
    assert names == sorted(names)
    assert names[:4] == [
        "0001_raw_events.sql",
        "0002_quarantine.sql",
        "0003_received_batches.sql",
        "0004_ensure_partition.sql",
    ]
    assert all(len(m.checksum) == 64 for m in migrations)


async def test_migrate_twice_is_a_no_op(database_url: str) -> None:
    applied = await migrate(database_url)
    assert applied == [m.name for m in load_migrations()]
    assert await migrate(database_url) == []
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT version, name, checksum FROM schema_migrations ORDER BY 1")
        tables = await conn.fetch(
            "SELECT relname FROM pg_class WHERE relname IN "
            "('raw_events', 'quarantine', 'received_batches') ORDER BY 1"
        )
        default_partitions = await conn.fetchval(
            "SELECT count(*) FROM pg_partitioned_table WHERE partdefid <> 0"
        )
    finally:
        await conn.close()
    assert [(r["name"], r["checksum"]) for r in rows] == [
        (m.name, m.checksum) for m in load_migrations()
    ]
    assert [t["relname"] for t in tables] == ["quarantine", "raw_events", "received_batches"]
    assert default_partitions == 0  # no DEFAULT partition trap


async def test_concurrent_migrations_apply_each_file_once(database_url: str) -> None:
    results = await asyncio.gather(*(migrate(database_url) for _ in range(4)))
    applied = [name for result in results for name in result]
    assert sorted(applied) == [m.name for m in load_migrations()]  # each exactly once
    assert sum(1 for r in results if r) == 1  # the first to take the lock did all


async def test_a_changed_applied_migration_is_refused(database_url: str) -> None:
    await migrate(database_url)
    migrations = load_migrations()
    changed = [dataclasses.replace(migrations[0], checksum="0" * 64), *migrations[1:]]
    conn = await asyncpg.connect(database_url)
    try:
        with pytest.raises(MigrationError, match=r"0001_raw_events\.sql.*must not change"):
            await apply_migrations(conn, changed)
        # The advisory lock was released: a correct run still works on this connection.
        assert await apply_migrations(conn, migrations) == []
    finally:
        await conn.close()


async def test_a_failing_migration_rolls_back_only_itself(database_url: str) -> None:
    migrations = load_migrations()
    broken = dataclasses.replace(
        migrations[0], version=9999, name="9999_broken.sql", sql="CREATE TABLE x (); SELECT 1/0"
    )
    conn = await asyncpg.connect(database_url)
    try:
        with pytest.raises(asyncpg.DivisionByZeroError):
            await apply_migrations(conn, [*migrations, broken])
        recorded = await conn.fetchval("SELECT count(*) FROM schema_migrations")
        table_x = await conn.fetchval("SELECT to_regclass('x')")
    finally:
        await conn.close()
    assert recorded == len(migrations)
    assert table_x is None
