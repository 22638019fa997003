"""The records that flow through the stages, from a request body to committed rows.

An input (:mod:`drain.inputs.logplex`, :mod:`drain.inputs.otlp`) turns one request body into
a :class:`DecodedBatch`:
rows to store, rows to quarantine, and a :class:`Ledger` that accounts for every line; the
web layer wraps it with the request's identity into a :class:`PendingBatch`; the writer
(:mod:`drain.store.writer`) commits it and answers with a :class:`WriteResult`.

Nothing here does I/O. Every frame of a body gets exactly one :class:`Outcome` (stored,
quarantined with a :class:`QuarantineReason`, or not an event), and the counts in
:class:`Ledger` add up.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

__all__ = [
    "QUARANTINE",
    "RAW_EVENTS",
    "ROW_TABLES",
    "DecodedBatch",
    "EventRow",
    "Ledger",
    "LostReport",
    "Outcome",
    "PendingBatch",
    "QuarantineReason",
    "QuarantineRow",
    "Row",
    "WriteResult",
]


class EventRow(NamedTuple):
    """One application event, in the column order of ``raw_events`` that the decoder fills.

    A NamedTuple so that the writer can hand rows to COPY without building new objects.

    Fields:
        event_time: the syslog TIMESTAMP (RFC 5424 §6.2.3) converted to UTC, tz-aware (OTLP:
            the log record's time).
        tag: the text between ``@[`` and ``]``, e.g. ``production.pay``.
        payload: the JSON object exactly as received (validated, UTF-8 text), stored as jsonb.
        facility: PRI // 8 (RFC 5424 §6.2.1), 0..23.
        severity: PRI % 8, 0..7.
        hostname: HOSTNAME field (Logplex: ``host``, or the drain token on old drains; OTLP:
            the resource's ``host.name``).
        app_name: APP-NAME field (Logplex: ``app`` for the app's own output, ``heroku`` for
            platform lines; OTLP: ``service.name``).
        proc_id: PROCID field (Logplex: the dyno, e.g. ``web.1``; OTLP:
            ``service.instance.id``, on Fir the dyno's id).
        app: the Heroku app (or Fir service) that sent it: the name DRAIN_APPS gives the
            batch's drain token, else the token, else ``""`` (drain.settings); for an OTLP
            log record, its resource's ``service.name`` (drain.inputs.otlp).
    """

    event_time: datetime
    tag: str
    payload: str
    facility: int
    severity: int
    hostname: str
    app_name: str
    proc_id: str
    app: str


class QuarantineReason(enum.StrEnum):
    """Why a frame that carries (or may carry) an event could not be stored as one.

    Each member says who emits it. The value is what the ``quarantine.reason`` column holds.
    """

    #: framing (drain.decode.framing): the body stops making sense as octet-counted frames
    #: at some byte offset; the rest of the body (bounded) is kept as one quarantine row.
    BAD_FRAMING = "bad_framing"
    #: framing: a frame longer than the configured maximum; skipped by its count, raw truncated.
    FRAME_TOO_LONG = "frame_too_long"
    #: syslog (drain.decode.syslog): the RFC 5424 header does not parse, and the frame
    #: contains ``@[``.
    BAD_SYSLOG_HEADER = "bad_syslog_header"
    #: event (drain.decode.events): the text between ``@[`` and ``]`` is not a valid tag.
    BAD_TAG = "bad_tag"
    #: event: the tag is not followed by exactly one space and a JSON value.
    BAD_SEPARATOR = "bad_separator"
    #: event: MSG is not valid UTF-8.
    INVALID_UTF8 = "invalid_utf8"
    #: event: the JSON does not parse (syntax, truncation, trailing garbage, NaN, too deep).
    INVALID_JSON = "invalid_json"
    #: event: valid JSON, but not an object (an array, a string, a number...).
    NOT_AN_OBJECT = "not_an_object"
    #: event: the JSON holds U+0000, which PostgreSQL's jsonb cannot store.
    NUL_IN_JSON = "nul_in_json"
    #: input (drain.inputs.logplex): the event's time is outside the acceptance window.
    OUT_OF_WINDOW = "out_of_window"
    #: writer (drain.store.writer): PostgreSQL refused the row (data error) although the parser
    #: accepted it; the database's message is kept in ``detail``.
    REJECTED_BY_DATABASE = "rejected_by_database"


class QuarantineRow(NamedTuple):
    """A frame (or the unframeable rest of a body) kept for a human to look at.

    Fields:
        reason: why it was not stored as an event.
        detail: a short human explanation, e.g. ``"JSON: unexpected character at column 3"``.
        raw: the frame's bytes as received (for BAD_FRAMING: the rest of the body), cut to
            the configured bound.
        raw_bytes: the length in bytes of the frame before any cut.
        frame_offset: byte offset of the frame (its length prefix) in the decoded body; for
            an OTLP log record, its index in the request (0-based), not a byte offset.
        event_time: the syslog TIMESTAMP in UTC when the header parsed, else None.
        tag: the tag when one was read, else None.
        app: the app that sent it, as :attr:`EventRow.app`.
    """

    reason: QuarantineReason
    detail: str
    raw: bytes
    raw_bytes: int
    frame_offset: int
    event_time: datetime | None
    tag: str | None
    app: str


class Outcome(enum.StrEnum):
    """The one outcome each frame of a body gets in the decoder."""

    EVENT = "event"
    QUARANTINED = "quarantined"
    NOT_AN_EVENT = "not_an_event"


@dataclass(frozen=True, slots=True)
class LostReport:
    """One report of lines lost before they reached the drain (drain.decode.loss).

    Fields:
        source: ``"L10"`` (Logplex), ``"L13"`` (log-shuttle) or ``"header"``
            (log-shuttle's ``Logplex-Lost-Count``).
        lost: messages lost (>= 0).
        since: start of the period the count covers, UTC, or None when the report gives
            no time (the header) or its time does not parse.
        drain: the drain token the L10 line names (second wording), else None.
    """

    source: str
    lost: int
    since: datetime | None
    drain: str | None = None


@dataclass(slots=True)
class Ledger:
    """Counts for one decoded body; every frame is counted once (an OTLP log record is a
    frame, and an OTLP body has no unframeable rest).

    ``frames + rests == events + quarantined + not_events``, where ``rests`` is 1 when the
    body stops being well-framed (``framing_error`` is set, with its byte offset) and 0
    otherwise: the unframeable rest of the body is not a frame, and it is one BAD_FRAMING
    quarantine row. ``quarantined`` counts quarantine rows, that one included, so it is
    ``len(DecodedBatch.quarantined)`` and the sum of ``quarantined_by_reason``.

    ``loss_reports`` holds the loss reports read from the body's L10/L13 lines (frames
    counted as the not-event kind ``logplex_error``), in body order.
    """

    body_bytes: int = 0
    frames: int = 0
    events: int = 0
    quarantined: int = 0
    not_events: int = 0
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)
    not_events_by_kind: dict[str, int] = field(default_factory=dict)
    framing_error: str | None = None
    framing_error_offset: int | None = None
    #: the request's Logplex-Msg-Count header, if it had one
    msg_count_header: int | None = None
    loss_reports: list[LostReport] = field(default_factory=list)

    @property
    def rests(self) -> int:
        """1 when the body ends in an unframeable rest (a BAD_FRAMING row), else 0."""
        return 0 if self.framing_error is None else 1

    @property
    def msg_count_mismatch(self) -> bool:
        """True when Logplex-Msg-Count was sent and differs from the frames found."""
        return self.msg_count_header is not None and self.msg_count_header != self.frames


#: a decoded row for a data table (drain.store.tables), in the table's row-column order
Row = tuple[object, ...]

#: the data table of :class:`EventRow` rows
RAW_EVENTS = "raw_events"
#: the table of :class:`QuarantineRow` rows (and of rows PostgreSQL refused)
QUARANTINE = "quarantine"

#: the data table each row type goes to (drain.store.tables registers the tables)
ROW_TABLES: dict[type[tuple[object, ...]], str] = {EventRow: RAW_EVENTS}


@dataclass(slots=True)
class DecodedBatch:
    """What the pure decoder made of one body: rows to store, rows to quarantine, counts.

    Fields:
        rows: the rows for each data table (drain.store.tables), by table name, in body
            order; ``rows["raw_events"]`` holds the :class:`EventRow` events.
        quarantined: the quarantine rows, in body order.
        ledger: the body's counts.
    """

    rows: dict[str, list[Row]]
    quarantined: list[QuarantineRow]
    ledger: Ledger

    @property
    def events(self) -> list[EventRow]:
        """The ``raw_events`` rows."""
        return self.rows.get(RAW_EVENTS, [])  # type: ignore[return-value]

    @property
    def row_count(self) -> int:
        """Rows of every table, quarantine included."""
        return sum(map(len, self.rows.values())) + len(self.quarantined)


@dataclass(slots=True)
class PendingBatch:
    """A decoded body plus the identity of the request that carried it; the writer's input.

    Fields:
        drain_token: the ``Logplex-Drain-Token`` header (``d.<uuid>``), or None; for OTLP
            ``otlp:`` and the credential identity (drain.inputs.otlp.ledger_key).
        frame_id: the ``Logplex-Frame-Id`` header, else log-shuttle's ``X-Request-Id``, or
            None; for OTLP ``sha256:`` and the body's digest. A sender resends a failed POST
            with the same frame id (an OTLP exporter: the same bytes), so
            (drain_token, frame_id) identifies a batch across retries.
        received_at: when the request arrived, UTC.
        rows / quarantined: from :class:`DecodedBatch`.
        size_bytes: bytes this batch holds in memory (for the write queue's byte bound).
    """

    drain_token: str | None
    frame_id: str | None
    received_at: datetime
    rows: dict[str, list[Row]]
    quarantined: list[QuarantineRow]
    size_bytes: int

    @property
    def events(self) -> list[EventRow]:
        """The ``raw_events`` rows."""
        return self.rows.get(RAW_EVENTS, [])  # type: ignore[return-value]

    @property
    def row_count(self) -> int:
        """Rows of every table, quarantine included."""
        return sum(map(len, self.rows.values())) + len(self.quarantined)


@dataclass(slots=True, frozen=True)
class WriteResult:
    """What the writer did with one :class:`PendingBatch`, once its transaction committed.

    Fields:
        duplicate: (drain_token, frame_id) was already committed; nothing was added.
        stored: rows added, by table: every data table and ``quarantine`` (whose count
            includes the REJECTED_BY_DATABASE rows); empty for a duplicate.
        rejected_by_database: rows the decoder accepted but PostgreSQL refused; they are
            in ``stored["quarantine"]``.
    """

    duplicate: bool
    stored: dict[str, int]
    rejected_by_database: int = 0

    @property
    def events_stored(self) -> int:
        """Rows added to ``raw_events``."""
        return self.stored.get(RAW_EVENTS, 0)

    @property
    def quarantined(self) -> int:
        """Rows added to ``quarantine``."""
        return self.stored.get(QUARANTINE, 0)
