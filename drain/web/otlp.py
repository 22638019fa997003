"""``POST /v1/logs``, ``/v1/metrics``, ``/v1/traces``: OTLP/HTTP in, committed rows out.

Fir-generation apps export their logs with OTLP to a telemetry drain (``heroku
telemetry:add https://HOST --signals logs --transport http --headers
'{"Authorization":"Bearer TOKEN"}'``; docs/otlp.md). The routes are served at ``/v1/...``
and, with DRAIN_OTLP_PATH_PREFIX, also under that prefix. Each request is reported once
(drain.web.report), like a Logplex batch, and goes through the steps every input shares
(drain.web.intake):

1. admission: credentials (drain.web.access.authenticate: HTTP Basic or the bearer token),
   then the media type;
2. back-pressure (logs): 503 + Retry-After before the body is read when the write queue is
   full;
3. the body: streamed, capped (DRAIN_MAX_BODY_BYTES), gzip-decoded, timed;
4. decoding (drain.inputs.otlp, pure, with the OpenTelemetry project's protobuf classes;
   in a worker thread for large bodies);
5. logs: submission to the writer with the ledger key (credential, SHA-256 of the body),
   in the same transaction as the rows; metrics and traces: counted, not stored;
6. the answer in the request's encoding.

The answers follow the OTLP specification ("OTLP/HTTP Response"); exporters retry only
429, 502, 503 and 504 (honouring ``Retry-After``) and drop on every other 4xx:

=====  =====================================================================================
code   when
=====  =====================================================================================
200    ``Export<signal>ServiceResponse``. Logs: the records are committed (or the same bytes
       were committed before: a retry adds nothing); ``partial_success`` counts the records
       quarantined and why. Metrics and traces: ``partial_success`` counts the data points
       or spans, which this drain does not store, and says so. ``Drain-*`` headers as for
       POST /logs.
400    the body is not a valid request in its encoding (``google.rpc.Status``), or corrupt
       gzip
401    missing or wrong credentials (``WWW-Authenticate``)
413    body over DRAIN_MAX_BODY_BYTES, or more log records than DRAIN_MAX_FRAMES_PER_BODY
415    ``Content-Type`` is neither ``application/x-protobuf`` nor ``application/json``
       (parameters allowed), or ``Content-Encoding`` is not gzip/identity
503    write queue full, database unavailable, no commit within DRAIN_WRITE_WAIT_S, the
       drain is shutting down, the body too slow: with ``Retry-After``; also
       ``X-Forwarded-Proto: http`` under DRAIN_REQUIRE_HTTPS (without it)
=====  =====================================================================================

Every 4xx and 5xx carries a ``google.rpc.Status`` whose message says why, encoded like the
request (binary protobuf when the media type was refused).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from drain.decode.loss import batch_loss
from drain.errors import InvalidOtlpRequest, TooManyRecords
from drain.inputs.otlp import (
    JSON_MEDIA_TYPE,
    PROTOBUF_MEDIA_TYPE,
    Encoding,
    Signal,
    count_items,
    decode_logs,
    encoding_of,
    export_response,
    ledger_key,
    partial_success_message,
    status_body,
)
from drain.records import DecodedBatch, WriteResult
from drain.web import intake
from drain.web.access import Refused, authenticate
from drain.web.report import BatchReport, Refusal
from drain.web.state import DrainState

__all__ = ["otlp_routes", "post_otlp"]

_CONTENT_TYPES = {Encoding.PROTOBUF: PROTOBUF_MEDIA_TYPE, Encoding.JSON: JSON_MEDIA_TYPE}


def otlp_routes(
    state: DrainState,
) -> list[tuple[str, Callable[[Request], Awaitable[Response]]]]:
    """(path, endpoint) of every OTLP route: ``/v1/<signal>`` for each signal, and the
    same under DRAIN_OTLP_PATH_PREFIX when it is set."""
    prefixes = [""]
    if state.settings.drain_otlp_path_prefix:
        prefixes.append(state.settings.drain_otlp_path_prefix)
    routes: list[tuple[str, Callable[[Request], Awaitable[Response]]]] = []
    for signal in Signal:

        async def endpoint(request: Request, signal: Signal = signal) -> Response:
            return await post_otlp(state, request, signal)

        routes.extend((f"{prefix}/v1/{signal.value}", endpoint) for prefix in prefixes)
    return routes


async def post_otlp(state: DrainState, request: Request, signal: Signal) -> Response:
    """Answer one OTLP/HTTP export of ``signal`` (see the module docstring), reported once."""
    report = BatchReport(request.headers.get("x-request-id"), signal=signal.value)
    return await intake.reported(state, report, lambda: _handle(state, request, report, signal))


def _status(refused: Refused, encoding: Encoding) -> Response:
    """A refusal as a ``google.rpc.Status`` in ``encoding``, with the refusal's headers."""
    return Response(
        status_body(refused.status_code, refused.detail, encoding),
        status_code=refused.status_code,
        headers=refused.headers,
        media_type=_CONTENT_TYPES[encoding],
    )


