"""Decode one Logplex request body into rows and a ledger (pure: no I/O, no clock).

``decode_batch(body, now=...)`` composes the three pure layers:

1. :mod:`drain.framing` splits the body into octet-counted frames (RFC 6587 §3.4.1);
2. :mod:`drain.syslog` parses each frame's syslog header (RFC 5424 §6, Heroku's dialect);
3. :mod:`drain.events` reads the ``@[tag] {json}`` convention from MSG.

Every frame gets exactly one :class:`~drain.records.Outcome`:

- ``EVENT``: an :class:`~drain.records.EventRow` to store;
- ``QUARANTINED``: a :class:`~drain.records.QuarantineRow`, for a frame that carries (or may
  carry) an event but cannot be stored as one: FRAME_TOO_LONG, BAD_SYSLOG_HEADER (only when
  the frame contains ``@[``), BAD_TAG ... NUL_IN_JSON, OUT_OF_WINDOW;
- ``NOT_AN_EVENT``, counted by kind: ``untagged`` (router lines, plain app output),
  ``malformed_line`` (the header does not parse and there is no ``@[`` in the frame),
  ``logplex_error`` (Logplex's ``Error L10`` from APP-NAME ``heroku`` PROCID ``logplex``,
  and log-shuttle's ``Error L13`` from PROCID ``log-shuttle``).

If the body stops being well-framed, the frames before the fault are kept and the rest of
the body (from the fault's offset, cut to ``max_quarantine_raw_bytes``) becomes one
BAD_FRAMING quarantine row. That rest is not a frame. So, for every body::

    ledger.frames == ledger.events + ledger.quarantined + ledger.not_events
    len(batch.quarantined) == ledger.quarantined + (1 if ledger.framing_error else 0)
    sum(ledger.quarantined_by_reason.values()) == len(batch.quarantined)

For frame-level quarantine rows, ``raw`` is the frame's SYSLOG-MSG (without its
``MSG-LEN SP`` prefix) and ``raw_bytes`` its MSG-LEN; ``frame_offset`` is the offset of the
frame's MSG-LEN in the body.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

import orjson

from drain.events import RejectedEvent, parse_event
from drain.framing import MAX_LENGTH_DIGITS, Frame, FramingError, iter_frames
from drain.records import (
    DecodedBatch,
    EventRow,
    Ledger,
    Outcome,
    QuarantineReason,
    QuarantineRow,
)
from drain.syslog import (
    APP_NAME_MAX,
    HOSTNAME_MAX,
    MSGID_MAX,
    PROCID_MAX,
    LineError,
    SyslogMessage,
    parse_line,
    parse_timestamp,
)

__all__ = [
    "DEFAULT_LIMITS",
    "KIND_LOGPLEX_ERROR",
    "KIND_MALFORMED_LINE",
    "KIND_UNTAGGED",
    "MAX_FRAMES_PER_BODY",
    "DecodeLimits",
    "FrameOutcome",
    "TooManyFrames",
    "decode_batch",
    "decode_batch_general",
    "iter_outcomes",
    "tally",
]

#: Not-an-event kinds, the keys of ``Ledger.not_events_by_kind``.
KIND_UNTAGGED = "untagged"
KIND_MALFORMED_LINE = "malformed_line"
KIND_LOGPLEX_ERROR = "logplex_error"

#: Default bound on the frames of one body. Decoding costs ~7 µs per frame whatever the
#: frame holds, so a body of tiny frames (``1 x1 x1 x...``: 3 bytes each) would cost ~19 s
#: of CPU at the 8 MiB body cap. Logplex batches (~100 KiB) hold at most ~2,000 frames and
#: log-shuttle sends 500 lines per batch by default (``-batch-size``); 20,000 frames bound
#: the worst body to ~0.15 s of CPU (measured: bench/reliability.py, "tiny frames").
MAX_FRAMES_PER_BODY = 20_000


class TooManyFrames(ValueError):
    """The body holds more than ``max_frames`` frames (see :data:`MAX_FRAMES_PER_BODY`).

    Raised by :func:`iter_outcomes` / :func:`decode_batch` when frame ``max_frames + 1``
    starts, after at most ``max_frames`` frames were decoded; the web layer refuses the
    whole body (413) so nothing of it is stored. ``offset`` is that frame's byte offset.
    """

    def __init__(self, max_frames: int, offset: int) -> None:
        super().__init__(
            f"the body holds more than {max_frames} frames (frame {max_frames + 1} "
            f"starts at byte {offset}): send smaller batches"
        )
        self.max_frames = max_frames
        self.offset = offset


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """Bounds applied while decoding a body.

    Attributes:
        max_frame_bytes: a frame whose MSG-LEN is above this many bytes is quarantined
            FRAME_TOO_LONG (skipped by its count, not parsed). Default 64 KiB; Logplex
            splits lines at 10,000 bytes and log-shuttle at its max-line-length.
        max_quarantine_raw_bytes: bytes of ``raw`` kept per quarantine row (64 KiB).
        accept_past_s: seconds before ``now`` an event's TIMESTAMP may be; older events
            are quarantined OUT_OF_WINDOW (7 days).
        accept_future_s: seconds after ``now`` an event's TIMESTAMP may be (1 hour).
        max_frames: more frames than this in one body raise :class:`TooManyFrames`
            (:data:`MAX_FRAMES_PER_BODY`); None: no bound (``drain parse`` on a file).
    """

    max_frame_bytes: int = 65536
    max_quarantine_raw_bytes: int = 65536
    accept_past_s: float = 7 * 86400
    accept_future_s: float = 3600
    max_frames: int | None = MAX_FRAMES_PER_BODY


#: The default limits, for callers that need a module-level default value.
DEFAULT_LIMITS = DecodeLimits()


class FrameOutcome(NamedTuple):
    """What the decoder did with one frame (or with the unframeable rest of a body).

    Fields:
        offset: byte offset of the frame's MSG-LEN (or of the framing fault) in the body.
        length: MSG-LEN in bytes (or the length of the unframeable rest).
        framed: False only for the BAD_FRAMING row of the unframeable rest.
        outcome: EVENT, QUARANTINED or NOT_AN_EVENT.
        raw: the frame's SYSLOG-MSG, uncut (for the unframeable rest: its first
            ``max_quarantine_raw_bytes``).
        header: the parsed syslog line, or None (header error, frame too long, rest).
        header_error: the LineError when the header did not parse.
        event: the EventRow when ``outcome`` is EVENT.
        quarantine: the QuarantineRow when ``outcome`` is QUARANTINED.
        kind: the not-an-event kind when ``outcome`` is NOT_AN_EVENT.
    """

    offset: int
    length: int
    framed: bool
    outcome: Outcome
    raw: bytes
    header: SyslogMessage | None
    header_error: LineError | None
    event: EventRow | None
    quarantine: QuarantineRow | None
    kind: str | None


def _is_logplex_error(line: SyslogMessage) -> bool:
    """Logplex's own ``Error L10`` lines and log-shuttle's ``Error L13`` lines."""
    if line.app_name == "heroku" and line.proc_id == "logplex":
        return line.msg.startswith(b"Error L10")
    return line.proc_id == "log-shuttle" and line.msg.startswith(b"Error L13")


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def iter_outcomes(
    body: bytes, *, now: datetime, limits: DecodeLimits = DecodeLimits()
) -> Iterator[FrameOutcome]:
    """Yield one :class:`FrameOutcome` per frame of ``body``, in order.

    After the frames, if the body stopped being well-framed, one last outcome with
    ``framed=False`` carries the BAD_FRAMING row for the rest. Used by
    :func:`decode_batch` and by :func:`drain.dump.dump_body`.

    Args:
        body: the decompressed request body.
        now: the receipt time, tz-aware; the acceptance window is relative to it.
        limits: see :class:`DecodeLimits`.

    Raises:
        ValueError: ``now`` is naive.
        TooManyFrames: the body holds more than ``limits.max_frames`` frames.
    """
    if now.tzinfo is None:
        raise ValueError("now must be a tz-aware datetime")
    max_frames = limits.max_frames
    seen = 0
    earliest = now - timedelta(seconds=limits.accept_past_s)
    latest = now + timedelta(seconds=limits.accept_future_s)
    keep = limits.max_quarantine_raw_bytes
    frames = iter_frames(body, max_frame_bytes=limits.max_frame_bytes)
    tags: dict[bytes, str] = {}  # tags already checked in this body (drain.events)
    while True:
        try:
            frame = next(frames)
        except StopIteration:
            return
        except FramingError as err:
            # Copy only the bytes kept, not the whole rest of a (possibly large) body.
            rest = body[err.offset : err.offset + keep]
            rest_bytes = len(body) - err.offset
            row = QuarantineRow(
                QuarantineReason.BAD_FRAMING,
                str(err),
                rest,
                rest_bytes,
                err.offset,
                None,
                None,
            )
            yield FrameOutcome(
                err.offset,
                rest_bytes,
                False,
                Outcome.QUARANTINED,
                rest,
                None,
                None,
                None,
                row,
                None,
            )
            return
        seen += 1
        if max_frames is not None and seen > max_frames:
            raise TooManyFrames(max_frames, frame.offset)
        yield _decode_frame(frame, earliest, latest, limits, tags)


def _quarantined(
    frame: Frame,
    reason: QuarantineReason,
    detail: str,
    keep: int,
    header: SyslogMessage | None = None,
    header_error: LineError | None = None,
    tag: str | None = None,
) -> FrameOutcome:
    msg = frame.msg
    row = QuarantineRow(
        reason,
        detail,
        msg[:keep],
        len(msg),
        frame.offset,
        header.timestamp if header is not None else None,
        tag,
    )
    return FrameOutcome(
        frame.offset,
        len(msg),
        True,
        Outcome.QUARANTINED,
        msg,
        header,
        header_error,
        None,
        row,
        None,
    )


def _decode_frame(
    frame: Frame,
    earliest: datetime,
    latest: datetime,
    limits: DecodeLimits,
    tags: dict[bytes, str],
) -> FrameOutcome:
    msg = frame.msg
    keep = limits.max_quarantine_raw_bytes
    if frame.too_long:
        return _quarantined(
            frame,
            QuarantineReason.FRAME_TOO_LONG,
            f"frame of {len(msg)} bytes is over max_frame_bytes ({limits.max_frame_bytes})",
            keep,
        )
    try:
        line = parse_line(msg)
    except LineError as err:
        if b"@[" in msg:
            return _quarantined(
                frame, QuarantineReason.BAD_SYSLOG_HEADER, f"syslog: {err}", keep, None, err
            )
        return FrameOutcome(
            frame.offset,
            len(msg),
            True,
            Outcome.NOT_AN_EVENT,
            msg,
            None,
            err,
            None,
            None,
            KIND_MALFORMED_LINE,
        )
    parsed = parse_event(line.msg, tags)
    if parsed is None:
        kind = KIND_LOGPLEX_ERROR if _is_logplex_error(line) else KIND_UNTAGGED
        return FrameOutcome(
            frame.offset, len(msg), True, Outcome.NOT_AN_EVENT, msg, line, None, None, None, kind
        )
    if isinstance(parsed, RejectedEvent):
        return _quarantined(frame, parsed.reason, parsed.detail, keep, line, None, parsed.tag)
    when = line.timestamp
    if when < earliest or when > latest:
        if when < earliest:
            detail = (
                f"TIMESTAMP {_iso(when)} is more than {limits.accept_past_s:g} s "
                f"before receipt ({_iso(earliest)})"
            )
        else:
            detail = (
                f"TIMESTAMP {_iso(when)} is more than {limits.accept_future_s:g} s "
                f"after receipt ({_iso(latest)})"
            )
        return _quarantined(
            frame, QuarantineReason.OUT_OF_WINDOW, detail, keep, line, None, parsed.tag
        )
    row = EventRow(
        when,
        parsed.tag,
        parsed.payload,
        line.facility,
        line.severity,
        line.hostname,
        line.app_name,
        line.proc_id,
    )
    return FrameOutcome(
        frame.offset, len(msg), True, Outcome.EVENT, msg, line, None, row, None, None
    )


def decode_batch(
    body: bytes,
    *,
    now: datetime,
    limits: DecodeLimits = DecodeLimits(),
    msg_count: int | None = None,
) -> DecodedBatch:
    """Decode one ``application/logplex-1`` body into events, quarantine rows and a ledger.

    Args:
        body: the request body, already decompressed (Content-Encoding handled by the
            caller), at most the body cap in bytes.
        now: receipt time (tz-aware, UTC); events outside
            ``[now - accept_past_s, now + accept_future_s]`` are OUT_OF_WINDOW.
        limits: see :class:`DecodeLimits`.
        msg_count: the request's ``Logplex-Msg-Count`` header, recorded in
            ``ledger.msg_count_header``; a mismatch is reported, never an error.

    Returns:
        :class:`~drain.records.DecodedBatch` with rows in body order and a ledger that
        satisfies the invariants in the module docstring.

    Raises:
        ValueError: ``now`` is naive.
        TooManyFrames: more than ``limits.max_frames`` frames; the only way a body raises.
    """
    return _decode_fast(body, now, limits, msg_count)


def decode_batch_general(
    body: bytes,
    *,
    now: datetime,
    limits: DecodeLimits = DecodeLimits(),
    msg_count: int | None = None,
) -> DecodedBatch:
    """:func:`decode_batch` through the layered path only (:func:`iter_outcomes` +
    :func:`tally`), every frame as a :class:`FrameOutcome`. Same contract and result;
    kept as the reference the fast path is tested against (tests/test_batch_fast.py)."""
    return tally(iter_outcomes(body, now=now, limits=limits), len(body), msg_count)


#: ``b"<190>1"`` -> 190, as in drain.syslog.
_PRI_VERSION = {b"<%d>1" % pri: pri for pri in range(192)}
_PRINTUSASCII = bytes(range(33, 127))
#: first bytes of MSG that may make a line more than "untagged" (a tag, a BOM, SD).
_NOT_PLAIN_LEAD = (b"@", b"-", b"[", b"\xef", b"")
_NUL_ESCAPE = b"\\u0000"
_new_row = tuple.__new__


def _decode_fast(
    body: bytes, now: datetime, limits: DecodeLimits, msg_count: int | None
) -> DecodedBatch:
    """decode_batch in one loop: the two common frame shapes build only what they keep.

    The shapes taken here (every check of drain.syslog / drain.events that could fail is
    made, and any doubt sends the frame on):

    - an event line ``<PRI>1 TS HOST APP PROCID MSGID [- ]@[TAG] {JSON}``: PRI/VERSION by
      the same table as parse_line, the four header fields 1..max printable US-ASCII, a
      TAG that passes drain.events' rules, TIMESTAMP that parse_timestamp accepts inside
      the acceptance window, JSON text that orjson parses to a dict, with no ``\\u0000``;
      only its EventRow is built (no Frame, SyslogMessage, TaggedEvent or FrameOutcome);
    - an untagged line: a valid header (same checks) whose MSG does not start with
      ``@``, ``-``, ``[`` or a BOM, not from PROCID ``logplex``/``log-shuttle`` (whose
      lines may be L10/L13 reports): only counted as ``untagged``.

    Why equivalent: for these shapes parse_line takes its fast path with the same fields
    (MSG = what follows MSGID and an optional nil ``- ``, the trailing LF/CR removed),
    parse_event finds the first ``]`` at the end of the tag token (a valid TAG holds no
    ``]``) followed by one SP and ``{``, and decodes the same UTF-8 and JSON (orjson
    refuses invalid UTF-8 in bytes as well; a refusal sends the frame on). Every other
    frame goes, in body order, through :func:`_decode_frame`, the general path. A body
    that is not well-framed is decoded by the general path from its start (rare: a
    broken client), and the frame count bound raises the same :class:`TooManyFrames`.
    tests/test_batch_fast.py compares both paths (hypothesis, samples, mutated samples).
    """
    if now.tzinfo is None:
        raise ValueError("now must be a tz-aware datetime")
    earliest = now - timedelta(seconds=limits.accept_past_s)
    latest = now + timedelta(seconds=limits.accept_future_s)
    max_frame_bytes = limits.max_frame_bytes
    max_frames = limits.max_frames
    events: list[EventRow] = []
    quarantined: list[QuarantineRow] = []
    ledger = Ledger(body_bytes=len(body), msg_count_header=msg_count)
    by_reason = ledger.quarantined_by_reason
    by_kind = ledger.not_events_by_kind
    append = events.append
    loads = orjson.loads
    tags: dict[bytes, str] = {}  # tags already checked in this body (drain.events)
    find = body.find
    end = len(body)
    pos = frames = untagged = 0
    while pos < end:  # bounded: each pass advances pos by at least 2 bytes
        # framing, as drain.framing.iter_frames
        sp = find(b" ", pos, pos + MAX_LENGTH_DIGITS + 1)
        digits = body[pos:sp]
        if sp < 0 or not digits.isdigit() or digits[0] == 48:  # "0": leading zero
            return decode_batch_general(body, now=now, limits=limits, msg_count=msg_count)
        start = sp + 1
        length = int(digits)
        stop = start + length
        if stop > end:
            return decode_batch_general(body, now=now, limits=limits, msg_count=msg_count)
        frames += 1
        if max_frames is not None and frames > max_frames:
            raise TooManyFrames(max_frames, pos)
        offset, pos = pos, stop
        msg = body[start:stop]
        parts = msg.split(b" ", 7) if length <= max_frame_bytes else ()
        if len(parts) == 8:
            head, ts, host, app, proc, msgid, first, rest = parts
            pri = _PRI_VERSION.get(head)
            if (
                pri is not None
                and 0 < len(host) <= HOSTNAME_MAX
                and 0 < len(app) <= APP_NAME_MAX
                and 0 < len(proc) <= PROCID_MAX
                and 0 < len(msgid) <= MSGID_MAX
                and not (host + app + proc + msgid).translate(None, _PRINTUSASCII)
            ):
                if first == b"-":  # nil STRUCTURED-DATA: MSG follows
                    first, _, rest = rest.partition(b" ")
                lead = first[:1]
                if lead == b"@":
                    tag = tags.get(first[2:-1])
                    if (
                        tag is not None
                        and first[:2] == b"@["
                        and first[-1:] == b"]"
                        and rest[:1] == b"{"
                    ):
                        if rest[-1:] == b"\n":
                            rest = rest[:-1]
                        if rest[-1:] == b"\r":
                            rest = rest[:-1]
                        when = parse_timestamp(ts)
                        if (
                            when is not None
                            and earliest <= when <= latest
                            and _NUL_ESCAPE not in rest
                        ):
                            try:
                                value = loads(rest)
                                payload = rest.decode("utf-8")
                            except ValueError:  # JSONDecodeError, UnicodeDecodeError
                                value = None
                            if type(value) is dict:
                                row = (
                                    when,
                                    tag,
                                    payload,
                                    pri >> 3,
                                    pri & 7,
                                    host.decode("ascii"),
                                    app.decode("ascii"),
                                    proc.decode("ascii"),
                                )
                                append(_new_row(EventRow, row))  # skips NamedTuple's __new__
                                continue
                elif (
                    lead not in _NOT_PLAIN_LEAD
                    and proc != b"logplex"
                    and proc != b"log-shuttle"
                    and parse_timestamp(ts) is not None
                ):
                    untagged += 1
                    continue
        # any other frame: the general path, in body order
        out = _decode_frame(
            Frame(offset, msg, length > max_frame_bytes), earliest, latest, limits, tags
        )
        if out.event is not None:
            append(out.event)
        elif out.quarantine is not None:
            quarantined.append(out.quarantine)
            reason = out.quarantine.reason.value
            by_reason[reason] = by_reason.get(reason, 0) + 1
        else:
            kind = out.kind or KIND_UNTAGGED
            by_kind[kind] = by_kind.get(kind, 0) + 1
    if untagged:
        by_kind[KIND_UNTAGGED] = by_kind.get(KIND_UNTAGGED, 0) + untagged
    ledger.frames = frames
    ledger.events = len(events)
    ledger.quarantined = len(quarantined)
    ledger.not_events = frames - ledger.events - ledger.quarantined
    return DecodedBatch(events, quarantined, ledger)


def tally(
    outcomes: Iterable[FrameOutcome], body_bytes: int, msg_count: int | None = None
) -> DecodedBatch:
    """Collect the rows and count the ledger of a body's outcomes (see :func:`iter_outcomes`).

    ``frames`` is counted from the framed outcomes, independently of the per-outcome
    counts, so that tests can check ``frames == events + quarantined + not_events``.
    """
    events: list[EventRow] = []
    quarantined: list[QuarantineRow] = []
    ledger = Ledger(body_bytes=body_bytes, msg_count_header=msg_count)
    by_reason = ledger.quarantined_by_reason
    by_kind = ledger.not_events_by_kind
    not_events = 0
    frames = 0
    for item in outcomes:
        frames += item.framed
        if item.event is not None:
            events.append(item.event)
        elif item.quarantine is not None:
            row = item.quarantine
            quarantined.append(row)
            by_reason[row.reason.value] = by_reason.get(row.reason.value, 0) + 1
            if not item.framed:
                ledger.framing_error = row.detail
                ledger.framing_error_offset = row.frame_offset
        else:
            not_events += 1
            kind = item.kind or KIND_UNTAGGED
            by_kind[kind] = by_kind.get(kind, 0) + 1
    ledger.frames = frames
    ledger.events = len(events)
    ledger.quarantined = len(quarantined) - (1 if ledger.framing_error is not None else 0)
    ledger.not_events = not_events
    return DecodedBatch(events, quarantined, ledger)
