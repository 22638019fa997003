"""``POST /logs``: a Logplex batch in, committed rows out, one answer.

The handler is a sequence of steps, each in its own function, and each batch is reported
once (drain.web.report):

1. admission (:func:`_admit`): credentials (401), id header sizes (400), drain token (403),
   media type (415);
2. back-pressure (:func:`_no_room`): 503 + Retry-After before the body is read when the
   write queue is already full;
3. the body (drain.web.body): streamed, capped, gzip-decoded, within a time limit;
4. decoding (drain.inputs.logplex, pure; in a worker thread for large bodies);
5. submission to the writer (drain.store.writer), waited for at most DRAIN_WRITE_WAIT_S;
6. the answer, with ``Drain-*`` headers that summarise the ledger.

The answers follow Logplex's rules (Heroku Dev Center, "Log Drains", HTTPS drains): any 2xx
means stored; any 4xx except 429 makes Logplex drop the batch for good; 5xx, 429 and
time-outs are retried (twice, 5 s apart) with the same ``Logplex-Frame-Id``, which the writer
uses to store a retried batch once.

=====  =====================================================================================
code   when
=====  =====================================================================================
200    body decoded; its events, typed rows (Heroku's own lines) and quarantined lines are
       committed (or it was a duplicate, or held nothing to store). Empty body,
       ``Content-Length: 0``, ``Drain-*`` headers summarise the ledger.
400    Logplex-Frame-Id / X-Request-Id / Logplex-Drain-Token over DRAIN_MAX_ID_HEADER_BYTES;
       corrupt gzip; malformed Content-Length (client bugs: retrying cannot help).
401    missing or wrong HTTP Basic credentials (``WWW-Authenticate: Basic realm="drain"``).
403    DRAIN_TOKENS is set and Logplex-Drain-Token is missing or not on it.
413    body (after gzip decoding) over DRAIN_MAX_BODY_BYTES, or more frames than
       DRAIN_MAX_FRAMES_PER_BODY.
415    Content-Type is not ``application/logplex-1``, or Content-Encoding is not gzip/identity.
503    the database is unreachable or no commit came within DRAIN_WRITE_WAIT_S, the write
       queue is full, the drain is shutting down, or the body did not arrive within
       DRAIN_BODY_TIMEOUT_S; ``Retry-After`` in seconds. Never 4xx for such transient
       faults. Also (without Retry-After) ``X-Forwarded-Proto: http`` when
       DRAIN_REQUIRE_HTTPS is on (drain.web.access.check_credentials).
=====  =====================================================================================
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass
from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response
from structlog.contextvars import bound_contextvars

from drain.decode.loss import batch_loss
from drain.decode.rules import LineRules
from drain.errors import (
    BodyError,
    DatabaseUnavailable,
    QueueFull,
    TooManyFrames,
    WriterClosed,
)
from drain.inputs.logplex import LOGPLEX_MEDIA_TYPE, decode_body
from drain.records import DecodedBatch, PendingBatch, WriteResult
from drain.store.writer import Writer
from drain.web.access import check_credentials, refuse
from drain.web.auth import check_drain_token
from drain.web.body import read_body
from drain.web.report import BatchReport, Refusal
from drain.web.state import DrainState

__all__ = ["post_logs"]

log = logging.getLogger("drain.web")

#: rough per-row overhead in bytes for the write queue's byte bound
_ROW_OVERHEAD_BYTES = 200


async def post_logs(state: DrainState, request: Request) -> Response:
    """Answer one ``POST /logs`` (see the module docstring) and report it once."""
    report = BatchReport(request.headers.get("x-request-id"))
    try:
        # every log line of this request (e.g. a Msg-Count warning) carries the request id
        with bound_contextvars(request_id=report.logged_request_id):
            response = await _handle(state, request, report)
    except BaseException:
        report.status = 500
        state.telemetry.record(report)
        raise
    report.status = response.status_code
    state.telemetry.record(report)
    return response


@dataclass(frozen=True, slots=True)
class _Admitted:
    """Who posted: the request's identity once it passed every check before the body."""

    drain_token: str | None
    frame_id: str | None
    msg_count: int | None


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


def _admit(state: DrainState, request: Request, report: BatchReport) -> _Admitted | Response:
    """Credentials (401, or 503 over plain HTTP), id header sizes (400), drain token
    (403), media type (415)."""
    headers = request.headers
    refused = check_credentials(state, request)
    if refused is not None:
        report.refusal = refused.reason
        return refused.response

    drain_token = _id_header(request, "logplex-drain-token")
    frame_id = _id_header(request, "logplex-frame-id") or _id_header(request, "x-request-id")
    limit = state.config.max_id_header_bytes
    for name, value in (("Logplex-Drain-Token", drain_token), ("frame id", frame_id)):
        if value is not None and len(value.encode("utf-8", "surrogateescape")) > limit:
            return refuse(400, f"{name} header is over {limit} bytes")

    if not check_drain_token(drain_token, state.settings.allowed_drain_tokens):
        report.drain_token = drain_token  # the log line names the refused token
        return refuse(403, "this drain does not accept batches for that Logplex-Drain-Token")

    if not _is_logplex_media_type(headers.get("content-type")):
        return refuse(415, f"Content-Type must be {LOGPLEX_MEDIA_TYPE}")

    msg_count, msg_count_valid = _parse_msg_count(headers.get("logplex-msg-count"))
    report.msg_count_invalid = not msg_count_valid
    return _Admitted(drain_token, frame_id, msg_count)


