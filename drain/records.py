"""The records that flow through the stages, from a request body to committed rows.

An input (:mod:`drain.inputs.logplex`, :mod:`drain.inputs.otlp`) turns one request body into
a :class:`DecodedBatch`:
rows to store, rows to quarantine, and a :class:`Ledger` that accounts for every line; the
web layer wraps it with the request's identity into a :class:`PendingBatch`; the writer
(:mod:`drain.store.writer`) commits it and answers with a :class:`WriteResult`.

Nothing here does I/O. Every frame of a body gets exactly one :class:`Outcome` (an event,
rows of the typed tables of Heroku's own lines, quarantined with a :class:`QuarantineReason`,
or not an event), and the counts in :class:`Ledger` add up.
"""

from __future__ import annotations

import builtins
import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

__all__ = [
    "PLATFORM_EVENTS",
    "PLATFORM_METRICS",
    "QUARANTINE",
    "RAW_EVENTS",
    "ROUTER_REQUESTS",
    "ROW_TABLES",
    "DecodedBatch",
    "EventRow",
    "Ledger",
    "LostReport",
    "MetricRow",
    "Outcome",
    "PendingBatch",
    "PlatformEventRow",
    "QuarantineReason",
    "QuarantineRow",
    "RouterRow",
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


class RouterRow(NamedTuple):
    """One Heroku router line (APP-NAME ``heroku``, PROCID ``router``), in the column order of
    ``router_requests`` (drain.decode.router; Heroku Dev Center, "HTTP Routing", "Heroku
    router log format").

    Fields:
        event_time: the syslog TIMESTAMP in UTC, tz-aware.
        app: the app that sent it, as :attr:`EventRow.app`.
        at: ``info``, ``warning`` or ``error`` (the router's ``at``), or None.
        method: the HTTP request method, e.g. ``GET``.
        path: the request path and query string as the router logged it.
        host: the request's Host header.
        status: the HTTP status answered, or None (absent or not a number).
        connect_ms: milliseconds to connect to the dyno (``connect=1ms``), or None.
        service_ms: milliseconds the dyno took (``service=18ms``), or None.
        bytes: bytes sent to the client, or None.
        request_id: the router's request id (also the ``X-Request-ID`` header the dyno saw).
        dyno: the dyno that served it, e.g. ``web.1`` (None when the router logged none).
        protocol: ``http`` or ``https`` (Router 2.0: also e.g. ``http2``), or None.
        code: the Heroku error code of an ``at=error`` line (``H12``), else None.
        description: its ``desc`` (``Request timeout``), else None.
        client_hash: keyed BLAKE2b hash (16 bytes) of ``fwd``, or None (DRAIN_ROUTER_FWD).
        fwd: the client addresses (``fwd``) as logged: only with DRAIN_ROUTER_FWD=raw.
        extra: the keys this decoder does not know, as a JSON object (text), else None.
    """

    event_time: datetime
    app: str
    at: str | None
    method: str | None
    path: str | None
    host: str | None
    status: int | None
    connect_ms: int | None
    service_ms: int | None
    bytes: int | None
    request_id: str | None
    dyno: str | None
    protocol: str | None
    code: str | None
    description: str | None
    client_hash: builtins.bytes | None  # the field above is called bytes
    fwd: str | None
    extra: str | None


class MetricRow(NamedTuple):
    """One ``sample#NAME=VALUE`` of a Heroku runtime-metrics or add-on-metrics line, in the
    column order of ``platform_metrics`` (drain.decode.metrics; Heroku Dev Center, "Log
    Runtime Metrics", "Heroku Postgres Metrics Logs", "Heroku Redis Metrics Logs").

    Fields:
        event_time: the syslog TIMESTAMP in UTC, tz-aware.
        app: the app that sent it, as :attr:`EventRow.app`.
        process: the line's PROCID: the dyno (``web.1``) for runtime metrics, the add-on's
            process (``heroku-postgres``, ``heroku-redis``) for add-on metrics.
        source: the line's ``source``: the dyno (``web.1``) or the add-on's attachment
            (``DATABASE``, ``HEROKU_POSTGRESQL_BLUE``).
        dyno: the dyno's platform id (``heroku.2808254.d97d0ea7-...``), runtime metrics only.
        addon: the add-on's name (``postgresql-reticulated-12345``), add-on metrics only.
        name: the metric, as sent (``memory_rss``, ``db_size``, ``index-cache-hit-rate``).
        value: the value in :attr:`unit`, or None when it is not a number.
        unit: ``bytes``, ``pages``, ``ratio``, ``load``, ``per_second`` or ``count``; an
            unknown suffix is kept as sent, lower-cased; ``""`` when the value is not a number.
        raw: the value as sent, only when it is not a number, else None.
    """

    event_time: datetime
    app: str
    process: str
    source: str | None
    dyno: str | None
    addon: str | None
    name: str
    value: float | None
    unit: str
    raw: str | None


class PlatformEventRow(NamedTuple):
    """One platform error or state change, in the column order of ``platform_events``
    (drain.decode.platform; Heroku Dev Center, "Heroku Error Codes").

    Fields:
        event_time: the syslog TIMESTAMP in UTC, tz-aware.
        app: the app that sent it, as :attr:`EventRow.app`.
        dyno: the line's PROCID: the dyno (``web.1``), ``router``, ``api``, ``logplex``,
            ``log-shuttle``.
        code: the Heroku error code (``R14``, ``H12``, ``L10``), else None.
        kind: what happened: ``error`` (a line with a code), ``state``, ``exit``, ``start``,
            ``stop``, ``restart``, ``memory``, ``release``, ``deploy``, ``scale``, ``config``,
            ``build`` or ``other`` (drain.decode.platform).
        text: the line's MSG (UTF-8, invalid bytes replaced), cut to 2,000 characters.
        details: what was read from it, as a JSON object (text), else None: e.g.
            ``{"from":"up","to":"crashed"}``, ``{"status":137}``, ``{"lost":7100,...}``.
    """

    event_time: datetime
    app: str
    dyno: str
    code: str | None
    kind: str
    text: str
    details: str | None


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
    #: input (drain.inputs.logplex): MSG holds a tag after something that is not RFC 5424
    #: STRUCTURED-DATA (extra spaces, a TAB, a second NILVALUE, broken SD): the header
    #: was not fully read, so the line may carry an event.
    MISPLACED_TAG = "misplaced_tag"
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
    #: rows for the typed tables of Heroku's own lines (router_requests, platform_metrics,
    #: platform_events)
    TYPED = "typed"
    QUARANTINED = "quarantined"
    NOT_AN_EVENT = "not_an_event"


@dataclass(frozen=True, slots=True)
class LostReport:
    """One report of lines lost before they reached the drain (drain.decode.loss).

    Fields:
        source: the Heroku error code of the line, ``"L10"`` ... ``"L15"`` (Logplex's
            L10/L11/L14/L15, log-shuttle's L12/L13), or the request header that carried it,
            ``"Logplex-Drop-Count"`` / ``"Logplex-Lost-Count"`` (log-shuttle's).
        lost: messages lost (>= 0); 0 for the codes that carry no count (L14, L15).
        since: start of the period the count covers, UTC, or None when the report gives
            no time (the headers) or its time does not parse.
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

    ``frames + rests == events + typed + quarantined + not_events``, where ``rests`` is 1
    when the body stops being well-framed (``framing_error`` is set, with its byte offset)
    and 0 otherwise: the unframeable rest of the body is not a frame, and it is one
    BAD_FRAMING quarantine row. ``quarantined`` counts quarantine rows, that one included,
    so it is ``len(DecodedBatch.quarantined)`` and the sum of ``quarantined_by_reason``.

    ``typed`` counts the frames that became rows of the typed tables of Heroku's own lines,
    once each whatever their number of rows (a metrics line has one row per sample, an H12
    router line a router row and a platform event), by line kind in ``typed_by_kind``
    (``router``, ``runtime_metrics``, ``addon_metrics``, ``platform``: drain.decode.lines);
    ``platform_codes`` counts the body's platform events by Heroku error code (``""`` for
    events without one).

    ``loss_reports`` holds the loss reports read from the body's L10 ... L15 lines (typed
    ``platform`` frames, or not-events of kind ``logplex_error`` when platform_events is
    off), in body order.
    """

    body_bytes: int = 0
    frames: int = 0
    events: int = 0
    typed: int = 0
    quarantined: int = 0
    not_events: int = 0
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)
    not_events_by_kind: dict[str, int] = field(default_factory=dict)
    typed_by_kind: dict[str, int] = field(default_factory=dict)
    platform_codes: dict[str, int] = field(default_factory=dict)
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
#: the data table of :class:`RouterRow` rows
ROUTER_REQUESTS = "router_requests"
#: the data table of :class:`MetricRow` rows
PLATFORM_METRICS = "platform_metrics"
#: the data table of :class:`PlatformEventRow` rows
PLATFORM_EVENTS = "platform_events"
#: the table of :class:`QuarantineRow` rows (and of rows PostgreSQL refused)
QUARANTINE = "quarantine"

#: the data table each row type goes to (drain.store.tables registers the tables)
ROW_TABLES: dict[type[tuple[object, ...]], str] = {
    EventRow: RAW_EVENTS,
    RouterRow: ROUTER_REQUESTS,
    MetricRow: PLATFORM_METRICS,
    PlatformEventRow: PLATFORM_EVENTS,
}


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
        stored: rows added, by table: ``raw_events``, ``quarantine`` (whose count includes
            the REJECTED_BY_DATABASE rows) and every other data table the batch had rows
            for; empty for a duplicate.
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
