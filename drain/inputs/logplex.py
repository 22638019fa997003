"""The Logplex input: one ``application/logplex-1`` body into rows and a ledger (pure).

Logplex (and log-shuttle) POST a body of octet-counted syslog frames (Heroku Dev Center,
"Log Drains: HTTPS drains"). Each frame goes through the decode rules, each owned by one
module:

1. :mod:`drain.decode.framing` finds the frame (RFC 6587 §3.4.1);
2. :mod:`drain.decode.syslog` checks its header (RFC 5424 §6, Heroku's dialect) and splits
   STRUCTURED-DATA from MSG;
3. :mod:`drain.decode.lines` gives the line its outcome: the ``@[tag] {json}`` convention
   (:mod:`drain.decode.events`), Heroku's own lines (router, metrics, platform events, the
   loss reports of Logplex and log-shuttle), or a not-event kind.

Every frame gets exactly one :class:`~drain.records.Outcome`:

- ``EVENT``: an :class:`~drain.records.EventRow` to store;
- ``TYPED``: rows of the typed tables (:class:`~drain.decode.lines.TypedLine`: a router
  line, a metrics line, a platform event), counted once by kind whatever its rows;
- ``QUARANTINED``: a :class:`~drain.records.QuarantineRow`, for a frame that carries (or may
  carry) an event but cannot be stored as one: FRAME_TOO_LONG, BAD_SYSLOG_HEADER (only when
  the frame contains ``@[``), MISPLACED_TAG, BAD_TAG ... NUL_IN_JSON, OUT_OF_WINDOW;
- ``NOT_AN_EVENT``, counted by kind: ``untagged`` (plain app output; Heroku's lines whose
  table is off), ``malformed_line`` (the header does not parse and there is no ``@[`` in the
  frame), ``excluded`` (an exclusion rule matched), ``out_of_window`` (one of Heroku's lines
  whose time is outside the acceptance window), ``logplex_error`` (a loss line while
  platform_events is off or out of the window; its loss report is kept in the ledger).

A tagged line behind a header that was not fully read must not pass for ``untagged``: when
MSG is not tagged but holds ``@[``, and what precedes it is a run of SD-ELEMENTs without
SD-PARAMs and one SP (RFC 5424 §6.3 allows an SD-ELEMENT with no SD-PARAM), the line is
decoded from the tag on (an event, when its rules allow); when what precedes it is only
spaces, TABs, NILVALUEs (``-``) and bracketed groups that are not well-formed SD, it is
quarantined MISPLACED_TAG; text before the tag (``INFO 2024-01-01 @[t] {}``) leaves it
``untagged`` (drain.decode.events: a tag in mid-line is not an event).

If the body stops being well-framed, the frames before the fault are kept and the rest of
the body (from the fault's offset, cut to ``max_quarantine_raw_bytes``) becomes one
BAD_FRAMING quarantine row. That rest is not a frame. So, for every body::

    ledger.frames + ledger.rests == (ledger.events + ledger.typed + ledger.quarantined
                                     + ledger.not_events)
    len(batch.quarantined) == ledger.quarantined == sum(ledger.quarantined_by_reason.values())

For frame-level quarantine rows, ``raw`` is the frame's SYSLOG-MSG (without its
``MSG-LEN SP`` prefix) and ``raw_bytes`` its MSG-LEN; ``frame_offset`` is the offset of the
frame's MSG-LEN in the body.

Two walks share :func:`frame_decoder`, the one function that gives a frame its outcome:
:func:`decode_body` keeps only the rows and counts (the request path), and
:func:`iter_outcomes` describes every frame (``drain parse`` and the golden files).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from drain.decode.events import TAGGED
from drain.decode.framing import iter_frames, split_frames
from drain.decode.limits import DecodeLimits
from drain.decode.lines import (
    KIND_EXCLUDED,
    KIND_LOGPLEX_ERROR,
    KIND_MALFORMED_LINE,
    KIND_UNTAGGED,
    TYPED_ROUTER,
    LineResult,
    TypedLine,
    as_typed,
    keep_other,
    keep_typed,
    line_decoder,
    quarantine_row,
)
from drain.decode.rules import LineRules
from drain.decode.scan import contains
from drain.decode.syslog import SyslogMessage, parse_line, split_fields, structured_data_end
from drain.errors import FramingError, LineError, TooManyFrames
from drain.records import (
    RAW_EVENTS,
    ROW_TABLES,
    DecodedBatch,
    EventRow,
    Ledger,
    LostReport,
    Outcome,
    QuarantineReason,
    QuarantineRow,
    RouterRow,
    Row,
)

__all__ = [
    "KIND_EXCLUDED",
    "KIND_LOGPLEX_ERROR",
    "KIND_MALFORMED_LINE",
    "KIND_UNTAGGED",
    "LOGPLEX_MEDIA_TYPE",
    "FrameDecoder",
    "FrameOutcome",
    "decode_body",
    "frame_decoder",
    "iter_outcomes",
]

#: the media type Logplex sends (Heroku Dev Center, "Log Drains")
LOGPLEX_MEDIA_TYPE: Final = "application/logplex-1"

#: what a :data:`FrameDecoder` gives (the outcomes of drain.decode.lines)
FrameResult = LineResult
#: ``decode(msg, offset, too_long)``: see :func:`frame_decoder`
FrameDecoder = Callable[[bytes, int, bool], FrameResult]

#: what may stand between a header that was not fully read and a tag: spaces, TABs,
#: NILVALUEs and bracketed groups (escapes kept inside them)
_HEADER_DEBRIS: Final = re.compile(rb"(?:[ \t]++|-|\[(?:[^\[\]\\]++|\\.)*+\])*+", re.DOTALL)
_BOM: Final = TAGGED[1][:3]


def _tag_at(text: bytes) -> int:
    """Where the first tag of ``text`` starts (its BOM included), or -1."""
    at = text.find(b"@[")
    if at >= 3 and text[at - 3 : at] == _BOM:
        at -= 3
    return at


def frame_decoder(now: datetime, limits: DecodeLimits, app: str, rules: LineRules) -> FrameDecoder:
    """The function that gives each frame of one body its outcome.

    ``decode(msg, offset, too_long)`` takes the frame's SYSLOG-MSG (MSG-LEN bytes, trailing
    LF included when sent), the byte offset of its MSG-LEN in the body (for quarantine
    rows), and whether MSG-LEN is over ``limits.max_frame_bytes`` (then it is quarantined
    FRAME_TOO_LONG, not parsed). A frame whose header does not parse is quarantined
    BAD_SYSLOG_HEADER when it contains ``@[`` (it may carry an event), else counted as
    ``malformed_line``; every other frame is a line, decoded by
    :func:`drain.decode.lines.line_decoder`, then, when it is ``untagged`` and holds
    ``@[``, by the rule of the module docstring (a tag behind a header not fully read).
    Never raises on any bytes; keeps the memos of the body, so make one per body.

    Args:
        now: the receipt time (tz-aware); the acceptance window is relative to it.
        limits: the decoder's bounds.
        app: the app the body came from (see :attr:`drain.records.EventRow.app`), set on
            every row.
        rules: what becomes of Heroku's own lines (drain.decode.rules).

    Raises:
        ValueError: ``now`` is naive.
    """
    decode_line = line_decoder(now, limits, app, rules)

    def decode(msg: bytes, offset: int, too_long: bool) -> FrameResult:
        if too_long:
            detail = f"frame of {len(msg)} bytes is over max_frame_bytes ({limits.max_frame_bytes})"
            return quarantine_row(limits, app, msg, offset, QuarantineReason.FRAME_TOO_LONG, detail)
        try:
            pri, when, host, app_name, proc, _msgid, _sd, text = split_fields(msg)
        except LineError as error:
            if contains(msg, b"@["):
                return quarantine_row(
                    limits,
                    app,
                    msg,
                    offset,
                    QuarantineReason.BAD_SYSLOG_HEADER,
                    f"syslog: {error}",
                )
            return KIND_MALFORMED_LINE
        out = decode_line(when, pri, host, app_name, proc, text, msg, offset)
        if out is KIND_UNTAGGED and contains(text, b"@["):
            at = _tag_at(text)
            prefix = text[:at]
            if at > 0 and structured_data_end(prefix) == at - 1 and prefix[-1:] == b" ":
                # SD-ELEMENTs without SD-PARAMs, then SP: RFC 5424 allows that header
                return decode_line(when, pri, host, app_name, proc, text[at:], msg, offset)
            if at > 0 and _HEADER_DEBRIS.fullmatch(prefix) is not None:
                return quarantine_row(
                    limits,
                    app,
                    msg,
                    offset,
                    QuarantineReason.MISPLACED_TAG,
                    f"MSG holds a tag after {prefix[:40]!r}, which is not RFC 5424 "
                    "STRUCTURED-DATA followed by one space: the header was not fully read",
                    when,
                )
        return out

    return decode


def _rest_row(body: bytes, error: FramingError, limits: DecodeLimits, app: str) -> QuarantineRow:
    """The BAD_FRAMING row of the unframeable rest of ``body``: only the bytes kept are
    copied, not the whole rest of a (possibly large) body."""
    rest = body[error.offset : error.offset + limits.max_quarantine_raw_bytes]
    return QuarantineRow(
        QuarantineReason.BAD_FRAMING,
        str(error),
        rest,
        len(body) - error.offset,
        error.offset,
        None,
        None,
        app,
    )


def decode_body(
    body: bytes,
    *,
    now: datetime,
    limits: DecodeLimits,
    rules: LineRules,
    msg_count: int | None = None,
    app: str = "",
) -> DecodedBatch:
    """Decode one ``application/logplex-1`` body into rows, quarantine rows and a ledger.

    Args:
        body: the request body, already decompressed (Content-Encoding handled by the
            caller), at most the body cap in bytes.
        now: receipt time (tz-aware, UTC); events outside the acceptance window
            (:meth:`DecodeLimits.window`) are OUT_OF_WINDOW.
        limits: the decoder's bounds.
        rules: what becomes of Heroku's own lines (drain.decode.rules).
        msg_count: the request's ``Logplex-Msg-Count`` header, recorded in
            ``ledger.msg_count_header``; a mismatch is reported, never an error.
        app: the app the body came from, set on every row (:attr:`EventRow.app`).

    Returns:
        :class:`~drain.records.DecodedBatch` with rows in body order (``rows`` holds a list
        for each table that has rows, ``raw_events`` always) and a ledger that satisfies the
        invariants in the module docstring.

    Raises:
        ValueError: ``now`` is naive.
        TooManyFrames: more than ``limits.max_frames`` frames; raised when frame
            ``max_frames + 1`` starts. The only way a body raises.
    """
    decode = frame_decoder(now, limits, app, rules)
    max_frame_bytes = limits.max_frame_bytes
    max_frames = limits.max_frames
    events: list[Row] = []
    rows: dict[str, list[Row]] = {RAW_EVENTS: events}
    by_type: dict[type, list[Row]] = {}  # the typed tables' lists, by row type
    quarantined: list[QuarantineRow] = []
    ledger = Ledger(body_bytes=len(body), msg_count_header=msg_count)
    by_reason = ledger.quarantined_by_reason
    by_kind = ledger.not_events_by_kind
    by_typed = ledger.typed_by_kind
    append = events.append
    spans, error = split_frames(body, limit=max_frames)
    if max_frames is not None and len(spans) > max_frames:
        raise TooManyFrames(max_frames, spans[max_frames][0])
    untagged = 0
    router_rows: list[Row] | None = None  # router_requests: its own list, the common case
    routers = 0
    for offset, start, stop in spans:
        out = decode(body[start:stop], offset, stop - start > max_frame_bytes)
        if type(out) is EventRow:
            append(out)
        elif type(out) is RouterRow:  # a router line of one row
            if router_rows is None:
                router_rows = by_type.get(RouterRow)
                if router_rows is None:
                    router_rows = by_type[RouterRow] = rows[ROW_TABLES[RouterRow]] = []
            router_rows.append(out)
            routers += 1
        elif out is KIND_UNTAGGED:
            untagged += 1
        elif type(out) is TypedLine:
            keep_typed(out, rows, by_type, ledger)
        else:
            keep_other(out, quarantined, ledger)
    if error is not None:
        row = _rest_row(body, error, limits, app)
        quarantined.append(row)
        by_reason[row.reason.value] = by_reason.get(row.reason.value, 0) + 1
        ledger.framing_error = row.detail
        ledger.framing_error_offset = error.offset
    if untagged:
        by_kind[KIND_UNTAGGED] = by_kind.get(KIND_UNTAGGED, 0) + untagged
    if routers:
        by_typed[TYPED_ROUTER] = by_typed.get(TYPED_ROUTER, 0) + routers
    frames = len(spans)
    ledger.frames = frames
    ledger.events = len(events)
    ledger.typed = sum(by_typed.values())
    ledger.quarantined = len(quarantined)
    ledger.not_events = frames + ledger.rests - ledger.events - ledger.typed - ledger.quarantined
    return DecodedBatch(rows, quarantined, ledger)


@dataclass(frozen=True, slots=True, kw_only=True)
class FrameOutcome:
    """What the decoder did with one frame (or with the unframeable rest of a body), as
    ``drain parse`` shows it.

    Attributes:
        offset: byte offset of the frame's MSG-LEN (or of the framing fault) in the body.
        length: MSG-LEN in bytes (or the length of the unframeable rest).
        framed: False only for the BAD_FRAMING row of the unframeable rest.
        outcome: EVENT, TYPED, QUARANTINED or NOT_AN_EVENT.
        raw: the frame's SYSLOG-MSG, uncut (for the unframeable rest: its first
            ``max_quarantine_raw_bytes``).
        header: the parsed syslog line, or None (header error, frame too long, rest).
        header_error: the LineError when the header did not parse.
        event: the EventRow when ``outcome`` is EVENT.
        typed: the TypedLine when ``outcome`` is TYPED.
        quarantine: the QuarantineRow when ``outcome`` is QUARANTINED.
        kind: the not-an-event kind when ``outcome`` is NOT_AN_EVENT, the line's kind
            (``router`` ...) when it is TYPED.
        loss: the loss report of a loss line whose numbers were read (TYPED ``platform``,
            or NOT_AN_EVENT ``logplex_error``).
    """

    offset: int
    length: int
    framed: bool
    outcome: Outcome
    raw: bytes
    header: SyslogMessage | None = None
    header_error: LineError | None = None
    event: EventRow | None = None
    typed: TypedLine | None = None
    quarantine: QuarantineRow | None = None
    kind: str | None = None
    loss: LostReport | None = None


def iter_outcomes(
    body: bytes, *, now: datetime, limits: DecodeLimits, rules: LineRules, app: str = ""
) -> Iterator[FrameOutcome]:
    """Yield one :class:`FrameOutcome` per frame of ``body``, in order, then (if the body
    stopped being well-framed) one with ``framed=False`` for the BAD_FRAMING rest.

    The same outcomes as :func:`decode_body` (both use :func:`frame_decoder`), with the
    parsed header of each frame for display (:mod:`drain.inputs.dump`).

    Raises:
        ValueError: ``now`` is naive.
        TooManyFrames: the body holds more than ``limits.max_frames`` frames.
    """
    decode = frame_decoder(now, limits, app, rules)
    frames = iter_frames(body, max_frame_bytes=limits.max_frame_bytes)
    seen = 0
    while True:
        rest: QuarantineRow | None = None
        try:
            frame = next(frames)
        except StopIteration:
            return
        except FramingError as error:
            # the error's traceback holds this generator's frame: keep neither past here
            rest = _rest_row(body, error.with_traceback(None), limits, app)
        if rest is not None:
            yield FrameOutcome(
                offset=rest.frame_offset,
                length=rest.raw_bytes,
                framed=False,
                outcome=Outcome.QUARANTINED,
                raw=rest.raw,
                quarantine=rest,
            )
            return
        seen += 1
        if limits.max_frames is not None and seen > limits.max_frames:
            raise TooManyFrames(limits.max_frames, frame.offset)
        out = decode(frame.msg, frame.offset, frame.too_long)
        header: SyslogMessage | None = None
        header_error: LineError | None = None
        if not frame.too_long:
            try:
                header = parse_line(frame.msg)
            except LineError as error:
                # without its traceback: it holds this frame, and so the body, in a cycle
                # that only the (rarely run) cyclic collector frees
                header_error = error.with_traceback(None)
        yield _described(frame.offset, frame.msg, out, header, header_error)


def _described(
    offset: int,
    msg: bytes,
    out: FrameResult,
    header: SyslogMessage | None,
    header_error: LineError | None,
) -> FrameOutcome:
    event = out if isinstance(out, EventRow) else None
    typed = as_typed(out)
    quarantine = out if isinstance(out, QuarantineRow) else None
    loss = out if isinstance(out, LostReport) else (typed.loss if typed is not None else None)
    if event is not None:
        outcome, kind = Outcome.EVENT, None
    elif typed is not None:
        outcome, kind = Outcome.TYPED, typed.kind
    elif quarantine is not None:
        outcome, kind = Outcome.QUARANTINED, None
    else:
        outcome = Outcome.NOT_AN_EVENT
        kind = KIND_LOGPLEX_ERROR if loss is not None else str(out)
    return FrameOutcome(
        offset=offset,
        length=len(msg),
        framed=True,
        outcome=outcome,
        raw=msg,
        header=header,
        header_error=header_error,
        event=event,
        typed=typed,
        quarantine=quarantine,
        kind=kind,
        loss=loss,
    )
