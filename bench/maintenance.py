"""Does partition maintenance block ingest? Writer latency while expired partitions are dropped.

Usage (from the repository root)::

    .venv/bin/python -m bench.maintenance [--database-url URL] [--partitions 8] [--rows 50000]

On a fresh database (``--database-url``, else ``BENCH_DATABASE_URL``, else a temporary
embedded PostgreSQL): ``--partitions`` expired daily partitions of ``--rows`` rows each, and a
group-commit writer submitting 100-event batches into today's partition, one after the other.
A reader holds a transaction open on ``raw_events`` for ``--reader-s`` seconds when the
maintenance starts (like a rollup query). Three phases, each printed as one row:

1. ``baseline``: the writer alone;
2. ``concurrently``: while :func:`drain.store.lifecycle.maintain` detaches (``DETACH ...
   CONCURRENTLY``) and drops the partitions;
3. ``plain detach``: the same with a DEFAULT partition present, which makes PostgreSQL
   refuse CONCURRENTLY, so the fallback (ACCESS EXCLUSIVE, ``lock_timeout`` 5 s) runs.

Figures: batches committed, submit-to-commit latency p50 / p99 / max (ms), and how long the
maintenance took. Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import asyncpg

from bench.loadgen import percentile
from bench.run import admin_server
from drain.records import EventRow, PendingBatch
from drain.settings import Settings
from drain.store.lifecycle import maintain
from drain.store.migrate import migrate
from drain.store.partitions import ensure_partitions
from drain.store.writer import Writer
from testkit.pg import create_database, drop_database


async def _expired(pool: asyncpg.Pool, count: int, rows: int, first: int) -> None:
    today = datetime.now(UTC).date()
    days = [today - timedelta(days=first + n) for n in range(count)]
    async with pool.acquire() as conn:
        await ensure_partitions(conn, "raw_events", days)
        for day in days:
            at = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
            await conn.execute(
                """INSERT INTO raw_events (event_time, received_at, tag, payload)
                   SELECT $1, $1, 'old.tag', jsonb_build_object('n', g)
                   FROM generate_series(1, $2) AS g""",
                at,
                rows,
            )


async def _write_until(writer: Writer, done: asyncio.Event, latencies: list[float]) -> None:
    now = datetime.now(UTC)
    for n in range(1_000_000):  # bounded; ends when `done` is set
        if done.is_set():
            return
        events: list[tuple[object, ...]] = [
            EventRow(
                now, "bench.live", f'{{"n": {n}, "i": {i}}}', 1, 6, "h", "app", "web.1", "shop"
            )
            for i in range(100)
        ]
        batch = PendingBatch(
            "", f"m-{uuid.uuid4().hex}", now, {"raw_events": events}, [], 100 * 200
        )
        started = time.perf_counter()
        await writer.submit(batch)
        latencies.append(time.perf_counter() - started)


async def _reader(url: str, hold_s: float, started: asyncio.Event) -> None:
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            await conn.fetchval("SELECT count(*) FROM raw_events WHERE tag = 'old.tag'")
            started.set()
            await asyncio.sleep(hold_s)
    finally:
        await conn.close()


async def _phase(
    name: str, url: str, pool: asyncpg.Pool, with_maintenance: bool, args: argparse.Namespace
) -> None:
    writer = Writer(pool, Settings.defaults(drain_flush_max_delay_s=0.005).writer_config())
    await writer.start()
    latencies: list[float] = []
    done = asyncio.Event()
    loop_task = asyncio.create_task(_write_until(writer, done, latencies))
    await asyncio.sleep(0.5)  # warm-up, not measured
    latencies.clear()
    began = time.perf_counter()
    took = float("nan")
    dropped = 0
    if with_maintenance:
        holding = asyncio.Event()
        reader = asyncio.create_task(_reader(url, args.reader_s, holding))
        await holding.wait()
        policy = Settings.defaults(
            drain_partitions_ahead_days=1, drain_retention_days=10
        ).retention_policy()
        report = await maintain(pool, policy)
        took = time.perf_counter() - began
        dropped = len(report.dropped)
        await reader
    else:
        await asyncio.sleep(args.reader_s + 1)
    done.set()
    await loop_task
    await writer.close()
    elapsed = time.perf_counter() - began
    print(
        f"| {name:<13} | {len(latencies):>7} | {elapsed:>5.1f} "
        f"| {percentile(latencies, 50) * 1e3:>6.1f} | {percentile(latencies, 99) * 1e3:>7.1f} "
        f"| {max(latencies) * 1e3:>7.1f} | {'-' if took != took else f'{took:.2f}':>8} "
        f"| {dropped:>7} |",
        flush=True,
    )


async def _main(admin: str, args: argparse.Namespace) -> None:
    name, url = await create_database(admin, prefix="drain_bench_maint")
    try:
        await migrate(url)
        pool = await asyncpg.create_pool(url, min_size=2, max_size=6, statement_cache_size=0)
        try:
            print(
                f"{args.partitions} expired partitions x {args.rows:,} rows, reader holds "
                f"{args.reader_s:g} s; writer: 100-event batches, one at a time\n"
            )
            head = (
                "| phase         | batches | s     | p50 ms | p99 ms  | max ms  "
                "| maint. s | dropped |"
            )
            print(head)
            print("".join("|" if c == "|" else "-" for c in head))
            await _phase("baseline", url, pool, False, args)
            await _expired(pool, args.partitions, args.rows, 40)
            await _phase("concurrently", url, pool, True, args)
            await _expired(pool, args.partitions, args.rows, 40)
            await pool.execute("CREATE TABLE raw_events_default PARTITION OF raw_events DEFAULT")
            await _phase("plain detach", url, pool, True, args)
        finally:
            await pool.close()
    finally:
        await drop_database(admin, name)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.maintenance", description=__doc__)
    ap.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--rows", type=int, default=50_000)
    ap.add_argument("--reader-s", type=float, default=2.0)
    args = ap.parse_args(argv)
    with admin_server(args.database_url) as (admin, described):
        print(f"PostgreSQL: {described}")
        asyncio.run(_main(admin, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
