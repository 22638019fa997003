"""A known data set for the dashboard's tests, hostile values included, and its app.

:func:`seed` writes, straight into a migrated database, ``production.pay`` events for two apps
over the 30 hours before :data:`NOW`, events of other tags (one key changes type: a drift), a
few lines of markup meant to run in a browser (as a tag, an app, a category, a payload and a
quarantined line), and runs ``payment_history`` up to three hours before :data:`NOW`, so the
dashboard reads older buckets from the table and the newest from raw_events.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from fastapi import FastAPI

from drain.rollups.runner import RunKind, backfill_windows, load_rollups, run_window
from drain.web.app import create_app
from tests.support.served import app_settings

#: the dashboard's clock in these tests (a whole hour)
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
#: the rollup runs cover buckets before this
RUN_UNTIL = NOW - timedelta(hours=3)
H = timedelta(hours=1)

#: markup that would run if a page rendered it as HTML; each sets window.__xss
XSS_CATEGORY = '<img src=x onerror="window.__xss=1">'
XSS_TAG = "<script>window.__xss=2</script>"
XSS_APP = "<svg onload=window.__xss=3>"
XSS_NAME = '"><img src=x onerror=window.__xss=4>'
XSS_RAW = b'@[x] {"a":"</pre><script>window.__xss=5</script>"}\xff'
XSS_STRINGS = (XSS_CATEGORY, XSS_TAG, XSS_APP, XSS_NAME)


@dataclass(frozen=True)
class Seeded:
    """What :func:`seed` wrote: the apps and the (app, bucket, category) -> revenue it expects."""

    apps: tuple[str, ...]
    revenue: dict[tuple[str, datetime, str], float]


def _pay(at: datetime, app: str, category: str, price: int) -> tuple[Any, ...]:
    payload = {"uid": 7, "item_id": 11, "item_category": category, "price": price}
    return (at, "production.pay", json.dumps(payload), app, "web.1")


async def seed(url: str) -> Seeded:
    """Fill the database at ``url`` (migrated) with the data set; see the module docstring."""
    rows: list[tuple[Any, ...]] = []
    revenue: dict[tuple[str, datetime, str], float] = {}
    for hour in range(30):
        start = NOW - (hour + 1) * H
        for app, categories in (
            ("shop", ("categoryA", "categoryB", "categoryC")),
            ("api", ("categoryA",)),
        ):
            for k, category in enumerate(categories):
                for n in range(1 + (hour + k) % 3):
                    price = 100 * (k + 1) + hour + n
                    rows.append(
                        _pay(start + timedelta(minutes=5 + 13 * n + k), app, category, price)
                    )
                    key = (app, start, category)
                    revenue[key] = revenue.get(key, 0.0) + price
    # other tags: a drift in "user" (a number, then a string); the hostile values
    for minute in range(0, 120, 10):
        user: Any = 42 if minute < 60 else "42"
        at = NOW - timedelta(minutes=minute + 1)
        rows.append((at, "shop.signup", json.dumps({"user": user, "plan": "pro"}), "shop", "web.2"))
    hostile_at = NOW - timedelta(minutes=30)
    rows.append(_pay(hostile_at, "shop", XSS_CATEGORY, 9))
    revenue[("shop", NOW - H, XSS_CATEGORY)] = 9.0
    rows.append((hostile_at, XSS_TAG, json.dumps({"name": XSS_NAME}), XSS_APP, "web.1"))
    conn = await asyncpg.connect(url)
    try:
        for day in range(-3, 3):
            await conn.execute(
                "SELECT drain_ensure_partition($1::date)", (NOW + timedelta(days=day)).date()
            )
        await conn.executemany(
            """INSERT INTO raw_events (event_time, received_at, tag, payload, app, proc_id)
               VALUES ($1, $1, $2, $3::jsonb, $4, $5)""",
            rows,
        )
        await conn.execute(
            """INSERT INTO quarantine (received_at, reason, detail, raw, raw_bytes, tag, app)
               VALUES ($1, 'invalid_json', $2, $3, $4, $5, 'shop')""",
            hostile_at,
            XSS_NAME,
            XSS_RAW,
            len(XSS_RAW),
            XSS_TAG,
        )
    finally:
        await conn.close()
    await run_rollup(url, "payment_history", NOW - 31 * H, RUN_UNTIL)
    return Seeded(("api", "shop", XSS_APP), revenue)


async def run_rollup(url: str, name: str, start: datetime, end: datetime) -> None:
    """Backfill rollup ``name`` over ``[start, end)``, as ``drain rollup backfill`` does."""
    spec = load_rollups()[name]
    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    try:
        for lo, hi in backfill_windows(spec, start, end):
            result = await run_window(
                pool, spec, kind=RunKind.BACKFILL, scheduled_for=hi, window=(lo, hi)
            )
            assert result.error is None, result.error
    finally:
        await pool.close()


def dashboard_app(url: str, **overrides: Any) -> FastAPI:
    """The drain's app on ``url`` whose clock reads :data:`NOW` (a local drain: the dashboard
    is open unless viewer credentials are given)."""
    return create_app(app_settings(**overrides), database_url=url, clock=lambda: NOW)
