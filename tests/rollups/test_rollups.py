"""Rollups: the file format and window arithmetic (pure), and runs on a real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest

from drain.rollups.clock import Clock
from drain.rollups.runner import (
    RunKind,
    backfill_windows,
    load_rollups,
    rollup_status,
    run_window,
)
from drain.rollups.spec import (
    RollupFormatError,
    complete_until,
    latest_tick,
    parse_duration_s,
    parse_rollup,
    ticks_between,
    window_for_tick,
)
from drain.store.migrate import migrate
from tests.support.config import clock_config

H = timedelta(hours=1)
T0 = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)

GOOD = """-- drain rollup
-- schedule: 0 * * * *
-- target: t_sum
-- bucket: 1h
-- lateness: 2h
-- tags: a.b, c.d
-- @setup
CREATE TABLE IF NOT EXISTS t_sum (bucket timestamptz PRIMARY KEY, n bigint NOT NULL);
-- @query
SELECT date_trunc('hour', event_time) AS bucket, count(*) AS n FROM raw_events
 WHERE event_time >= :window_start AND event_time < :window_end GROUP BY 1
"""


# ---------------------------------------------------------------- pure


def test_shipped_rollups_parse() -> None:
    specs = load_rollups()
    assert set(specs) == {
        "payment_history",
        "events_per_tag_hourly",
        "events_per_minute",
        "tag_catalog_daily",
        "router_hourly",
        "page_views_daily",
        "dyno_metrics_hourly",
    }
    assert specs["payment_history"].sources == ("raw_events",)
    assert specs["router_hourly"].sources == ("router_requests",)
    assert specs["dyno_metrics_hourly"].sources == ("platform_metrics", "platform_events")
    pay = specs["payment_history"]
    assert (pay.schedule, pay.target, pay.bucket_s, pay.lateness_s) == (
        "0 * * * *",
        "payment_history",
        3600,
        7200,
    )
    assert pay.tags == ("production.pay",)
    assert "$1" in pay.query_sql and "$2" in pay.query_sql
    assert ":window_start" not in pay.query_sql
    assert specs["events_per_tag_hourly"].tags is None


def test_good_file_parses_params_to_positional() -> None:
    spec = parse_rollup("t_sum", GOOD)
    assert spec.tags == ("a.b", "c.d")
    assert "event_time >= $1 AND event_time < $2" in spec.query_sql


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("-- schedule: 0 * * * *", "-- schedule: every hour"), "not a 5-field cron"),
        (("-- target: t_sum", "-- target: T-Sum"), "not a lower-case identifier"),
        (("-- bucket: 1h", "-- bucket: 7m"), "must divide 1d"),
        (("-- bucket: 1h", "-- bucket: soon"), "expected a duration"),
        (("-- lateness: 2h\n", ""), "missing header line '-- lateness"),
        (("-- tags: a.b, c.d", "-- tags: ,"), "list tags"),
        ((":window_end", "now()"), "must use both"),
        (("-- @setup", "-- @prepare"), "unknown section"),
    ],
)
def test_bad_files_are_refused_with_where_and_what(edit: tuple[str, str], message: str) -> None:
    with pytest.raises(RollupFormatError, match=message) as info:
        parse_rollup("t_sum", GOOD.replace(*edit))
    assert str(info.value).startswith("t_sum.sql")


def test_durations() -> None:
    assert [parse_duration_s(x) for x in ("90s", "15m", "2h", "1d")] == [90, 900, 7200, 86400]
    with pytest.raises(ValueError):
        parse_duration_s("0h")


def test_window_reaches_back_one_bucket_plus_lateness() -> None:
    spec = parse_rollup("t_sum", GOOD)
    assert window_for_tick(spec, T0 + 3 * H) == (T0, T0 + 3 * H)
    # a tick off the bucket grid is rounded down
    assert window_for_tick(spec, T0 + 3 * H + timedelta(minutes=5)) == (T0, T0 + 3 * H)


def test_ticks_and_latest_tick() -> None:
    assert latest_tick("0 * * * *", T0 + timedelta(minutes=59)) == T0
    assert latest_tick("0 * * * *", T0) == T0
    assert list(ticks_between("0 * * * *", T0, T0 + 3 * H)) == [T0 + H, T0 + 2 * H, T0 + 3 * H]


def test_complete_until_is_the_end_of_the_last_ticks_window() -> None:
    hourly = parse_rollup("t_sum", GOOD)
    assert complete_until(hourly, T0 + 3 * H) == T0 + 3 * H
    assert complete_until(hourly, T0 + 3 * H + timedelta(minutes=59)) == T0 + 3 * H
    five_past = parse_rollup("t_sum", GOOD.replace("0 * * * *", "5 * * * *"))
    # at 03:04 the 03:05 tick has not come: the window of 02:05 ends at 02:00
    assert complete_until(five_past, T0 + 3 * H + timedelta(minutes=4)) == T0 + 2 * H
    assert complete_until(five_past, T0 + 3 * H + timedelta(minutes=5)) == T0 + 3 * H


def test_backfill_windows_cover_range_in_day_chunks() -> None:
    spec = parse_rollup("t_sum", GOOD)
    windows = list(backfill_windows(spec, T0 + timedelta(minutes=30), T0 + 50 * H))
    assert windows[0][0] == T0 and windows[-1][1] == T0 + 50 * H
    assert all(b - a <= timedelta(days=1) for a, b in windows)
    assert all(windows[i][1] == windows[i + 1][0] for i in range(len(windows) - 1))


# ---------------------------------------------------------------- real PostgreSQL


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    await migrate(database_url)
    p = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    assert p is not None
    try:
        for day in range(-10, 3):
            await p.execute("SELECT drain_ensure_partition($1)", (T0 + timedelta(days=day)).date())
        yield p
    finally:
        await p.close()


async def add_events(
    pool: asyncpg.Pool,
    rows: list[tuple[datetime, str, dict[str, object]]],
    received_at: datetime | None = None,
) -> None:
    """Insert raw events directly (the drain's own write path is tested elsewhere)."""
    await pool.executemany(
        """INSERT INTO raw_events (event_time, received_at, tag, payload, facility, severity,
                hostname, app_name, proc_id)
           VALUES ($1, coalesce($4, now()), $2, $3::jsonb, 1, 6, 'host', 'app', 'web.1')""",
        [(t, tag, json.dumps(p), received_at) for t, tag, p in rows],
    )


def pay(t: datetime, category: str, price: object) -> tuple[datetime, str, dict[str, object]]:
    return (t, "production.pay", {"uid": 1, "item_category": category, "price": price})


async def payment_history(pool: asyncpg.Pool) -> dict[tuple[datetime, str], tuple[Decimal, int]]:
    rows = await pool.fetch("SELECT bucket, category, revenue, events FROM payment_history")
    return {(r["bucket"], r["category"]): (r["revenue"], r["events"]) for r in rows}


async def direct_sums(
    pool: asyncpg.Pool, start: datetime, end: datetime
) -> dict[tuple[datetime, str], Decimal]:
    """The seed's hourly query written directly over raw_events (the oracle)."""
    rows = await pool.fetch(
        """SELECT date_trunc('hour', event_time AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS b,
                  payload->>'item_category' AS c, sum((payload->>'price')::numeric) AS s
             FROM raw_events WHERE tag = 'production.pay'
              AND event_time >= $1 AND event_time < $2 GROUP BY 1, 2""",
        start,
        end,
    )
    return {(r["b"], r["c"]): r["s"] for r in rows}


async def test_payment_history_equals_direct_query(pool: asyncpg.Pool) -> None:
    spec = load_rollups()["payment_history"]
    events = [
        pay(T0 + timedelta(minutes=5 + 7 * i), f"category{'ABC'[i % 3]}", 100 + i)
        for i in range(40)
    ]
    events.append((T0 + timedelta(minutes=10), "production.login", {"uid": 1}))
    await add_events(pool, events)
    result = await run_window(
        pool, spec, kind=RunKind.MANUAL, scheduled_for=T0 + 6 * H, window=(T0, T0 + 6 * H)
    )
    assert result.error is None
    got = await payment_history(pool)
    want = await direct_sums(pool, T0, T0 + 6 * H)
    assert {k: v[0] for k, v in got.items()} == want
    assert result.rows_written == len(want) > 3
    assert sum(v[1] for v in got.values()) == 40


async def test_same_window_twice_changes_nothing(pool: asyncpg.Pool) -> None:
    spec = load_rollups()["payment_history"]
    await add_events(pool, [pay(T0 + timedelta(minutes=m), "categoryA", 10) for m in (1, 61, 121)])
    await run_window(pool, spec, kind=RunKind.MANUAL, scheduled_for=T0 + 3 * H)
    first = await payment_history(pool)
    await run_window(pool, spec, kind=RunKind.MANUAL, scheduled_for=T0 + 3 * H)
    assert await payment_history(pool) == first
    assert len(first) == 3


async def test_bucket_that_became_empty_is_removed(pool: asyncpg.Pool) -> None:
    spec = load_rollups()["payment_history"]
    await add_events(pool, [pay(T0 + timedelta(minutes=5), "categoryZ", 10)])
    await run_window(pool, spec, kind=RunKind.MANUAL, scheduled_for=T0 + H)
    assert (T0, "categoryZ") in await payment_history(pool)
    await pool.execute("DELETE FROM raw_events")
    await run_window(pool, spec, kind=RunKind.MANUAL, scheduled_for=T0 + H)
    assert await payment_history(pool) == {}


async def test_late_event_inside_allowance_corrects_its_bucket(pool: asyncpg.Pool) -> None:
    spec = load_rollups()["payment_history"]
    await add_events(pool, [pay(T0 + timedelta(minutes=30), "categoryA", 100)])
    r1 = await run_window(pool, spec, kind=RunKind.SCHEDULED, scheduled_for=T0 + H)
    assert r1.late_events == 0
    assert (await payment_history(pool))[(T0, "categoryA")] == (Decimal(100), 1)
    # an event for 00:30 arrives after the 01:00 run; the 02:00 run still covers 00:00-01:00
    await add_events(pool, [pay(T0 + timedelta(minutes=31), "categoryA", 5)])
    r2 = await run_window(pool, spec, kind=RunKind.SCHEDULED, scheduled_for=T0 + 2 * H)
    assert r2.window_start <= T0 and r2.late_events == 0
    assert (await payment_history(pool))[(T0, "categoryA")] == (Decimal(105), 2)


async def test_event_later_than_allowance_is_reported(pool: asyncpg.Pool) -> None:
    spec = load_rollups()["payment_history"]
    await run_window(pool, spec, kind=RunKind.SCHEDULED, scheduled_for=T0 + 5 * H)
    # 00:10 is before the next run's window [03:00, 06:00): too late to be counted
    await add_events(pool, [pay(T0 + timedelta(minutes=10), "categoryA", 7)])
    r = await run_window(pool, spec, kind=RunKind.SCHEDULED, scheduled_for=T0 + 6 * H)
    assert r.window_start == T0 + 3 * H
    assert r.late_events == 1
    row = await pool.fetchrow(
        "SELECT late_events, error FROM rollup_runs WHERE scheduled_for = $1", T0 + 6 * H
    )
    assert row is not None and row["late_events"] == 1 and row["error"] is None
    # a backfill counts it
    await run_window(pool, spec, kind=RunKind.BACKFILL, scheduled_for=T0 + H, window=(T0, T0 + H))
    assert (await payment_history(pool))[(T0, "categoryA")] == (Decimal(7), 1)


async def test_failed_run_is_recorded_and_rolled_back(pool: asyncpg.Pool) -> None:
    bad = parse_rollup("t_sum", GOOD.replace("count(*) AS n", "count(*) / 0 AS n"))
    await add_events(pool, [pay(T0 + timedelta(minutes=5), "categoryA", 1)])
    r = await run_window(pool, bad, kind=RunKind.SCHEDULED, scheduled_for=T0 + H)
    assert r.error is not None and "division by zero" in r.error
    row = await pool.fetchrow("SELECT error, rows_written FROM rollup_runs WHERE rollup = 't_sum'")
    assert row is not None and "division by zero" in row["error"]


async def test_clock_catches_up_missed_ticks(pool: asyncpg.Pool) -> None:
    specs = {"payment_history": load_rollups()["payment_history"]}
    now = [T0 + 2 * H + timedelta(minutes=3)]
    clock = Clock(pool, specs, clock_config(), now=lambda: now[0])
    first = await clock.run_due()
    assert [r.scheduled_for for r in first] == [T0 + 2 * H]
    assert await clock.run_due() == []  # nothing new is due
    now[0] = T0 + 7 * H + timedelta(minutes=1)  # the clock was down for five ticks
    caught_up = await clock.run_due()
    assert [r.scheduled_for for r in caught_up] == [T0 + k * H for k in range(3, 8)]
    assert all(r.error is None and not r.skipped for r in caught_up)


async def test_catch_up_is_bounded(pool: asyncpg.Pool) -> None:
    specs = {"payment_history": load_rollups()["payment_history"]}
    now = [T0]
    clock = Clock(pool, specs, clock_config(max_catchup_ticks=3), now=lambda: now[0])
    await clock.run_due()
    now[0] = T0 + 10 * H
    assert [r.scheduled_for for r in await clock.run_due()] == [T0 + k * H for k in (8, 9, 10)]


async def test_two_clocks_never_run_the_same_tick_twice(pool: asyncpg.Pool) -> None:
    shipped = load_rollups()
    specs = {name: shipped[name] for name in ("payment_history", "events_per_tag_hourly")}
    now = T0 + 3 * H + timedelta(minutes=10)
    await add_events(
        pool, [pay(T0 + timedelta(minutes=m), "categoryA", 1) for m in range(0, 180, 7)]
    )
    a = Clock(pool, specs, clock_config(), now=lambda: now)
    b = Clock(pool, specs, clock_config(), now=lambda: now)
    ra, rb = await asyncio.gather(a.run_due(), b.run_due())
    ran = [r for r in ra + rb if not r.skipped]
    assert sorted((r.rollup, r.scheduled_for) for r in ran) == [
        ("events_per_tag_hourly", T0 + 3 * H + timedelta(minutes=5)),
        ("payment_history", T0 + 3 * H),
    ]
    counts = await pool.fetch(
        "SELECT rollup, scheduled_for, count(*) AS n FROM rollup_runs GROUP BY 1, 2"
    )
    assert all(r["n"] == 1 for r in counts)


async def test_only_one_clock_holds_the_leader_lock(pool: asyncpg.Pool) -> None:
    specs = {"payment_history": load_rollups()["payment_history"]}
    now = T0 + H
    stop = asyncio.Event()
    a = Clock(pool, specs, clock_config(poll_s=0.05), now=lambda: now)
    b = Clock(pool, specs, clock_config(poll_s=0.05), now=lambda: now)
    tasks = [asyncio.create_task(a.serve(stop)), asyncio.create_task(b.serve(stop))]
    deadline = asyncio.get_running_loop().time() + 10
    while asyncio.get_running_loop().time() < deadline:
        n = await pool.fetchval("SELECT count(*) FROM rollup_runs")
        if n:
            break
        await asyncio.sleep(0.02)
    holders = await pool.fetchval(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
    )
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=10)
    assert holders == 1
    assert await pool.fetchval("SELECT count(*) FROM rollup_runs") == 1


async def test_status_reports_lag_last_error_and_late_events(pool: asyncpg.Pool) -> None:
    specs = load_rollups()
    await add_events(pool, [pay(T0 + timedelta(minutes=5), "categoryA", 1)])
    await run_window(pool, specs["payment_history"], kind=RunKind.SCHEDULED, scheduled_for=T0 + H)
    bad = parse_rollup("t_sum", GOOD.replace("count(*) AS n", "count(*) / 0 AS n"))
    await run_window(pool, bad, kind=RunKind.MANUAL, scheduled_for=T0 + H)
    now = T0 + 4 * H
    status = {
        s.rollup: s
        for s in await rollup_status(pool, ["payment_history", "t_sum", "never_ran"], now)
    }
    assert status["payment_history"].last_window_end == T0 + H
    assert status["payment_history"].lag_s == 3 * 3600
    assert status["payment_history"].last_error is None
    assert status["t_sum"].last_error is not None and "division" in status["t_sum"].last_error
    assert status["never_ran"].lag_s is None and status["never_ran"].last_run_at is None
