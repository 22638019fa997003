"""``POST /logs``: a Logplex batch in, committed rows out, one answer.

The handler is a sequence of steps, each batch reported once (drain.web.report); the
steps every input shares are in drain.web.intake, the Logplex ones here:

1. admission (:func:`_admit`): credentials (401, drain.web.access), id header sizes (400),
   drain token (403), media type (415);
2. back-pressure (drain.web.intake.no_room): 503 + Retry-After before the body is read
   when the write queue is already full;
3. the body (drain.web.intake.read): streamed, capped, gzip-decoded, within a time limit;
4. decoding (drain.inputs.logplex, pure; in a worker thread for large bodies);
5. submission to the writer (drain.web.intake.submit), waited for at most
   DRAIN_WRITE_WAIT_S;
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

import logging
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from drain.decode.loss import batch_loss
from drain.errors import TooManyFrames
from drain.inputs.logplex import LOGPLEX_MEDIA_TYPE, decode_body
from drain.web import intake
from drain.web.access import Refused, check_credentials, refuse
from drain.web.auth import check_drain_token
from drain.web.report import BatchReport, Refusal
from drain.web.state import DrainState

__all__ = ["post_logs"]

log = logging.getLogger("drain.web")


async def post_logs(state: DrainState, request: Request) -> Response:
    """Answer one ``POST /logs`` (see the module docstring) and report it once."""
    report = BatchReport(request.headers.get("x-request-id"))
    return await intake.reported(state, report, lambda: _handle(state, request, report))


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
        return refused.plain()

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
    refused = intake.no_room(state, request)
    if refused is not None:  # before the body is read and decoded: a cheap 503
        return refused.plain()
    with intake.in_progress(state) as lease:
        body = await intake.read(state, request, report, lease)
        if isinstance(body, Refused):
            return body.plain()
        received_at = report.received_at = state.clock()
        rules = state.rules
        if rules is None:
            return intake.unavailable(state, "the drain is not running").plain()
        try:
            decoded = await intake.run_decoder(
                state,
                len(body),
                decode_body,
                body,
                now=received_at,
                limits=state.limits,
                msg_count=admitted.msg_count,
                rules=rules,
                app=app,
            )
        except TooManyFrames as error:
            report.refusal = Refusal.TOO_MANY_FRAMES
            return refuse(413, str(error))
    del body  # the rows keep what they need; the body may be large
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

    result = await intake.submit(
        state, decoded, admitted.drain_token, admitted.frame_id, received_at
    )
    if isinstance(result, Refused):
        return result.plain()
    await intake.note_unanswered(request, report, result)
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
    return Response(status_code=200, headers=intake.ledger_headers(decoded, result))
