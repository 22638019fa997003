"""The dashboard's pages and /api/ endpoints over a real PostgreSQL (the app in process):
every page answers with its security headers, a chart holds exactly the rollup's rows (older
buckets from the table, the newest computed live), the filters change them, the CSV, the
Tags catalogue, the Quarantine rows, escaping, and the read-only, time-bounded access."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from drain.settings import Settings
from drain.web.dashboard.db import DashboardUnavailable, Gate, read_only
from drain.web.dashboard.registry import ENDPOINTS, PAGES
from drain.web.dashboard.views import CONTENT_SECURITY_POLICY
from tests.support.app import running
from tests.support.dashboard import (
    NOW,
    RUN_UNTIL,
    XSS_APP,
    XSS_CATEGORY,
    XSS_NAME,
    XSS_STRINGS,
    XSS_TAG,
    dashboard_app,
    run_rollup,
    seed,
)

H = timedelta(hours=1)


def concrete(path: str) -> str:
    return path.replace("{name}", "payment_history")


async def get(client: httpx.AsyncClient, path: str, **params: str) -> httpx.Response:
    return await client.get(path, params=params)


async def table_rows(url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


def points(chart: dict[str, Any]) -> set[tuple[int, str, float]]:
    """Every drawn point of a chart as (x, series label, value)."""
    return {
        (x, s["label"], v)
        for s in chart["series"]
        for x, v in zip(chart["x"], s["values"], strict=True)
        if v is not None
    }


async def test_every_page_and_endpoint_answers_with_the_security_headers(
    migrated_url: str,
) -> None:
    await seed(migrated_url)
    async with running(dashboard_app(migrated_url)) as client:
        for path in [p.path for p in PAGES] + [e.path for e in ENDPOINTS]:
            response = await get(client, concrete(path))
            assert response.status_code == 200, (path, response.text[:300])
            assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
            assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
            assert "script-src 'self'" in CONTENT_SECURITY_POLICY
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["cache-control"] == "no-store"
        for name in ("dashboard.js", "dashboard.css", "vendor/uplot/uPlot.iife.min.js"):
            response = await client.get(f"/static/{name}")
            assert response.status_code == 200
            assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
            again = await client.get(
                f"/static/{name}", headers={"If-None-Match": response.headers["etag"]}
            )
            assert again.status_code == 304
        assert (await client.get("/static/../settings.py")).status_code == 404
        page = (await client.get("/")).text
        assert "<script>" not in page and " style=" not in page  # no inline script or style


async def test_the_chart_holds_exactly_the_rollups_rows(migrated_url: str) -> None:
    seeded = await seed(migrated_url)
    async with running(dashboard_app(migrated_url)) as client:
        body = (await get(client, "/api/rollups/payment_history", app="shop")).json()
        live_from = datetime.fromisoformat(body["window"]["live_from"])
        assert live_from == RUN_UNTIL  # the runs covered up to here; the rest is live
        chart = body["chart"]
        # what the rollup holds once it has run over the whole range
        await run_rollup(migrated_url, "payment_history", NOW - 31 * H, NOW + H)
        rows = await table_rows(
            migrated_url,
            """SELECT bucket, category, revenue FROM payment_history
                WHERE app = 'shop' AND bucket >= $1 AND bucket < $2""",
            NOW - 24 * H,
            NOW,
        )
    assert points(chart) == {
        (int(r["bucket"].timestamp()), r["category"], float(r["revenue"])) for r in rows
    }
    assert len(points(chart)) == len(rows) > 40
    expected = {k: v for k, v in seeded.revenue.items() if k[0] == "shop" and k[1] >= NOW - 24 * H}
    assert {(r["bucket"], r["category"]): float(r["revenue"]) for r in rows} == {
        (b, c): v for (_, b, c), v in expected.items()
    }


async def test_the_range_and_the_app_change_the_points(migrated_url: str) -> None:
    await seed(migrated_url)
    async with running(dashboard_app(migrated_url)) as client:
        day = (await get(client, "/api/rollups/payment_history")).json()
        hour = (await get(client, "/api/rollups/payment_history", range="1h")).json()
        api = (await get(client, "/api/rollups/payment_history", app="api")).json()
        custom = (
            await get(
                client,
                "/api/rollups/payment_history",
                range="custom",
                **{"from": "2026-12-01T00:00:00Z", "to": "2026-12-01T02:00:00Z"},
            )
        ).json()
    # every app: the series are (app, category)
    assert {s["label"] for s in day["chart"]["series"]} >= {"shop / categoryA", "api / categoryA"}
    assert {s["label"] for s in api["chart"]["series"]} == {"categoryA"}
    assert hour["chart"]["x"] == [int((NOW - H).timestamp())]
    assert custom["chart"]["x"] == [
        int(datetime(2026, 12, 1, h, tzinfo=UTC).timestamp()) for h in (0, 1)
    ]
    assert len(points(day["chart"])) > len(points(api["chart"])) > len(points(hour["chart"]))


async def test_bad_filters_are_refused_with_400(migrated_url: str) -> None:
    async with running(dashboard_app(migrated_url)) as client:
        for params in (
            {"range": "2w"},
            {"range": "custom"},
            {"range": "custom", "from": "yesterday"},
            {"range": "custom", "from": "2026-12-01T10:00Z", "to": "2026-12-01T09:00Z"},
            {"range": "custom", "from": "2025-01-01T00:00Z", "to": "2026-12-01T00:00Z"},
            {"app": "x" * 201},
        ):
            response = await get(client, "/api/events", **params)
            assert response.status_code == 400, params
            assert response.json()["error"]
            page = await get(client, "/tags", **params)
            assert page.status_code == 400
        assert (await get(client, "/api/rollups/nope")).status_code == 404
        assert (await get(client, "/rollups/nope")).status_code == 404
        missing = await get(client, "/api/rollups/payment_history", measure="drop table")
        assert missing.status_code == 404


async def test_the_csv_has_every_row_and_no_formula(migrated_url: str) -> None:
    await seed(migrated_url)
    conn = await asyncpg.connect(migrated_url)
    try:
        await conn.execute(
            "INSERT INTO payment_history VALUES ($1, 'shop', '=HYPERLINK(\"x\")', 1, 1)",
            NOW - 20 * H,
        )
    finally:
        await conn.close()
    async with running(dashboard_app(migrated_url)) as client:
        response = await get(client, "/api/rollups/payment_history.csv", app="shop")
        body = (await get(client, "/api/rollups/payment_history", app="shop")).json()
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="payment_history.csv"' in response.headers["content-disposition"]
    table = list(csv.reader(io.StringIO(response.text)))
    assert table[0] == ["bucket", "app", "category", "revenue", "events"]
    assert len(table) - 1 == body["row_count"]
    assert [r[2] for r in table[1:] if "HYPERLINK" in r[2]] == ['\'=HYPERLINK("x")']


async def test_the_newest_buckets_are_live_when_no_rollup_ran(migrated_url: str) -> None:
    """The README's quick start: events posted, no `drain clock`: the page shows them."""
    await seed(migrated_url)
    async with running(dashboard_app(migrated_url)) as client:
        events = (await get(client, "/api/events", range="1h")).json()
        rollups = (await get(client, "/api/rollups")).json()["rollups"]
    never = {r["name"]: r for r in rollups}["events_per_minute"]
    assert never["complete_until"] is None and never["table_exists"] is False
    assert never["measures"] == ["events"] and never["dimensions"] == ["tag"]
    signups = [s for s in events["series"] if s["label"] == "shop / shop.signup"]
    assert len(signups) == 1
    assert sum(v for v in signups[0]["values"] if v is not None) == 6  # one per 10 minutes
    assert events["bucket_s"] == 60 and events["unit"] == "events per minute"


