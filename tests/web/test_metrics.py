"""GET /metrics, upstream loss (Heroku's L10/L13) and the batch log line, over real HTTP
(uvicorn in this process, or `drain serve --workers 2`), real PostgreSQL."""

from __future__ import annotations

import glob
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from prometheus_client.parser import text_string_to_metric_families

from drain.store.migrate import migrate
from drain.web.app import create_app
from tests.support.served import (
    AUTH,
    DRAIN_TOKEN,
    PASSWORD,
    SAMPLES,
    USER,
    app_settings,
    clean_env,
    event_line,
    events_body,
    frame,
    logplex_headers,
    served_app,
    serving,
)

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)


settings = app_settings


def samples_of(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} of a Prometheus text exposition."""
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


MIXED = (
    events_body(NOW, "shop.signup", 3)
    + frame("<134>1 2026-12-01T12:00:00+00:00 host app web.1 - @[shop.bad] {nope\n")
    + frame("<158>1 2026-12-01T12:00:00+00:00 host heroku router - at=info method=GET\n")
)


async def test_metrics_count_what_the_drain_did(migrated_url: str) -> None:
    app = create_app(
        settings(drain_apps=f"{DRAIN_TOKEN}=shop"), database_url=migrated_url, clock=lambda: NOW
    )
    async with (
        served_app(app) as base,
        httpx.AsyncClient(base_url=base, auth=AUTH) as client,
    ):
        headers = logplex_headers(msg_count=5, frame_id="mixed-1")
        assert (await client.post("/logs", content=MIXED, headers=headers)).status_code == 200
        again = await client.post("/logs", content=MIXED, headers=headers)
        assert again.headers["drain-duplicate"] == "true"
        bad = await client.post("/logs", content=MIXED, headers={"Content-Type": "text/plain"})
        assert bad.status_code == 415
        async with httpx.AsyncClient(base_url=base) as nobody:
            anonymous = await nobody.get("/metrics")
        scrape = await client.get("/metrics")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Basic")
    assert scrape.status_code == 200
    assert scrape.headers["content-type"].startswith("text/plain; version=0.0.4")
    found = samples_of(scrape.text)
    assert value(found, "drain_requests_total", status="200") == 2
    assert value(found, "drain_requests_total", status="415") == 1
    assert value(found, "drain_batches_received_total", app="shop") == 2  # DRAIN_APPS's name
    assert value(found, "drain_frames_received_total") == 10
    assert value(found, "drain_events_received_total") == 6
    assert value(found, "drain_events_stored_total", app="shop") == 3  # the retry added nothing
    assert value(found, "drain_quarantined_lines_total", reason="invalid_json") == 1
    # the router line, decoded twice, stored once
    assert value(found, "drain_typed_lines_total", kind="router") == 2
    assert value(found, "drain_rows_stored_total", table="router_requests") == 1
    assert value(found, "drain_rows_stored_total", table="raw_events") == 3
    assert value(found, "drain_duplicate_batches_total") == 1
    assert value(found, "drain_commit_rows_count") == 2  # the first write and the duplicate's
    # rows handed to each transaction: 3 events + 1 router row + 1 quarantined, twice (the
    # duplicate is found inside the transaction, by the ledger)
    assert value(found, "drain_commit_rows_sum") == 10
    assert value(found, "drain_commit_duration_seconds_count") == 2
    assert value(found, "drain_write_queue_events") == 0
    assert value(found, "drain_partitions_ahead_days") == 2  # the writer made them at start
    assert value(found, "drain_database_errors_total", **{"class": "unavailable"}) == 0


async def test_metrics_can_be_turned_off(migrated_url: str) -> None:
    app = create_app(settings(drain_metrics=False), database_url=migrated_url)
    async with served_app(app) as base, httpx.AsyncClient(base_url=base, auth=AUTH) as client:
        assert (await client.get("/metrics")).status_code == 404
        assert (await client.get("/health")).status_code == 200


async def test_heroku_losses_are_counted_and_shown_in_health(migrated_url: str) -> None:
    l10 = (SAMPLES / "logplex-issue105-l10-no-lf.body").read_bytes()
    l13 = (SAMPLES / "log-shuttle/ls-l13-lost-frame.body").read_bytes()
    app = create_app(settings(), database_url=migrated_url, clock=lambda: NOW)
    async with served_app(app) as base, httpx.AsyncClient(base_url=base, auth=AUTH) as client:
        before = (await client.get("/health")).json()
        one = await client.post("/logs", content=l10, headers=logplex_headers(frame_id="l10"))
        shuttle = {
            "Content-Type": "application/logplex-1",
            "Logplex-Lost-Count": "1",
            "X-Request-Id": "8dc4ac2d-8ac6-4060-8170-432271e49336",
        }
        two = await client.post("/logs", content=l13, headers=shuttle)
        health = (await client.get("/health")).json()
        found = samples_of((await client.get("/metrics")).text)
    assert before["warnings"] == []
    assert one.status_code == two.status_code == 200
    # a token neither DRAIN_TOKENS nor DRAIN_APPS lists is folded into "other"
    assert (
        value(found, "drain_upstream_lost_messages_total", drain_token="other", source="L10") == 1
    )
    # log-shuttle's L13 line and its Logplex-Lost-Count header are one loss of 1 message
    assert value(found, "drain_upstream_lost_messages_total", drain_token="", source="L13") == 1
    # the L10 of 2014 is outside the acceptance window: a bare loss report; the L13 of
    # 2026-11-30 is inside it: a platform event too
    assert value(found, "drain_not_event_lines_total", kind="logplex_error") == 1
    assert value(found, "drain_platform_events_total", code="L13") == 1
    assert health["status"] == "ok"
    l10, l13 = [w for w in health["warnings"] if w["kind"] == "upstream_loss"]
    assert (l10["source"], l10["lost"], l10["app"]) == ("L10", 1, "other")
    assert l13["lost"] == 1 and l13["source"] == "L13"
    assert l13["since"] == "2026-11-30T22:43:00.082055+00:00"
    assert "drain_token" not in l13 and l13["app"] == "other"  # /health is public
    assert DRAIN_TOKEN not in str(health)
    assert "lost before they reached this drain" in l13["message"]
    assert "sender's count" in l13["message"] and l13["retries_since"] == 0


async def test_health_warns_when_partitions_are_not_made_ahead(migrated_url: str) -> None:
    app = create_app(settings(drain_partitions_ahead_days=3), database_url=migrated_url)
    async with served_app(app) as base, httpx.AsyncClient(base_url=base, auth=AUTH) as client:
        assert (await client.get("/health")).json()["warnings"] == []
        import asyncpg

        conn = await asyncpg.connect(migrated_url)
        try:
            names = [
                r["relname"]
                for r in await conn.fetch(
                    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                    " WHERE i.inhparent = 'raw_events'::regclass ORDER BY 1"
                )
            ]
            await conn.execute(f"DROP TABLE {names[-2]}")  # today + 2 gone: 1 day ahead left
        finally:
            await conn.close()
        health = (await client.get("/health")).json()
        found = samples_of((await client.get("/metrics")).text)
    (warning,) = health["warnings"]
    assert warning["kind"] == "partitions_ahead"
    assert (warning["ahead_days"], warning["wanted_days"]) == (1, 3)
    assert value(found, "drain_partitions_ahead_days") == 1


async def test_one_log_line_per_batch_with_the_request_id_and_no_body(migrated_url: str) -> None:
    secret_payload = "user-7f3a-private"
    body = frame(event_line(NOW, "shop.signup", {"email": secret_payload}))
    app = create_app(settings(), database_url=migrated_url, clock=lambda: NOW)
    async with served_app(app) as base, httpx.AsyncClient(base_url=base, auth=AUTH) as client:
        headers = {**logplex_headers(msg_count=1, frame_id="f-1"), "X-Request-Id": "req-42"}
        with structlog.testing.capture_logs() as logs:
            response = await client.post("/logs", content=body, headers=headers)
            refused = await client.post("/logs", content=body, headers={"X-Request-Id": "req-43"})
    assert response.status_code == 200 and refused.status_code == 415
    batch = [entry for entry in logs if entry["event"] == "batch"]
    assert [(e["request_id"], e["log_level"], e["status"]) for e in batch] == [
        ("req-42", "info", 200),
        ("req-43", "warning", 415),
    ]
    first = batch[0]
    assert (first["frames"], first["events_stored"], first["quarantined"]) == (1, 1, 0)
    assert (first["drain_token"], first["frame_id"], first["duplicate"]) == (
        DRAIN_TOKEN,
        "f-1",
        False,
    )
    assert secret_payload not in repr(logs) and PASSWORD not in repr(logs)


def test_two_workers_one_metrics_view_and_json_logs(database_url: str, tmp_path: Path) -> None:
    """`drain serve --workers 2`: whichever worker answers the scrape, it counts every
    worker's batches; stdout is JSON lines, one per batch, without bodies or secrets."""
    import asyncio

    asyncio.run(migrate(database_url))
    # a temp dir of the service's own, so that other drains on the machine do not count
    service_tmp = tmp_path / "service-tmp"
    service_tmp.mkdir()
    pattern = str(service_tmp / "drain-metrics-*")
    before = set(glob.glob(pattern))
    env = clean_env(
        DATABASE_URL=database_url,
        DRAIN_USERNAME=USER,
        DRAIN_PASSWORD=PASSWORD,
        TMPDIR=str(service_tmp),
    )
    per_batch = 5
    at = datetime.now(UTC).replace(microsecond=0)
    with serving(tmp_path, env, ["--workers", "2"]) as served:
        during = set(glob.glob(pattern)) - before
        workers = set()
        batches = 0
        # New connections until both workers have answered (bounded): the kernel hands each
        # connection to whichever worker accepts first.
        while batches < 200 and (batches < 12 or len(workers) < 2):
            with httpx.Client(base_url=served.base_url, auth=AUTH) as client:
                headers = {
                    **logplex_headers(msg_count=per_batch, frame_id=f"w-{batches}"),
                    "X-Request-Id": f"req-{batches}-{uuid.uuid4().hex[:6]}",
                }
                body = events_body(at, "two.workers", per_batch, start=batches * per_batch)
                assert client.post("/logs", content=body, headers=headers).status_code == 200
                batches += 1
                # a worker's counters start when it starts: its identity here
                workers.add(client.get("/health").json()["counters"]["started_at"])
        l10 = (SAMPLES / "logplex-issue105-l10-no-lf.body").read_bytes()
        with httpx.Client(base_url=served.base_url, auth=AUTH) as client:
            headers = logplex_headers(frame_id="w-l10")
            assert client.post("/logs", content=l10, headers=headers).status_code == 200
        scrapes, healths = [], []
        for _ in range(8):
            with httpx.Client(base_url=served.base_url, auth=AUTH) as client:
                scrapes.append(samples_of(client.get("/metrics").text))
                health = client.get("/health").json()
                healths.append((health["counters"]["started_at"], health["warnings"]))
        assert served.stop() == 0, served.output()
    after = set(glob.glob(pattern))
    assert len(workers) == 2, "both workers answered"
    for found in scrapes:
        assert value(found, "drain_batches_received_total", app="other") == batches + 1
        assert value(found, "drain_events_stored_total", app="other") == batches * per_batch
        assert value(found, "drain_requests_total", status="200") == batches + 1
        lost = value(found, "drain_upstream_lost_messages_total", drain_token="other", source="L10")
        assert lost == 1
    # whichever worker answers /health, it shows the loss the other one may have seen
    for _worker, warnings in healths:
        assert [(w["kind"], w["lost"]) for w in warnings] == [("upstream_loss", 1)]
    assert len(during) == 1 and not (during & after), "a private metrics dir, removed at exit"
    lines = served.stdout_path.read_text().splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    batch_lines = [r for r in records if r.get("event") == "batch"]
    assert len(batch_lines) == batches + 1
    posted = [r for r in batch_lines if r["frame_id"] != "w-l10"]
    assert all(r["request_id"].startswith("req-") and r["frames"] == per_batch for r in posted)
    assert [r["lost_upstream"] for r in batch_lines if r["frame_id"] == "w-l10"] == [1]
    text = served.output()
    assert '"n":' not in text and "two.workers" not in text  # no event, no body
    assert PASSWORD not in text and database_url not in text


