"""Heroku's own lines through POST /logs, real PostgreSQL: stored once in their typed tables
(a retried batch adds nothing to any table), turned off, excluded, the client hash's key,
/health's platform and loss warnings, and the metrics that count them."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from datetime import timedelta

import asyncpg
import httpx
import orjson
from prometheus_client.parser import text_string_to_metric_families

from drain.inputs.logplex import decode_body
from drain.web.app import create_app
from tests.support.app import NOW, drain, fetch, settings
from tests.support.config import LIMITS, line_rules
from tests.support.lines import platform_line, router_line
from tests.support.served import AUTH, SAMPLES, frame, logplex_headers, served_app

LINES = SAMPLES / "heroku-lines"
TABLES = ("raw_events", "router_requests", "platform_metrics", "platform_events", "quarantine")


async def counts(url: str) -> dict[str, int]:
    return {t: (await fetch(url, f"SELECT count(*) AS n FROM {t}"))[0]["n"] for t in TABLES}


def metric(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


async def test_each_kind_is_stored_once_over_http(migrated_url: str) -> None:
    bodies = {
        name: (LINES / f"{name}.body").read_bytes()
        for name in ("router", "runtime-metrics", "addon-metrics", "platform-events")
    }
    expected: dict[str, int] = {t: 0 for t in TABLES}
    for body in bodies.values():
        decoded = decode_body(body, now=NOW, limits=LIMITS, rules=line_rules())
        for table, rows in decoded.rows.items():
            expected[table] += len(rows)
        expected["quarantine"] += len(decoded.quarantined)
    app = create_app(settings(), database_url=migrated_url, clock=lambda: NOW)
    async with served_app(app) as base, httpx.AsyncClient(base_url=base, auth=AUTH) as client:
        for name, body in bodies.items():
            first = await client.post("/logs", content=body, headers=logplex_headers(frame_id=name))
            assert first.status_code == 200
            assert int(first.headers["drain-typed-lines"]) > 0
            assert first.headers["drain-not-events"] in ("0", "1")  # the Postgres server line
        stored = await counts(migrated_url)
        for name, body in bodies.items():  # Logplex retries every batch: nothing is added
            again = await client.post("/logs", content=body, headers=logplex_headers(frame_id=name))
            assert again.headers["drain-duplicate"] == "true"
            assert again.headers["drain-typed-rows-stored"] == "0"
        health = (await client.get("/health")).json()
        scrape = (await client.get("/metrics")).text
    assert stored == expected == await counts(migrated_url)
    assert stored["router_requests"] == 10 and stored["platform_metrics"] > 40
    counters = health["counters"]
    assert counters["rows_stored_by_table"] == {
        t: n for t, n in stored.items() if n and t != "quarantine"
    }
    assert counters["typed_lines_by_kind"] == {
        "router": 20,
        "runtime_metrics": 10,
        "addon_metrics": 6,
        "platform": 46,
    }
    assert metric(scrape, "drain_platform_events_total", code="R14") == 1
    assert metric(scrape, "drain_platform_events_total", code="H12") == 2
    assert metric(scrape, "drain_rows_stored_total", table="router_requests") == 10
    # the columns, for one line of each table
    (h10,) = await fetch(
        migrated_url,
        "SELECT status, dyno, service_ms, bytes, code, description, client_hash, fwd, frame_id"
        " FROM router_requests WHERE code = 'H10'",
    )
    assert (h10["status"], h10["dyno"], h10["service_ms"], h10["bytes"]) == (503, None, None, None)
    assert (h10["code"], h10["description"], h10["fwd"]) == ("H10", "App crashed", None)
    assert len(h10["client_hash"]) == 16 and h10["frame_id"] == "router"
    (quota,) = await fetch(
        migrated_url,
        "SELECT value, unit FROM platform_metrics WHERE name = 'memory_quota' AND source = 'web.1'",
    )
    assert (quota["value"], quota["unit"]) == (512 * 1048576, "bytes")
    (crash,) = await fetch(
        migrated_url, "SELECT dyno, kind, details FROM platform_events WHERE text LIKE '%crashed'"
    )
    assert (crash["dyno"], crash["kind"]) == ("web.2", "state")
    assert orjson.loads(crash["details"]) == {"from": "up", "to": "crashed"}


async def test_tables_turned_off_store_nothing(migrated_url: str) -> None:
    body = b"".join((LINES / f"{n}.body").read_bytes() for n in ("router", "platform-events"))
    off = {
        "drain_router_requests": False,
        "drain_platform_metrics": False,
        "drain_platform_events": False,
    }
    async with drain(migrated_url, **off) as client:
        response = await client.post("/logs", content=body, headers=logplex_headers(frame_id="off"))
        health = (await client.get("/health")).json()
    assert response.status_code == 200 and "drain-typed-lines" not in response.headers
    assert await counts(migrated_url) == dict.fromkeys(TABLES, 0)
    kinds = health["counters"]["not_events_by_kind"]
    assert kinds["logplex_error"] == 6  # L10 (2), L11 ... L14: still read, still reported
    assert kinds["untagged"] == 27  # 33 frames, as before drain read them
    assert {w["source"] for w in health["warnings"] if w["kind"] == "upstream_loss"} == {
        "L10",
        "L12",
        "L13",
    }


async def test_excluded_lines_cost_no_disk_and_are_counted(migrated_url: str) -> None:
    body = b"".join(
        frame(router_line(NOW - timedelta(minutes=1), path=path))
        for path in ("/health", "/healthz", "/assets/app.css", "/users/1")
    )
    rules = "router.path=/health*,router.path=/assets/*"
    async with drain(migrated_url, drain_exclude_lines=rules) as client:
        response = await client.post("/logs", content=body, headers=logplex_headers(frame_id="x"))
        health = (await client.get("/health")).json()
        scrape = (await client.get("/metrics")).text
    assert response.headers["drain-not-events"] == "3"
    assert [r["path"] for r in await fetch(migrated_url, "SELECT path FROM router_requests")] == [
        "/users/1"
    ]
    assert health["counters"]["not_events_by_kind"] == {"excluded": 3}
    assert metric(scrape, "drain_not_event_lines_total", kind="excluded") == 3


async def test_health_warns_on_recent_platform_errors(migrated_url: str) -> None:
    recent, old = NOW - timedelta(minutes=3), NOW - timedelta(minutes=40)
    body = b"".join(
        frame(line)
        for line in (
            platform_line(recent, "web.1", "Error R14 (Memory quota exceeded)"),
            platform_line(
                recent + timedelta(seconds=5), "web.2", "Error R14 (Memory quota exceeded)"
            ),
            platform_line(old, "web.1", "Error R15 (Memory quota vastly exceeded)"),
            router_line(recent, path="/slow", status=503, code="H12", desc="Request timeout"),
            platform_line(recent, "web.1", "State changed from up to down"),
        )
    )
    apps = "d.fc6b856b-3332-4546-93de-7d0ee272c3bd=shop"
    async with drain(migrated_url, drain_apps=apps) as client:
        before = (await client.get("/health")).json()["warnings"]
        await client.post("/logs", content=body, headers=logplex_headers(frame_id="r14"))
        warnings = (await client.get("/health")).json()["warnings"]
    async with drain(migrated_url, drain_platform_warn_codes="") as client:
        quiet = (await client.get("/health")).json()["warnings"]
    assert before == [] and quiet == []
    found = {w["code"]: w for w in warnings if w["kind"] == "platform_error"}
    assert set(found) == {"R14", "H12"}  # R15 is older than the 15 minutes
    assert (found["R14"]["count"], found["R14"]["app"]) == (2, "shop")
    assert found["R14"]["last_at"] == (recent + timedelta(seconds=5)).isoformat()
    assert "Memory quota exceeded" in found["R14"]["message"]
    assert "Request timeout" in found["H12"]["message"]


SHUTTLE = {"Content-Type": "application/logplex-1"}  # log-shuttle sends no drain token


async def test_log_shuttle_drops_are_reported_as_l12(migrated_url: str) -> None:
    """log-shuttle -num-outlets 8 -batch-size 50 dropped 7,100 of 10,000 lines: its first
    frame says so (Error L12) and so does its Logplex-Drop-Count header: one loss."""
    at = NOW - timedelta(seconds=10)
    l12 = (
        f"<172>1 {at.isoformat()} heroku app log-shuttle - Error L12: 7100 messages dropped "
        f"since {(at - timedelta(seconds=30)).isoformat()}\n"
    )
    body = frame(l12) + frame(f"<190>1 {at.isoformat()} shuttle token shuttle - - hello\n")
    headers = {**SHUTTLE, "Logplex-Drop-Count": "7100", "X-Request-Id": "l12-batch"}
    async with drain(migrated_url) as client:
        response = await client.post("/logs", content=body, headers=headers)
        health = (await client.get("/health")).json()
        scrape = (await client.get("/metrics")).text
    assert response.status_code == 200
    (warning,) = [w for w in health["warnings"] if w["kind"] == "upstream_loss"]
    assert (warning["source"], warning["lost"], warning["app"]) == ("L12", 7100, "other")
    assert "log-shuttle reported 7100 messages dropped" in warning["message"]
    assert "sender's count" in warning["message"]
    assert (
        metric(scrape, "drain_upstream_lost_messages_total", drain_token="", source="L12") == 7100
    )
    (event,) = await fetch(migrated_url, "SELECT code, dyno, details FROM platform_events")
    assert (event["code"], event["dyno"]) == ("L12", "log-shuttle")
    assert orjson.loads(event["details"])["lost"] == 7100


async def test_an_l13_after_retries_of_stored_batches_may_not_be_real(migrated_url: str) -> None:
    """With -timeout 40ms log-shuttle gave up on batches the drain had stored (it answered
    too late), sent them again (duplicates here), then reported them lost (L13)."""
    at = NOW - timedelta(seconds=20)
    stored = frame(f"<190>1 {at.isoformat()} host app web.1 - @[shop.x] {{}}\n")
    l13 = frame(
        f"<172>1 {NOW.isoformat()} heroku app log-shuttle - Error L13: 50 messages lost since "
        f"{(at - timedelta(seconds=5)).isoformat()}\n"
    )
    async with drain(migrated_url) as client:
        for _ in range(3):  # the first stores it, the two retries are duplicates
            await client.post("/logs", content=stored, headers={**SHUTTLE, "X-Request-Id": "b1"})
        await client.post(
            "/logs",
            content=l13,
            headers={**SHUTTLE, "X-Request-Id": "b2", "Logplex-Lost-Count": "50"},
        )
        (warning,) = [
            w
            for w in (await client.get("/health")).json()["warnings"]
            if w["kind"] == "upstream_loss"
        ]
    assert (warning["source"], warning["lost"], warning["retries_since"]) == ("L13", 50, 2)
    assert "the loss may not be real" in warning["message"]
    assert "those events are gone" not in warning["message"]
    assert (await counts(migrated_url))["raw_events"] == 1


async def test_the_database_key_hashes_alike_across_restarts(migrated_url: str) -> None:
    line = frame(router_line(NOW - timedelta(minutes=1), fwd="198.51.100.7"))
    for run in range(2):  # two starts of the drain (two dynos) on one database
        async with drain(migrated_url) as client:
            await client.post("/logs", content=line, headers=logplex_headers(frame_id=f"k{run}"))
    hashes = [
        r["client_hash"]
        for r in await fetch(migrated_url, "SELECT client_hash FROM router_requests")
    ]
    (key,) = [r["value"] for r in await fetch(migrated_url, "SELECT value FROM drain_secrets")]
    assert len(key) == 32
    assert hashes == [hashlib.blake2b(b"198.51.100.7", key=key, digest_size=16).digest()] * 2
    async with drain(migrated_url, drain_router_fwd="raw") as client:
        await client.post("/logs", content=line, headers=logplex_headers(frame_id="raw"))
    assert [
        r["fwd"]
        for r in await fetch(migrated_url, "SELECT fwd FROM router_requests WHERE frame_id = 'raw'")
    ] == ["198.51.100.7"]


async def test_reports_of_one_source_add_up_since_the_drain_started(migrated_url: str) -> None:
    """log-shuttle reports its drops in more than one batch (each covers its own span):
    /health adds them up, with the earliest since."""
    first, second = NOW - timedelta(seconds=50), NOW - timedelta(seconds=20)
    async with drain(migrated_url) as client:
        for n, (since, count) in enumerate(((first, 200), (second, 6900))):
            line = frame(
                f"<172>1 {(since + timedelta(seconds=5)).isoformat()} heroku app log-shuttle - "
                f"Error L12: {count} messages dropped since {since.isoformat()}\n"
            )
            headers = {**SHUTTLE, "Logplex-Drop-Count": str(count), "X-Request-Id": f"d{n}"}
            assert (await client.post("/logs", content=line, headers=headers)).status_code == 200
        warnings = (await client.get("/health")).json()["warnings"]
    (warning,) = [w for w in warnings if w["kind"] == "upstream_loss"]
    assert (warning["lost"], warning["reports"], warning["since"]) == (7100, 2, first.isoformat())
    assert "7100 messages dropped before they reached this drain in 2 reports" in warning["message"]


async def test_a_batch_stored_after_its_sender_left_makes_the_l13_doubtful(
    migrated_url: str,
) -> None:
    """log-shuttle's -timeout: it closes the connection while the drain commits, counts the
    batch lost (L13), and does not always retry. The drain sees the closed connection after
    its COMMIT, counts the batch unanswered, and the L13 warning says the loss may not be
    real. The COMMIT is held back here by a transaction that holds the batch's ledger key."""
    at = NOW - timedelta(seconds=30)
    body = frame(f"<190>1 {at.isoformat()} host app web.1 - @[shop.x] {{}}\n")
    request = (
        b"POST /logs HTTP/1.1\r\nHost: drain\r\nContent-Type: application/logplex-1\r\n"
        b"X-Request-Id: slow-1\r\nAuthorization: Basic "
        + base64.b64encode(f"{AUTH[0]}:{AUTH[1]}".encode())
        + b"\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )
    blocker = await asyncpg.connect(migrated_url)
    app = create_app(settings(), database_url=migrated_url, clock=lambda: NOW)
    try:
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute("INSERT INTO received_batches VALUES ('', 'slow-1', now(), 0, 0)")
        async with served_app(app) as base, httpx.AsyncClient(base_url=base, auth=AUTH) as client:
            port = int(base.rsplit(":", 1)[1])
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            await writer.drain()
            for _ in range(200):  # the writer's claim waits on the blocker's key
                waiting = await blocker.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                )
                if waiting:
                    break
                await asyncio.sleep(0.05)
            writer.close()  # the sender stops waiting
            await writer.wait_closed()
            await asyncio.sleep(0.2)
            await tx.rollback()  # the drain's COMMIT goes through
            for _ in range(100):
                if (await client.get("/health")).json()["counters"]["unanswered"]:
                    break
                await asyncio.sleep(0.05)
            l13 = frame(
                f"<172>1 {NOW.isoformat()} heroku app log-shuttle - Error L13: 1 messages lost "
                f"since {(at - timedelta(seconds=5)).isoformat()}\n"
            )
            await client.post("/logs", content=l13, headers={**SHUTTLE, "X-Request-Id": "l13"})
            health = (await client.get("/health")).json()
    finally:
        await blocker.close()
    assert health["counters"]["unanswered"] == 1
    (warning,) = [w for w in health["warnings"] if w["kind"] == "upstream_loss"]
    assert (warning["unanswered_since"], warning["retries_since"]) == (1, 0)
    assert "stored after the sender had stopped waiting" in warning["message"]
    assert "the loss may not be real" in warning["message"]
    assert (await counts(migrated_url))["raw_events"] == 1  # it is stored
