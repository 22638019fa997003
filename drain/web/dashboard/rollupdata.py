"""Reading any rollup of ``sql/rollups`` for the dashboard: its columns, how far its runs
have completed it, and its rows over a time range with the newest buckets computed live.

A rollup's table holds the buckets its runs computed (``rollup_runs``). A bucket is
*complete* once a successful run has computed it after the bucket ended. Newer buckets (the
current hour, or every bucket when ``drain clock`` has never run, as after the README's quick
start) are computed by the rollup's own query over ``raw_events``, in the same read-only
transaction, bounded to the last :data:`LIVE_MAX_S` seconds (at least one bucket): a
partition-pruned range, never a scan of all of ``raw_events``. So a page shows an event a
second after it was posted, and reads the summary table for everything older.

Columns come from the catalog (``pg_attribute``; from the prepared query when the table was
never made): ``bucket`` (timestamptz) is the x axis, numeric columns are measures, text
columns other than ``app`` are dimensions, ``app`` is the app filter; other columns are
shown in the table only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from drain.rollups.spec import RollupSpec, bucket_floor
from drain.web.dashboard.db import (
    NUMERIC_TYPES,
    TEXT_TYPES,
    Column,
    Conn,
    quote_ident,
    table_columns,
)
from drain.web.dashboard.ranges import Filters

__all__ = [
    "LIVE_MAX_S",
    "Coverage",
    "RollupTable",
    "Window",
    "coverage",
    "describe",
    "fetch",
    "plan_window",
    "utc",
]

#: the longest span (seconds) computed live from raw_events, rounded out to whole buckets
LIVE_MAX_S = 6 * 3600


@dataclass(frozen=True, slots=True)
class RollupTable:
    """A rollup and the columns of its target table.

    Fields:
        spec: the parsed rollup file.
        columns: the table's columns in order (the query's when the table does not exist).
        exists: the target table exists (a run has made it).
    """

    spec: RollupSpec
    columns: tuple[Column, ...]
    exists: bool

    @property
    def names(self) -> frozenset[str]:
        """Every column name (the whitelist of :func:`~drain.web.dashboard.db.quote_ident`)."""
        return frozenset(c.name for c in self.columns)

    @property
    def measures(self) -> list[str]:
        """Numeric columns, in table order: what a chart can put on the y axis."""
        return [c.name for c in self.columns if c.type_name in NUMERIC_TYPES]

    @property
    def dimensions(self) -> list[str]:
        """Text columns other than ``app``: one chart series per combination of values."""
        return [c.name for c in self.columns if c.type_name in TEXT_TYPES and c.name != "app"]

    @property
    def has_app(self) -> bool:
        """The table has an ``app`` column, so the app filter applies."""
        return "app" in self.names

    @property
    def chartable(self) -> bool:
        """A ``bucket timestamptz`` column and at least one measure."""
        bucket = next((c for c in self.columns if c.name == "bucket"), None)
        return bucket is not None and bucket.type_name == "timestamptz" and bool(self.measures)


async def describe(conn: Conn, spec: RollupSpec) -> RollupTable:
    """The columns of ``spec``'s target table from the catalog; when it does not exist yet,
    the columns of its query (prepared, never run)."""
    columns = await table_columns(conn, spec.target)
    if columns is not None:
        return RollupTable(spec, tuple(columns), True)
    statement = await conn.prepare(spec.query_sql)
    found = tuple(Column(a.name, a.type.name) for a in statement.get_attributes())
    return RollupTable(spec, found, False)


@dataclass(frozen=True, slots=True)
class Coverage:
    """How far a rollup's runs have completed it.

    Fields:
        complete_until: every bucket that starts before this time (UTC) was computed by a
            successful run after it ended; None when no run succeeded.
        last_run_at: when the newest successful run started, or None.
    """

    complete_until: datetime | None
    last_run_at: datetime | None


async def coverage(conn: Conn, spec: RollupSpec) -> Coverage:
    """Read the newest successful runs of ``spec`` (bounded by the index on ``rollup_runs``)."""
    row = await conn.fetchrow(
        """SELECT max(least(window_end, started_at)) AS until, max(started_at) AS last_run
             FROM (SELECT window_end, started_at FROM rollup_runs
                    WHERE rollup = $1 AND error IS NULL
                    ORDER BY scheduled_for DESC LIMIT 50) AS newest""",
        spec.name,
    )
    until = row["until"] if row is not None else None
    last = row["last_run"] if row is not None else None
    if until is None:
        return Coverage(None, last)
    return Coverage(bucket_floor(until, spec.bucket_s), last)


@dataclass(frozen=True, slots=True)
class Window:
    """Where one read gets its buckets from, all UTC, ``start <= bucket < end``.

    Fields:
        start / end: the range, rounded out to whole buckets.
        live_start: buckets from here to ``end`` are computed live from raw_events;
            before it they are read from the table. ``live_start == end``: none live.
    """

    start: datetime
    end: datetime
    live_start: datetime

    @property
    def live(self) -> bool:
        """True when some buckets are computed live."""
        return self.live_start < self.end


def plan_window(spec: RollupSpec, filters: Filters, covered: Coverage) -> Window:
    """Split ``filters``' range between the table and the live query (pure).

    The range is widened to whole buckets; the live part starts at the first incomplete
    bucket, but no earlier than :data:`LIVE_MAX_S` (at least one bucket) before the end.
    """
    step = timedelta(seconds=spec.bucket_s)
    start = bucket_floor(filters.start, spec.bucket_s)
    end = bucket_floor(filters.end, spec.bucket_s)
    if end < filters.end:
        end += step
    earliest_live = bucket_floor(
        end - timedelta(seconds=max(LIVE_MAX_S, spec.bucket_s)), spec.bucket_s
    )
    live_start = max(start, earliest_live)
    if covered.complete_until is not None:
        live_start = max(live_start, covered.complete_until)
    return Window(start, end, min(live_start, end))


class _Params:
    """Bound parameters, numbered in the order they are added."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def add(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


