"""How long each dashboard endpoint takes with 10 million events in raw_events.

Makes a fresh database (BENCH_DATABASE_URL's server, else an embedded one), fills
``raw_events`` with N events over the 7 days before now (in time order, as a drain writes
them; 3 apps; ``production.pay`` 40 %, ``production.access`` 30 %, ``production.login`` 20 %,
``production.register`` 10 %, payloads shaped like the seed article's), VACUUM ANALYZE,
backfills every shipped rollup as far as ``drain clock`` would have by now (its latest tick's
window; the buckets since are computed live, as on a running drain), serves the drain's app
on 127.0.0.1 and times every ``/api`` endpoint and page over HTTP for the 1 h, 24 h and 7 d
ranges: the first request (cold) and the median and max of the next ``--repeat``. Then drops
the BRIN index on ``event_time`` and times the endpoints that compute buckets live again, to
show what it buys. Prints the figures; bench/README.md keeps them. The database is dropped at
the end.

    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test python -m bench.dashboard
    python -m bench.dashboard --events 1000000 --repeat 3     # smaller
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx

from drain.rollups.runner import RunKind, backfill_windows, load_rollups, run_window
from drain.rollups.spec import latest_tick, window_for_tick
from drain.settings import Settings
from drain.store.migrate import migrate
from drain.web.app import create_app
from testkit.browser import serve_in_thread
from testkit.pg import create_database, drop_database, server_admin_url

#: events per INSERT ... SELECT (each a contiguous stretch of time)
CHUNK = 1_000_000

FILL = """
INSERT INTO raw_events (event_time, received_at, tag, payload, facility, severity, hostname,
                        app_name, proc_id, drain_token, frame_id, app)
SELECT t, t + interval '1 second',
       CASE WHEN i % 10 < 4 THEN 'production.pay'
            WHEN i % 10 < 7 THEN 'production.access'
            WHEN i % 10 < 9 THEN 'production.login'
            ELSE 'production.register' END,
       CASE WHEN i % 10 < 4 THEN jsonb_build_object(
                'uid', i % 100000, 'item_id', i % 9973,
                'item_category', 'category' || chr(65 + (i % 5)::int), 'price', 100 + i % 1000)
            ELSE jsonb_build_object('uid', i % 100000, 'url', 'https://example.com/p/' || i % 977)
       END,
       1, 6, 'host', 'app', 'web.' || (1 + i % 4), 'd.bench', 'f' || i,
       CASE WHEN i % 7 < 4 THEN 'shop' WHEN i % 7 < 6 THEN 'api' ELSE 'worker' END
  FROM generate_series($2::bigint, $3::bigint - 1) AS i,
       LATERAL (SELECT $1::timestamptz + (i * $4::float8) * interval '1 second' AS t) AS s
