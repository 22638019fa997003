"""POST /v1/logs, /v1/metrics, /v1/traces over real HTTP on a real PostgreSQL: the OpenTelemetry
Python SDK's OTLP/HTTP exporters against the drain (in process under uvicorn, and as a `drain
serve` subprocess), JSON bodies, retries of the same bytes, a database cut and a stall
mid-request, malformed bodies, wrong media types, credentials, the answers' content, and
docs/otlp.md's curl example as written."""

from __future__ import annotations

import asyncio
import gzip
import json
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.rpc import status_pb2
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.sdk._logs.export import LogRecordExportResult
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from drain.web.app import create_app
from testkit.tcpproxy import TcpProxy
from tests.support.app import fetch
from tests.support.otlp import (
    BEARER,
    BEARER_HEADER,
    FIR_RESOURCE,
    JSON,
    PROTOBUF,
    Record,
    SdkLogs,
    add_resource,
    as_json,
    logs_request,
    nanos,
    parse_logs_response,
)
from tests.support.served import (
    AUTH,
    PASSWORD,
    USER,
    app_settings,
    clean_env,
    drain_command,
    events_body,
    served_app,
    serving,
)

#: docs/otlp.md, whose curl example the last test runs
OTLP_DOC = Path(__file__).parents[2] / "docs" / "otlp.md"
PAY = '@[production.pay] {"uid":48213,"item_id":7326,"item_category":"categoryA","price":321}'


@asynccontextmanager
async def otlp_drain(url: str, **overrides: Any) -> AsyncIterator[tuple[str, httpx.AsyncClient]]:
    """A drain (system clock, test credentials and bearer token) served by uvicorn in this
    process on the database at ``url``; its base URL and a client with the bearer token."""
    settings = app_settings(drain_bearer_token=BEARER, drain_body_timeout_s=5.0, **overrides)
    app = create_app(settings, database_url=url)
    async with (
        served_app(app) as base,
        httpx.AsyncClient(base_url=base, headers=BEARER_HEADER, timeout=30) as client,
    ):
        yield base, client


def status_of(response: httpx.Response) -> status_pb2.Status:
    """The google.rpc.Status of a refusal, decoded as its Content-Type says."""
    status = status_pb2.Status()
    if response.headers["content-type"] == "application/json":
        document = response.json()
        status.code, status.message = document.get("code", 0), document.get("message", "")
    else:
        assert response.headers["content-type"] == "application/x-protobuf"
        status.ParseFromString(response.content)
    return status


async def test_the_sdk_exporters_logs_land_once_with_their_app(migrated_url: str) -> None:
    """The done-when of the issue: a real OTLP exporter (protobuf, gzip) and its
    @[production.pay] bodies, in raw_events exactly once, with the app they came from."""
    async with otlp_drain(migrated_url) as (base, client):
        sdk = SdkLogs(f"{base}/v1/logs", headers=BEARER_HEADER, gzip=True)
        sdk.emit(PAY)
        sdk.emit('@[production.login] {"uid":48213,"ok":true}', SeverityNumber.WARN)
        sdk.emit("GET /items 200 in 12ms")  # plain output: counted, not stored
        sdk.emit("@[production.pay] {nope", SeverityNumber.ERROR)  # quarantined
        results = await asyncio.to_thread(sdk.flush)
        await asyncio.to_thread(sdk.close)
        health = (await client.get("/health")).json()
    assert results == [LogRecordExportResult.SUCCESS]
    rows = await fetch(
        migrated_url,
        "SELECT tag, payload->>'uid' AS uid, app, app_name, proc_id, facility, severity, "
        "drain_token, frame_id FROM raw_events ORDER BY tag",
    )
    assert [(r["tag"], r["uid"], r["app"], r["severity"]) for r in rows] == [
        ("production.login", "48213", "shop", 4),
        ("production.pay", "48213", "shop", 6),
    ]
    assert {r["proc_id"] for r in rows} == {FIR_RESOURCE["service.instance.id"]}
    assert {(r["facility"], r["app_name"], r["drain_token"]) for r in rows} == {
        (23, "shop", "otlp:bearer")
    }
    [frame_id] = {r["frame_id"] for r in rows}
    assert frame_id.startswith("sha256:")
    quarantined = await fetch(migrated_url, "SELECT reason, raw, app, frame_offset FROM quarantine")
    assert [tuple(q) for q in quarantined] == [
        ("invalid_json", b"@[production.pay] {nope", "shop", 3)
    ]
    ledger = await fetch(migrated_url, "SELECT drain_token, frame_id, events FROM received_batches")
    assert [tuple(r) for r in ledger] == [("otlp:bearer", frame_id, 2)]
    counters = health["counters"]
    assert counters["otlp_requests_by_signal"] == {"logs": 1}
    assert counters["frames"] == 4 and counters["not_events"] == 1