async def fetch(
    conn: Conn,
    table: RollupTable,
    window: Window,
    app: str | None,
    *,
    select: str | None = None,
    group_by: str = "",
    order_by: str = "1",
    limit: int = 10_000,
    extra: Sequence[Any] = (),
) -> list[asyncpg.Record]:
    """The rollup's rows over ``window``: table rows before ``window.live_start``, the
    rollup's query over raw_events from there to the end, as one relation ``q``.

    Args:
        conn: a connection inside :func:`~drain.web.dashboard.db.read_only`.
        table: the rollup and its columns.
        window: from :func:`plan_window`.
        app: keep only this app's rows (when the table has an ``app`` column).
        select: what to select from ``q`` (SQL text written by the dashboard's own code,
            naming only columns of ``table``); default every column.
        group_by / order_by: SQL text of the outer query (the dashboard's own).
        limit: at most this many rows.
        extra: values of further parameters that ``select`` refers to, numbered after the
            ones this function binds: :func:`fetch` binds, in order, the live window
            (``$1``, ``$2``; only when some buckets are live), the table's range and the app.
            Use ``extra`` through ``{p0}``, ``{p1}``... placeholders in ``select``.

    Raises:
        asyncpg.PostgresError: the query failed (the caller's read_only turns it into
            DashboardUnavailable).
    """
    names = table.names
    cols = ", ".join(quote_ident(c.name, names) for c in table.columns)
    params = _Params()
    parts = []
    app_filter = app if table.has_app else None
    if window.live:
        live_lo, live_hi = params.add(window.live_start), params.add(window.end)
        assert (live_lo, live_hi) == ("$1", "$2")  # the rollup query's :window_start/_end
    if table.exists and window.start < window.live_start:
        lo, hi = params.add(window.start), params.add(window.live_start)
        app_sql = f" AND app = {params.add(app_filter)}::text" if app_filter is not None else ""
        target = quote_ident(table.spec.target, {table.spec.target})
        parts.append(f"SELECT {cols} FROM {target} WHERE bucket >= {lo} AND bucket < {hi}{app_sql}")
    if window.live:
        app_sql = (
            f" AND live.app = {params.add(app_filter)}::text" if app_filter is not None else ""
        )
        parts.append(
            f"SELECT {cols} FROM ({table.spec.query_sql}) AS live "
            f"WHERE live.bucket >= $1 AND live.bucket < $2{app_sql}"
        )
    if not parts:
        return []
    placeholders = {f"p{i}": params.add(value) for i, value in enumerate(extra)}
    outer = (select or cols).format(**placeholders)
    union = "\nUNION ALL\n".join(parts)
    group = f" GROUP BY {group_by}" if group_by else ""
    sql = (
        f"WITH q AS ({union})\nSELECT {outer} FROM q{group} ORDER BY {order_by} LIMIT {int(limit)}"
    )
    return list(await conn.fetch(sql, *params.values))


def utc(value: datetime | None) -> str | None:
    """``value`` as ISO 8601 in UTC, or None."""
    return None if value is None else value.astimezone(UTC).isoformat()