async def test_the_tags_catalogue_lists_keys_types_and_drift(migrated_url: str) -> None:
    await seed(migrated_url)
    async with running(dashboard_app(migrated_url)) as client:
        tags = (await get(client, "/api/tags")).json()["tags"]
        html = (await get(client, "/tags")).text
    by_tag = {(t["app"], t["tag"]): t for t in tags}
    signup = by_tag[("shop", "shop.signup")]
    assert signup["events"] == 12
    assert signup["drift"] == ["user"]
    assert {k["key"]: k["types"] for k in signup["keys"]} == {
        "plan": {"string": 12},
        "user": {"number": 6, "string": 6},
    }
    assert signup["example"] == {"user": 42, "plan": "pro"}  # the newest
    pay = by_tag[("shop", "production.pay")]
    assert pay["drift"] == []
    assert {k["key"] for k in pay["keys"]} == {"uid", "item_id", "item_category", "price"}
    assert pay["first_seen"] is not None and pay["last_seen"] is not None
    assert (XSS_APP, XSS_TAG) in by_tag
    assert "schema drift: user" in html
    for markup in XSS_STRINGS:
        assert markup not in html


async def test_quarantine_rows_are_filtered_and_escaped(migrated_url: str) -> None:
    await seed(migrated_url)
    async with running(dashboard_app(migrated_url)) as client:
        body = (await get(client, "/api/quarantine")).json()
        html = (await get(client, "/quarantine")).text
        other = (await get(client, "/api/quarantine", reason="bad_tag")).json()
        by_tag = (await get(client, "/api/quarantine", tag=XSS_TAG)).json()
    assert body["counts_by_reason"] == [{"reason": "invalid_json", "count": 1}]
    (row,) = body["rows"]
    assert row["raw"] == '@[x] {"a":"</pre><script>window.__xss=5</script>"}\\xff'
    assert row["detail"] == XSS_NAME
    assert other["rows"] == [] and len(by_tag["rows"]) == 1
    assert "&lt;/pre&gt;&lt;script&gt;window.__xss=5&lt;/script&gt;" in html
    assert "<script>window" not in html and XSS_NAME not in html


