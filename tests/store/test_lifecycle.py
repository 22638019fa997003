"""Partition lifecycle (drain.store.lifecycle) on a real PostgreSQL: partitions ahead, retention by
DETACH ... CONCURRENTLY (and its fallback), ledger and quarantine pruning, ingest not blocked,
`drain partitions list|maintain`, and the clock running maintenance."""

from __future__ import annotations

import asyncio
import re
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from drain.cli.partitions import text_table
from drain.records import EventRow, PendingBatch
from drain.rollups.clock import Clock
from drain.store.lifecycle import days_ahead, maintain, partition_table
from drain.store.migrate import migrate
from drain.store.partitions import ensure_partitions, list_partitions, partition_name
from drain.store.tables import TABLES
from drain.store.writer import Writer
from tests.support.config import clock_config, retention_policy, writer_config
from tests.support.served import clean_env, drain_command

NOW = datetime.now(UTC).replace(microsecond=0)
TODAY = NOW.date()
POLICY = retention_policy(ahead_days=2, retention_days=10, accept_past_s=7 * 86400)


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    await migrate(database_url)
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=6)
    try:
        yield pool
    finally:
        await pool.close()


def part(n: int) -> str:
    """The raw_events partition of ``day(n)``."""
    return partition_name("raw_events", day(n))


def day(n: int) -> date:
    return TODAY + timedelta(days=n)


async def add_days(pool: asyncpg.Pool, offsets: list[int], rows_each: int = 10) -> None:
    async with pool.acquire() as conn:
        await ensure_partitions(conn, "raw_events", [day(n) for n in offsets])
        for n in offsets:
            at = datetime(day(n).year, day(n).month, day(n).day, 12, tzinfo=UTC)
            await conn.execute(
                """INSERT INTO raw_events (event_time, received_at, tag, payload)
                   SELECT $1, $1, 'old.tag', '{}' FROM generate_series(1, $2)""",
                at,
                rows_each,
            )


async def attached_days(pool: asyncpg.Pool) -> list[date]:
    async with pool.acquire() as conn:
        return [p.day for p in await list_partitions(conn, "raw_events")]


async def test_maintain_makes_ahead_drops_expired_and_prunes(pool: asyncpg.Pool) -> None:
    await add_days(pool, [-30, -12, -11, -10, -9, -3])
    old = NOW - timedelta(days=20)
    await pool.execute(
        """INSERT INTO received_batches VALUES ('', 'old', $1, 1, 0), ('', 'new', $2, 1, 0)""",
        old,
        NOW,
    )
    await pool.execute(
        """INSERT INTO quarantine (received_at, reason, raw, raw_bytes)
           VALUES ($1, 'invalid_json', 'x', 1), ($2, 'invalid_json', 'y', 1)""",
        old,
        NOW,
    )
    report = await maintain(pool, POLICY, now=NOW)
    # kept: every day whose end is within 10 days of now (day -10 ends 9.x days ago)
    assert await attached_days(pool) == [day(n) for n in (-10, -9, -3, 0, 1, 2)]
    # every data table gets its partitions ahead (raw_events and the typed tables)
    assert sorted(report.created) == sorted((t, day(n)) for t in TABLES for n in (0, 1, 2))
    assert report.detached == [partition_name("raw_events", day(n)) for n in (-30, -12, -11)]
    assert report.dropped == report.detached and report.blocking == [] and report.failed == []
    assert (report.ledger_pruned, report.quarantine_pruned, report.ahead_days) == (1, 1, 2)
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM pg_class WHERE relname = $1",
            part(-30),
        )
        == 0
    )
    assert [r["frame_id"] for r in await pool.fetch("SELECT frame_id FROM received_batches")] == [
        "new"
    ]
    again = await maintain(pool, POLICY, now=NOW)
    assert (again.created, again.dropped, again.ledger_pruned) == ([], [], 0)


async def test_retention_never_drops_inside_the_acceptance_window(pool: asyncpg.Pool) -> None:
    await add_days(pool, [-6, -5])
    short = retention_policy(ahead_days=0, retention_days=1, accept_past_s=7 * 86400)
    report = await maintain(pool, short, now=NOW)
    assert report.dropped == []  # events up to 7 days old are still accepted
    assert await attached_days(pool) == [day(-6), day(-5), day(0)]
    off = retention_policy(ahead_days=0, retention_days=0)
    await add_days(pool, [-400])
    assert (await maintain(pool, off, now=NOW)).dropped == []