async def test_a_retry_of_the_same_bytes_adds_nothing(migrated_url: str) -> None:
    """An exporter resends the same bytes (here gzipped again, with another gzip header):
    the ledger key is the digest of the decoded body, so the retry is a duplicate."""
    now = datetime.now(UTC)
    body = logs_request([Record(PAY, nanos(now)), Record("@[x] [1]", nanos(now))])
    raw = body.SerializeToString()
    gzipped = {**PROTOBUF, "Content-Encoding": "gzip"}
    async with otlp_drain(migrated_url) as (_base, client):
        first = await client.post("/v1/logs", content=gzip.compress(raw, mtime=1), headers=gzipped)
        again = await client.post("/v1/logs", content=gzip.compress(raw, mtime=2), headers=gzipped)
        plain = await client.post("/v1/logs", content=raw, headers=PROTOBUF)
    assert first.status_code == again.status_code == plain.status_code == 200
    assert first.headers["drain-events-stored"] == "1" and "drain-duplicate" not in first.headers
    assert (
        again.headers["drain-duplicate"] == "true" and again.headers["drain-events-stored"] == "0"
    )
    assert plain.headers["drain-duplicate"] == "true"
    # the same answer each time: what the request was told about its records stays true
    assert first.content == again.content == plain.content
    response = parse_logs_response(first.content, first.headers["content-type"])
    assert response.partial_success.rejected_log_records == 1
    assert "not_an_object: 1" in response.partial_success.error_message
    assert len(await fetch(migrated_url, "SELECT 1 FROM raw_events")) == 1
    assert len(await fetch(migrated_url, "SELECT 1 FROM quarantine")) == 1


