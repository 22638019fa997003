"""The tables the writer fills, and how a decoded row becomes a COPY record.

A *data table* holds the rows a decoder extracted from log lines (``raw_events``: the
``@[tag] {json}`` events; ``router_requests``, ``platform_metrics``, ``platform_events``:
Heroku's own lines, docs/lines.md). Each is partitioned by day (UTC) on a time column and written
with COPY in the transaction that claims the batch's ledger key, so a retried batch adds
nothing to any of them. A decoder hands the writer its rows by table name
(:attr:`drain.records.DecodedBatch.rows`); the row is a tuple in :attr:`DataTable.row_columns`
order, and the writer appends :data:`BATCH_COLUMNS`.

Adding a table is: a migration that creates it (``PARTITION BY RANGE`` on its time column,
no DEFAULT partition), a row type in :mod:`drain.records`, the decoder that fills it, and a
:class:`DataTable` in :data:`TABLES`. The writer, the partitions and their lifecycle work on
every registered table without change.

The ``quarantine`` table is the other sink: lines that could not become rows, and rows
PostgreSQL refused (REJECTED_BY_DATABASE, with the raw text :attr:`DataTable.describe`
rebuilds from the row).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from operator import itemgetter

from drain.records import (
    EventRow,
    MetricRow,
    PlatformEventRow,
    QuarantineReason,
    QuarantineRow,
    RouterRow,
)

__all__ = [
    "BATCH_COLUMNS",
    "PLATFORM_EVENTS",
    "PLATFORM_METRICS",
    "QUARANTINE_COLUMNS",
    "RAW_EVENTS",
    "ROUTER_REQUESTS",
    "TABLES",
    "DataTable",
    "no_nul",
    "quarantine_record",
    "rejected_record",
]

#: the columns the writer appends to every data-table row: the batch's identity
BATCH_COLUMNS = ("received_at", "drain_token", "frame_id")

#: the columns of a quarantine COPY record, in the order :func:`quarantine_record` builds
QUARANTINE_COLUMNS = (
    "received_at",
    "reason",
    "detail",
    "raw",
    "raw_bytes",
    "frame_offset",
    "event_time",
    "tag",
    "drain_token",
    "frame_id",
    "app",
)

Row = tuple[object, ...]


def _utc_day(when: datetime) -> date:
    return when.date() if when.tzinfo is UTC else when.astimezone(UTC).date()


@dataclass(frozen=True, slots=True)
class DataTable:
    """One table of decoded rows (see the module docstring).

    Attributes:
        name: the table (and the prefix of its partitions, ``<name>_pYYYYMMDD``).
        row_columns: the columns a decoded row fills, in its tuple order.
        time_index: the position in the row of the partition key, a tz-aware datetime.
        app_index: the position in the row of its ``app`` (drain.records.EventRow.app).
        describe: for a row PostgreSQL refused, ``(raw bytes, tag or None)`` for its
            quarantine row.
    """

    name: str
    row_columns: tuple[str, ...]
    time_index: int
    app_index: int
    describe: Callable[[Row], tuple[bytes, str | None]]

    @property
    def columns(self) -> tuple[str, ...]:
        """The COPY columns: the row's, then :data:`BATCH_COLUMNS`."""
        return self.row_columns + BATCH_COLUMNS

    def day(self, row: Row) -> date:
        """The UTC day of ``row``: the partition it goes to."""
        when = row[self.time_index]
        assert isinstance(when, datetime)
        return _utc_day(when)

    def days(self, rows: Sequence[Row]) -> set[date]:
        """The UTC days of ``rows`` (the partitions they go to): :meth:`day` of each, with
        no Python call per row. When the earliest and the latest row fall on one UTC day
        (a batch holds seconds of lines), every row does; else each row's day is taken."""
        if not rows:
            return set()
        whens: list[datetime] = list(map(itemgetter(self.time_index), rows))
        first, last = _utc_day(min(whens)), _utc_day(max(whens))
        if first == last:
            return {first}
        return set(map(_utc_day, whens))

    def time(self, row: Row) -> datetime:
        """The partition key of ``row``."""
        when = row[self.time_index]
        assert isinstance(when, datetime)
        return when