async def test_every_value_from_the_database_is_escaped(migrated_url: str) -> None:
    await seed(migrated_url)
    async with running(dashboard_app(migrated_url)) as client:
        for path in ("/", "/rollups/payment_history", "/tags", "/quarantine", "/rollups"):
            html = (await get(client, path, range="7d")).text
            for markup in XSS_STRINGS:
                assert markup not in html, (path, markup)
        table = (await get(client, "/rollups/payment_history", app="shop")).text
        assert "&lt;img src=x onerror=&#34;window.__xss=1&#34;&gt;" in table
        rows = (await get(client, "/api/rollups/payment_history")).json()["rows"]
        assert any(XSS_CATEGORY in row for row in rows)  # JSON carries the text as it is


async def test_the_dashboard_reads_in_a_read_only_transaction(migrated_url: str) -> None:
    pool = await asyncpg.create_pool(migrated_url, min_size=1, max_size=1)
    try:
        with pytest.raises(DashboardUnavailable, match="ReadOnlySQLTransactionError"):
            async with read_only(pool, Gate(5.0)) as conn:
                await conn.execute("DELETE FROM raw_events")
        with pytest.raises(DashboardUnavailable, match=r"longer than 0\.2 s"):
            async with read_only(pool, Gate(0.2)) as conn:
                await conn.execute("SELECT pg_sleep(5)")
        async with read_only(pool, Gate(5.0)) as conn:
            assert await conn.fetchval("SHOW transaction_read_only") == "on"
            assert await conn.fetchval("SHOW TimeZone") == "UTC"
        assert await pool.fetchval("SHOW transaction_read_only") == "off"  # SET LOCAL only
    finally:
        await pool.close()


async def test_a_timed_out_page_says_so_with_503(migrated_url: str) -> None:
    await seed(migrated_url)
    app = dashboard_app(migrated_url, drain_dashboard_statement_timeout_s=0.001)
    blocker = await asyncpg.connect(migrated_url)
    try:
        tables = await blocker.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            " AND tablename IN ('raw_events', 'payment_history')"
        )
        async with running(app) as client, blocker.transaction():
            # A statement waiting for a lock counts against statement_timeout: with the
            # tables held, every read of them outlasts 1 ms, however fast the machine.
            names = ", ".join(t["tablename"] for t in tables)
            await blocker.execute(f"LOCK TABLE {names} IN ACCESS EXCLUSIVE MODE")
            response = await get(client, "/api/rollups/payment_history", range="7d")
            page = await get(client, "/rollups/payment_history", range="7d")
    finally:
        await blocker.close()
    assert response.status_code == 503
    assert "DRAIN_DASHBOARD_STATEMENT_TIMEOUT_S" in response.json()["error"]
    assert page.status_code == 503


def test_settings_for_the_dashboard() -> None:
    assert Settings.defaults().dashboard_access == "open"
    deployed = {"database_url": "postgresql://u@h/d", "drain_username": "u", "drain_password": "p"}
    assert Settings.defaults(**deployed).dashboard_access == "off"
    viewer = {"drain_viewer_username": "v", "drain_viewer_password": "w"}
    assert Settings.defaults(**deployed, **viewer).dashboard_access == "viewer"
    assert Settings.defaults(drain_host="0.0.0.0").dashboard_access == "off"
    assert Settings.defaults(drain_dashboard=False).dashboard_access == "off"
