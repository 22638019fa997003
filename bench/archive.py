"""The Parquet archive's figures: rows/s archived, bytes per event, DuckDB against PostgreSQL.

Usage (from the repository root)::

    .venv/bin/python -m bench.archive [--database-url URL] [--days 30] [--rows-per-day 50000]

On a fresh database (``--database-url``, else ``BENCH_DATABASE_URL``, else a temporary
embedded PostgreSQL): ``--days`` days past retention of ``--rows-per-day`` raw_events rows
each (the test data of tests/archive: four apps, ``production.pay`` events with prices and
categories, other tags), then, printed as one table:

1. PostgreSQL's size of the month: ``pg_total_relation_size`` of its partitions (table,
   TOAST and the ``(tag, event_time)`` index), in bytes per event;
2. the ``payment_history`` rollup's query (sql/rollups/payment_history.sql) over the whole
   month of raw events in PostgreSQL, seconds (median of ``--repeat``);
3. ``drain archive`` of the month into a local directory: rows/s, end to end (export, write,
   read back and verify, manifest, detach, drop);
4. the archive's size: Parquet bytes per event (zstd);
5. the same query in DuckDB over the month's files (``read_parquet(..., hive_partitioning =
   true)``), seconds (median of ``--repeat``).

Timings are printed, never asserted; the machine is shared, so compare the ratios of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from drain.archive.archiver import Archiver
from drain.archive.config import ArchiveConfig
from drain.settings import Settings
from drain.store.lifecycle import maintain
from drain.store.migrate import migrate
from drain.store.partitions import ensure_partitions
from testkit.pg import create_database, drop_database, server_admin_url

APPS = ["shop", "blog", "d.fc6b856b-3332-4546-93de-7d0ee272c3bd", ""]

FILL = """
INSERT INTO raw_events (event_time, received_at, tag, payload, facility, severity, hostname,
                        app_name, proc_id, drain_token, frame_id, app)
SELECT $1::timestamptz + ((g * $3::bigint) || ' microseconds')::interval,
       $1::timestamptz + interval '1 day',
       CASE WHEN g % 4 = 3 THEN 'production.access' ELSE 'production.pay' END,
       jsonb_build_object('uid', g, 'item_id', g % 1000,
                          'item_category', 'category' || chr(65 + g % 5),
                          'price', CASE WHEN g % 10 = 0 THEN (g % 997) + 0.25 ELSE g % 997 END),
       1, 6, 'host-' || (g % 3), 'app', 'web.' || (g % 4), 'd.token', 'frame-' || (g / 500),
       ($2::text[])[1 + (g % array_length($2::text[], 1))]
  FROM generate_series(0, $4 - 1) AS g
"""

PG_QUERY = """
SELECT date_trunc('hour', event_time) AS bucket, app,
       coalesce(payload->>'item_category', '(none)') AS category,
       coalesce(sum(CASE WHEN jsonb_typeof(payload->'price') = 'number'
                         THEN (payload->>'price')::numeric END), 0) AS revenue,
       count(*) AS events
  FROM raw_events
 WHERE tag = 'production.pay' AND event_time >= $1 AND event_time < $2
 GROUP BY 1, 2, 3
"""

DUCKDB_QUERY = """
SELECT date_trunc('hour', event_time) AS bucket, coalesce(app, '') AS app,
       coalesce(payload->>'$.item_category', '(none)') AS category,
       coalesce(sum(CASE WHEN json_type(payload, '$.price') IN ('UBIGINT', 'BIGINT', 'DOUBLE')
                         THEN CAST(payload->>'$.price' AS DECIMAL(38, 6)) END), 0) AS revenue,
       count(*) AS events
  FROM read_parquet('{glob}', hive_partitioning = true)
 WHERE tag = 'production.pay' AND date >= DATE '{first}' AND date <= DATE '{last}'
 GROUP BY ALL
