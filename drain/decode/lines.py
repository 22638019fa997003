"""What one log line becomes, whichever input it came in (pure: no I/O).

A *line* is the neutral record every input produces: its time (UTC), its syslog-style
fields (PRI, HOSTNAME, APP-NAME, PROCID, as bytes) and its message (MSG, bytes), plus the
raw bytes and offset that a quarantine row keeps. The Logplex input reads them from a frame's
syslog header (drain.decode.syslog); an OTLP input from a log record and its resource. A
:data:`LineDecoder` gives the line its one outcome, checked in this order:

1. MSG is tagged (``@[tag] {json}``, drain.decode.events): an
   :class:`~drain.records.EventRow` inside the acceptance window, else a
   :class:`~drain.records.QuarantineRow` (a rule of drain.decode.events, or OUT_OF_WINDOW);
2. one of Heroku's own lines, told apart by APP-NAME and PROCID before any of MSG is read
   (docs/lines.md), a :class:`TypedLine` of rows for the typed tables, when the
   :class:`~drain.decode.rules.LineRules` keep that kind:

   ============================  =====================================  ====================
   APP-NAME / PROCID             kind                                   rows
   ============================  =====================================  ====================
   ``heroku`` / ``router``       ``router`` (drain.decode.router)       a RouterRow, and a
                                                                        PlatformEventRow
                                                                        when it has a code
   ``heroku`` / a dyno, MSG      ``runtime_metrics``                    a MetricRow per
   ``source=… sample#…``         (drain.decode.metrics)                 sample
   any / ``heroku-postgres``,    ``addon_metrics``                      a MetricRow per
   ``heroku-redis``,                                                    sample
   ``heroku-kafka``
   ``heroku`` / any other        ``platform`` (drain.decode.platform)   a PlatformEventRow
   any / ``log-shuttle``,        ``platform``, with the loss report     a PlatformEventRow
   MSG ``Error L1N``             (drain.decode.loss)
   ============================  =====================================  ====================

   A line an exclusion rule matches is the not-event kind ``excluded`` (a loss line stays
   a loss report: it is never hidden); one whose time is outside the acceptance window is
   the not-event kind ``out_of_window`` (stored nowhere: it would make a partition for its
   day, and a quarantine row would keep the client address of a router line), a loss line
   then its bare loss report. With
   platform_events off, a loss line is a
   :class:`~drain.records.LostReport` (the not-event kind ``logplex_error``, or that kind
   alone when its numbers do not read);
3. every other line: the not-event kind ``untagged``.

The rows of a :class:`TypedLine` go to the data table that :data:`drain.records.ROW_TABLES`
names for their type; a rule that makes rows for a new table is added here, in the order of
the checks, and the inputs need no change.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Final, NamedTuple

from drain.decode.events import RejectedEvent, read_event
from drain.decode.limits import DecodeLimits
from drain.decode.loss import is_loss_line, parse_lost_line
from drain.decode.metrics import ADDON_PROCESSES, UnitMemo, parse_metrics
from drain.decode.platform import parse_platform, router_event
from drain.decode.router import parse_router
from drain.decode.rules import ClientMode, LineRules
from drain.decode.scan import contains
from drain.records import (
    ROW_TABLES,
    EventRow,
    Ledger,
    LostReport,
    MetricRow,
    PlatformEventRow,
    QuarantineReason,
    QuarantineRow,
    RouterRow,
    Row,
)

__all__ = [
    "KIND_EXCLUDED",
    "KIND_LOGPLEX_ERROR",
    "KIND_MALFORMED_LINE",
    "KIND_OUT_OF_WINDOW",
    "KIND_UNTAGGED",
    "TYPED_ADDON_METRICS",
    "TYPED_KINDS",
    "TYPED_PLATFORM",
    "TYPED_ROUTER",
    "TYPED_RUNTIME_METRICS",
    "LineDecoder",
    "LineResult",
    "TypedLine",
    "as_typed",
    "keep_other",
    "keep_typed",
    "line_decoder",
    "quarantine_row",
]

#: Not-an-event kinds, the keys of ``Ledger.not_events_by_kind``.
KIND_UNTAGGED: Final = "untagged"
KIND_MALFORMED_LINE: Final = "malformed_line"
KIND_LOGPLEX_ERROR: Final = "logplex_error"
KIND_EXCLUDED: Final = "excluded"
KIND_OUT_OF_WINDOW: Final = "out_of_window"

#: Kinds of Heroku's own lines, the keys of ``Ledger.typed_by_kind``.
TYPED_ROUTER: Final = "router"
TYPED_RUNTIME_METRICS: Final = "runtime_metrics"
TYPED_ADDON_METRICS: Final = "addon_metrics"
TYPED_PLATFORM: Final = "platform"
TYPED_KINDS: Final = (TYPED_ROUTER, TYPED_RUNTIME_METRICS, TYPED_ADDON_METRICS, TYPED_PLATFORM)


class TypedLine(NamedTuple):
    """One of Heroku's own lines, as rows of the typed tables.

    Fields:
        kind: one of :data:`TYPED_KINDS`.
        rows: one or more rows (RouterRow, MetricRow, PlatformEventRow), in table order of
            the line (a router row before its platform event).
        loss: the loss report of an ``Error L10`` ... ``L15`` line, else None.
    """

    kind: str
    rows: tuple[Row, ...]
    loss: LostReport | None


#: what a line becomes: a row to store, rows of the typed tables, a row to quarantine, a
#: loss report (of kind ``logplex_error``), or another not-event kind. A router line of
#: one row is given as its bare RouterRow (``TypedLine("router", (row,), None)``, without
#: building it: the common case of the hot path); :func:`as_typed` turns it into one.
LineResult = EventRow | RouterRow | TypedLine | QuarantineRow | LostReport | str

#: ``decode_line(when, pri, hostname, app_name, proc_id, msg, raw, offset)``: see
#: :func:`line_decoder`
LineDecoder = Callable[[datetime, int, bytes, bytes, bytes, bytes, bytes, int], LineResult]

_new: Final = tuple.__new__  # builds a NamedTuple row without its Python-level __new__


def as_typed(result: LineResult) -> TypedLine | None:
    """The TypedLine a result stands for (a bare RouterRow is one router line of one
    row), or None when it is not one of Heroku's lines kept in the typed tables."""
    if type(result) is TypedLine:
        return result
    if type(result) is RouterRow:
        return TypedLine(TYPED_ROUTER, (result,), None)
    return None


