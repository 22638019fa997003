"""End to end: `drain serve` as a subprocess on 127.0.0.1, driven over real HTTP with httpx.

The database is the test's fresh PostgreSQL database, migrated with `drain migrate` first, as the
release phase would. Assertions read the tables directly.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import signal
import socket
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import pytest

from testkit.tcpproxy import TcpProxy
from tests.support.served import (
    AUTH,
    PASSWORD,
    USER,
    Served,
    async_chunks,
    clean_env,
    drain_command,
    events_body,
    logplex_headers,
    samples,
    start_drain,
)

MAX_BODY_BYTES = 65536


async def scalar(url: str, query: str) -> object:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(query)
    finally:
        await conn.close()


def drain_env(url: str, **extra: str) -> dict[str, str]:
    return clean_env(
        DATABASE_URL=url,
        DRAIN_USERNAME=USER,
        DRAIN_PASSWORD=PASSWORD,
        DRAIN_MAX_BODY_BYTES=str(MAX_BODY_BYTES),
        DRAIN_BODY_TIMEOUT_S="1",
        **extra,
    )


@pytest.fixture
def migrated(database_url: str, tmp_path: Path) -> str:
    result = subprocess.run(
        [*drain_command(), "migrate"],
        env=clean_env(DATABASE_URL=database_url),
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert b"applied:" in result.stdout
    return database_url


@pytest.fixture
def served(migrated: str, tmp_path: Path) -> Iterator[Served]:
    server = start_drain(tmp_path, drain_env(migrated))
    try:
        yield server
    finally:
        if server.proc.poll() is None:
            assert server.stop() == 0, server.output()


async def test_every_sample_replayed_with_its_headers(served: Served, migrated: str) -> None:
    """Each captured body, with its captured headers (chunked when log-shuttle sent chunked)."""
    stored = quarantined = 0
    async with httpx.AsyncClient(base_url=served.base_url, auth=AUTH, timeout=10) as client:
        for sample in samples():
            content = async_chunks(sample.body) if sample.chunked else sample.body
            response = await client.post("/logs", content=content, headers=sample.headers)
            assert response.status_code == 200, (sample.name, response.text)
            assert response.content == b""
            assert response.headers["content-length"] == "0"
            h = response.headers
            frames = int(h["drain-frames"])
            not_events = int(h["drain-not-events"])
            assert int(h["drain-events-stored"]) <= frames - not_events, sample.name
            stored += int(h["drain-events-stored"])
            quarantined += int(h["drain-quarantined"])
        # The same requests again: every one carries a frame id, so nothing is added.
        for sample in samples():
            content = async_chunks(sample.body) if sample.chunked else sample.body
            again = await client.post("/logs", content=content, headers=sample.headers)
            assert again.status_code == 200
            assert again.headers["drain-events-stored"] == "0", sample.name
    assert await scalar(migrated, "SELECT count(*) FROM raw_events") == stored
    assert await scalar(migrated, "SELECT count(*) FROM quarantine") == quarantined
    assert quarantined > 0  # the samples hold invalid JSON, arrays, bad framing...


async def test_refusals_over_http(served: Served, migrated: str) -> None:
    now = datetime.now(UTC)
    body = events_body(now, "e2e.refused", 3)
    async with httpx.AsyncClient(base_url=served.base_url, timeout=10) as client:
        no_auth = await client.post("/logs", content=body, headers=logplex_headers())
        wrong = await client.post(
            "/logs", content=body, headers=logplex_headers(), auth=(USER, "nope")
        )
        media = await client.post(
            "/logs", content=body, headers={"Content-Type": "text/plain"}, auth=AUTH
        )
        big = events_body(now, "e2e.big", 1000)
        assert len(big) > MAX_BODY_BYTES
        too_big = await client.post("/logs", content=big, headers=logplex_headers(), auth=AUTH)
        too_big_chunked = await client.post(
            "/logs", content=async_chunks(big, 4096), headers=logplex_headers(), auth=AUTH
        )
        long_id = await client.post(
            "/logs", content=body, headers=logplex_headers(frame_id="x" * 300), auth=AUTH
        )
        gz_headers = {**logplex_headers(msg_count=3), "Content-Encoding": "gzip"}
        gz = await client.post("/logs", content=gzip.compress(body), headers=gz_headers, auth=AUTH)
        health = await client.get("/health")
    assert no_auth.status_code == wrong.status_code == 401
    assert no_auth.headers["www-authenticate"].startswith("Basic")
    assert media.status_code == 415
    assert too_big.status_code == too_big_chunked.status_code == 413
    assert long_id.status_code == 400
    assert gz.status_code == 200 and gz.headers["drain-events-stored"] == "3"
    assert health.status_code == 200
    by_status = health.json()["counters"]["requests_by_status"]
    assert by_status == {"200": 1, "400": 1, "401": 2, "413": 2, "415": 1}
    assert await scalar(migrated, "SELECT count(*) FROM raw_events") == 3


def test_slow_body_is_503_with_retry_after(served: Served) -> None:
    """A client that sends part of its body and stalls gets 503 + Retry-After after
    DRAIN_BODY_TIMEOUT_S (not 408, which Logplex would treat as final)."""
    port = int(served.base_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        auth = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        sock.sendall(
            b"POST /logs HTTP/1.1\r\nHost: drain\r\nContent-Type: application/logplex-1\r\n"
            b"Authorization: " + auth.encode() + b"\r\nContent-Length: 100\r\n\r\n70 <174>1"
        )
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 503"), answer
    assert b"\r\nretry-after: 5\r\n" in answer.lower(), answer


async def test_fifty_concurrent_posts_store_every_event_exactly_once(
    served: Served, migrated: str
) -> None:
    now = datetime.now(UTC)
    batches = [
        (f"frame-{i:03d}", events_body(now, "e2e.concurrent", 20, start=i * 20)) for i in range(50)
    ]
    # every batch twice (a Logplex retry racing the original), all at once
    requests = batches + batches[::-1]
    limits = httpx.Limits(max_connections=100)
    async with httpx.AsyncClient(
        base_url=served.base_url, auth=AUTH, timeout=30, limits=limits
    ) as client:
        responses = await asyncio.gather(
            *(
                client.post("/logs", content=body, headers=logplex_headers(frame_id=frame_id))
                for frame_id, body in requests
            )
        )
    assert [r.status_code for r in responses] == [200] * 100
    assert sum(int(r.headers["drain-events-stored"]) for r in responses) == 1000
    assert sum(r.headers.get("drain-duplicate") == "true" for r in responses) == 50
    assert await scalar(migrated, "SELECT count(*) FROM raw_events") == 1000
    distinct = "SELECT count(DISTINCT (payload->>'n')::int) FROM raw_events"
    assert await scalar(migrated, distinct) == 1000


async def test_sigterm_exits_zero_and_keeps_every_acknowledged_event(
    migrated: str, tmp_path: Path
) -> None:
    server = start_drain(tmp_path, drain_env(migrated))
    now = datetime.now(UTC)
    acknowledged = 0
    try:
        async with httpx.AsyncClient(base_url=server.base_url, auth=AUTH, timeout=30) as client:

            async def post(i: int) -> httpx.Response | BaseException:
                try:
                    return await client.post(
                        "/logs",
                        content=events_body(now, "e2e.sigterm", 10, start=i * 10),
                        headers=logplex_headers(frame_id=f"term-{i}"),
                    )
                except httpx.TransportError as error:
                    return error

            first = await post(999)
            assert isinstance(first, httpx.Response) and first.status_code == 200
            acknowledged += 10
            tasks = [asyncio.create_task(post(i)) for i in range(30)]
            # signal while the others are in flight: once the first of them is answered
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            server.proc.send_signal(signal.SIGTERM)
            results = await asyncio.gather(*tasks)
        for result in results:
            if isinstance(result, httpx.Response) and result.status_code == 200:
                acknowledged += int(result.headers["drain-events-stored"])
            else:
                assert isinstance(result, BaseException) or result.status_code == 503
        code = await asyncio.to_thread(server.proc.wait, 15)
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait(5)
    assert code == 0, server.output()
    stored = await scalar(migrated, "SELECT count(*) FROM raw_events")
    assert stored == acknowledged
    assert "Application shutdown complete" in server.output()


async def test_two_workers_serve_and_stop_cleanly(migrated: str, tmp_path: Path) -> None:
    server = start_drain(tmp_path, drain_env(migrated), ["--workers", "2"])
    try:
        now = datetime.now(UTC)
        async with httpx.AsyncClient(base_url=server.base_url, auth=AUTH, timeout=30) as client:
            responses = await asyncio.gather(
                *(
                    client.post(
                        "/logs",
                        content=events_body(now, "e2e.workers", 5, start=i * 5),
                        headers=logplex_headers(frame_id=f"w-{i}"),
                    )
                    for i in range(10)
                )
            )
        assert [r.status_code for r in responses] == [200] * 10
    finally:
        code = server.stop()
    assert code == 0, server.output()
    assert await scalar(migrated, "SELECT count(*) FROM raw_events") == 50


async def test_database_outage_over_http(migrated: str, tmp_path: Path) -> None:
    """The database goes away under a running `drain serve`: POST /logs and /health answer
    503 (POST with Retry-After); when it is back, Logplex's retry with the same frame id is
    stored once."""
    proxy = TcpProxy(migrated)
    await proxy.start()
    server: Served | None = None
    try:
        server = await asyncio.to_thread(start_drain, tmp_path, drain_env(proxy.url))
        now = datetime.now(UTC)
        body = events_body(now, "e2e.outage", 4)
        headers = logplex_headers(frame_id="outage-1")
        async with httpx.AsyncClient(base_url=server.base_url, auth=AUTH, timeout=30) as client:
            proxy.cut()
            down = await client.post("/logs", content=body, headers=headers)
            health_down = await client.get("/health")
            proxy.restore()
            retried = await client.post("/logs", content=body, headers=headers)
            again = await client.post("/logs", content=body, headers=headers)
            health_up = await client.get("/health")
        code = await asyncio.to_thread(server.stop)
    finally:
        if server is not None and server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait(5)
        await proxy.close()
    assert down.status_code == 503 and int(down.headers["retry-after"]) >= 1
    assert health_down.status_code == 503
    assert health_down.json()["database"]["reachable"] is False
    assert retried.status_code == 200 and retried.headers["drain-events-stored"] == "4"
    assert again.status_code == 200 and again.headers["drain-duplicate"] == "true"
    assert health_up.status_code == 200
    assert code == 0
    assert await scalar(migrated, "SELECT count(*) FROM raw_events") == 4