"""


@contextlib.contextmanager
def admin(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    with server_admin_url() as embedded:
        yield embedded


async def run(args: argparse.Namespace, admin_url: str) -> None:
    name, url = await create_database(admin_url, prefix="drain_bench_archive")
    try:
        await migrate(url)
        pool = await asyncpg.create_pool(url, min_size=1, max_size=3)
        now = datetime.now(UTC)
        days = [(now - timedelta(days=40 + n)).date() for n in range(args.days)][::-1]
        step_us = 86_400_000_000 // args.rows_per_day
        started = time.perf_counter()
        async with pool.acquire() as conn:
            await ensure_partitions(conn, "raw_events", days)
            for day in days:
                at = datetime(day.year, day.month, day.day, tzinfo=UTC)
                await conn.execute(FILL, at, APPS, step_us, args.rows_per_day)
            await conn.execute("ANALYZE raw_events")
            rows = await conn.fetchval("SELECT count(*) FROM raw_events")
            pg_bytes = await conn.fetchval(
                """SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits
                    WHERE inhparent = 'raw_events'::regclass"""
            )
        print(
            f"filled {rows:,} rows over {len(days)} days in {time.perf_counter() - started:.1f} s"
        )
        lo = datetime(days[0].year, days[0].month, days[0].day, tzinfo=UTC)
        hi = datetime(days[-1].year, days[-1].month, days[-1].day, tzinfo=UTC) + timedelta(days=1)
        pg_times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            pg_rows = await pool.fetch(PG_QUERY, lo, hi)
            pg_times.append(time.perf_counter() - t)
        with tempfile.TemporaryDirectory(prefix="drain-bench-archive-") as tmp:
            config = ArchiveConfig(
                url=str(Path(tmp) / "archive"),
                file_max_bytes=Settings.defaults().drain_archive_file_max_bytes,
                endpoint_url=None,
                region="us-east-1",
            )
            policy = Settings.defaults(drain_retention_days=10).retention_policy()
            t = time.perf_counter()
            report = await maintain(
                pool, policy, guard=Archiver(pool, config), retire_only=True, now=now
            )
            archive_s = time.perf_counter() - t
            assert not report.failed, report.failed
            parquet_bytes = await pool.fetchval(
                "SELECT sum(bytes) FROM archive_partitions WHERE state = 'dropped'"
            )
            import duckdb

            glob = str(Path(tmp) / "archive" / "raw_events" / "*" / "*" / "*.parquet")
            query = DUCKDB_QUERY.format(glob=glob, first=days[0], last=days[-1])
            db = duckdb.connect()
            db.execute("SET TimeZone = 'UTC'")
            duck_times = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                duck_rows = db.execute(query).fetchall()
                duck_times.append(time.perf_counter() - t)
        await pool.close()
        assert len(duck_rows) == len(pg_rows), (len(duck_rows), len(pg_rows))
        pg_s, duck_s = statistics.median(pg_times), statistics.median(duck_times)
        print()
        print(f"| figure ({rows:,} events, {len(days)} days, 4 apps) | value |")
        print("|---|---|")
        print(
            f"| archived (export, write, verify, drop) | {rows / archive_s:,.0f} rows/s "
            f"({archive_s:.1f} s) |"
        )
        print(f"| PostgreSQL, table + TOAST + index | {pg_bytes / rows:.1f} bytes/event |")
        print(
            f"| Parquet (zstd) | {parquet_bytes / rows:.1f} bytes/event "
            f"({pg_bytes / parquet_bytes:.1f}x smaller) |"
        )
        print(f"| payment_history over the month, PostgreSQL | {pg_s:.2f} s |")
        print(
            f"| payment_history over the month, DuckDB on the files | {duck_s:.2f} s "
            f"({pg_s / duck_s:.1f}x faster) |"
        )
    finally:
        await drop_database(admin_url, name)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--rows-per-day", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    with admin(args.database_url) as url:
        asyncio.run(run(args, url))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
