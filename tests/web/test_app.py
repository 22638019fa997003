"""POST /logs and GET /health in process (httpx ASGITransport), real writer, real PostgreSQL."""

from __future__ import annotations

import asyncio
import gzip
from datetime import timedelta

import asyncpg
import httpx
import pytest

from drain.settings import Settings, SettingsError
from drain.web.app import create_app
from testkit.tcpproxy import TcpProxy
from tests.support.app import NOW, drain, fetch, running, settings
from tests.support.served import (
    DRAIN_TOKEN,
    PASSWORD,
    async_chunks,
    event_line,
    events_body,
    frame,
    logplex_headers,
)


async def test_logplex_batch_is_stored_and_answered_with_an_empty_200(migrated_url: str) -> None:
    lines = [
        event_line(NOW, "shop.signup", {"user": 42, "plan": "pro"}),
        "<158>1 2026-12-01T11:59:59.5+00:00 host heroku router - at=info method=GET path=/\n",
        f"<134>1 {NOW.isoformat()} host app web.2 - @[shop.order] [1, 2]\n",
    ]
    body = b"".join(frame(line) for line in lines)
    async with drain(migrated_url) as client:
        response = await client.post(
            "/logs", content=body, headers=logplex_headers(msg_count=3, frame_id="f-1")
        )
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == "0"
    assert response.headers["drain-frames"] == "3"
    assert response.headers["drain-events-stored"] == "1"
    assert response.headers["drain-quarantined"] == "1"
    assert response.headers["drain-not-events"] == "0"
    # the router line is one of Heroku's own lines: a row of router_requests
    assert response.headers["drain-typed-lines"] == "1"
    assert response.headers["drain-typed-rows-stored"] == "1"
    assert "drain-duplicate" not in response.headers
    (router,) = await fetch(migrated_url, "SELECT method, path, frame_id FROM router_requests")
    assert tuple(router) == ("GET", "/", "f-1")

    rows = await fetch(migrated_url, "SELECT * FROM raw_events")
    assert len(rows) == 1
    row = rows[0]
    assert row["tag"] == "shop.signup"
    assert row["event_time"] == NOW
    assert row["received_at"] == NOW
    assert row["facility"] == 16 and row["severity"] == 6
    assert (row["hostname"], row["app_name"], row["proc_id"]) == ("host", "app", "web.1")
    assert row["drain_token"] == DRAIN_TOKEN and row["frame_id"] == "f-1"
    quarantined = await fetch(migrated_url, "SELECT reason, tag, frame_id FROM quarantine")
    assert [tuple(r) for r in quarantined] == [("not_an_object", "shop.order", "f-1")]


async def test_same_frame_id_twice_stores_once(migrated_url: str) -> None:
    body = events_body(NOW, "shop.retry", 5)
    headers = logplex_headers(msg_count=5, frame_id="09C557EAFCFB6CF2740EE62F62971098")
    async with drain(migrated_url) as client:
        first = await client.post("/logs", content=body, headers=headers)
        second = await client.post("/logs", content=body, headers=headers)
        health = (await client.get("/health")).json()
    assert first.status_code == second.status_code == 200
    assert first.headers["drain-events-stored"] == "5"
    assert second.headers["drain-duplicate"] == "true"
    assert second.headers["drain-events-stored"] == "0"
    assert (await fetch(migrated_url, "SELECT count(*) FROM raw_events"))[0][0] == 5
    assert health["counters"]["duplicates"] == 1
    assert health["counters"]["events_stored"] == 5


async def test_x_request_id_is_the_frame_id_when_logplex_frame_id_is_absent(
    migrated_url: str,
) -> None:
    headers = logplex_headers(token=None)
    headers["X-Request-Id"] = "8b15f8cc-fb13-40b8-8cde-75635573c30f"
    async with drain(migrated_url) as client:
        for _ in range(2):
            response = await client.post(
                "/logs", content=events_body(NOW, "ls.req", 2), headers=headers
            )
            assert response.status_code == 200
    rows = await fetch(migrated_url, "SELECT frame_id, drain_token FROM raw_events")
    assert [tuple(r) for r in rows] == [("8b15f8cc-fb13-40b8-8cde-75635573c30f", None)] * 2


