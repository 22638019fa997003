"""The rollups of Heroku's own lines (router_hourly, page_views_daily, dyno_metrics_hourly)
on a real PostgreSQL: lines decoded and committed by the drain's own decoder and writer,
the rollups run by the runner, their rows checked against Python sums of the same lines
and against SQL computed directly on the typed tables; late rows are counted."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from drain.inputs.logplex import decode_body
from drain.records import PendingBatch
from drain.rollups.runner import RunKind, load_rollups, run_window
from drain.store.database import create_pool
from drain.store.writer import Writer
from tests.support.config import LIMITS, RULES, writer_config
from tests.support.lines import (
    is_page_path,
    load_line,
    memory_line,
    normalize_path,
    percentile_cont,
    platform_line,
    router_line,
)
from tests.support.served import frame

H = timedelta(hours=1)
#: the hours the lines fall in, well inside the acceptance window of NOW
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - 6 * H
NOW = T0 + 6 * H
PATHS = ("/", "/users/{n}", "/users/{n}/orders/{m}?page=2", "/app.js", "/about.html", "/items/{u}")
UUIDS = ("3f2b9c1e-8a4d-4b5e-9c6f-0123456789ab", "7d1e0c2b-1a2b-4c3d-8e9f-abcdefabcdef")


def router_lines(rng: random.Random, count: int) -> list[tuple[datetime, str, dict[str, object]]]:
    """``count`` router lines over three hours: (time, line, what it says)."""
    out = []
    for i in range(count):
        at = T0 + timedelta(seconds=rng.randrange(0, 3 * 3600))
        path = rng.choice(PATHS).format(
            n=rng.randrange(1, 50), m=rng.randrange(1, 9), u=rng.choice(UUIDS)
        )
        status = rng.choice((200, 200, 200, 201, 304, 404, 500, 503))
        method = rng.choice(("GET", "GET", "GET", "POST"))
        code = "H12" if status == 503 else None
        fields: dict[str, object] = {
            "method": method,
            "path": path,
            "status": status,
            "service_ms": rng.randrange(1, 3000),
            "size": rng.randrange(0, 50_000),
            "fwd": f"203.0.113.{rng.randrange(1, 20)}",
            "code": code,
        }
        line = router_line(
            at,
            method=method,
            path=path,
            status=status,
            service_ms=int(fields["service_ms"]),
            size=int(fields["size"]),
            fwd=str(fields["fwd"]),
            code=code,
            desc="Request timeout" if code else None,
            request_id=f"00000000-0000-4000-8000-{i:012d}",
        )
        out.append((at, line, fields))
    return out


@pytest.fixture
async def pool(migrated_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(migrated_url, min_size=1, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


async def store(pool: asyncpg.Pool, lines: list[str], frame_id: str) -> None:
    """Decode ``lines`` as one Logplex body of app ``shop`` and commit it with the Writer."""
    body = b"".join(frame(line) for line in lines)
    decoded = decode_body(body, now=NOW, limits=LIMITS, rules=RULES, app="shop")
    assert decoded.ledger.typed == len(lines)
    writer = Writer(pool, writer_config())
    await writer.start()
    try:
        received_at = datetime.now(UTC)  # late rows are told by their received_at
        await writer.submit(
            PendingBatch("d.x", frame_id, received_at, decoded.rows, decoded.quarantined, 0)
        )
    finally:
        await writer.close()


async def test_router_hourly_is_python_and_direct_sql(pool: asyncpg.Pool) -> None:
    rng = random.Random(20261201)
    lines = router_lines(rng, 600)
    await store(pool, [line for _, line, _ in lines], "router-1")
    spec = load_rollups()["router_hourly"]
    result = await run_window(
        pool, spec, kind=RunKind.MANUAL, scheduled_for=T0 + 3 * H, window=(T0, T0 + 3 * H)
    )
    assert result.error is None and result.rows_written > 0

    # Python: the same sums from the lines as generated
    groups: dict[tuple[datetime, str], list[dict[str, object]]] = defaultdict(list)
    for at, _line, fields in lines:
        bucket = at.replace(minute=0, second=0, microsecond=0)
        groups[(bucket, normalize_path(str(fields["path"])))].append(fields)
    expected = {}
    for (bucket, path), rows in groups.items():
        services = [float(r["service_ms"]) for r in rows]
        classes = [int(r["status"]) // 100 for r in rows]
        expected[(bucket, path)] = (
            len(rows),
            *(classes.count(c) for c in (1, 2, 3, 4, 5)),
            percentile_cont(services, 0.50),
            percentile_cont(services, 0.95),
            percentile_cont(services, 0.99),
            sum(int(r["size"]) for r in rows),
            sum(1 for r in rows if r["code"]),
        )
    got = {
        (r["bucket"], r["path"]): (
            r["requests"],
            r["status_1xx"],
            r["status_2xx"],
            r["status_3xx"],
            r["status_4xx"],
            r["status_5xx"],
            r["service_p50_ms"],
            r["service_p95_ms"],
            r["service_p99_ms"],
            r["bytes"],
            r["h_errors"],
        )
        for r in await pool.fetch("SELECT * FROM router_hourly WHERE app = 'shop'")
    }
    assert set(got) == set(expected)
    for key, want in expected.items():
        assert got[key][:6] == want[:6], key
        assert got[key][6:9] == pytest.approx(want[6:9]), key
        assert got[key][9:] == want[9:], key
    assert {path for _, path in got} == {
        "/",
        "/users/:id",
        "/users/:id/orders/:id",
        "/app.js",
        "/about.html",
        "/items/:id",
    }

    # direct SQL on router_requests, without the rollup machinery or its functions
    direct = await pool.fetch(
        """SELECT date_trunc('hour', event_time) AS bucket,
                  regexp_replace(regexp_replace(split_part(path, '?', 1),
                      '/[0-9]+(?=/|$)', '/:id', 'g'),
                      '/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?=/|$)',
                      '/:id', 'g') AS path,
                  count(*) AS requests, sum(bytes) AS bytes,
                  percentile_cont(0.95) WITHIN GROUP (ORDER BY service_ms) AS p95,
                  count(code) AS errors
             FROM router_requests GROUP BY 1, 2"""
    )
    for r in direct:
        row = got[(r["bucket"], r["path"])]
        assert (row[0], row[9], row[10]) == (r["requests"], r["bytes"], r["errors"])
        assert row[7] == pytest.approx(r["p95"])
    # the H12 lines are platform events too
    h12 = await pool.fetchval("SELECT count(*) FROM platform_events WHERE code = 'H12'")
    assert h12 == sum(1 for _, _, f in lines if f["code"]) > 0


async def test_page_views_daily_counts_html_gets_and_distinct_clients(pool: asyncpg.Pool) -> None:
    rng = random.Random(7)
    lines = router_lines(rng, 400)
    await store(pool, [line for _, line, _ in lines], "pages-1")
    spec = load_rollups()["page_views_daily"]
    day = T0.replace(hour=0)
    result = await run_window(
        pool,
        spec,
        kind=RunKind.MANUAL,
        scheduled_for=day + 2 * 24 * H,
        window=(day, day + 2 * 24 * H),
    )
    assert result.error is None
    views: dict[tuple[datetime, str], int] = defaultdict(int)
    clients: dict[tuple[datetime, str], set[object]] = defaultdict(set)
    for at, _line, f in lines:
        path = str(f["path"])
        if f["method"] == "GET" and 200 <= int(f["status"]) < 300 and is_page_path(path):
            key = (at.replace(hour=0, minute=0, second=0, microsecond=0), normalize_path(path))
            views[key] += 1
            clients[key].add(f["fwd"])
    got = {
        (r["bucket"], r["path"]): (r["views"], r["clients"])
        for r in await pool.fetch("SELECT * FROM page_views_daily")
    }
    assert got == {key: (n, len(clients[key])) for key, n in views.items()}
    assert all(not path.endswith(".js") for _, path in got)  # assets are not pages
    assert any(path == "/about.html" for _, path in got)


async def test_dyno_metrics_hourly_means_maxima_and_r14s(pool: asyncpg.Pool) -> None:
    rng = random.Random(3)
    lines: list[str] = []
    samples: dict[tuple[datetime, str], dict[str, list[float]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for minute in range(0, 180, 2):
        at = T0 + timedelta(minutes=minute)
        bucket = at.replace(minute=0)
        for source in ("web.1", "web.2", "worker.1"):
            rss = round(rng.uniform(100, 700), 2)
            load = round(rng.uniform(0, 4), 2)
            lines.append(memory_line(at, source=source, rss_mb=rss))
            lines.append(load_line(at, source=source, load_1m=load))
            kind = source.split(".")[0]
            samples[(bucket, kind)]["rss"].append(rss * 1048576)
            samples[(bucket, kind)]["load"].append(load)
            if rss > 512:
                lines.append(platform_line(at, source, "Error R14 (Memory quota exceeded)"))
                samples[(bucket, kind)]["r14"].append(1)
    await store(pool, lines, "metrics-1")
    spec = load_rollups()["dyno_metrics_hourly"]
    result = await run_window(
        pool, spec, kind=RunKind.MANUAL, scheduled_for=T0 + 3 * H, window=(T0, T0 + 3 * H)
    )
    assert result.error is None
    got = {
        (r["bucket"], r["dyno_type"]): r
        for r in await pool.fetch("SELECT * FROM dyno_metrics_hourly WHERE app = 'shop'")
    }
    assert set(got) == set(samples)
    for key, s in samples.items():
        row = got[key]
        assert row["rss_samples"] == len(s["rss"])
        assert row["memory_rss_mean_bytes"] == pytest.approx(sum(s["rss"]) / len(s["rss"]))
        assert row["memory_rss_max_bytes"] == pytest.approx(max(s["rss"]))
        assert row["memory_quota_bytes"] == 512 * 1048576
        assert row["load_avg_1m_mean"] == pytest.approx(sum(s["load"]) / len(s["load"]))
        assert row["load_avg_1m_max"] == pytest.approx(max(s["load"]))
        assert row["r14_errors"] == len(s["r14"])
    direct = await pool.fetchval(
        "SELECT count(*) FROM platform_events WHERE code = 'R14' AND kind = 'error'"
    )
    assert direct == sum(r["r14_errors"] for r in got.values()) > 0


async def test_late_router_rows_are_counted_by_the_next_scheduled_run(pool: asyncpg.Pool) -> None:
    spec = load_rollups()["router_hourly"]
    tick = T0 + 5 * H + timedelta(minutes=10)
    await store(pool, [router_line(T0 + 4 * H)], "late-0")
    first = await run_window(pool, spec, kind=RunKind.SCHEDULED, scheduled_for=tick)
    assert first.error is None and first.late_events == 0
    # a line for an hour the next run no longer recomputes (lateness 2h), received now
    await store(pool, [router_line(T0 + timedelta(minutes=5))], "late-1")
    second = await run_window(pool, spec, kind=RunKind.SCHEDULED, scheduled_for=tick + H)
    assert second.error is None and second.late_events == 1