def _exported(
    content: bytes,
    encoding: Encoding,
    decoded: DecodedBatch | None = None,
    result: WriteResult | None = None,
) -> Response:
    headers = intake.ledger_headers(decoded, result) if decoded is not None else None
    return Response(content, status_code=200, headers=headers, media_type=_CONTENT_TYPES[encoding])


async def _handle(
    state: DrainState, request: Request, report: BatchReport, signal: Signal
) -> Response:
    encoding = encoding_of(request.headers.get("content-type"))
    identity = authenticate(state, request)
    if isinstance(identity, Refused):
        report.refusal = identity.reason
        return _status(identity, encoding or Encoding.PROTOBUF)
    if encoding is None:
        refused = Refused(415, f"Content-Type must be {PROTOBUF_MEDIA_TYPE} or {JSON_MEDIA_TYPE}")
        return _status(refused, Encoding.PROTOBUF)
    if signal is not Signal.LOGS:
        return await _count_only(state, request, report, signal, encoding)

    no_room = intake.no_room(state, request)
    if no_room is not None:  # before the body is read and decoded: a cheap 503
        return _status(no_room, encoding)
    with intake.in_progress(state) as lease:
        body = await intake.read(state, request, report, lease)
        if isinstance(body, Refused):
            return _status(body, encoding)
        received_at = report.received_at = state.clock()
        rules = state.rules
        if rules is None:
            return _status(intake.unavailable(state, "the drain is not running"), encoding)
        try:
            decoded = await intake.run_decoder(
                state, len(body), decode_logs, body, encoding=encoding, now=received_at,
                limits=state.limits, rules=rules,
            )  # fmt: skip
        except TooManyRecords as error:
            report.refusal = Refusal.TOO_MANY_FRAMES
            return _status(Refused(413, str(error)), encoding)
        except InvalidOtlpRequest as error:
            return _status(Refused(400, str(error)), encoding)
    drain_token, frame_id = ledger_key(identity, body)
    del body  # the rows keep what they need; the body may be large
    report.drain_token, report.frame_id = drain_token, frame_id
    report.app = _single_app(decoded)
    ledger = report.ledger = decoded.ledger

    result = await intake.submit(state, decoded, drain_token, frame_id, received_at)
    if isinstance(result, Refused):
        return _status(result, encoding)
    await intake.note_unanswered(request, report, result)
    report.result = result
    if not (result is not None and result.duplicate) and ledger.loss_reports:
        report.loss = batch_loss(ledger.loss_reports, None)
    not_stored = dict(ledger.quarantined_by_reason)
    if result is not None and result.rejected_by_database:
        not_stored["rejected_by_database"] = result.rejected_by_database
    content = export_response(
        signal,
        encoding,
        rejected=sum(not_stored.values()),
        message=partial_success_message(not_stored),
    )
    return _exported(content, encoding, decoded, result)


async def _count_only(
    state: DrainState, request: Request, report: BatchReport, signal: Signal, encoding: Encoding
) -> Response:
    """A metrics or traces request: read, parse, count, and say in ``partial_success`` that
    its data points or spans are not stored (a 200, so a telemetry drain added with every
    signal does not fail, nor retry)."""
    body = await intake.read(state, request, report)
    if isinstance(body, Refused):
        return _status(body, encoding)
    report.received_at = state.clock()
    try:
        items = await intake.run_decoder(state, len(body), count_items, signal, body, encoding)
    except InvalidOtlpRequest as error:
        return _status(Refused(400, str(error)), encoding)
    report.not_stored = items
    if not items:
        return _exported(export_response(signal, encoding), encoding)
    what = "data points" if signal is Signal.METRICS else "spans"
    message = (
        f"this drain stores logs only: {items} {what} received, counted and not stored "
        "(heroku telemetry:add ... --signals logs sends only logs)"
    )
    return _exported(export_response(signal, encoding, rejected=items, message=message), encoding)


def _single_app(decoded: DecodedBatch) -> str | None:
    """The app of every row of ``decoded`` when they share one (the per-app counters),
    else None: one OTLP request may carry several resources (a space's drain)."""
    apps = {row.app for row in decoded.events}
    apps.update(row.app for row in decoded.quarantined)
    return apps.pop() if len(apps) == 1 else None
