"""The steps every input's handler shares, from an admitted request to a committed batch.

``POST /logs`` (drain.web.ingest, Logplex) and the OTLP routes (drain.web.otlp) differ in
their admission rules, their decoders and the shape of their answers; everything else is
here, once:

- :func:`reported`: the request's one :class:`~drain.web.report.BatchReport`, recorded once
  whatever happens (500 when the handler raised), every log line of the request carrying
  its request id;
- :func:`no_room`: back-pressure before the body is read: 503 + ``Retry-After`` when the
  write queue is already full (``Writer.check_room``);
- :func:`read`: the body (drain.web.body: streamed, capped, gzip-decoded, timed), counted
  as in progress, and held in the worker's body budget, while it is read and decoded
  (:func:`in_progress`: past the budget, 503 + ``Retry-After: 1``);
- :func:`run_decoder`: a pure decoder, in the decode thread for large bodies;
- :func:`submit`: the batch to the writer, waited for at most DRAIN_WRITE_WAIT_S; every
  database or queue fault is a 503 with ``Retry-After``, never a 4xx (Logplex and OTLP
  exporters both retry a 503 with the same bytes, and the ledger stores it once);
- :func:`ledger_headers`: the ``Drain-*`` headers of a 200, which summarise the ledger.

Refusals are :class:`~drain.web.access.Refused`; each handler renders them in its format.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import math
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import ParamSpec, TypeVar

from starlette.requests import Request
from starlette.responses import Response
from structlog.contextvars import bound_contextvars

from drain.errors import BodyBudgetSpent, BodyError, DatabaseUnavailable, QueueFull, WriterClosed
from drain.records import DecodedBatch, PendingBatch, WriteResult
from drain.store.writer import Writer
from drain.web.access import Refused
from drain.web.body import BodyLease, read_body
from drain.web.report import BatchReport, Refusal
from drain.web.state import DrainState

__all__ = [
    "in_progress",
    "ledger_headers",
    "no_room",
    "read",
    "reported",
    "run_decoder",
    "submit",
    "unavailable",
]

#: rough per-row overhead in bytes for the write queue's byte bound
_ROW_OVERHEAD_BYTES = 200

_P = ParamSpec("_P")
_T = TypeVar("_T")


async def reported(
    state: DrainState, report: BatchReport, handle: Callable[[], Awaitable[Response]]
) -> Response:
    """Run ``handle`` and record ``report`` once with the status answered (500 when
    ``handle`` raised, and the exception goes on); log lines carry the request id."""
    try:
        with bound_contextvars(request_id=report.logged_request_id):
            response = await handle()
    except BaseException:
        report.status = 500
        state.telemetry.record(report)
        raise
    report.status = response.status_code
    state.telemetry.record(report)
    return response


def no_room(state: DrainState, request: Request) -> Refused | None:
    """503 + Retry-After when the write queue is already full (Writer.check_room), judged
    on Content-Length (0 when absent or malformed: :func:`read` answers those) and on the
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


@contextmanager
def in_progress(state: DrainState) -> Iterator[BodyLease]:
    """Count a body as being read and decoded (``state.bodies_in_progress``) meanwhile, and
    hold its bytes in the worker's body budget (the lease given to :func:`read`), all given
    back at the end: the body is dropped then, before the wait for COMMIT."""
    lease = state.body_budget.lease()
    state.bodies_in_progress += 1
    try:
        yield lease
    finally:
        state.bodies_in_progress -= 1
        lease.release()


async def read(
    state: DrainState, request: Request, report: BatchReport, lease: BodyLease | None = None
) -> bytes | Refused:
    """The request's body (drain.web.body.read_body with DRAIN_MAX_BODY_BYTES and
    DRAIN_BODY_TIMEOUT_S, held in ``lease``), or its refusal: 413, 400, 415, or 503 +
    Retry-After for a body that did not arrive in time or does not fit the body budget
    (counted as the report's refusal)."""
    config = state.config
    try:
        return await read_body(
            request,
            max_bytes=config.max_body_bytes,
            timeout_s=config.body_timeout_s,
            lease=lease,
        )
    except BodyError as error:
        if isinstance(error, BodyBudgetSpent):
            report.refusal = Refusal.BODY_BUDGET
        if error.status_code == 503:
            return unavailable(state, error.detail, error.retry_after_s)
        return Refused(error.status_code, error.detail)