async def test_a_left_over_detached_table_is_dropped(pool: asyncpg.Pool) -> None:
    await add_days(pool, [-40])
    name = part(-40)
    await pool.execute(f"ALTER TABLE raw_events DETACH PARTITION {name}")
    async with pool.acquire() as conn:
        rows = await partition_table(conn, NOW, POLICY)
    assert [(r.name, r.state, r.rows) for r in rows if r.name == name] == [(name, "detached", None)]
    report = await maintain(pool, POLICY, now=NOW)
    assert report.detached == [] and report.dropped == [name]


async def test_with_a_default_partition_the_detach_falls_back_to_plain(
    pool: asyncpg.Pool,
) -> None:
    # PostgreSQL refuses DETACH ... CONCURRENTLY when a DEFAULT partition exists (0A000).
    await add_days(pool, [-50])
    await pool.execute("CREATE TABLE raw_events_default PARTITION OF raw_events DEFAULT")
    report = await maintain(pool, POLICY, now=NOW)
    name = part(-50)
    assert report.detached == report.blocking == report.dropped == [name]


async def test_ingest_keeps_committing_while_a_detach_waits(pool: asyncpg.Pool) -> None:
    """A reader holds the expired partition open, so DETACH ... CONCURRENTLY waits for it;
    meanwhile the writer commits batch after batch into today's partition."""
    await add_days(pool, [-20, -19])
    writer = Writer(pool, writer_config(flush_max_delay_s=0.001, command_timeout_s=10))
    await writer.start()
    reader = await pool.acquire()
    tx = reader.transaction()
    await tx.start()
    await reader.fetchval("SELECT count(*) FROM raw_events")  # locks every partition
    task = asyncio.create_task(maintain(pool, POLICY, now=NOW))
    try:
        deadline = asyncio.get_running_loop().time() + 10
        while asyncio.get_running_loop().time() < deadline:  # bounded: until the detach waits
            waiting = await pool.fetchval(
                """SELECT count(*) FROM pg_stat_activity
                   WHERE query LIKE 'ALTER TABLE "raw_events" DETACH%' AND wait_event IS NOT NULL"""
            )
            if waiting:
                break
            await asyncio.sleep(0.02)
        assert waiting, "the detach never started waiting"
        results = []
        for n in range(20):
            row = EventRow(NOW, "live.tag", f'{{"n": {n}}}', 1, 6, "host", "app", "web.1", "shop")
            batch = PendingBatch("", f"live-{n}", NOW, {"raw_events": [row]}, [], 100)
            results.append(await asyncio.wait_for(writer.submit(batch), 10))
        assert not task.done(), "maintenance finished before the reader let it"
    finally:
        await tx.rollback()
        await pool.release(reader)
    report = await asyncio.wait_for(task, 30)
    await writer.close()
    assert all(r.events_stored == 1 for r in results)
    assert report.dropped == [
        part(-20),
        part(-19),
    ]
    assert report.blocking == []
    assert await pool.fetchval("SELECT count(*) FROM raw_events WHERE tag = 'live.tag'") == 20


