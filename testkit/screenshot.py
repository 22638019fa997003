"""The README's screenshot: the dashboard's hourly payments per category, in headless Chromium.

    python -m testkit.screenshot docs/img/dashboard.png
    TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test python -m testkit.screenshot OUT

Makes a scratch database (TEST_DATABASE_URL's server, else an embedded one), writes a day of
the seed article's ``production.pay`` events (five item categories, two apps) and some
``production.access`` events, runs the rollups up to two hours ago (the rest is computed
live, as on a drain whose clock runs hourly), serves the drain's app on 127.0.0.1 and saves
the payment_history page as a PNG. Drops the database at the end.
"""

from __future__ import annotations

import argparse
import asyncio
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from drain.rollups.runner import RunKind, backfill_windows, load_rollups, run_window
from drain.settings import Settings
from drain.store.migrate import migrate
from drain.web.app import create_app
from testkit.browser import chromium, serve_in_thread, wait_for_charts
from testkit.pg import create_database, drop_database, server_admin_url

FILL = """
INSERT INTO raw_events (event_time, received_at, tag, payload, app, proc_id)
SELECT t, t,
       CASE WHEN i % 3 = 0 THEN 'production.access' ELSE 'production.pay' END,
       CASE WHEN i % 3 = 0 THEN jsonb_build_object('uid', i % 977, 'path', '/items/' || i % 50)
            ELSE jsonb_build_object('uid', i % 977, 'item_id', i % 7919,
                 'item_category', 'category' || chr(65 + (i * 7 + i / 400) % 5),
                 'price', (200 + (i * 37) % 900)
                          * (1.6 + sin(extract(epoch FROM t) / 13000.0 + (i % 5)))::int)
       END,
       CASE WHEN i % 4 = 0 THEN 'api' ELSE 'shop' END,
       'web.' || (1 + i % 3)
  FROM generate_series(0, $2 - 1) AS i,
       LATERAL (SELECT $1::timestamptz + i * (86400.0 / $2) * interval '1 second' AS t) AS s
"""


async def make(out: Path, events: int) -> None:
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(minutes=40)
    start = now - timedelta(days=1)
    with ExitStack() as stack:
        import os

        admin = os.environ.get("TEST_DATABASE_URL") or stack.enter_context(server_admin_url())
        name, url = await create_database(admin, "drain_screenshot")
        try:
            await migrate(url)
            pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
            assert pool is not None
            try:
                for day in (start.date(), now.date()):
                    await pool.execute("SELECT drain_ensure_partition($1::date)", day)
                await pool.execute(FILL, start, events)
                until = now.replace(minute=0) - timedelta(hours=2)
                for spec in load_rollups().values():
                    for lo, hi in backfill_windows(spec, start - timedelta(hours=1), until):
                        await run_window(
                            pool, spec, kind=RunKind.BACKFILL, scheduled_for=hi, window=(lo, hi)
                        )
            finally:
                await pool.close()
            settings = Settings.defaults(database_url=None)
            app = create_app(settings, database_url=url, clock=lambda: now)
            with serve_in_thread(app) as base, chromium(window=(1280, 860)) as browser:
                browser.get(base + "/rollups/payment_history?range=24h&app=shop")
                wait_for_charts(browser)
                out.parent.mkdir(parents=True, exist_ok=True)
                browser.save_screenshot(str(out))
        finally:
            await drop_database(admin, name)
    print(f"wrote {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--events", type=int, default=20_000)
    arguments = parser.parse_args()
    asyncio.run(make(arguments.out, arguments.events))
