"""Rollup definitions and their window arithmetic (pure: no I/O, no clock).

A rollup is one SQL file in ``sql/rollups/`` that turns a data table (``raw_events``, or a
typed table of Heroku's own lines) into one summary table. Its header names the schedule
and the window; the body has two sections::

    -- drain rollup
    -- schedule: 0 * * * *        cron expression, evaluated in UTC
    -- target: payment_history    the summary table; it must have a ``bucket timestamptz`` column
    -- bucket: 1h                 width of one bucket (s, m, h, d)
    -- lateness: 2h               how late an event may arrive and still be counted
    -- tags: production.pay       tags the query reads (for counting late events), or *
    -- source: raw_events         optional: the data tables the query reads, comma-separated
                                  (default raw_events); late rows are counted in each

    -- @setup
    CREATE TABLE IF NOT EXISTS payment_history (...);

    -- @query
    SELECT date_trunc('hour', event_time) AS bucket, ...
      FROM raw_events
     WHERE tag = 'production.pay'
       AND event_time >= :window_start AND event_time < :window_end
     GROUP BY 1, 2

``:window_start`` and ``:window_end`` are the window's bounds (UTC, ``start <= t < end``),
the equivalent of Treasure Data's
``TD_TIME_RANGE(time, TD_TIME_ADD(TD_SCHEDULED_TIME(), '-1h'), TD_SCHEDULED_TIME())``;
they are bound as query parameters, so PostgreSQL prunes ``raw_events`` partitions.

A run for the scheduled time ``T`` (a cron tick) recomputes every bucket that starts in
``[T - bucket - lateness, T)``, rounded down to whole buckets, and replaces those buckets in
the target table. An event that arrives up to ``lateness`` late is therefore counted by a
later run; one that arrives later than that is counted as *late* in the run's record.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from croniter import croniter

from drain.errors import RollupFormatError

__all__ = [
    "DEFAULT_SOURCE",
    "RollupSpec",
    "bucket_floor",
    "complete_until",
    "latest_tick",
    "parse_duration_s",
    "parse_rollup",
    "ticks_between",
    "window_for_tick",
]

_HEADER_KEYS = ("schedule", "target", "bucket", "lateness", "tags")
_OPTIONAL_KEYS = ("source",)
#: the data table a rollup reads when its header names none
DEFAULT_SOURCE = "raw_events"
_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_PARAM = re.compile(r":(window_start|window_end)\b")


@dataclass(frozen=True, slots=True)
class RollupSpec:
    """One parsed rollup file.

    Fields:
        name: file name without ``.sql``; also the key in ``rollup_runs``.
        schedule: 5-field cron expression, evaluated in UTC.
        target: summary table name (a plain lower-case identifier).
        bucket_s: bucket width in seconds (divides a day when it is under a day).
        lateness_s: how late (seconds) an event may arrive and still be counted by a run.
        tags: the tags the query reads, or None for all tags (``*``); used to count late
            events of ``raw_events``.
        setup_sql: DDL run before each run (``CREATE TABLE IF NOT EXISTS ...``).
        query_sql: the SELECT, with ``$1`` = window_start and ``$2`` = window_end.
    """

    name: str
    schedule: str
    target: str
    bucket_s: int
    lateness_s: int
    tags: tuple[str, ...] | None
    setup_sql: str
    query_sql: str
    #: the data tables the query reads (``source:``); late rows are counted in each, by
    #: their ``event_time`` and ``received_at`` columns
    sources: tuple[str, ...] = (DEFAULT_SOURCE,)


def parse_duration_s(text: str) -> int:
    """Parse ``"90s"``, ``"15m"``, ``"2h"`` or ``"1d"`` into whole seconds.

    Raises:
        ValueError: for any other shape, or zero.
    """
    m = _DURATION.match(text)
    if m is None:
        raise ValueError(f"expected a duration like 15m, 1h or 1d, got {text!r}")
    seconds = int(m.group(1)) * _UNIT_S[m.group(2)]
    if seconds <= 0:
        raise ValueError(f"duration must be positive, got {text!r}")
    return seconds


def parse_rollup(name: str, text: str) -> RollupSpec:
    """Parse the text of ``sql/rollups/<name>.sql`` into a :class:`RollupSpec`.

    Raises:
        RollupFormatError: a missing or bad header key, a missing section, a query that does
            not use both ``:window_start`` and ``:window_end``, or a bad name.
    """
    if not _IDENT.match(name):
        raise RollupFormatError(name, 0, "the file name must be a lower-case SQL identifier")
    header: dict[str, tuple[int, str]] = {}
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for lineno, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("-- @"):
            section = stripped[4:].strip()
            if section not in ("setup", "query"):
                raise RollupFormatError(name, lineno, f"unknown section @{section}")
            if section in sections:
                raise RollupFormatError(name, lineno, f"section @{section} appears twice")
            current = sections[section] = []
            continue
        if current is not None:
            current.append(line)
            continue
        if stripped.startswith("--") and ":" in stripped:
            key, _, value = stripped[2:].partition(":")
            key = key.strip().lower()
            if key in _HEADER_KEYS or key in _OPTIONAL_KEYS:
                if key in header:
                    raise RollupFormatError(name, lineno, f"header {key} appears twice")
                header[key] = (lineno, value.strip())
    for key in _HEADER_KEYS:
        if key not in header:
            raise RollupFormatError(name, 0, f"missing header line '-- {key}: ...'")
    for section in ("setup", "query"):
        if section not in sections or not "\n".join(sections[section]).strip():
            raise RollupFormatError(name, 0, f"missing or empty section '-- @{section}'")

    at, schedule = header["schedule"]
    if not croniter.is_valid(schedule) or len(schedule.split()) != 5:
        raise RollupFormatError(name, at, f"schedule {schedule!r} is not a 5-field cron")
    at, target = header["target"]
    if not _IDENT.match(target):
        raise RollupFormatError(name, at, f"target {target!r} is not a lower-case identifier")
    try:
        bucket_s = parse_duration_s(header["bucket"][1])
    except ValueError as exc:
        raise RollupFormatError(name, header["bucket"][0], str(exc)) from None
    if bucket_s < 86400 and 86400 % bucket_s:
        raise RollupFormatError(name, header["bucket"][0], "a bucket under 1d must divide 1d")
    if bucket_s > 86400 and bucket_s % 86400:
        raise RollupFormatError(name, header["bucket"][0], "a bucket over 1d must be whole days")
    try:
        lateness_s = parse_duration_s(header["lateness"][1])
    except ValueError as exc:
        raise RollupFormatError(name, header["lateness"][0], str(exc)) from None
    tags_text = header["tags"][1]
    tags = None if tags_text == "*" else tuple(t.strip() for t in tags_text.split(",") if t.strip())
    if tags == ():
        raise RollupFormatError(name, header["tags"][0], "tags: list tags, or * for all")

    sources: tuple[str, ...] = (DEFAULT_SOURCE,)
    if "source" in header:
        at, text = header["source"]
        sources = tuple(t.strip() for t in text.split(",") if t.strip())
        bad = [t for t in sources if not _IDENT.match(t)]
        if not sources or bad:
            raise RollupFormatError(
                name, at, "source: the data tables the query reads, comma-separated identifiers"
            )

    query = "\n".join(sections["query"]).strip().rstrip(";")
    used = set(_PARAM.findall(query))
    if used != {"window_start", "window_end"}:
        raise RollupFormatError(name, 0, "the query must use both :window_start and :window_end")
    query = _PARAM.sub(lambda m: "$1" if m.group(1) == "window_start" else "$2", query)
    return RollupSpec(
        name=name,
        schedule=schedule,
        target=target,
        bucket_s=bucket_s,
        lateness_s=lateness_s,
        tags=tags,
        setup_sql="\n".join(sections["setup"]).strip(),
        query_sql=query,
        sources=sources,
    )


def bucket_floor(t: datetime, bucket_s: int) -> datetime:
    """Round a UTC datetime down to the start of its bucket (buckets align to the epoch)."""
    epoch_s = int(t.timestamp())
    return datetime.fromtimestamp(epoch_s - epoch_s % bucket_s, tz=UTC)


def window_for_tick(spec: RollupSpec, tick: datetime) -> tuple[datetime, datetime]:
    """The window ``[start, end)`` a run scheduled at ``tick`` recomputes (UTC datetimes).

    ``end`` is the tick rounded down to a bucket boundary; ``start`` reaches back one bucket
    plus the lateness allowance, rounded down to a bucket boundary.
    """
    end = bucket_floor(tick, spec.bucket_s)
    start = bucket_floor(end - timedelta(seconds=spec.bucket_s + spec.lateness_s), spec.bucket_s)
    return start, end


def latest_tick(schedule: str, at: datetime) -> datetime:
    """The latest cron tick at or before ``at`` (UTC)."""
    it = croniter(schedule, at + timedelta(microseconds=1))
    prev: datetime = it.get_prev(datetime)
    return prev.astimezone(UTC).replace(fold=0)


def complete_until(spec: RollupSpec, now: datetime) -> datetime:
    """How far a run may compute ``spec`` at ``now`` (UTC): the end of the window of the last
    cron tick at or before ``now`` (:func:`window_for_tick`).

    A window that ends after it holds buckets not over yet, or not yet due to their tick: it
    would be recorded as complete too early, and ``drain rollup list`` and ``/health`` would
    show a negative lag. ``drain rollup run --at`` and ``drain rollup backfill --to`` refuse
    such a window (drain.cli.rollup); the clock never asks for one.
    """
    return window_for_tick(spec, latest_tick(spec.schedule, now))[1]


def ticks_between(schedule: str, after: datetime, until: datetime) -> Iterator[datetime]:
    """Cron ticks ``t`` with ``after < t <= until``, in order (UTC).

    Bounded by the span: it stops at the first tick past ``until``.
    """
    it = croniter(schedule, after)
    while True:
        t: datetime = it.get_next(datetime)
        t = t.astimezone(UTC).replace(fold=0)
        if t > until:
            return
        yield t