async def test_json_bodies_from_several_apps(migrated_url: str) -> None:
    now = datetime.now(UTC)
    request = logs_request([Record(PAY, nanos(now), 9)], {"service.name": "shop"})
    add_resource(
        request,
        [Record('@[production.register] {"uid":7}', nanos(now), 13), Record("hello", 0)],
        {"service.name": "api", "service.instance.id": "web.1"},
    )
    request.resource_logs[0].scope_logs[0].log_records[0].trace_id = bytes(range(16))
    async with otlp_drain(migrated_url) as (_base, client):
        answer = await client.post("/v1/logs", content=as_json(request), headers=JSON)
        charset = await client.post(
            "/v1/logs",
            content=b"{}",
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {}  # everything accepted: partial_success unset
    assert charset.status_code == 200 and charset.json() == {}
    rows = await fetch(
        migrated_url, "SELECT app, tag, proc_id, severity FROM raw_events ORDER BY app"
    )
    assert [tuple(r) for r in rows] == [
        ("api", "production.register", "web.1", 4),
        ("shop", "production.pay", "-", 6),
    ]


async def test_partial_success_says_what_was_quarantined_and_why(migrated_url: str) -> None:
    now = datetime.now(UTC)
    request = logs_request(
        [
            Record(PAY, nanos(now)),
            Record("@[bad tag] {}", nanos(now)),
            Record('@[shop.old] {"n":1}', nanos(now - timedelta(days=30))),
        ]
    )
    async with otlp_drain(migrated_url) as (_base, client):
        binary = await client.post(
            "/v1/logs", content=request.SerializeToString(), headers=PROTOBUF
        )
    assert binary.status_code == 200
    assert binary.headers["content-type"] == "application/x-protobuf"
    response = parse_logs_response(binary.content, binary.headers["content-type"])
    assert response.HasField("partial_success")
    assert response.partial_success.rejected_log_records == 2
    message = response.partial_success.error_message
    assert message.startswith("2 log records quarantined, not stored as events")
    assert "bad_tag: 1" in message and "out_of_window: 1" in message
    assert binary.headers["drain-quarantined"] == "2"


@pytest.mark.parametrize(
    ("headers", "content", "status", "says"),
    [
        (PROTOBUF, b"\x0a\xff\xff\xff\xff\x0f", 400, "not a protobuf ExportLogsServiceRequest"),
        (JSON, b'{"resourceLogs": [{"scopeLogs": 3}]}', 400, "not a JSON ExportLogsServiceRequest"),
        (JSON, b"{nope", 400, "not JSON"),
        ({"Content-Type": "application/logplex-1"}, b"", 415, "application/x-protobuf"),
        ({"Content-Type": "text/plain"}, b"x", 415, "application/json"),
        ({**PROTOBUF, "Content-Encoding": "deflate"}, b"x", 415, "Content-Encoding"),
        ({**PROTOBUF, "Content-Encoding": "gzip"}, b"not gzip", 400, "corrupt gzip"),
    ],
)
async def test_bad_requests_get_a_status_and_store_nothing(
    migrated_url: str, headers: dict[str, str], content: bytes, status: int, says: str
) -> None:
    async with otlp_drain(migrated_url) as (_base, client):
        answer = await client.post("/v1/logs", content=content, headers=headers)
        health = (await client.get("/health")).json()
    assert answer.status_code == status
    assert says in status_of(answer).message
    assert health["counters"]["otlp_requests_by_signal"] == {"logs": 1}
    assert health["counters"]["requests_by_status"] == {str(status): 1}
    assert not await fetch(migrated_url, "SELECT 1 FROM received_batches")


async def test_credentials_basic_or_bearer(migrated_url: str) -> None:
    now = datetime.now(UTC)
    body = logs_request([Record(PAY, nanos(now))]).SerializeToString()
    other = logs_request([Record(PAY, nanos(now) + 1000)]).SerializeToString()
    async with otlp_drain(migrated_url) as (base, _client):
        async with httpx.AsyncClient(base_url=base) as nobody:
            missing = await nobody.post("/v1/logs", content=body, headers=JSON)
            wrong = await nobody.post(
                "/v1/logs", content=body, headers={**PROTOBUF, "Authorization": "Bearer nope"}
            )
            wrong_scheme = await nobody.post(
                "/v1/logs", content=body, headers={**PROTOBUF, "Authorization": f"Token {BEARER}"}
            )
        async with httpx.AsyncClient(base_url=base, auth=AUTH) as basic:
            by_basic = await basic.post("/v1/logs", content=other, headers=PROTOBUF)
            logplex_path = await basic.post("/logs", content=b"", headers=PROTOBUF)
        async with httpx.AsyncClient(base_url=base, headers=BEARER_HEADER) as bearer:
            by_bearer = await bearer.post("/v1/logs", content=body, headers=PROTOBUF)
            metrics = await bearer.get("/metrics")
            # log-shuttle -bearer-token: a Logplex batch with the bearer token
            shuttle = await bearer.post(
                "/logs",
                content=events_body(now, "shuttle.bearer", 2),
                headers={"Content-Type": "application/logplex-1", "X-Request-Id": "ls-1"},
            )
    for refused in (missing, wrong, wrong_scheme):
        assert refused.status_code == 401
        challenge = refused.headers["www-authenticate"]
        assert challenge.startswith("Basic realm=") and 'Bearer realm="drain"' in challenge
    assert missing.headers["content-type"] == "application/json"
    assert status_of(missing).message == "missing or wrong credentials"
    assert by_basic.status_code == by_bearer.status_code == 200
    assert logplex_path.status_code == 415  # Basic passes, then POST /logs wants logplex-1
    assert metrics.status_code == 200  # the bearer token is a credential of every route
    assert shuttle.status_code == 200 and shuttle.headers["drain-events-stored"] == "2"
    tokens = await fetch(migrated_url, "SELECT drain_token FROM received_batches ORDER BY 1")
    assert [r[0] for r in tokens] == ["", f"otlp:basic:{USER}", "otlp:bearer"]


async def test_bounds_are_413(migrated_url: str) -> None:
    now = datetime.now(UTC)
    many = logs_request([Record(PAY, nanos(now) + i) for i in range(6)]).SerializeToString()
    async with otlp_drain(migrated_url, drain_max_frames_per_body=5, drain_max_body_bytes=4096) as (
        _base,
        client,
    ):
        too_many = await client.post("/v1/logs", content=many, headers=PROTOBUF)
        too_big = await client.post("/v1/logs", content=b"\x00" * 5000, headers=PROTOBUF)
        health = (await client.get("/health")).json()
    assert too_many.status_code == 413
    assert "6 log records, more than 5" in status_of(too_many).message
    assert too_big.status_code == 413
    assert health["counters"]["too_many_frames"] == 1
    assert not await fetch(migrated_url, "SELECT 1 FROM raw_events")


async def test_a_database_cut_is_503_with_retry_after_then_the_retry_stores_once(
    migrated_url: str,
) -> None:
    proxy = TcpProxy(migrated_url)
    await proxy.start()
    now = datetime.now(UTC)
    body = logs_request([Record(PAY, nanos(now)), Record("@[shop.x] {", nanos(now))])
    raw = body.SerializeToString()
    try:
        async with otlp_drain(proxy.url) as (_base, client):
            proxy.cut()
            down = await client.post("/v1/logs", content=raw, headers=PROTOBUF)
            proxy.restore()
            retried = await client.post("/v1/logs", content=raw, headers=PROTOBUF)
            again = await client.post("/v1/logs", content=raw, headers=PROTOBUF)
    finally:
        await proxy.close()
    assert down.status_code == 503 and int(down.headers["retry-after"]) >= 1
    assert status_of(down).code == 14  # UNAVAILABLE
    assert retried.status_code == 200 and retried.headers["drain-events-stored"] == "1"
    assert again.headers["drain-duplicate"] == "true"
    assert len(await fetch(migrated_url, "SELECT 1 FROM raw_events")) == 1
    assert len(await fetch(migrated_url, "SELECT 1 FROM quarantine")) == 1


async def test_the_sdk_exporter_retries_through_a_stalled_database_and_stores_once(
    migrated_url: str,
) -> None:
    """The database hangs mid-request: no commit within DRAIN_WRITE_WAIT_S, so 503 with
    Retry-After: 1, while the batch stays queued and commits once the database is back;
    the exporter's retry (the same bytes) then finds its key committed: stored once."""
    proxy = TcpProxy(migrated_url)
    await proxy.start()
    try:
        async with otlp_drain(proxy.url, drain_write_wait_s=0.5, drain_retry_after_s=1) as (
            base,
            client,
        ):
            sdk = SdkLogs(f"{base}/v1/logs", headers=BEARER_HEADER)
            for n in range(20):
                sdk.emit(f'@[production.pay] {{"uid":{n}}}')
            proxy.stall()
            export = asyncio.create_task(asyncio.to_thread(sdk.flush))
            await asyncio.sleep(0.8)  # the first attempt has had its 503 by now
            proxy.restore()
            results = await asyncio.wait_for(export, 30)
            await asyncio.to_thread(sdk.close)
            health = (await client.get("/health")).json()
    finally:
        await proxy.close()
    assert results == [LogRecordExportResult.SUCCESS]
    counters = health["counters"]
    assert counters["requests_by_status"]["503"] >= 1 and counters["requests_by_status"]["200"] >= 1
    assert counters["duplicates"] == 1
    assert len(await fetch(migrated_url, "SELECT 1 FROM raw_events")) == 20
    assert len(await fetch(migrated_url, "SELECT 1 FROM received_batches")) == 1


async def test_metrics_and_traces_are_answered_and_counted_not_stored(migrated_url: str) -> None:
    metrics = ExportMetricsServiceRequest()
    scope = metrics.resource_metrics.add().scope_metrics.add()
    gauge = scope.metrics.add()
    gauge.name = "heroku.dyno.memory"
    for value in (1, 2, 3):
        gauge.gauge.data_points.add().as_int = value
    async with otlp_drain(migrated_url, drain_otlp_path_prefix="/otlp") as (base, client):
        answer = await client.post(
            "/v1/metrics", content=metrics.SerializeToString(), headers=PROTOBUF
        )
        prefixed = await client.post("/otlp/v1/metrics", content=b"{}", headers=JSON)
        tracer = TracerProvider(resource=Resource.create(FIR_RESOURCE))
        memory = InMemorySpanExporter()
        tracer.add_span_processor(SimpleSpanProcessor(memory))
        with tracer.get_tracer("shop").start_as_current_span("GET /items"):
            pass
        exporter = OTLPSpanExporter(endpoint=f"{base}/otlp/v1/traces", headers=BEARER_HEADER)
        traced = await asyncio.to_thread(exporter.export, memory.get_finished_spans())
        exporter.shutdown()
        tracer.shutdown()
        health = (await client.get("/health")).json()
        scrape = (await client.get("/metrics")).text
    assert answer.status_code == 200
    response = ExportMetricsServiceResponse()
    response.ParseFromString(answer.content)
    assert response.partial_success.rejected_data_points == 3
    assert "stores logs only: 3 data points" in response.partial_success.error_message
    assert prefixed.status_code == 200 and prefixed.json() == {}
    counters = health["counters"]
    assert counters["otlp_requests_by_signal"] == {"metrics": 2, "traces": 1}
    assert counters["otlp_not_stored_by_signal"] == {"metrics": 3, "traces": 1}
    assert 'drain_otlp_requests_total{signal="traces",status="200"} 1.0' in scrape
    assert 'drain_otlp_not_stored_total{signal="metrics"} 3.0' in scrape
    assert traced is SpanExportResult.SUCCESS
    assert not await fetch(migrated_url, "SELECT 1 FROM raw_events")


def test_drain_serve_takes_the_sdk_exporters_logs(database_url: str, tmp_path: Path) -> None:
    """`drain serve` as Heroku runs it (DATABASE_URL, Basic credentials and a bearer token),
    the SDK's exporter posting over HTTP to its /v1/logs with `--headers`' Authorization."""
    env = clean_env(DATABASE_URL=database_url)
    subprocess.run([*drain_command(), "migrate"], env=env, check=True, timeout=60, cwd=tmp_path)
    env.update(DRAIN_USERNAME=USER, DRAIN_PASSWORD=PASSWORD, DRAIN_BEARER_TOKEN=BEARER)
    with serving(tmp_path, env) as served:
        sdk = SdkLogs(f"{served.base_url}/v1/logs", headers=BEARER_HEADER)
        for n in range(300):
            sdk.emit(f'@[production.pay] {{"uid":{n},"price":{n * 10}}}')
            sdk.emit(f"GET /items/{n} 200")
        results = sdk.flush()
        sdk.close()
        health = httpx.get(served.base_url + "/health", timeout=10).json()
        code = served.stop()
    assert code == 0, served.output()
    assert results == [LogRecordExportResult.SUCCESS, LogRecordExportResult.SUCCESS]
    assert health["counters"]["events_stored"] == 300
    log = [json.loads(line) for line in served.output().splitlines() if line.startswith("{")]
    batches = [line for line in log if line.get("logger") == "drain.batch"]
    assert [b["signal"] for b in batches] == ["logs", "logs"]
    assert all(b["status"] == 200 and b["drain_token"] == "otlp:bearer" for b in batches)
    rows = asyncio.run(
        fetch(
            database_url,
            "SELECT count(*), count(DISTINCT payload->>'uid'), min(app) FROM raw_events",
        )
    )
    assert tuple(rows[0]) == (300, 300, "shop")


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_docs_curl_example_stores_once_then_answers_a_duplicate(
    database_url: str, tmp_path: Path
) -> None:
    """docs/otlp.md's curl example, run through bash as written (only the port changed)
    against `drain serve`: its first answer stores the event, its second, of the very same
    bytes, says drain-duplicate; one row is stored."""
    marker = re.escape("<!-- docs-test: otlp-curl -->") + r"\s*```bash\n(.*?)```"
    (block,) = re.findall(marker, OTLP_DOC.read_text(), flags=re.DOTALL)
    env = clean_env(DATABASE_URL=database_url, DRAIN_ALLOW_ANONYMOUS="true")
    subprocess.run([*drain_command(), "migrate"], env=env, check=True, timeout=60, cwd=tmp_path)
    with serving(tmp_path, env) as served:
        result = subprocess.run(
            [
                "bash",
                "-euo",
                "pipefail",
                "-c",
                block.replace("http://127.0.0.1:8000", served.base_url),
            ],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=30,
        )
    assert result.returncode == 0, result.stderr
    answers = re.split(r"(?=^HTTP/1\.1 )", result.stdout, flags=re.M)[1:]
    assert len(answers) == 2, result.stdout
    first, second = (answer.lower() for answer in answers)
    assert first.startswith("http/1.1 200") and "drain-events-stored: 1" in first
    assert "drain-duplicate" not in first
    assert second.startswith("http/1.1 200") and "drain-duplicate: true" in second
    rows = asyncio.run(fetch(database_url, "SELECT tag, app FROM raw_events"))
    assert [tuple(r) for r in rows] == [("example.signup", "shop")]
