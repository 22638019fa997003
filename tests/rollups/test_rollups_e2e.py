"""The seed's pipeline end to end: ``@[production.pay]`` events posted to ``POST /logs`` over
real HTTP, then the ``payment_history`` rollup, checked against a direct SQL query."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import httpx

from drain.rollups.clock import Clock
from drain.rollups.runner import RunKind, load_rollups, run_window
from drain.settings import Settings
from drain.store.migrate import migrate
from drain.web.app import create_app
from tests.support.config import clock_config
from tests.support.served import (
    AUTH,
    PASSWORD,
    USER,
    event_line,
    frame,
    logplex_headers,
    served_app,
)

NOW = datetime(2026, 12, 1, 6, 10, tzinfo=UTC)
CATEGORIES = ("categoryA", "categoryB", "categoryC")


def seed_body(
    rng: random.Random, start: datetime, count: int
) -> tuple[bytes, list[dict[str, object]]]:
    """Logplex frames of pay events shaped like the seed article's, plus router noise."""
    frames, payloads = [], []
    for i in range(count):
        at = start + timedelta(seconds=rng.randrange(6 * 3600))
        payload: dict[str, object] = {
            "uid": rng.randrange(1000),
            "item_id": rng.randrange(10000),
            "item_category": rng.choice(CATEGORIES),
            "price": rng.randrange(1, 500000),
        }
        payloads.append({**payload, "at": at})
        frames.append(frame(event_line(at, "production.pay", payload, proc=f"web.{i % 3 + 1}")))
        if i % 5 == 0:
            frames.append(
                frame(f"<158>1 {at.isoformat()} host heroku router - at=info status=200\n")
            )
    return b"".join(frames), payloads


async def test_payment_history_from_posted_events_equals_direct_sql(database_url: str) -> None:
    await migrate(database_url)
    rng = random.Random(1234)
    start = NOW.replace(minute=0) - timedelta(hours=6)
    settings = Settings(database_url=None, drain_username=USER, drain_password=PASSWORD)
    app = create_app(settings, database_url=database_url, clock=lambda: NOW)
    sent: list[dict[str, object]] = []
    async with served_app(app) as base, httpx.AsyncClient(base_url=base, auth=AUTH) as client:
        for n in range(8):
            body, payloads = seed_body(rng, start, 60)
            response = await client.post(
                "/logs", content=body, headers=logplex_headers(frame_id=f"seed-{n}")
            )
            assert response.status_code == 200
            assert response.headers["drain-events-stored"] == "60"
            sent.extend(payloads)

    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=3)
    assert pool is not None
    try:
        results = await Clock(pool, load_rollups(), clock_config(), now=lambda: NOW).run_due()
        assert all(r.error is None for r in results)
        # the clock's first run covers the lateness window only; a backfill covers the rest
        spec = load_rollups()["payment_history"]
        await run_window(
            pool,
            spec,
            kind=RunKind.BACKFILL,
            scheduled_for=NOW,
            window=(start, NOW.replace(minute=0)),
        )
        got = {
            (r["bucket"], r["category"]): (r["revenue"], r["events"])
            for r in await pool.fetch("SELECT * FROM payment_history")
        }
        direct = {
            (r["b"], r["c"]): (r["s"], r["n"])
            for r in await pool.fetch(
                """SELECT date_trunc('hour', event_time AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS b,
                          payload->>'item_category' AS c,
                          sum((payload->>'price')::numeric) AS s, count(*) AS n
                     FROM raw_events WHERE tag = 'production.pay' GROUP BY 1, 2"""
            )
        }
    finally:
        await pool.close()

    # the oracle of the oracle: the sums computed in Python from what was sent
    expected: dict[tuple[datetime, str], tuple[Decimal, int]] = {}
    for p in sent:
        at = p["at"]
        assert isinstance(at, datetime)
        key = (at.replace(minute=0, second=0, microsecond=0), str(p["item_category"]))
        revenue, count = expected.get(key, (Decimal(0), 0))
        expected[key] = (revenue + Decimal(str(p["price"])), count + 1)
    assert got == direct == expected
    assert sum(n for _, n in got.values()) == 480
