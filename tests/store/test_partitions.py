"""Daily partitions: UTC bounds whatever the session TimeZone, creation on demand and in races."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from drain.records import EventRow, PendingBatch
from drain.store.database import connect_kwargs
from drain.store.partitions import (
    PartitionCache,
    ensure_partitions,
    list_partitions,
    partition_day,
    partition_name,
    utc_day,
)
from drain.store.writer import Writer
from tests.support.config import writer_config

#: +05:45, and on the other side of the date line +13:45: local midnight is not UTC's.
ZONES = ("Asia/Kathmandu", "Pacific/Chatham", "America/St_Johns")


async def connect_in_zone(url: str, zone: str) -> asyncpg.Connection:
    kwargs = cast("dict[str, Any]", connect_kwargs(url))
    return await asyncpg.connect(server_settings={"TimeZone": zone}, **kwargs)


@pytest.fixture(params=ZONES)
async def zoned_pool(request: pytest.FixtureRequest, migrated_url: str) -> AsyncIterator[Any]:
    kwargs = cast("dict[str, Any]", connect_kwargs(migrated_url))
    pool = await asyncpg.create_pool(
        min_size=1, max_size=2, server_settings={"TimeZone": request.param}, **kwargs
    )
    try:
        yield pool
    finally:
        await pool.close()


def test_partition_name_and_utc_day() -> None:
    assert partition_name("raw_events", date(2026, 3, 9)) == "raw_events_p20260309"
    late = datetime(2026, 3, 9, 23, 30, tzinfo=UTC)
    assert utc_day(late.astimezone(ZoneInfo("Asia/Tokyo"))) == date(2026, 3, 9)


async def test_bounds_are_utc_whatever_the_session_time_zone(migrated_url: str) -> None:
    day = date(2024, 2, 29)
    for zone in ZONES:
        conn = await connect_in_zone(migrated_url, zone)
        try:
            created = await ensure_partitions(
                conn, "raw_events", [day + timedelta(days=ZONES.index(zone))]
            )
        finally:
            await conn.close()
        assert created == [day + timedelta(days=ZONES.index(zone))]
    conn = await connect_in_zone(migrated_url, "UTC")
    try:
        bounds = await conn.fetch(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) AS b FROM pg_class c "
            "WHERE c.relispartition AND c.relkind = 'r' AND c.relname LIKE 'raw_events_p%' "
            "ORDER BY 1"
        )
        parts = await list_partitions(conn, "raw_events")
    finally:
        await conn.close()
    assert [r["b"] for r in bounds] == [
        "FOR VALUES FROM ('2024-02-29 00:00:00+00') TO ('2024-03-01 00:00:00+00')",
        "FOR VALUES FROM ('2024-03-01 00:00:00+00') TO ('2024-03-02 00:00:00+00')",
        "FOR VALUES FROM ('2024-03-02 00:00:00+00') TO ('2024-03-03 00:00:00+00')",
    ]
    assert [p.day for p in parts] == [date(2024, 2, 29), date(2024, 3, 1), date(2024, 3, 2)]
    assert parts[0].lower == datetime(2024, 2, 29, tzinfo=UTC)
    assert parts[0].upper == datetime(2024, 3, 1, tzinfo=UTC)


async def test_rows_land_in_their_utc_day_partition(zoned_pool: Any) -> None:
    """Events at 00:00:00 and 23:59:59.999999 UTC, written through a non-UTC session."""
    times = [
        datetime(2025, 6, 30, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2025, 7, 1, 0, 0, 0, tzinfo=UTC),
        datetime(2025, 7, 1, 12, 0, 0, tzinfo=UTC),
        datetime(2025, 7, 1, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2025, 7, 2, 0, 0, 0, tzinfo=UTC),
    ]
    events = [
        EventRow(t, "t", f'{{"i": {i}}}', 1, 6, "h", "a", "p", "shop") for i, t in enumerate(times)
    ]
    pending = PendingBatch(None, None, datetime.now(UTC), {"raw_events": events}, [], 100)
    writer = Writer(zoned_pool, writer_config(flush_max_delay_s=0.001))
    await writer.start()
    try:
        result = await writer.submit(pending)
    finally:
        await writer.close()
    assert result.events_stored == 5
    async with zoned_pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT (payload->>'i')::int AS i, tableoid::regclass::text AS part, event_time "
            "FROM raw_events ORDER BY 1"
        )
    assert [r["part"] for r in rows] == [
        "raw_events_p20250630",
        "raw_events_p20250701",
        "raw_events_p20250701",
        "raw_events_p20250701",
        "raw_events_p20250702",
    ]
    assert [r["event_time"] for r in rows] == times


async def test_a_day_without_partition_gets_one_on_demand(migrated_url: str) -> None:
    conn = await asyncpg.connect(migrated_url)
    try:
        with pytest.raises(asyncpg.CheckViolationError, match="no partition"):
            await conn.execute(
                "INSERT INTO raw_events (event_time, received_at, tag, payload) "
                "VALUES ('1999-12-31 12:00Z', now(), 't', '{}')"
            )
        cache = PartitionCache()
        wanted = {"raw_events": [date(1999, 12, 31)]}
        assert await cache.ensure(conn, wanted) == wanted
        assert ("raw_events", date(1999, 12, 31)) in cache
        assert await cache.ensure(conn, wanted) == {}  # cached: no query
        await conn.execute(
            "INSERT INTO raw_events (event_time, received_at, tag, payload) "
            "VALUES ('1999-12-31 12:00Z', now(), 't', '{}')"
        )
    finally:
        await conn.close()


async def test_writer_recreates_a_partition_dropped_behind_its_cache(migrated_url: str) -> None:
    pool = await asyncpg.create_pool(**cast("dict[str, Any]", connect_kwargs(migrated_url)))
    writer = Writer(pool, writer_config(flush_max_delay_s=0.001))
    when = datetime(2025, 1, 1, 8, tzinfo=UTC)
    pending = PendingBatch(
        None,
        None,
        when,
        {"raw_events": [EventRow(when, "t", "{}", 1, 6, "h", "a", "p", "shop")]},
        [],
        9,
    )
    try:
        await writer.start()
        await writer.submit(pending)
        await pool.execute("DROP TABLE raw_events_p20250101")
        result = await writer.submit(pending)
    finally:
        await writer.close()
        await pool.close()
    assert result.events_stored == 1


async def test_concurrent_ensure_creates_each_partition_once(migrated_url: str) -> None:
    conns = [await asyncpg.connect(migrated_url) for _ in range(6)]
    days = [date(2030, 1, 1) + timedelta(days=n) for n in range(4)]
    try:
        created = await asyncio.gather(*(ensure_partitions(c, "raw_events", days) for c in conns))
        parts = await list_partitions(conns[0], "raw_events")
    finally:
        for c in conns:
            await c.close()
    assert sorted(d for result in created for d in result) == days
    assert [p.day for p in parts] == days


async def test_writer_start_creates_partitions_ahead(migrated_url: str) -> None:
    pool = await asyncpg.create_pool(**cast("dict[str, Any]", connect_kwargs(migrated_url)))
    writer = Writer(pool, writer_config(partitions_ahead_days=2))
    try:
        await writer.start()
        async with pool.acquire() as conn:
            days = [p.day for p in await list_partitions(conn, "raw_events")]
    finally:
        await writer.close()
        await pool.close()
    today = datetime.now(UTC).date()
    assert days == [today, today + timedelta(days=1), today + timedelta(days=2)]


async def test_sql_and_python_name_partitions_of_any_table_alike(migrated_url: str) -> None:
    """drain_ensure_partition (SQL, migration 0005) and partition_name (Python) agree, for
    raw_events and for another table partitioned by day."""
    conn = await asyncpg.connect(migrated_url)
    try:
        await conn.execute(
            "CREATE TABLE probe_rows (at timestamptz NOT NULL) PARTITION BY RANGE (at)"
        )
        for table in ("raw_events", "probe_rows"):
            created = await ensure_partitions(conn, table, [date(2031, 5, 6)])
            assert created == [date(2031, 5, 6)]
            (part,) = [p for p in await list_partitions(conn, table) if p.day == date(2031, 5, 6)]
            assert part.name == partition_name(table, date(2031, 5, 6))
            assert partition_day(table, part.name) == date(2031, 5, 6)
        await conn.execute("INSERT INTO probe_rows VALUES ('2031-05-06 23:59:59+00')")
        assert await ensure_partitions(conn, "probe_rows", [date(2031, 5, 6)]) == []
    finally:
        await conn.close()
