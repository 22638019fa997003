"""The web service: ``POST /logs`` (the drain), ``GET /health`` and ``GET /metrics``.

``GET /metrics`` (drain.metrics; off with DRAIN_METRICS=false) needs the same HTTP Basic
credentials as ``POST /logs``. Each POST writes one log line (drain.operations.BatchNote).

:func:`create_app` builds one FastAPI app from :class:`~drain.settings.Settings`. Its lifespan
opens the asyncpg pool and starts the group-commit :class:`~drain.writer.Writer`; on shutdown
(SIGTERM through uvicorn) it closes the writer first, so queued batches commit, then the pool.

``POST /logs`` is thin: check who is posting (drain.auth), read the body (drain.body), decode it
(drain.batch, pure), hand it to the writer (drain.writer), answer. The answers follow Logplex's
rules (Heroku Dev Center, "Log Drains", HTTPS drains): any 2xx means stored; any 4xx except 429
makes Logplex drop the batch for good; 5xx, 429 and time-outs are retried (twice, 5 s apart)
with the same ``Logplex-Frame-Id``, which the writer uses to store a retried batch once.

=====  =====================================================================================
code   when
=====  =====================================================================================
200    body decoded; its events and quarantined lines are committed (or it was a duplicate,
       or held nothing to store). Empty body, ``Content-Length: 0``, ``Drain-*`` headers
       summarise the ledger.
400    Logplex-Frame-Id / X-Request-Id / Logplex-Drain-Token over 200 bytes; corrupt gzip;
       malformed Content-Length (client bugs: retrying cannot help).
401    missing or wrong HTTP Basic credentials (``WWW-Authenticate: Basic realm="drain"``).
403    DRAIN_TOKENS is set and Logplex-Drain-Token is missing or not on it.
413    body (after gzip decoding) over DRAIN_MAX_BODY_BYTES, or more frames than
       DRAIN_MAX_FRAMES_PER_BODY.
415    Content-Type is not ``application/logplex-1``, or Content-Encoding is not gzip/identity.
503    the database is unreachable or no commit came within WRITE_WAIT_S (10 s), the write
       queue is full, the drain is shutting down, or
       the body did not arrive within DRAIN_BODY_TIMEOUT_S; ``Retry-After`` in seconds.
       Never 4xx for such transient faults. Also (without Retry-After) ``X-Forwarded-Proto:
       http`` when DRAIN_REQUIRE_HTTPS is on: a 4xx would make Logplex drop the batches of a
       drain URL mistyped as http:// silently; a 5xx shows as failed deliveries.
=====  =====================================================================================

Nothing here logs a body, a credential, or DATABASE_URL.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from structlog.contextvars import bound_contextvars

from drain.auth import WWW_AUTHENTICATE, check_basic, check_drain_token
from drain.batch import (
    KIND_LOGPLEX_ERROR,
    DecodeLimits,
    TooManyFrames,
    decode_batch,
    iter_outcomes,
)
from drain.body import BodyError, read_body
from drain.database import create_pool
from drain.health import Counters, health_document, probe_database, rollup_health
from drain.logs import batch_logger
from drain.lost import BatchLoss, lost_in_batch
from drain.metrics import CONTENT_TYPE, Metrics
from drain.operations import (
    BatchNote,
    health_warnings,
    loss_warning,
    plan_web_pool,
    refresh_partition_gauge,
    remember_loss,
)
from drain.records import DecodedBatch, PendingBatch, WriteResult
from drain.rollup_runner import load_rollups
from drain.settings import Settings
from drain.writer import DatabaseUnavailable, QueueFull, Writer, WriterClosed, WriterConfig

__all__ = ["LOGPLEX_MEDIA_TYPE", "MAX_ID_HEADER_BYTES", "DrainState", "create_app"]

log = logging.getLogger("drain.app")

#: the media type Logplex sends (Heroku Dev Center, "Log Drains")
LOGPLEX_MEDIA_TYPE = "application/logplex-1"
#: longest Logplex-Frame-Id / X-Request-Id / Logplex-Drain-Token accepted, in bytes
MAX_ID_HEADER_BYTES = 200
#: Retry-After (seconds) when the database is unreachable or the writer is closing
RETRY_AFTER_UNAVAILABLE_S = 5
#: seconds the writer may take, at shutdown, to commit what is queued (then: WriterClosed)
WRITER_CLOSE_TIMEOUT_S = 8.0
#: seconds allowed for the pool to close once the writer has flushed (then: terminate).
#: With uvicorn's graceful period (drain.serve_master.GRACEFUL_SHUTDOWN_S, 12 s) the worst shutdown
#: takes 12 + 8 + 4 = 24 s, inside the 30 s Heroku allows between SIGTERM and SIGKILL.
POOL_CLOSE_TIMEOUT_S = 4.0
#: bodies at least this large (bytes) are decoded in a worker thread, so that the event loop
#: keeps answering other requests meanwhile (Logplex's ~100 KiB batches stay on the loop)
DECODE_IN_THREAD_BYTES = 256 * 1024
#: seconds a request waits for its batch to commit before answering 503 (Logplex gave up
#: after 5 s anyway); below uvicorn's graceful period so that on SIGTERM every request
#: waiting on a hung database still gets an answer
WRITE_WAIT_S = 10.0
#: at most one warning about ``X-Forwarded-Proto: http`` per this many seconds (self-drain)
INSECURE_WARNING_EVERY_S = 60.0
#: rough per-row overhead in bytes for the write queue's byte bound
_ROW_OVERHEAD_BYTES = 200


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class DrainState:
    """Everything one app instance holds (``app.state.drain``); built by :func:`create_app`.

    ``pool`` and ``writer`` are set by the lifespan and are None outside it.
    """

    settings: Settings
    clock: Callable[[], datetime]
    limits: DecodeLimits
    writer_config: WriterConfig
    counters: Counters
    rollup_names: list[str]
    metrics: Metrics
    pool: asyncpg.Pool | None = None
    writer: Writer | None = None
    insecure_warned_at: float | None = None
    #: the last upstream loss this process saw, for /health's warnings (drain.operations)
    last_loss: dict[str, Any] | None = None
    #: POSTs admitted whose body is being read or decoded (not yet queued), and the mean
    #: rows per decoded body: under overload the rows they carry join the write queue next
    #: (Writer.check_room), so a burst is refused before the event loop is swamped
    bodies_in_progress: int = 0
    rows_per_body: float = 0.0


def writer_config_from(settings: Settings) -> WriterConfig:
    """The group-commit configuration the settings describe.

    The write-queue bounds (DRAIN_QUEUE_MAX_EVENTS, DRAIN_QUEUE_MAX_BYTES) are for the
    whole ``drain serve``: each of the WEB_CONCURRENCY workers holds its own queue, so each
    gets its share, and the memory bound does not grow with the number of workers.
    """
    workers = settings.web_concurrency
    return WriterConfig(
        flush_max_events=settings.drain_flush_max_events,
        flush_max_delay_s=settings.drain_flush_max_delay_s,
        queue_max_events=max(1, settings.drain_queue_max_events // workers),
        queue_max_bytes=max(1, settings.drain_queue_max_bytes // workers),
        queue_max_wait_s=settings.drain_queue_max_wait_s,
        partitions_ahead_days=settings.drain_partitions_ahead_days,
        flushers=settings.drain_writer_flushers,
    )


def decode_limits_from(settings: Settings) -> DecodeLimits:
    """The decoder limits the settings describe."""
    return DecodeLimits(
        max_frame_bytes=settings.drain_max_frame_bytes,
        accept_past_s=settings.drain_accept_past_s,
        accept_future_s=settings.drain_accept_future_s,
        max_frames=settings.drain_max_frames_per_body,
    )


def create_app(
    settings: Settings,
    *,
    database_url: str,
    clock: Callable[[], datetime] | None = None,
) -> FastAPI:
    """Build the drain's ASGI app.

    Args:
        settings: validated settings; :meth:`Settings.check_serving` is applied here.
        database_url: the PostgreSQL to write to (DATABASE_URL, or the embedded server's URL).
        clock: returns "now" as a tz-aware UTC datetime; used for ``received_at`` and the
            acceptance window. Default: the system clock.

    Raises:
        SettingsError: the settings must not serve (see :meth:`Settings.check_serving`).
    """
    settings.check_serving()
    state = DrainState(
        settings=settings,
        clock=clock or _utc_now,
        limits=decode_limits_from(settings),
        writer_config=writer_config_from(settings),
        counters=Counters(),
        rollup_names=sorted(load_rollups()),
        metrics=Metrics.create(),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        plan = await plan_web_pool(settings, database_url)
        pool = await create_pool(database_url, min_size=1, max_size=plan.pool_size)
        try:
            writer = Writer(pool, state.writer_config, observer=state.metrics)
            await writer.start()
            state.pool, state.writer = pool, writer
            try:
                yield
            finally:
                await writer.close(WRITER_CLOSE_TIMEOUT_S)
                state.writer = None
        finally:
            state.pool = None
            state.metrics.process_exiting()
            try:
                await asyncio.wait_for(pool.close(), POOL_CLOSE_TIMEOUT_S)
            except TimeoutError:
                pool.terminate()

    app = FastAPI(
        title="drain",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.drain = state

    batch_log = batch_logger()

    async def post_logs(request: Request) -> Response:
        started = time.perf_counter()
        note = BatchNote(request.headers.get("x-request-id"))
        try:
            # every log line of this request (e.g. a Msg-Count warning) carries the request id
            with bound_contextvars(request_id=note.logged_request_id):
                response = await _post_logs(state, request, note)
        except Exception:
            state.counters.requests_by_status[500] += 1
            state.metrics.requests.labels("500").inc()
            note.log(batch_log, 500, started)
            raise
        state.counters.requests_by_status[response.status_code] += 1
        state.metrics.requests.labels(str(response.status_code)).inc()
        note.log(batch_log, response.status_code, started)
        return response

    async def get_health() -> Response:
        if state.pool is None:
            return JSONResponse({"status": "starting"}, status_code=503)
        probe = await probe_database(state.pool)
        stats = state.writer.stats() if state.writer is not None else None
        rollups = await rollup_health(state.pool, state.rollup_names) if probe.reachable else None
        warnings = await health_warnings(state, probe.reachable)
        status, document = health_document(probe, stats, state.counters, rollups, warnings)
        return JSONResponse(document, status_code=status)

    async def get_metrics(request: Request) -> Response:
        refused = _check_credentials(state, request)
        if refused is not None:
            return refused
        if state.writer is not None:
            stats = state.writer.stats()
            state.metrics.set_queue(stats.queue_events, stats.queue_bytes)
        if state.pool is not None:
            await refresh_partition_gauge(state)
        body = await asyncio.to_thread(state.metrics.render)
        return Response(body, media_type=CONTENT_TYPE)

    app.add_api_route("/logs", post_logs, methods=["POST"], include_in_schema=False)
    app.add_api_route("/health", get_health, methods=["GET"], include_in_schema=False)
    if settings.drain_metrics:
        app.add_api_route("/metrics", get_metrics, methods=["GET"], include_in_schema=False)
    return app


def _refuse(status_code: int, detail: str, headers: dict[str, str] | None = None) -> Response:
    return PlainTextResponse(detail + "\n", status_code=status_code, headers=headers)


def _id_header(request: Request, name: str) -> str | None:
    value = request.headers.get(name)
    if value is None or not value.strip():
        return None
    return value.strip()


def _is_logplex_media_type(content_type: str | None) -> bool:
    if content_type is None:
        return False
    return content_type.partition(";")[0].strip().lower() == LOGPLEX_MEDIA_TYPE


def _parse_msg_count(value: str | None) -> tuple[int | None, bool]:
    """(msg count, valid): a missing header is (None, True); garbage is (None, False)."""
    if value is None:
        return None, True
    text = value.strip()
    if text.isascii() and text.isdigit() and len(text) <= 9:
        return int(text), True
    return None, False


@dataclass(frozen=True, slots=True)
class _Admitted:
    """Who posted: the request's identity once it passed every check before the body."""

    drain_token: str | None
    frame_id: str | None
    msg_count: int | None


def _check_credentials(state: DrainState, request: Request) -> Response | None:
    """None when the request may pass (right HTTP Basic credentials, or none required)."""
    settings = state.settings
    if settings.https_required and _forwarded_http(request.headers.get("x-forwarded-proto")):
        return _insecure(state)
    if settings.credentials_required:
        assert settings.drain_username is not None and settings.drain_password is not None
        if not check_basic(
            request.headers.get("authorization"),
            username=settings.drain_username,
            password=settings.drain_password.get_secret_value(),
        ):
            return _refuse(
                401, "missing or wrong credentials", {"WWW-Authenticate": WWW_AUTHENTICATE}
            )
    return None


def _admit(state: DrainState, request: Request) -> _Admitted | Response:
    """Credentials (401), id header sizes (400), drain token (403), media type (415)."""
    settings = state.settings
    headers = request.headers
    refused = _check_credentials(state, request)
    if refused is not None:
        return refused

    drain_token = _id_header(request, "logplex-drain-token")
    frame_id = _id_header(request, "logplex-frame-id") or _id_header(request, "x-request-id")
    for name, value in (("Logplex-Drain-Token", drain_token), ("frame id", frame_id)):
        if value is not None and len(value.encode("utf-8", "surrogateescape")) > (
            MAX_ID_HEADER_BYTES
        ):
            return _refuse(400, f"{name} header is over {MAX_ID_HEADER_BYTES} bytes")

    if not check_drain_token(drain_token, settings.allowed_drain_tokens):
        return _refuse(403, "this drain does not accept batches for that Logplex-Drain-Token")

    if not _is_logplex_media_type(headers.get("content-type")):
        return _refuse(415, f"Content-Type must be {LOGPLEX_MEDIA_TYPE}")

    msg_count, msg_count_valid = _parse_msg_count(headers.get("logplex-msg-count"))
    if not msg_count_valid:
        state.counters.msg_count_invalid += 1
    return _Admitted(drain_token, frame_id, msg_count)


def _forwarded_http(value: str | None) -> bool:
    """True when the (first) X-Forwarded-Proto is ``http``: the client used plain HTTP."""
    return value is not None and value.split(",")[0].strip().lower() == "http"


def _insecure(state: DrainState) -> Response:
    """503 for a POST that reached Heroku's router over plain HTTP (see the table above)."""
    state.counters.insecure_refused += 1
    now = asyncio.get_running_loop().time()
    last = state.insecure_warned_at
    if last is None or now - last >= INSECURE_WARNING_EVERY_S:
        state.insecure_warned_at = now
        log.warning(
            "refused a POST /logs that arrived over plain HTTP (X-Forwarded-Proto: http): "
            "use an https:// drain URL; %d refused so far (DRAIN_REQUIRE_HTTPS)",
            state.counters.insecure_refused,
        )
    return _refuse(503, "this drain accepts only HTTPS: use an https:// drain URL")


async def _decode(
    state: DrainState, body: bytes, now: datetime, msg_count: int | None
) -> DecodedBatch:
    """decode_batch, in a worker thread for large bodies (see DECODE_IN_THREAD_BYTES)."""
    if len(body) >= DECODE_IN_THREAD_BYTES:
        return await asyncio.to_thread(
            decode_batch, body, now=now, limits=state.limits, msg_count=msg_count
        )
    return decode_batch(body, now=now, limits=state.limits, msg_count=msg_count)


async def _post_logs(state: DrainState, request: Request, note: BatchNote) -> Response:
    admitted = _admit(state, request)
    if isinstance(admitted, Response):
        if admitted.status_code == 403:  # say in the log line which token was refused
            note.drain_token = _id_header(request, "logplex-drain-token")
        return admitted
    note.drain_token, note.frame_id = admitted.drain_token, admitted.frame_id
    refused = _no_room(state, request)
    if refused is not None:  # before the body is read and decoded: a cheap 503
        return refused
    state.bodies_in_progress += 1
    try:
        try:
            body = await read_body(
                request,
                max_bytes=state.settings.drain_max_body_bytes,
                timeout_s=state.settings.drain_body_timeout_s,
            )
        except BodyError as error:
            if error.status_code == 503:
                return _unavailable(error.detail)
            return _refuse(error.status_code, error.detail)

        received_at = state.clock()
        try:
            decoded = await _decode(state, body, received_at, admitted.msg_count)
        except TooManyFrames as error:
            state.counters.too_many_frames += 1
            return _refuse(413, str(error))
    finally:
        state.bodies_in_progress -= 1
    rows = len(decoded.events) + len(decoded.quarantined)
    state.rows_per_body += 0.1 * (rows - state.rows_per_body)
    ledger = decoded.ledger
    note.ledger = ledger
    state.counters.record_decoded(ledger)
    state.metrics.record_decoded(ledger)
    if ledger.msg_count_mismatch:
        log.warning(
            "Logplex-Msg-Count %s but %d frames found (frame id %r, drain token %r, %d bytes)",
            ledger.msg_count_header,
            ledger.frames,
            admitted.frame_id,
            admitted.drain_token,
            ledger.body_bytes,
        )

    result: WriteResult | None = None
    if decoded.events or decoded.quarantined:  # else: nothing to write, skip the writer
        writer = state.writer
        if writer is None:
            return _unavailable("the drain is not running")
        batch = _pending(decoded, admitted.drain_token, admitted.frame_id, received_at)
        try:
            result = await _submit(writer, batch)
        except QueueFull as error:
            return _queue_full(error)
        except DatabaseUnavailable:
            return _unavailable("database unavailable")
        except WriterClosed:
            return _unavailable("the drain is shutting down")
        except TimeoutError:
            return _unavailable(f"not committed within {WRITE_WAIT_S:g} s")
        finally:
            stats = writer.stats()
            state.metrics.set_queue(stats.queue_events, stats.queue_bytes)
        state.counters.record_written(ledger, result)
        state.metrics.record_written(ledger, result)
    note.result = result
    lost_header = request.headers.get("logplex-lost-count")
    if (ledger.not_events_by_kind.get(KIND_LOGPLEX_ERROR) or lost_header) and not (
        result is not None and result.duplicate
    ):
        # Rare (Heroku reports a loss): read the L10/L13 lines again, from the same body.
        loss = await _loss(state, body, received_at, lost_header)
        if loss.lost:
            note.lost_upstream = loss.lost
            state.metrics.record_loss(admitted.drain_token, loss)
            remember_loss(state, loss_warning(admitted.drain_token, loss, received_at))
    return Response(status_code=200, headers=_ledger_headers(decoded, result))


def _no_room(state: DrainState, request: Request) -> Response | None:
    """503 + Retry-After when the write queue is already full (Writer.check_room), judged
    on Content-Length (0 when absent or malformed: read_body answers those) and on the
    rows of the bodies being read and decoded now."""
    if state.writer is None:
        return None
    length = request.headers.get("content-length", "")
    incoming = int(state.bodies_in_progress * state.rows_per_body)
    try:
        state.writer.check_room(int(length) if length.isdigit() else 0, incoming)
    except QueueFull as error:
        return _queue_full(error)
    return None


def _queue_full(error: QueueFull) -> Response:
    retry_after = max(1, math.ceil(error.retry_after_s))
    return _refuse(503, "write queue full", {"Retry-After": str(retry_after)})


async def _submit(writer: Writer, batch: PendingBatch) -> WriteResult:
    """writer.submit, waited for at most WRITE_WAIT_S seconds (then TimeoutError).

    The batch stays queued after a time-out and may still commit; Logplex's retry with the
    same frame id is then a duplicate (stored once). The abandoned outcome is retrieved so
    that it is not reported as never retrieved.
    """
    task = asyncio.ensure_future(writer.submit(batch))
    try:
        return await asyncio.wait_for(asyncio.shield(task), WRITE_WAIT_S)
    finally:
        if not task.done():  # timed out, or this request was cancelled
            task.add_done_callback(_ignore_outcome)


def _ignore_outcome(task: asyncio.Future[WriteResult]) -> None:
    if not task.cancelled():
        task.exception()


async def _loss(
    state: DrainState, body: bytes, received_at: datetime, lost_header: str | None
) -> BatchLoss:
    """The batch's upstream loss reports (drain.lost), in a worker thread for large bodies."""

    def read() -> BatchLoss:
        outcomes = iter_outcomes(body, now=received_at, limits=state.limits)
        return lost_in_batch(outcomes, lost_header)

    if len(body) >= DECODE_IN_THREAD_BYTES:
        return await asyncio.to_thread(read)
    return read()


def _unavailable(detail: str) -> Response:
    return _refuse(503, detail, {"Retry-After": str(RETRY_AFTER_UNAVAILABLE_S)})


def _pending(
    decoded: DecodedBatch, drain_token: str | None, frame_id: str | None, received_at: datetime
) -> PendingBatch:
    rows = len(decoded.events) + len(decoded.quarantined)
    return PendingBatch(
        drain_token=drain_token,
        frame_id=frame_id,
        received_at=received_at,
        events=decoded.events,
        quarantined=decoded.quarantined,
        size_bytes=decoded.ledger.body_bytes + rows * _ROW_OVERHEAD_BYTES,
    )


def _ledger_headers(decoded: DecodedBatch, result: WriteResult | None) -> dict[str, str]:
    """``Drain-*`` response headers so that ``curl -i`` shows what happened to the batch."""
    ledger = decoded.ledger
    stored = 0 if result is None else result.events_stored
    quarantined = 0 if result is None else result.quarantined
    headers = {
        "Drain-Frames": str(ledger.frames),
        "Drain-Events-Stored": str(stored),
        "Drain-Quarantined": str(quarantined),
        "Drain-Not-Events": str(ledger.not_events),
    }
    if result is not None and result.duplicate:
        headers["Drain-Duplicate"] = "true"
    if ledger.msg_count_mismatch:
        headers["Drain-Msg-Count-Mismatch"] = (
            f"header={ledger.msg_count_header} frames={ledger.frames}"
        )
    if ledger.framing_error_offset is not None:
        headers["Drain-Framing-Error-Offset"] = str(ledger.framing_error_offset)
    return headers