async def run_decoder(
    state: DrainState,
    size: int,
    decoder: Callable[_P, _T],
    *args: _P.args,
    **kwargs: _P.kwargs,
) -> _T:
    """``decoder(*args, **kwargs)``, in the worker's one decode thread when the body is at
    least DRAIN_DECODE_IN_THREAD_BYTES (``size`` bytes), so the event loop keeps answering,
    with this request's context variables (its log fields)."""
    if size < state.config.decode_in_thread_bytes:
        return decoder(*args, **kwargs)
    call = functools.partial(decoder, *args, **kwargs)
    executor = state.decode_executor
    if executor is None:  # outside the lifespan
        return await asyncio.to_thread(call)
    context = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(executor, context.run, call)


async def submit(
    state: DrainState,
    decoded: DecodedBatch,
    drain_token: str | None,
    frame_id: str | None,
    received_at: datetime,
) -> WriteResult | Refused | None:
    """Hand a decoded batch to the writer and wait for its COMMIT (at most
    DRAIN_WRITE_WAIT_S); None when it holds nothing to write (the writer is skipped).

    Also feeds the mean rows per body that :func:`no_room` uses. Refusals, all 503 with
    ``Retry-After``: the write queue is full, the database is unavailable, the drain is
    shutting down or not running, or no commit came in time (the batch may still commit:
    the retry with the same key is then a duplicate).
    """
    state.rows_per_body += 0.1 * (decoded.row_count - state.rows_per_body)
    if not decoded.row_count:
        return None
    writer = state.writer
    if writer is None:
        return unavailable(state, "the drain is not running")
    batch = PendingBatch(
        drain_token=drain_token,
        frame_id=frame_id,
        received_at=received_at,
        rows=decoded.rows,
        quarantined=decoded.quarantined,
        size_bytes=decoded.ledger.body_bytes + decoded.row_count * _ROW_OVERHEAD_BYTES,
    )
    wait_s = state.config.write_wait_s
    try:
        return await _wait(writer, batch, wait_s)
    except QueueFull as error:
        return _queue_full(error)
    except DatabaseUnavailable:
        return unavailable(state, "database unavailable")
    except WriterClosed:
        return unavailable(state, "the drain is shutting down")
    except TimeoutError:
        return unavailable(state, f"not committed within {wait_s:g} s")
    finally:
        stats = writer.stats()
        state.metrics.set_queue(stats.queue_events, stats.queue_bytes)


async def note_unanswered(
    request: Request, report: BatchReport, result: WriteResult | Refused | None
) -> None:
    """Mark ``report`` unanswered when its batch was committed (not as a duplicate) after the
    sender had closed the connection: the sender stopped waiting (log-shuttle's
    ``-timeout``, an exporter's time-out) and counts the batch as failed (log-shuttle: lost,
    L13) although it is stored."""
    stored = isinstance(result, WriteResult) and not result.duplicate
    if stored and await request.is_disconnected():
        report.unanswered = True


def unavailable(state: DrainState, detail: str, retry_after_s: int | None = None) -> Refused:
    """503 with ``Retry-After: retry_after_s`` (default DRAIN_RETRY_AFTER_S)."""
    retry_after = state.config.retry_after_s if retry_after_s is None else retry_after_s
    return Refused(503, detail, {"Retry-After": str(retry_after)})


def _queue_full(error: QueueFull) -> Refused:
    retry_after = max(1, math.ceil(error.retry_after_s))
    return Refused(503, "write queue full", {"Retry-After": str(retry_after)})


async def _wait(writer: Writer, batch: PendingBatch, wait_s: float) -> WriteResult:
    """writer.submit, waited for at most ``wait_s`` seconds (then TimeoutError).

    The batch stays queued after a time-out and may still commit; the sender's retry with
    the same key is then a duplicate (stored once). The abandoned outcome is retrieved so
    that it is not reported as never retrieved.

    No reference cycle is left when submit raises (QueueFull under a burst, TimeoutError):
    the error's traceback holds this frame, so this frame must not hold the task that holds
    the error (``asyncio.wait_for`` on Python 3.11 keeps such a cycle in its own frame).
    Each cycle would keep the request's rows alive until the next cyclic collection, which
    drain.web.worker's GC tuning makes rare (bench/README.md, "Memory (round 3)").
    """
    task = asyncio.ensure_future(writer.submit(batch))
    try:
        async with asyncio.timeout(wait_s):
            return await asyncio.shield(task)
    finally:
        if not task.done():  # timed out, or this request was cancelled
            task.add_done_callback(_ignore_outcome)
        del task


def _ignore_outcome(task: asyncio.Future[WriteResult]) -> None:
    if not task.cancelled():
        task.exception()


def ledger_headers(decoded: DecodedBatch, result: WriteResult | None) -> dict[str, str]:
    """``Drain-*`` response headers so that ``curl -i`` shows what happened to the batch
    (for OTLP, ``Drain-Frames`` counts log records)."""
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
