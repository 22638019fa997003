"""What one log line becomes, whichever input it came in (pure: no I/O).

A *line* is the neutral record every input produces: its time (UTC), its syslog-style
fields (PRI, HOSTNAME, APP-NAME, PROCID, as bytes) and its message (MSG, bytes), plus the
raw bytes and offset that a quarantine row keeps. The Logplex input reads them from a frame's
syslog header (drain.decode.syslog); an OTLP input from a log record and its resource. A
:data:`LineDecoder` gives the line its one outcome:

- an :class:`~drain.records.EventRow`: MSG is ``@[tag] {json}`` (drain.decode.events), inside
  the acceptance window;
- a :class:`~drain.records.QuarantineRow`: MSG is tagged but breaks a rule of
  drain.decode.events, or its time is OUT_OF_WINDOW;
- a :class:`~drain.records.LostReport`: Logplex's or log-shuttle's report of lines lost
  upstream (drain.decode.loss), a not-event of kind ``logplex_error``;
- a not-event kind: ``logplex_error`` (a loss line whose numbers do not read), or
  ``untagged`` (every other line).

The rows a line becomes go to the data table that :data:`drain.records.ROW_TABLES` names for
their type; a rule that makes rows for a new table is added here, in the order of the
checks, and the inputs need no change.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from drain.decode.events import TAGGED, RejectedEvent, parse_event
from drain.decode.limits import DecodeLimits
from drain.decode.loss import is_loss_line, parse_lost_line
from drain.records import EventRow, LostReport, QuarantineReason, QuarantineRow

__all__ = [
    "KIND_LOGPLEX_ERROR",
    "KIND_MALFORMED_LINE",
    "KIND_UNTAGGED",
    "LineDecoder",
    "LineResult",
    "line_decoder",
    "quarantine_row",
]

#: Not-an-event kinds, the keys of ``Ledger.not_events_by_kind``.
KIND_UNTAGGED = "untagged"
KIND_MALFORMED_LINE = "malformed_line"
KIND_LOGPLEX_ERROR = "logplex_error"

#: what a line becomes: a row to store, a row to quarantine, a loss report (of kind
#: ``logplex_error``), or another not-event kind
LineResult = EventRow | QuarantineRow | LostReport | str

#: ``decode_line(when, pri, hostname, app_name, proc_id, msg, raw, offset)``: see
#: :func:`line_decoder`
LineDecoder = Callable[[datetime, int, bytes, bytes, bytes, bytes, bytes, int], LineResult]

_new = tuple.__new__  # builds a NamedTuple row without its Python-level __new__


def quarantine_row(
    limits: DecodeLimits,
    app: str,
    raw: bytes,
    offset: int,
    reason: QuarantineReason,
    detail: str,
    when: datetime | None = None,
    tag: str | None = None,
) -> QuarantineRow:
    """A quarantine row for ``raw`` (cut to ``limits.max_quarantine_raw_bytes``), found at
    byte ``offset`` of its body, with its reason and a human ``detail``."""
    keep = limits.max_quarantine_raw_bytes
    return QuarantineRow(reason, detail, raw[:keep], len(raw), offset, when, tag, app)


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _window_detail(
    when: datetime, earliest: datetime, latest: datetime, limits: DecodeLimits
) -> str:
    if when < earliest:
        return (
            f"TIMESTAMP {_iso(when)} is more than {limits.accept_past_s:g} s "
            f"before receipt ({_iso(earliest)})"
        )
    return (
        f"TIMESTAMP {_iso(when)} is more than {limits.accept_future_s:g} s "
        f"after receipt ({_iso(latest)})"
    )


def line_decoder(now: datetime, limits: DecodeLimits, app: str = "") -> LineDecoder:
    """The function that gives each line of one body its outcome (see the module docstring).

    ``decode_line(when, pri, hostname, app_name, proc_id, msg, raw, offset)`` takes the
    line's time (tz-aware UTC), its PRI (0..191), HOSTNAME, APP-NAME and PROCID (printable
    US-ASCII bytes), its MSG (bytes, without the line end), and for a quarantine row the raw
    bytes and their byte offset in the body. It never raises on any bytes. It keeps a memo
    of the body's valid tags (:func:`drain.decode.events.parse_event`): make one per body.

    Args:
        now: the receipt time (tz-aware); the acceptance window is relative to it.
        limits: the decoder's bounds.
        app: the app the body came from (:attr:`drain.records.EventRow.app`), set on every row.

    Raises:
        ValueError: ``now`` is naive.
    """
    earliest, latest = limits.window(now)
    tags: dict[bytes, str] = {}
    # HOSTNAME, APP-NAME and PROCID decoded once per body: the rows of a body share the str
    # objects (a handful of distinct values), which makes each queued row smaller
    names: dict[bytes, str] = {}
    name = names.get

    def decode_line(
        when: datetime,
        pri: int,
        host: bytes,
        app_name: bytes,
        proc: bytes,
        msg: bytes,
        raw: bytes,
        offset: int,
    ) -> LineResult:
        parsed = parse_event(msg, tags) if msg.startswith(TAGGED) else None
        if parsed is None:
            if is_loss_line(app_name, proc, msg):
                return parse_lost_line(msg) or KIND_LOGPLEX_ERROR
            return KIND_UNTAGGED
        if isinstance(parsed, RejectedEvent):
            return quarantine_row(
                limits, app, raw, offset, parsed.reason, parsed.detail, when, parsed.tag
            )
        tag = parsed.tag
        if when < earliest or when > latest:
            return quarantine_row(
                limits,
                app,
                raw,
                offset,
                QuarantineReason.OUT_OF_WINDOW,
                _window_detail(when, earliest, latest, limits),
                when,
                tag,
            )
        hostname = name(host)
        if hostname is None:
            hostname = names[host] = host.decode("ascii")
        app_field = name(app_name)
        if app_field is None:
            app_field = names[app_name] = app_name.decode("ascii")
        proc_id = name(proc)
        if proc_id is None:
            proc_id = names[proc] = proc.decode("ascii")
        return _new(
            EventRow,
            (when, tag, parsed.payload, pri >> 3, pri & 7, hostname, app_field, proc_id, app),
        )

    return decode_line