#: what a handler of Heroku's lines is given: (when, PROCID, MSG)
_Handler = Callable[[datetime, bytes, bytes], LineResult]
#: the exclusion rules of one kind of line: field -> compiled globs
_Globs = Mapping[str, re.Pattern[str]]


def keep_typed(
    line: TypedLine, rows: dict[str, list[Row]], by_type: dict[type, list[Row]], ledger: Ledger
) -> None:
    """Add the rows of one of Heroku's own lines to ``rows`` (the batch's lists by table,
    drain.records.ROW_TABLES) and count it in ``ledger`` (``typed_by_kind``,
    ``platform_codes``, ``loss_reports``); ``by_type`` caches the table lists by row type.
    The one rule both inputs follow for typed lines (``ledger.typed`` is left to the caller,
    which totals ``typed_by_kind``)."""
    by_typed = ledger.typed_by_kind
    by_typed[line.kind] = by_typed.get(line.kind, 0) + 1
    line_rows = line.rows
    if type(line_rows[0]) is MetricRow:  # a metrics line: all its rows are samples
        kept = by_type.get(MetricRow)
        if kept is None:
            kept = by_type[MetricRow] = rows[ROW_TABLES[MetricRow]] = []
        kept.extend(line_rows)
    else:
        codes = ledger.platform_codes
        for row in line_rows:
            kept = by_type.get(type(row))
            if kept is None:
                kept = by_type[type(row)] = rows[ROW_TABLES[type(row)]] = []
            kept.append(row)
            if type(row) is PlatformEventRow:
                code = row.code or ""
                codes[code] = codes.get(code, 0) + 1
    if line.loss is not None:
        ledger.loss_reports.append(line.loss)


def keep_other(out: LineResult, quarantined: list[QuarantineRow], ledger: Ledger) -> None:
    """Count a line that is neither an event nor one of Heroku's kept lines: a quarantine
    row joins ``quarantined`` and counts by reason, a loss report joins
    ``ledger.loss_reports`` and counts as ``logplex_error``, a not-event kind counts by
    kind. The one rule both inputs follow for these outcomes."""
    if type(out) is QuarantineRow:
        quarantined.append(out)
        by_reason = ledger.quarantined_by_reason
        reason = out.reason.value
        by_reason[reason] = by_reason.get(reason, 0) + 1
    elif type(out) is LostReport:
        ledger.loss_reports.append(out)
        by_kind = ledger.not_events_by_kind
        by_kind[KIND_LOGPLEX_ERROR] = by_kind.get(KIND_LOGPLEX_ERROR, 0) + 1
    elif isinstance(out, str):
        by_kind = ledger.not_events_by_kind
        by_kind[out] = by_kind.get(out, 0) + 1


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
    """RFC 3339 in UTC with microseconds; the year always four digits (strftime's ``%Y``
    gives ``1`` for year 1 on glibc)."""
    return f"{when.year:04d}-{when.strftime('%m-%dT%H:%M:%S.%f')}Z"


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


