"""Running rollups against PostgreSQL: one window, one transaction, replace semantics.

A run recomputes every bucket in its window and replaces them in the target table in one
transaction (``DELETE`` the window's buckets, ``INSERT ... SELECT`` the query), so running
the same window twice changes nothing, a bucket that became empty disappears, and a reader
never sees half a window. A per-rollup advisory lock serialises runs of the same rollup
from any process (the clock, ``drain rollup run``, a backfill). Every run, successful or
not, is recorded in ``rollup_runs``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from drain.errors import RollupQueryError
from drain.resources import sql_dir
from drain.rollups.spec import RollupSpec, bucket_floor, parse_rollup, window_for_tick

__all__ = [
    "RollupStatus",
    "RunKind",
    "RunResult",
    "backfill_windows",
    "load_rollups",
    "rollup_status",
    "run_window",
]

_Conn = asyncpg.Connection | PoolConnectionProxy

# Advisory-lock namespace for rollups: pg_advisory_xact_lock(_LOCK_NS, hashtext(name)).
_LOCK_NS = 0x64726E31  # "drn1"


class RunKind(enum.StrEnum):
    """Who asked for a run; stored in ``rollup_runs.kind``."""

    SCHEDULED = "scheduled"  #: the clock, for a cron tick
    MANUAL = "manual"  #: ``drain rollup run``
    BACKFILL = "backfill"  #: ``drain rollup backfill``


@dataclass(frozen=True, slots=True)
class RunResult:
    """The outcome of one run (also a row of ``rollup_runs`` unless ``skipped``).

    Fields:
        rollup: the rollup's name.
        kind: who asked.
        scheduled_for: the cron tick (scheduled runs), or the window's end.
        window_start / window_end: the recomputed window, UTC, ``start <= t < end``.
        rows_written: summary rows written (0 when the window holds no events).
        late_events: for scheduled runs, events that arrived since the previous scheduled
            run but whose time is before this window: too late to be counted. None otherwise.
        error: the database's message when the run failed (its transaction rolled back).
        skipped: True when a scheduled run found its tick already done by another clock.
    """

    rollup: str
    kind: RunKind
    scheduled_for: datetime
    window_start: datetime
    window_end: datetime
    rows_written: int = 0
    late_events: int | None = None
    error: str | None = None
    skipped: bool = False


def load_rollups(directory: Path | None = None) -> dict[str, RollupSpec]:
    """Read and parse every ``*.sql`` rollup file, keyed by name.

    Args:
        directory: a folder of rollup files; None means the ``sql/rollups`` shipped in the
            package.

    Raises:
        RollupFormatError: the first file that does not parse.
    """
    specs: dict[str, RollupSpec] = {}
    if directory is None:
        root = sql_dir("rollups")
        entries = [(p.name, p.read_text(encoding="utf-8")) for p in root.iterdir()]
    else:
        entries = [(p.name, p.read_text(encoding="utf-8")) for p in directory.iterdir()]
    for filename, text in sorted(entries):
        if filename.endswith(".sql"):
            spec = parse_rollup(filename[: -len(".sql")], text)
            specs[spec.name] = spec
    return specs


def backfill_windows(
    spec: RollupSpec, start: datetime, end: datetime
) -> Iterator[tuple[datetime, datetime]]:
    """Split ``[start, end)`` (widened to whole buckets) into windows of about a day.

    Each window is run in its own transaction; a day of hourly buckets per transaction keeps
    transactions short while scanning each partition once.
    """
    step_s = max(spec.bucket_s, 86400 // spec.bucket_s * spec.bucket_s)
    lo = bucket_floor(start, spec.bucket_s)
    hi = bucket_floor(end, spec.bucket_s)
    if hi < end:
        hi += timedelta(seconds=spec.bucket_s)
    while lo < hi:
        nxt = min(lo + timedelta(seconds=step_s), hi)
        yield lo, nxt
        lo = nxt


async def run_window(
    pool: asyncpg.Pool,
    spec: RollupSpec,
    *,
    kind: RunKind,
    scheduled_for: datetime,
    window: tuple[datetime, datetime] | None = None,
    late_horizon_s: float = 7 * 86400,
) -> RunResult:
    """Recompute one window of ``spec`` and replace its buckets in the target table.

    Args:
        pool: an asyncpg pool on the drain's database.
        spec: the rollup.
        kind: who asks; a SCHEDULED run is skipped when a successful scheduled run for the
            same ``scheduled_for`` already exists (another clock did it).
        scheduled_for: the cron tick (UTC); for other kinds, the window's end.
        window: ``(start, end)`` in UTC; None means :func:`window_for_tick` of the tick.
        late_horizon_s: how far back (seconds) before the window to look for late events
            (the drain quarantines events older than its acceptance window anyway).

    Returns:
        The run's :class:`RunResult`; a failed run returns its error rather than raising,
        and is recorded in ``rollup_runs``.

    Raises:
        asyncpg.PostgresConnectionError, OSError: the database could not be reached at all.
    """
    start, end = window if window is not None else window_for_tick(spec, scheduled_for)
    async with pool.acquire() as conn:
        try:
            async with conn.transaction():
                await conn.execute("SET LOCAL TimeZone = 'UTC'")
                await conn.execute(
                    "SELECT pg_advisory_xact_lock($1, hashtext($2))", _LOCK_NS, spec.name
                )
                if kind is RunKind.SCHEDULED and await _tick_done(conn, spec.name, scheduled_for):
                    return RunResult(spec.name, kind, scheduled_for, start, end, skipped=True)
                late = None
                if kind is RunKind.SCHEDULED:
                    late = await _late_events(conn, spec, start, late_horizon_s)
                await conn.execute(spec.setup_sql)
                rows = await _replace_window(conn, spec, start, end)
                await conn.execute(
                    """INSERT INTO rollup_runs (rollup, kind, scheduled_for, window_start,
                            window_end, started_at, finished_at, rows_written, late_events)
                        VALUES ($1, $2, $3, $4, $5, now(), clock_timestamp(), $6, $7)""",
                    spec.name,
                    kind.value,
                    scheduled_for,
                    start,
                    end,
                    rows,
                    late,
                )
        except (asyncpg.PostgresError, asyncpg.InterfaceError, RollupQueryError) as exc:
            if isinstance(exc, asyncpg.PostgresConnectionError) or conn.is_closed():
                raise
            message = f"{type(exc).__name__}: {exc}"
            await conn.execute(
                """INSERT INTO rollup_runs (rollup, kind, scheduled_for, window_start,
                        window_end, started_at, finished_at, error)
                    VALUES ($1, $2, $3, $4, $5, now(), clock_timestamp(), $6)""",
                spec.name,
                kind.value,
                scheduled_for,
                start,
                end,
                message,
            )
            return RunResult(spec.name, kind, scheduled_for, start, end, error=message)
    return RunResult(
        spec.name, kind, scheduled_for, start, end, rows_written=rows, late_events=late
    )


async def _tick_done(conn: _Conn, name: str, tick: datetime) -> bool:
    found = await conn.fetchval(
        """SELECT 1 FROM rollup_runs
            WHERE rollup = $1 AND kind = 'scheduled' AND scheduled_for = $2 AND error IS NULL
            LIMIT 1""",
        name,
        tick,
    )
    return found is not None


async def _late_events(conn: _Conn, spec: RollupSpec, start: datetime, horizon_s: float) -> int:
    """Rows of the rollup's sources received since the previous successful scheduled run,
    timed before ``start`` (``raw_events``: of the rollup's tags only).

    No earlier run will count them again: they are beyond the lateness allowance.
    """
    previous = await conn.fetchval(
        """SELECT max(started_at) FROM rollup_runs
            WHERE rollup = $1 AND kind = 'scheduled' AND error IS NULL""",
        spec.name,
    )
    if previous is None:
        return 0
    total = 0
    for source in spec.sources:
        if source == "raw_events":
            count: int = await conn.fetchval(
                """SELECT count(*) FROM raw_events
                    WHERE event_time >= $1 AND event_time < $2 AND received_at > $3
                      AND ($4::text[] IS NULL OR tag = ANY($4::text[]))""",
                start - timedelta(seconds=horizon_s),
                start,
                previous,
                list(spec.tags) if spec.tags is not None else None,
            )
        else:  # a typed table: every row counts (the name is an identifier: spec.parse)
            count = await conn.fetchval(
                f'SELECT count(*) FROM "{source}" '
                "WHERE event_time >= $1 AND event_time < $2 AND received_at > $3",
                start - timedelta(seconds=horizon_s),
                start,
                previous,
            )
        total += count
    return total


async def _replace_window(conn: _Conn, spec: RollupSpec, start: datetime, end: datetime) -> int:
    stmt = await conn.prepare(spec.query_sql)
    columns = [attr.name for attr in stmt.get_attributes()]
    if "bucket" not in columns:
        raise RollupQueryError(f"rollup {spec.name}: the query must return a column named bucket")
    cols = ", ".join(f'"{c}"' for c in columns)
    await conn.execute(
        f'DELETE FROM "{spec.target}" WHERE bucket >= $1 AND bucket < $2', start, end
    )
    status = await conn.execute(
        f'INSERT INTO "{spec.target}" ({cols}) SELECT {cols} FROM ({spec.query_sql}) AS q '
        "WHERE q.bucket >= $1 AND q.bucket < $2",
        start,
        end,
    )
    # status is "INSERT 0 <rows>"
    return int(status.rsplit(" ", 1)[1])


@dataclass(frozen=True, slots=True)
class RollupStatus:
    """Where one rollup stands, for ``/health`` and ``drain rollup list``.

    Fields:
        rollup: the name.
        last_window_end: the latest end (UTC) of a successfully completed window, by any run
            (clock, ``drain rollup run`` or backfill), or None.
        lag_s: seconds from ``last_window_end`` to now, or None when it never ran.
        last_run_at: when the newest run of any kind finished or failed, or None.
        last_error: that run's error, None when it succeeded.
        late_events: late events reported by successful scheduled runs in the last 24 hours.
    """

    rollup: str
    last_window_end: datetime | None
    lag_s: float | None
    last_run_at: datetime | None
    last_error: str | None
    late_events: int


async def rollup_status(pool: asyncpg.Pool, names: list[str], now: datetime) -> list[RollupStatus]:
    """Read ``rollup_runs`` for each named rollup; one query, bounded by the index."""
    rows = await pool.fetch(
        """SELECT n.rollup,
                  (SELECT max(window_end) FROM rollup_runs r
                    WHERE r.rollup = n.rollup AND r.error IS NULL) AS last_window_end,
                  last.finished_at AS last_run_at, last.error AS last_error,
                  (SELECT coalesce(sum(late_events), 0) FROM rollup_runs r
                    WHERE r.rollup = n.rollup AND r.kind = 'scheduled'
                      AND r.finished_at > $2::timestamptz - interval '24 hours') AS late_events
             FROM unnest($1::text[]) AS n(rollup)
             LEFT JOIN LATERAL (
                  SELECT finished_at, error FROM rollup_runs r
                   WHERE r.rollup = n.rollup ORDER BY r.id DESC LIMIT 1) AS last ON true
            ORDER BY n.rollup""",
        names,
        now,
    )
    out = []
    for r in rows:
        end = r["last_window_end"]
        out.append(
            RollupStatus(
                rollup=r["rollup"],
                last_window_end=end,
                lag_s=(now - end).total_seconds() if end is not None else None,
                last_run_at=r["last_run_at"],
                last_error=r["last_error"],
                late_events=int(r["late_events"]),
            )
        )
    return out