async def test_batches_without_an_id_are_stored_as_they_come(migrated_url: str) -> None:
    body = events_body(NOW, "curl.plain", 1)
    async with drain(migrated_url) as client:
        for _ in range(2):
            response = await client.post("/logs", content=body, headers=logplex_headers())
            assert response.headers["drain-events-stored"] == "1"
    assert (await fetch(migrated_url, "SELECT count(*) FROM raw_events"))[0][0] == 2


@pytest.mark.parametrize(
    "auth",
    [None, ("logplex", "wrong"), ("other", PASSWORD)],
    ids=["no_credentials", "wrong_password", "wrong_user"],
)
async def test_bad_credentials_are_401_with_a_challenge(
    migrated_url: str, auth: tuple[str, str] | None
) -> None:
    async with drain(migrated_url) as client:
        if auth is None:
            response = await _post_without_auth(client)
        else:
            response = await client.post(
                "/logs", content=events_body(NOW, "x.y", 1), headers=logplex_headers(), auth=auth
            )
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith('Basic realm="drain"')
    assert (await fetch(migrated_url, "SELECT count(*) FROM raw_events"))[0][0] == 0


async def _post_without_auth(client: httpx.AsyncClient) -> httpx.Response:
    request = client.build_request(
        "POST", "/logs", content=events_body(NOW, "x.y", 1), headers=logplex_headers()
    )
    request.headers.pop("authorization", None)
    return await client.send(request, auth=None)


async def test_malformed_authorization_header_is_401(migrated_url: str) -> None:
    async with drain(migrated_url) as client:
        for value in ["Basic !!!", "Basic Zm9v", "Bearer x", "Basic \u00ff"]:
            request = client.build_request("POST", "/logs", content=b"", headers=logplex_headers())
            request.headers["Authorization"] = value
            response = await client.send(request, auth=None)
            assert response.status_code == 401, value


async def test_anonymous_local_drain_needs_no_credentials(migrated_url: str) -> None:
    app = create_app(Settings(database_url=None), database_url=migrated_url, clock=lambda: NOW)
    async with running(app) as client:
        response = await client.post(
            "/logs", content=events_body(NOW, "x.y", 1), headers=logplex_headers(), auth=None
        )
    assert response.status_code == 200


def test_deployed_drain_without_credentials_is_refused_by_create_app() -> None:
    with pytest.raises(SettingsError, match="DRAIN_ALLOW_ANONYMOUS"):
        create_app(
            Settings(database_url="postgres://u:p@db.example/d"), database_url="postgres://x/y"
        )


async def test_drain_token_not_on_the_allow_list_is_403(migrated_url: str) -> None:
    async with drain(
        migrated_url, drain_tokens=f"{DRAIN_TOKEN},d.aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
    ) as client:
        ok = await client.post("/logs", content=b"", headers=logplex_headers())
        wrong = await client.post("/logs", content=b"", headers=logplex_headers(token="d.not-ours"))
        missing = await client.post("/logs", content=b"", headers=logplex_headers(token=None))
    assert ok.status_code == 200
    assert wrong.status_code == 403 and missing.status_code == 403
    assert b"Logplex-Drain-Token" in wrong.content


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/json",
        "application/logplex-2",
        "application/x-www-form-urlencoded",
    ],
)
async def test_other_media_types_are_415(migrated_url: str, content_type: str | None) -> None:
    headers = logplex_headers()
    del headers["Content-Type"]
    if content_type is not None:
        headers["Content-Type"] = content_type
    async with drain(migrated_url) as client:
        response = await client.post("/logs", content=events_body(NOW, "x.y", 1), headers=headers)
    assert response.status_code == 415


async def test_media_type_parameters_and_case_are_accepted(migrated_url: str) -> None:
    headers = logplex_headers()
    headers["Content-Type"] = "Application/Logplex-1; charset=utf-8"
    async with drain(migrated_url) as client:
        response = await client.post("/logs", content=events_body(NOW, "x.y", 1), headers=headers)
    assert response.status_code == 200


async def test_body_over_the_cap_is_413_with_content_length_and_chunked(
    migrated_url: str,
) -> None:
    body = events_body(NOW, "big.one", 100)
    async with drain(migrated_url, drain_max_body_bytes=len(body) - 1) as client:
        sized = await client.post("/logs", content=body, headers=logplex_headers())
        chunked = await client.post("/logs", content=async_chunks(body), headers=logplex_headers())
        packed = gzip.compress(body)
        headers = logplex_headers()
        headers["Content-Encoding"] = "gzip"
        bomb = await client.post("/logs", content=packed, headers=headers)
    assert sized.status_code == chunked.status_code == bomb.status_code == 413
    assert (await fetch(migrated_url, "SELECT count(*) FROM raw_events"))[0][0] == 0