def _text(value: bytes) -> str:
    return value.decode("ascii")  # header fields are printable US-ASCII


class _Clients(dict[str, tuple[bytes | None, str | None]]):
    """The body's memo of client columns: ``clients[fwd]`` is (client_hash, fwd) of a router
    line's ``fwd`` text, computed on the first lookup of each address."""

    def __init__(self, rules: LineRules) -> None:
        super().__init__()
        self.keep = rules.client is ClientMode.RAW
        self.hash = (
            None
            if rules.client is ClientMode.NONE
            else hashlib.blake2b(key=rules.client_key, digest_size=16)
        )

    def __missing__(self, fwd: str) -> tuple[bytes | None, str | None]:
        digest = None
        if self.hash is not None and fwd:
            hasher = self.hash.copy()
            hasher.update(fwd.encode())  # the router's text: decoded, surrogates replaced
            digest = hasher.digest()
        found = self[fwd] = (digest, fwd if self.keep and fwd else None)
        return found


class _HerokuLines:
    """The handlers of Heroku's own lines for one body: the rules, the app, and the body's
    memos (client hashes, metric units, PROCID texts)."""

    def __init__(self, rules: LineRules, app: str) -> None:
        self.rules = rules
        self.app = app
        self.units = UnitMemo()
        self.procs: dict[bytes, str] = {}
        self.clients = _Clients(rules)
        self.keep_fwd = rules.client is ClientMode.RAW
        exclude = rules.exclude
        self.exclude_router = exclude.get("router")
        self.exclude_metrics = exclude.get("metrics")
        self.exclude_platform = exclude.get("platform")

    def proc_text(self, proc: bytes) -> str:
        text = self.procs.get(proc)
        if text is None:
            text = self.procs[proc] = _text(proc)
        return text

    # -- router

    def router(self, when: datetime, proc: bytes, msg: bytes) -> LineResult:
        return self.router_row(parse_router(when, self.app, msg, self.clients), msg)

    def common_router(self) -> _Handler:
        """The router handler when router lines are stored and none is excluded: a line
        without a code is its bare row at once (the hot path: one call, no lookups)."""
        app, clients, finish = self.app, self.clients, self.router_row

        def router(when: datetime, proc: bytes, msg: bytes) -> LineResult:
            row = parse_router(when, app, msg, clients)
            return row if row.code is None else finish(row, msg)

        return router

    def router_row(self, row: RouterRow, msg: bytes) -> LineResult:
        """What a parsed router line becomes (exclusions, its platform event, tables off)."""
        if self.exclude_router is not None and _excluded(row, self.exclude_router):
            return KIND_EXCLUDED
        rules = self.rules
        if row.code is not None and rules.platform:
            event = router_event(row, msg, self.keep_fwd)
            rows: tuple[Row, ...] = (row, event) if rules.router else (event,)
            return _new(TypedLine, (TYPED_ROUTER, rows, None))
        if not rules.router:
            return KIND_UNTAGGED
        return row  # one row, the common case: the row stands for its TypedLine

    # -- metrics

    def metrics(self, when: datetime, proc: bytes, msg: bytes, kind: str) -> LineResult | None:
        """The metrics rows of a line, or None when it holds no sample."""
        rows = parse_metrics(when, self.app, self.proc_text(proc), msg, self.units)
        if not rows:
            return None
        if self.exclude_metrics is not None and _excluded(rows[0], self.exclude_metrics):
            return KIND_EXCLUDED
        return _new(TypedLine, (kind, rows, None))

    def addon(self, when: datetime, proc: bytes, msg: bytes) -> LineResult:
        if not contains(msg, b"sample#"):
            return KIND_UNTAGGED
        found = self.metrics(when, proc, msg, TYPED_ADDON_METRICS)
        return KIND_UNTAGGED if found is None else found

    # -- platform

    def platform(self, when: datetime, proc: bytes, msg: bytes) -> LineResult:
        report = parse_lost_line(msg) if msg[:7] == b"Error L" else None
        if not self.rules.platform:
            if report is None and is_loss_line(b"heroku", proc, msg):
                return KIND_LOGPLEX_ERROR  # its numbers do not read
            return KIND_UNTAGGED if report is None else report
        event = parse_platform(when, self.app, self.proc_text(proc), msg)
        if self.exclude_platform is not None and _excluded(event, self.exclude_platform):
            return KIND_EXCLUDED if report is None else report
        return _new(TypedLine, (TYPED_PLATFORM, (event,), report))

    def heroku(self, when: datetime, proc: bytes, msg: bytes) -> LineResult:
        """APP-NAME ``heroku``, PROCID not ``router``: runtime metrics, or a platform line."""
        if msg.startswith(b"source=") and contains(msg, b" sample#"):
            if not self.rules.metrics:
                return KIND_UNTAGGED  # a metrics line, whose table is off
            found = self.metrics(when, proc, msg, TYPED_RUNTIME_METRICS)
            if found is not None:
                return found
        return self.platform(when, proc, msg)

    def shuttle(self, when: datetime, proc: bytes, msg: bytes) -> LineResult:
        """PROCID ``log-shuttle`` (any APP-NAME): its loss lines, else an ordinary line."""
        if is_loss_line(b"", proc, msg):
            return self.platform(when, proc, msg)
        return KIND_UNTAGGED