async def test_only_one_maintenance_at_a_time(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", 0x64726E32_00000002)
        try:
            report = await maintain(pool, POLICY, now=NOW)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", 0x64726E32_00000002)
    assert report.skipped == "another maintenance is running"
    assert report.created == []


async def test_the_clock_runs_maintenance(pool: asyncpg.Pool) -> None:
    policy = retention_policy(ahead_days=3, retention_days=10)
    stop = asyncio.Event()
    runs: list[object] = []
    ran = asyncio.Event()

    async def maintenance() -> None:
        runs.append(await maintain(pool, policy))
        ran.set()

    clock = Clock(
        pool, {}, clock_config(poll_s=0.05, maintenance_every_s=3600), maintenance=maintenance
    )
    task = asyncio.create_task(clock.serve(stop))
    await asyncio.wait_for(ran.wait(), 10)
    stop.set()
    await asyncio.wait_for(task, 10)
    assert len(runs) == 1  # once at start, next after maintenance_every_s
    async with pool.acquire() as conn:
        assert await days_ahead(conn, datetime.now(UTC).date()) == 3


def test_partitions_cli_list_and_maintain(database_url: str, tmp_path: Path) -> None:
    asyncio.run(migrate(database_url))
    env = clean_env(DATABASE_URL=database_url, DRAIN_RETENTION_DAYS="10")

    async def old_partition() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            await ensure_partitions(conn, "raw_events", [day(-30)])
        finally:
            await conn.close()

    asyncio.run(old_partition())

    def drain(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*drain_command(), "partitions", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )

    listed = drain("list")
    assert listed.returncode == 0, listed.stderr
    lines = [line for line in listed.stdout.splitlines() if not line.startswith("{")]
    assert lines[0].split() == ["PARTITION", "DAY", "(UTC)", "STATE", "ROWS", "(est.)", "SIZE"]
    assert lines[1].split()[:3] == [
        part(-30),
        day(-30).isoformat(),
        "expired",
    ]
    assert "0 of 2 days ahead made; retention 10 days" in lines[-1]
    done = drain("maintain")
    assert done.returncode == 0, done.stderr
    assert f"dropped   {partition_name('raw_events', day(-30))}" in done.stdout
    assert f"created   {partition_name('raw_events', day(2))}" in done.stdout
    after = drain("list")
    assert part(-30) not in after.stdout
    assert "2 of 2 days ahead made" in after.stdout
    listing = [line for line in after.stdout.splitlines() if not line.startswith("{")]
    assert_aligned(listing[:-1])
    names = [line.split()[0] for line in listing[1:-1]]
    assert partition_name("router_requests", day(2)) in names  # longer than raw_events'
    counted = re.match(r"(\d+) partitions of (\d+) tables; ", listing[-1])
    assert counted is not None, listing[-1]
    assert (int(counted[1]), int(counted[2])) == (len(names), len(TABLES))


def test_text_table_columns_are_as_wide_as_their_widest_cell() -> None:
    lines = text_table(
        ["NAME", "N"], [["router_requests_p20261202", "7"], ["x", "1,000"]], right=(1,)
    )
    assert lines == [
        "NAME                           N",
        "router_requests_p20261202      7",
        "x                          1,000",
    ]
    with pytest.raises(ValueError):
        text_table(["NAME", "N"], [["only one cell"]])


def assert_aligned(lines: list[str]) -> None:
    """``drain partitions list``'s header and rows share their columns: every row is as long
    as the header, the day and the state start where their headings start, the estimate and
    the size end where theirs end (right-aligned)."""
    header, rows = lines[0], lines[1:]
    day_at, state_at = header.index("DAY (UTC)"), header.index("STATE")
    rows_end = header.index("ROWS (est.)") + len("ROWS (est.)")
    for line in rows:
        assert len(line) == len(header), (header, line)
        assert line[day_at - 1] == " " and re.fullmatch(
            r"\d{4}-\d\d-\d\d", line[day_at : day_at + 10]
        ), (header, line)
        assert line[state_at - 1] == " " and line[state_at] != " ", (header, line)
        assert line[rows_end - 1] != " " and line[rows_end] == " ", (header, line)


async def test_an_interrupted_detach_is_finalized_by_the_next_run(pool: asyncpg.Pool) -> None:
    await add_days(pool, [-30])
    name = part(-30)
    reader = await pool.acquire()
    tx = reader.transaction()
    await tx.start()
    await reader.fetchval("SELECT count(*) FROM raw_events")
    detacher = await pool.acquire()
    detach = asyncio.create_task(
        detacher.execute(f'ALTER TABLE "raw_events" DETACH PARTITION {name} CONCURRENTLY')
    )
    try:
        pid = None
        deadline = asyncio.get_running_loop().time() + 10
        while pid is None and asyncio.get_running_loop().time() < deadline:  # bounded
            pid = await pool.fetchval(
                """SELECT pid FROM pg_stat_activity
                   WHERE query LIKE 'ALTER TABLE "raw_events" DETACH%' AND wait_event IS NOT NULL"""
            )
            await asyncio.sleep(0.02)
        assert pid is not None, "the detach never started waiting"
        await pool.execute("SELECT pg_cancel_backend($1)", pid)
        with pytest.raises(asyncpg.QueryCanceledError):
            await asyncio.wait_for(detach, 10)
    finally:
        await tx.rollback()
        await pool.release(reader)
        await pool.release(detacher)
    async with pool.acquire() as conn:
        states = {r.name: r.state for r in await partition_table(conn, NOW, POLICY)}
    assert states[name] == "detach pending"
    report = await maintain(pool, POLICY, now=NOW)
    assert report.detached == report.dropped == [name] and report.blocking == []
