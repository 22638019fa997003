"""How long a backfill of one day of 1M events takes (issue: scheduled rollups).

Makes a fresh database, fills one day of ``raw_events`` with N events shaped like the
seed's (``@[production.pay] {"uid":..,"item_id":..,"item_category":..,"price":..}``, plus
other tags), then backfills every shipped rollup over that day with the same code as
``drain rollup backfill`` and prints the figures.

    python -m bench.backfill                     # 1,000,000 events on the embedded server
    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test python -m bench.backfill
    python -m bench.backfill --events 200000     # smaller
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta

import asyncpg

from drain.rollups.runner import RunKind, backfill_windows, load_rollups, run_window
from drain.store.migrate import migrate
from testkit.pg import create_database, drop_database, server_admin_url

DAY = datetime(2026, 11, 30, tzinfo=UTC)

FILL = """
INSERT INTO raw_events (event_time, received_at, tag, payload, facility, severity,
                        hostname, app_name, proc_id)
SELECT $1::timestamptz + (i * (86400.0 / $2)) * interval '1 second',
       now(),
       CASE WHEN i % 10 < 4 THEN 'production.pay'
            WHEN i % 10 < 7 THEN 'production.access'
            WHEN i % 10 < 9 THEN 'production.login'
            ELSE 'production.register' END,
       CASE WHEN i % 10 < 4 THEN jsonb_build_object(
                'uid', i % 100000, 'item_id', i % 9973,
                'item_category', 'category' || chr(65 + (i % 5)), 'price', 100 + i % 1000)
            ELSE jsonb_build_object('uid', i % 100000, 'url', 'https://example.com/p/' || i % 977)
       END,
       1, 6, 'host', 'app', 'web.' || (1 + i % 4)
  FROM generate_series(0, $2 - 1) AS i
"""


async def main(events: int) -> None:
    with ExitStack() as stack:
        admin = os.environ.get("BENCH_DATABASE_URL") or stack.enter_context(server_admin_url())
        name, url = await create_database(admin)
        try:
            await migrate(url)
            pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
            assert pool is not None
            try:
                await pool.execute("SELECT drain_ensure_partition($1)", DAY.date())
                t = time.perf_counter()
                await pool.execute(FILL, DAY, events)
                await pool.execute("ANALYZE raw_events")
                fill_s = time.perf_counter() - t
                print(
                    f"server: {await pool.fetchval('SHOW server_version')}, "
                    f"filled {events:,} events in {fill_s:.1f} s"
                )
                for spec in load_rollups().values():
                    windows = list(backfill_windows(spec, DAY, DAY + timedelta(days=1)))
                    t = time.perf_counter()
                    rows = 0
                    for lo, hi in windows:
                        r = await run_window(
                            pool, spec, kind=RunKind.BACKFILL, scheduled_for=hi, window=(lo, hi)
                        )
                        assert r.error is None, r.error
                        rows += r.rows_written
                    took = time.perf_counter() - t
                    print(
                        f"backfill {spec.name:<24} 1 day, {events:,} events: {took:6.2f} s, "
                        f"{len(windows)} window(s), {rows} rows, "
                        f"{events / took:,.0f} events/s scanned"
                    )
            finally:
                await pool.close()
        finally:
            await drop_database(admin, name)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    asyncio.run(main(parser.parse_args().events))
