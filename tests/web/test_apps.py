"""Many apps, one drain: every row records its app (DRAIN_APPS, else the drain token), the
rollups group by it, and /health and /metrics break ingestion down by it, with bounded
labels."""

from __future__ import annotations

from datetime import timedelta

import pytest

from drain.errors import SettingsError
from drain.rollups.runner import RunKind, load_rollups, run_window
from drain.settings import Settings
from drain.store.database import create_pool
from tests.support.app import NOW, drain, fetch
from tests.support.served import event_line, frame, logplex_headers

SHOP = "d.11111111-2222-3333-4444-555555555555"
API = "d.66666666-7777-8888-9999-aaaaaaaaaaaa"
STRANGER = "d.bbbbbbbb-cccc-dddd-eeee-ffffffffffff"
APPS = f"{SHOP}=shop,{API}=api"


def pay_body(price: int, category: str = "categoryA") -> bytes:
    payload = {"uid": 1, "item_category": category, "price": price}
    good = frame(event_line(NOW - timedelta(minutes=5), "production.pay", payload))
    bad = frame(f"<190>1 {NOW.isoformat()} host app web.1 - @[production.pay] {{oops\n")
    return good + bad


async def test_rows_record_their_app_and_the_rollup_groups_by_it(migrated_url: str) -> None:
    async with drain(migrated_url, drain_apps=APPS) as client:
        for token, price in ((SHOP, 100), (API, 7), (STRANGER, 1), (None, 2)):
            headers = logplex_headers(token=token, frame_id=f"f-{token}")
            response = await client.post("/logs", content=pay_body(price), headers=headers)
            assert response.status_code == 200, response.text
        health = (await client.get("/health")).json()
    events = await fetch(migrated_url, "SELECT app, count(*) AS n FROM raw_events GROUP BY app")
    assert {r["app"]: r["n"] for r in events} == {"shop": 1, "api": 1, STRANGER: 1, "": 1}
    bad = await fetch(migrated_url, "SELECT app, reason FROM quarantine ORDER BY app")
    assert [(r["app"], r["reason"]) for r in bad] == [
        ("", "invalid_json"),
        ("api", "invalid_json"),
        (STRANGER, "invalid_json"),
        ("shop", "invalid_json"),
    ]
    # /health is public: apps DRAIN_APPS does not name are "other", never a token
    counters = health["counters"]
    assert counters["events_stored_by_app"] == {"api": 1, "other": 2, "shop": 1}
    assert STRANGER not in str(health)

    pool = await create_pool(migrated_url)
    try:
        spec = load_rollups()["payment_history"]
        end = NOW.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        window = (end - timedelta(hours=2), end)
        result = await run_window(pool, spec, kind=RunKind.MANUAL, scheduled_for=end, window=window)
        assert result.error is None
        rows = await pool.fetch("SELECT app, revenue FROM payment_history ORDER BY app")
    finally:
        await pool.close()
    assert [(r["app"], int(r["revenue"])) for r in rows] == [
        ("", 2),
        ("api", 7),
        (STRANGER, 1),
        ("shop", 100),
    ]


async def test_a_rollup_table_made_before_apps_gains_the_column(migrated_url: str) -> None:
    """A summary table of an older drain (no app column, key without it) is widened by the
    rollup's setup, and the run then writes one row per app."""
    pool = await create_pool(migrated_url)
    try:
        await pool.execute(
            """CREATE TABLE payment_history (
                   bucket timestamptz NOT NULL, category text NOT NULL,
                   revenue numeric NOT NULL, events bigint NOT NULL,
                   PRIMARY KEY (bucket, category))"""
        )
        async with drain(migrated_url, drain_apps=APPS) as client:
            for token in (SHOP, API):
                headers = logplex_headers(token=token, frame_id=f"old-{token}")
                assert (await client.post("/logs", content=pay_body(5), headers=headers)).is_success
        spec = load_rollups()["payment_history"]
        end = NOW.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        result = await run_window(
            pool,
            spec,
            kind=RunKind.MANUAL,
            scheduled_for=end,
            window=(end - timedelta(hours=2), end),
        )
        assert result.error is None
        assert result.rows_written == 2
        key = await pool.fetchval(
            """SELECT pg_get_constraintdef(oid) FROM pg_constraint
                WHERE conname = 'payment_history_pkey'"""
        )
    finally:
        await pool.close()
    assert key == "PRIMARY KEY (bucket, app, category)"


def test_drain_apps_is_validated() -> None:
    settings = Settings.defaults(drain_apps=f" {SHOP} = shop , {API}=api ")
    assert settings.app_names == {SHOP: "shop", API: "api"}
    assert settings.app_for(SHOP) == "shop"
    assert settings.app_for(STRANGER) == STRANGER
    assert settings.app_for(None) == ""
    assert settings.app_label("api") == "api" and settings.app_label(STRANGER) == "other"
    assert settings.token_label(SHOP) == SHOP and settings.token_label(STRANGER) == "other"
    for bad in ("shop", f"{SHOP}=", "x=shop", f"{SHOP}=sh op", f"{SHOP}=a,{SHOP}=b", ","):
        with pytest.raises(SettingsError, match="DRAIN_APPS"):
            Settings.defaults(drain_apps=bad)