def _describe_event(row: Row) -> tuple[bytes, str | None]:
    event = EventRow(*row[: len(EventRow._fields)])  # type: ignore[arg-type]
    return f"@[{event.tag}] {event.payload}".encode("utf-8", "backslashreplace"), event.tag


RAW_EVENTS = DataTable(
    name="raw_events",
    row_columns=EventRow._fields,
    time_index=EventRow._fields.index("event_time"),
    app_index=EventRow._fields.index("app"),
    describe=_describe_event,
)


def _describe_router(row: Row) -> tuple[bytes, str | None]:
    r = RouterRow(*row[: len(RouterRow._fields)])  # type: ignore[arg-type]
    text = (
        f"at={r.at} code={r.code} method={r.method} path={r.path!r} host={r.host} "
        f"status={r.status} connect={r.connect_ms} service={r.service_ms} bytes={r.bytes} "
        f"request_id={r.request_id} dyno={r.dyno} protocol={r.protocol} extra={r.extra}"
    )
    return text.encode("utf-8", "backslashreplace"), None


def _describe_metric(row: Row) -> tuple[bytes, str | None]:
    m = MetricRow(*row[: len(MetricRow._fields)])  # type: ignore[arg-type]
    text = (
        f"source={m.source} process={m.process} dyno={m.dyno} addon={m.addon} "
        f"sample#{m.name}={m.value if m.value is not None else m.raw} ({m.unit})"
    )
    return text.encode("utf-8", "backslashreplace"), None


def _describe_platform(row: Row) -> tuple[bytes, str | None]:
    e = PlatformEventRow(*row[: len(PlatformEventRow._fields)])  # type: ignore[arg-type]
    return f"{e.dyno}: {e.text}".encode("utf-8", "backslashreplace"), None


def _table(
    name: str, row_type: type, describe: Callable[[Row], tuple[bytes, str | None]]
) -> DataTable:
    fields: tuple[str, ...] = row_type._fields  # type: ignore[attr-defined]
    return DataTable(
        name=name,
        row_columns=fields,
        time_index=fields.index("event_time"),
        app_index=fields.index("app"),
        describe=describe,
    )


ROUTER_REQUESTS = _table("router_requests", RouterRow, _describe_router)
PLATFORM_METRICS = _table("platform_metrics", MetricRow, _describe_metric)
PLATFORM_EVENTS = _table("platform_events", PlatformEventRow, _describe_platform)

#: every data table, by name, in the order the writer COPYs them
TABLES: dict[str, DataTable] = {
    table.name: table for table in (RAW_EVENTS, ROUTER_REQUESTS, PLATFORM_METRICS, PLATFORM_EVENTS)
}


def no_nul(text: str | None) -> str | None:
    """PostgreSQL text cannot hold U+0000; replace it so a quarantine row always fits."""
    if text is None or "\x00" not in text:
        return text
    return text.replace("\x00", "\ufffd")


def quarantine_record(
    row: QuarantineRow, received_at: datetime, drain_token: str | None, frame_id: str | None
) -> Row:
    """The quarantine COPY record (:data:`QUARANTINE_COLUMNS`) of a decoder's row."""
    return (
        received_at,
        str(row.reason),
        no_nul(row.detail) or "",
        row.raw,
        row.raw_bytes,
        row.frame_offset,
        row.event_time,
        no_nul(row.tag),
        drain_token,
        frame_id,
        row.app,
    )


def rejected_record(
    table: DataTable,
    record: Row,
    why: str,
    received_at: datetime,
    drain_token: str | None,
    frame_id: str | None,
    max_raw_bytes: int,
) -> Row:
    """The quarantine COPY record of a ``table`` record PostgreSQL refused (``why``: the
    server's message), its raw text rebuilt by :attr:`DataTable.describe` and cut to
    ``max_raw_bytes``."""
    raw, tag = table.describe(record)
    return (
        received_at,
        str(QuarantineReason.REJECTED_BY_DATABASE),
        no_nul(why) or "",
        raw[:max_raw_bytes],
        len(raw),
        None,
        table.time(record),
        no_nul(tag),
        drain_token,
        frame_id,
        record[table.app_index],
    )