"""

ENDPOINTS = [
    "/api/overview",
    "/api/events",
    "/api/rollups",
    "/api/rollups/payment_history",
    "/api/rollups/payment_history.csv",
    "/api/rollups/events_per_tag_hourly",
    "/api/tags",
    "/api/quarantine",
]
PAGES = ["/", "/rollups/payment_history", "/tags", "/quarantine"]
LIVE = ["/api/events", "/api/rollups/events_per_tag_hourly", "/api/tags"]


def timed(client: httpx.Client, path: str, params: dict[str, str], repeat: int) -> list[float]:
    """Milliseconds of 1 + ``repeat`` GETs of ``path`` (each must answer 200)."""
    out = []
    for _ in range(1 + repeat):
        started = time.perf_counter()
        response = client.get(path, params=params)
        out.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
    return out


def report(client: httpx.Client, paths: list[str], repeat: int) -> list[float]:
    medians = []
    print(f"{'endpoint':<38} {'range':>5} {'cold ms':>8} {'median ms':>10} {'max ms':>8}")
    for path in paths:
        for preset in ("1h", "24h", "7d"):
            times = timed(client, path, {"range": preset}, repeat)
            warm = times[1:] or times
            medians.append(statistics.median(warm))
            print(
                f"{path:<38} {preset:>5} {times[0]:8.1f} {statistics.median(warm):10.1f} "
                f"{max(warm):8.1f}"
            )
    return medians


async def fill(url: str, events: int, now: datetime) -> tuple[float, float]:
    start = now - timedelta(days=7)
    step_s = 7 * 86400 / events
    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    assert pool is not None
    try:
        for day in range(9):
            await pool.execute(
                "SELECT drain_ensure_partition($1::date)", (start + timedelta(days=day)).date()
            )
        t = time.perf_counter()
        for lo in range(0, events, CHUNK):
            await pool.execute(FILL, start, lo, min(events, lo + CHUNK), step_s, timeout=3600)
        await pool.execute("VACUUM ANALYZE raw_events", timeout=3600)
        fill_s = time.perf_counter() - t
        t = time.perf_counter()
        for spec in load_rollups().values():
            # as far as `drain clock` would have run it by now: its latest tick's window
            until = window_for_tick(spec, latest_tick(spec.schedule, now))[1]
            s0 = time.perf_counter()
            rows = 0
            for lo_w, hi_w in backfill_windows(spec, start - timedelta(hours=1), until):
                result = await run_window(
                    pool, spec, kind=RunKind.BACKFILL, scheduled_for=hi_w, window=(lo_w, hi_w)
                )
                assert result.error is None, result.error
                rows += result.rows_written
            live_min = (now - until).total_seconds() / 60
            print(
                f"  backfill {spec.name:<24} {time.perf_counter() - s0:6.1f} s, {rows:,} rows, "
                f"complete until {until:%H:%M} ({live_min:.0f} min computed live)"
            )
        backfill_s = time.perf_counter() - t
        size = await pool.fetchval("SELECT pg_size_pretty(pg_total_relation_size('raw_events'))")
        parts = await pool.fetch(
            """SELECT c.relname, pg_total_relation_size(c.oid) AS bytes FROM pg_inherits i
                 JOIN pg_class c ON c.oid = i.inhrelid
                WHERE i.inhparent = 'raw_events'::regclass ORDER BY 1"""
        )
        total = sum(int(p["bytes"]) for p in parts)
        print(f"  raw_events {size} in {len(parts)} partitions ({total / 2**20:,.0f} MiB)")
    finally:
        await pool.close()
    return fill_s, backfill_s


async def drop_brin(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("DROP INDEX raw_events_event_time_brin")
    finally:
        await conn.close()


def main(events: int, repeat: int) -> None:
    now = datetime.now(UTC)
    with ExitStack() as stack:
        admin = os.environ.get("BENCH_DATABASE_URL") or stack.enter_context(server_admin_url())
        name, url = asyncio.run(create_database(admin, "drain_bench_dashboard"))
        try:
            asyncio.run(migrate(url))
            conn_info = asyncio.run(_server_version(url))
            print(f"server: PostgreSQL {conn_info}; {events:,} events over the 7 days before now")
            fill_s, backfill_s = asyncio.run(fill(url, events, now))
            print(f"  filled in {fill_s:.0f} s (INSERT ... SELECT, VACUUM ANALYZE)")
            print(f"  backfilled every rollup in {backfill_s:.0f} s")
            settings = Settings.defaults(database_url=None)
            app = create_app(settings, database_url=url)
            with serve_in_thread(app) as base, httpx.Client(base_url=base, timeout=60) as client:
                print("\nwith the BRIN index on raw_events(event_time) (migration 0300):")
                medians = report(client, ENDPOINTS + PAGES, repeat)
                print(f"slowest median: {max(medians):.1f} ms (target: each page's data < 300 ms)")
                asyncio.run(drop_brin(url))
                print("\nwithout it (the endpoints that compute the newest buckets live):")
                report(client, LIVE, repeat)
        finally:
            asyncio.run(drop_database(admin, name))


async def _server_version(url: str) -> str:
    conn = await asyncpg.connect(url)
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    arguments = parser.parse_args()
    main(arguments.events, arguments.repeat)