async def _handle(state: DrainState, request: Request, report: BatchReport) -> Response:
    admitted = _admit(state, request, report)
    if isinstance(admitted, Response):
        return admitted
    report.drain_token, report.frame_id = admitted.drain_token, admitted.frame_id
    app = report.app = state.settings.app_for(admitted.drain_token)
    refused = _no_room(state, request)
    if refused is not None:  # before the body is read and decoded: a cheap 503
        return refused
    config = state.config
    state.bodies_in_progress += 1
    try:
        try:
            body = await read_body(
                request, max_bytes=config.max_body_bytes, timeout_s=config.body_timeout_s
            )
        except BodyError as error:
            if error.status_code == 503:
                return _unavailable(state, error.detail)
            return refuse(error.status_code, error.detail)

        received_at = report.received_at = state.clock()
        rules = state.rules
        if rules is None:
            return _unavailable(state, "the drain is not running")
        try:
            decoded = await _decode(state, rules, body, received_at, admitted.msg_count, app)
        except TooManyFrames as error:
            report.refusal = Refusal.TOO_MANY_FRAMES
            return refuse(413, str(error))
    finally:
        state.bodies_in_progress -= 1
    del body  # the rows keep what they need; the body may be large
    state.rows_per_body += 0.1 * (decoded.row_count - state.rows_per_body)
    ledger = report.ledger = decoded.ledger
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
    if decoded.row_count:  # else: nothing to write, skip the writer
        writer = state.writer
        if writer is None:
            return _unavailable(state, "the drain is not running")
        batch = _pending(decoded, admitted.drain_token, admitted.frame_id, received_at)
        try:
            result = await _submit(writer, batch, config.write_wait_s)
        except QueueFull as error:
            return _queue_full(error)
        except DatabaseUnavailable:
            return _unavailable(state, "database unavailable")
        except WriterClosed:
            return _unavailable(state, "the drain is shutting down")
        except TimeoutError:
            return _unavailable(state, f"not committed within {config.write_wait_s:g} s")
        finally:
            stats = writer.stats()
            state.metrics.set_queue(stats.queue_events, stats.queue_bytes)
        if not result.duplicate and await request.is_disconnected():
            # stored, but the sender stopped waiting for the answer: it counts the batch as
            # failed (log-shuttle: lost, L13) although it is stored
            report.unanswered = True
    report.result = result
    if not (result is not None and result.duplicate):
        headers = request.headers
        loss = batch_loss(
            ledger.loss_reports,
            headers.get("logplex-lost-count"),
            headers.get("logplex-drop-count"),
        )
        if loss.lost:
            report.loss = loss
    return Response(status_code=200, headers=_ledger_headers(decoded, result))


async def _decode(
    state: DrainState,
    rules: LineRules,
    body: bytes,
    now: datetime,
    msg_count: int | None,
    app: str,
) -> DecodedBatch:
    """decode_body, in a worker thread for large bodies (DRAIN_DECODE_IN_THREAD_BYTES)."""
    limits = state.limits
    if len(body) >= state.config.decode_in_thread_bytes:
        return await asyncio.to_thread(
            decode_body, body, now=now, limits=limits, rules=rules, msg_count=msg_count, app=app
        )
    return decode_body(body, now=now, limits=limits, rules=rules, msg_count=msg_count, app=app)


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
    return refuse(503, "write queue full", {"Retry-After": str(retry_after)})


def _unavailable(state: DrainState, detail: str) -> Response:
    return refuse(503, detail, {"Retry-After": str(state.config.retry_after_s)})


async def _submit(writer: Writer, batch: PendingBatch, wait_s: float) -> WriteResult:
    """writer.submit, waited for at most ``wait_s`` seconds (then TimeoutError).

    The batch stays queued after a time-out and may still commit; Logplex's retry with the
    same frame id is then a duplicate (stored once). The abandoned outcome is retrieved so
    that it is not reported as never retrieved.
    """
    task = asyncio.ensure_future(writer.submit(batch))
    try:
        return await asyncio.wait_for(asyncio.shield(task), wait_s)
    finally:
        if not task.done():  # timed out, or this request was cancelled
            task.add_done_callback(_ignore_outcome)


def _ignore_outcome(task: asyncio.Future[WriteResult]) -> None:
    if not task.cancelled():
        task.exception()


def _pending(
    decoded: DecodedBatch, drain_token: str | None, frame_id: str | None, received_at: datetime
) -> PendingBatch:
    return PendingBatch(
        drain_token=drain_token,
        frame_id=frame_id,
        received_at=received_at,
        rows=decoded.rows,
        quarantined=decoded.quarantined,
        size_bytes=decoded.ledger.body_bytes + decoded.row_count * _ROW_OVERHEAD_BYTES,
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
    if ledger.typed:  # Heroku's own lines: frames, and rows added to the typed tables
        typed_rows = 0 if result is None else sum(result.stored.values())
        typed_rows -= stored + quarantined
        headers["Drain-Typed-Lines"] = str(ledger.typed)
        headers["Drain-Typed-Rows-Stored"] = str(typed_rows)
    if result is not None and result.duplicate:
        headers["Drain-Duplicate"] = "true"
    if ledger.msg_count_mismatch:
        headers["Drain-Msg-Count-Mismatch"] = (
            f"header={ledger.msg_count_header} frames={ledger.frames}"
        )
    if ledger.framing_error_offset is not None:
        headers["Drain-Framing-Error-Offset"] = str(ledger.framing_error_offset)
    return headers