def _excluded(row: RouterRow | MetricRow | PlatformEventRow, rules: _Globs) -> bool:
    """True when a field of ``row`` that ``rules`` name matches its globs (drain.decode.rules;
    a status is matched as its text)."""
    for name, pattern in rules.items():
        value = getattr(row, name)
        if value is not None and pattern.match(str(value)) is not None:
            return True
    return False


def line_decoder(now: datetime, limits: DecodeLimits, app: str, rules: LineRules) -> LineDecoder:
    """The function that gives each line of one body its outcome (see the module docstring).

    ``decode_line(when, pri, hostname, app_name, proc_id, msg, raw, offset)`` takes the
    line's time (tz-aware UTC), its PRI (0..191), HOSTNAME, APP-NAME and PROCID (printable
    US-ASCII bytes), its MSG (bytes, without the line end), and for a quarantine row the raw
    bytes and their byte offset in the body. It never raises on any bytes. It keeps memos of
    the body (valid tags, :func:`drain.decode.events.read_event`; client hashes; metric
    units): make one per body.

    Args:
        now: the receipt time (tz-aware); the acceptance window is relative to it.
        limits: the decoder's bounds.
        app: the app the body came from (:attr:`drain.records.EventRow.app`), set on every row.
        rules: what becomes of Heroku's own lines (drain.decode.rules).

    Raises:
        ValueError: ``now`` is naive.
    """
    earliest, latest = limits.window(now)
    tags: dict[bytes, str] = {}
    # HOSTNAME, APP-NAME and PROCID decoded once per body: the rows of a body share the str
    # objects (a handful of distinct values), which makes each queued row smaller
    names: dict[bytes, str] = {}
    heroku = _HerokuLines(rules, app)
    router: _Handler | None = heroku.router if rules.router or rules.platform else None
    if rules.router and heroku.exclude_router is None:
        router = heroku.common_router()
    on_heroku = heroku.heroku
    # PROCIDs of other APP-NAMEs whose lines are Heroku's: log-shuttle's loss lines, add-ons
    others: dict[bytes, _Handler] = {b"log-shuttle": heroku.shuttle}
    if rules.metrics:
        others.update(dict.fromkeys(ADDON_PROCESSES, heroku.addon))
    other = others.get

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
        parsed = read_event(msg, tags)
        if parsed is None:
            if app_name == b"heroku":
                if proc == b"router":
                    if router is None:
                        return KIND_UNTAGGED
                    out = router(when, proc, msg)
                else:
                    out = on_heroku(when, proc, msg)
            else:
                handler = other(proc)
                if handler is None:
                    return KIND_UNTAGGED
                out = handler(when, proc, msg)
            if (when < earliest or when > latest) and (
                type(out) is RouterRow or type(out) is TypedLine
            ):
                return out.loss if type(out) is TypedLine and out.loss else KIND_OUT_OF_WINDOW
            return out
        if isinstance(parsed, RejectedEvent):
            return quarantine_row(
                limits, app, raw, offset, parsed.reason, parsed.detail, when, parsed.tag
            )
        tag, payload = parsed
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
        hostname = names.get(host)
        if hostname is None:
            hostname = names[host] = host.decode("ascii")
        app_field = names.get(app_name)
        if app_field is None:
            app_field = names[app_name] = app_name.decode("ascii")
        proc_id = names.get(proc)
        if proc_id is None:
            proc_id = names[proc] = proc.decode("ascii")
        return _new(
            EventRow,
            (when, tag, payload, pri >> 3, pri & 7, hostname, app_field, proc_id, app),
        )

    return decode_line