async def test_gzip_and_chunked_bodies_are_decoded(migrated_url: str) -> None:
    body = events_body(NOW, "ls.gzip", 7)
    headers = logplex_headers(msg_count=7)
    headers["Content-Encoding"] = "gzip"
    async with drain(migrated_url) as client:
        response = await client.post(
            "/logs", content=async_chunks(gzip.compress(body), 13), headers=headers
        )
        corrupt = await client.post("/logs", content=b"\x1f\x8bnot really", headers=headers)
        headers["Content-Encoding"] = "br"
        brotli = await client.post("/logs", content=body, headers=headers)
    assert response.status_code == 200
    assert response.headers["drain-events-stored"] == "7"
    assert corrupt.status_code == 400
    assert brotli.status_code == 415


@pytest.mark.parametrize("header", ["Logplex-Frame-Id", "X-Request-Id", "Logplex-Drain-Token"])
async def test_id_headers_over_200_bytes_are_400(migrated_url: str, header: str) -> None:
    headers = logplex_headers()
    headers[header] = "f" * 201
    async with drain(migrated_url) as client:
        response = await client.post("/logs", content=events_body(NOW, "x.y", 1), headers=headers)
    assert response.status_code == 400
    assert b"200 bytes" in response.content


async def test_msg_count_mismatch_is_counted_never_refused(
    migrated_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    body = events_body(NOW, "count.me", 3)
    async with drain(migrated_url) as client:
        wrong = await client.post("/logs", content=body, headers=logplex_headers(msg_count=4))
        garbage = await client.post(
            "/logs", content=body, headers={**logplex_headers(), "Logplex-Msg-Count": "three"}
        )
        health = (await client.get("/health")).json()
    assert wrong.status_code == garbage.status_code == 200
    assert wrong.headers["drain-msg-count-mismatch"] == "header=4 frames=3"
    assert "drain-msg-count-mismatch" not in garbage.headers
    assert health["counters"]["msg_count_mismatches"] == 1
    assert health["counters"]["msg_count_invalid"] == 1
    warnings = [r for r in caplog.records if r.name == "drain.web" and r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert "count.me" not in warnings[0].getMessage()  # the body is never logged


async def test_body_with_nothing_to_store_is_200(migrated_url: str) -> None:
    line = "<45>1 2026-12-01T11:00:00+00:00 host app web.1 - plain output\n"
    async with drain(migrated_url) as client:
        empty = await client.post("/logs", content=b"", headers=logplex_headers())
        plain = await client.post("/logs", content=frame(line), headers=logplex_headers())
    assert empty.status_code == plain.status_code == 200
    assert plain.headers["drain-not-events"] == "1"
    assert plain.headers["drain-events-stored"] == "0"


async def test_out_of_window_events_are_quarantined(migrated_url: str) -> None:
    body = frame(event_line(NOW - timedelta(days=30), "old.event", {"a": 1})) + frame(
        event_line(NOW + timedelta(days=2), "future.event", {"a": 1})
    )
    async with drain(migrated_url) as client:
        response = await client.post("/logs", content=body, headers=logplex_headers())
    assert response.status_code == 200
    assert response.headers["drain-quarantined"] == "2"
    rows = await fetch(migrated_url, "SELECT DISTINCT reason FROM quarantine")
    assert [r[0] for r in rows] == ["out_of_window"]


async def test_health_reports_database_writer_and_counters(migrated_url: str) -> None:
    async with drain(migrated_url) as client:
        await client.post("/logs", content=events_body(NOW, "h.ok", 2), headers=logplex_headers())
        await client.post("/logs", content=b"", headers={"Content-Type": "text/plain"})
        response = await client.get("/health", auth=None)
    assert response.status_code == 200
    document = response.json()
    assert document["status"] == "ok"
    assert document["database"]["reachable"] is True
    assert document["database"]["latency_ms"] >= 0
    assert document["writer"]["queue_events"] == 0
    assert document["writer"]["last_commit_at"] is not None
    counters = document["counters"]
    assert counters["requests_by_status"] == {"200": 1, "415": 1}
    assert counters["frames"] == 2 and counters["events_stored"] == 2
    assert PASSWORD not in response.text and migrated_url not in response.text


async def test_database_gone_gives_503_with_retry_after_and_health_503(
    migrated_url: str,
) -> None:
    proxy = TcpProxy(migrated_url)
    await proxy.start()
    try:
        app = create_app(settings(), database_url=proxy.url, clock=lambda: NOW)
        async with running(app) as client:
            ok = await client.post(
                "/logs", content=events_body(NOW, "db.before", 1), headers=logplex_headers()
            )
            proxy.cut()
            down = await client.post(
                "/logs",
                content=events_body(NOW, "db.down", 1),
                headers=logplex_headers(frame_id="retry-me"),
            )
            health = await client.get("/health")
            proxy.restore()
            again = await client.post(
                "/logs",
                content=events_body(NOW, "db.down", 1),
                headers=logplex_headers(frame_id="retry-me"),
            )
            healthy = await client.get("/health")
    finally:
        await proxy.close()
    assert ok.status_code == 200
    assert down.status_code == 503
    assert int(down.headers["retry-after"]) >= 1
    assert health.status_code == 503
    assert health.json()["database"]["reachable"] is False
    assert "127.0.0.1" not in health.json()["database"]["error"]
    assert health.json()["writer"]["last_error"]  # the failed write is reported...
    assert ":" not in health.json()["writer"]["last_error"]  # ...by its class only
    assert again.status_code == 200 and healthy.status_code == 200
    rows = await fetch(migrated_url, "SELECT tag FROM raw_events ORDER BY tag")
    assert [r[0] for r in rows] == ["db.before", "db.down"]


async def test_full_write_queue_is_503_with_retry_after(migrated_url: str) -> None:
    """A transaction holding raw_events stalls the writer; the queue fills; the next post is
    answered 503 + Retry-After, and the stalled batch commits once the lock is gone."""
    app = create_app(
        settings(drain_queue_max_events=5), database_url=migrated_url, clock=lambda: NOW
    )
    blocker = await asyncpg.connect(migrated_url)
    try:
        async with running(app) as client:
            writer = app.state.drain.writer
            locked = blocker.transaction()
            await locked.start()
            await blocker.execute("LOCK TABLE raw_events IN ACCESS EXCLUSIVE MODE")
            first = asyncio.create_task(
                client.post(
                    "/logs",
                    content=events_body(NOW, "queue.first", 5),
                    headers=logplex_headers(frame_id="q-1"),
                )
            )
            for _ in range(100_000):  # bounded: until the first batch is queued
                if writer.stats().queue_events >= 5 or first.done():
                    break
                await asyncio.sleep(0)
            assert writer.stats().queue_events >= 5
            decoded_before = app.state.drain.counters.batches
            second = await client.post(
                "/logs",
                content=events_body(NOW, "queue.second", 5),
                headers=logplex_headers(frame_id="q-2"),
            )
            # refused before its body was read and decoded (Writer.check_room)
            assert app.state.drain.counters.batches == decoded_before
            await locked.rollback()
            first_response = await first
    finally:
        await blocker.close()
    assert second.status_code == 503
    assert int(second.headers["retry-after"]) >= 1
    assert first_response.status_code == 200
    assert first_response.headers["drain-events-stored"] == "5"
    rows = await fetch(migrated_url, "SELECT DISTINCT tag FROM raw_events")
    assert [r[0] for r in rows] == ["queue.first"]


async def test_large_body_is_decoded_and_stored(migrated_url: str) -> None:
    body = events_body(NOW, "big.batch", 4000)
    assert len(body) > 256 * 1024  # decoded off the event loop
    async with drain(migrated_url) as client:
        response = await client.post(
            "/logs", content=body, headers=logplex_headers(msg_count=4000, frame_id="big")
        )
    assert response.status_code == 200
    assert response.headers["drain-events-stored"] == "4000"
    assert (await fetch(migrated_url, "SELECT count(*) FROM raw_events"))[0][0] == 4000


def test_queue_bounds_are_shared_among_the_workers() -> None:
    """Each worker holds its own write queue: it gets its share of the bounds."""
    one = settings(drain_queue_max_events=200_000).writer_config()
    two = settings(
        drain_queue_max_events=200_000, drain_queue_max_bytes=2**26, web_concurrency=2
    ).writer_config()
    assert one.queue_max_events == 200_000
    assert (two.queue_max_events, two.queue_max_bytes) == (100_000, 2**25)