async def test_database_errors_are_counted_by_class(migrated_url: str) -> None:
    from testkit.tcpproxy import TcpProxy

    proxy = TcpProxy(migrated_url)
    await proxy.start()
    try:
        app = create_app(settings(), database_url=proxy.url, clock=lambda: NOW)
        async with (
            served_app(app) as base,
            httpx.AsyncClient(base_url=base, auth=AUTH) as client,
        ):
            body = events_body(NOW, "cut.tag", 2)
            ok = await client.post("/logs", content=body, headers=logplex_headers(frame_id="c1"))
            proxy.cut()
            cut = await client.post("/logs", content=body, headers=logplex_headers(frame_id="c2"))
            proxy.restore()
            found = samples_of((await client.get("/metrics")).text)
    finally:
        await proxy.close()
    assert (ok.status_code, cut.status_code) == (200, 503)
    assert value(found, "drain_database_errors_total", **{"class": "unavailable"}) >= 1
    assert value(found, "drain_requests_total", status="503") == 1


def test_mark_dead_workers_keeps_live_gauges_only(tmp_path: Path) -> None:
    import os

    from drain.web.metrics import mark_dead_workers

    alive = tmp_path / f"gauge_livesum_{os.getpid()}.db"
    dead = tmp_path / "gauge_livesum_4194303.db"  # above any Linux pid_max default
    counter = tmp_path / "counter_4194303.db"  # counters of exited workers stay in the sum
    for path in (alive, dead, counter):
        path.write_bytes(b"")
    assert mark_dead_workers(str(tmp_path)) == [4194303]
    assert alive.exists() and counter.exists() and not dead.exists()


def test_metrics_refuse_a_half_configured_multiprocess_mode(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from drain.web.metrics import MULTIPROC_ENV, Metrics

    # prometheus_client was imported without the variable: setting it now cannot work
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
    with pytest.raises(RuntimeError, match="before prometheus_client is imported"):
        Metrics.create()
