"""Daily partitions of ``raw_events``: naming, creation on demand, listing.

A partition ``raw_events_pYYYYMMDD`` holds the events whose ``event_time`` falls in
[YYYY-MM-DD 00:00 UTC, next day 00:00 UTC). They are created by the SQL function
``drain_ensure_partition(day)`` (migration 0004). Creating one takes an ACCESS EXCLUSIVE
lock on ``raw_events``, so the writer creates them in their own short transaction
*before* the transaction that COPYs rows, never inside it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from drain.store.database import Conn

__all__ = [
    "Partition",
    "PartitionCache",
    "ensure_partitions",
    "list_partitions",
    "partition_name",
    "utc_day",
]

_PARTITION_NAME = re.compile(r"^raw_events_p(\d{8})$")


def partition_name(day: date) -> str:
    """``raw_events_pYYYYMMDD`` for ``day`` (a UTC calendar day)."""
    return f"raw_events_p{day:%Y%m%d}"


def utc_day(ts: datetime) -> date:
    """The UTC calendar day of a tz-aware timestamp (naive timestamps are taken as UTC)."""
    if ts.tzinfo is None:
        return ts.date()
    return ts.astimezone(UTC).date()


@dataclass(frozen=True, slots=True)
class Partition:
    """One daily partition: its table name, UTC day, and bounds [lower, upper)."""

    name: str
    day: date

    @property
    def lower(self) -> datetime:
        """Inclusive lower bound, 00:00 UTC of ``day``."""
        return datetime(self.day.year, self.day.month, self.day.day, tzinfo=UTC)

    @property
    def upper(self) -> datetime:
        """Exclusive upper bound, 00:00 UTC of the next day."""
        return self.lower + timedelta(days=1)


async def ensure_partitions(
    conn: Conn, days: Iterable[date], *, timeout_s: float | None = None
) -> list[date]:
    """Create the missing daily partitions for ``days``; return the days created now.

    Runs one statement outside any explicit transaction (its own short transaction);
    ``conn`` must not be inside a transaction that writes to ``raw_events``.

    Raises:
        asyncpg.PostgresError: e.g. LockNotAvailableError (55P03) when the lock on
            ``raw_events`` could not be had within the function's 5 s lock_timeout.
    """
    wanted = sorted(set(days))
    if not wanted:
        return []
    rows = await conn.fetch(
        "SELECT d, drain_ensure_partition(d) AS created FROM unnest($1::date[]) AS d ORDER BY d",
        wanted,
        timeout=timeout_s,
    )
    return [r["d"] for r in rows if r["created"]]


async def list_partitions(conn: Conn) -> list[Partition]:
    """The daily partitions attached to ``raw_events``, by day."""
    rows = await conn.fetch(
        """
        SELECT c.relname
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'raw_events'::regclass
        """
    )
    found: list[Partition] = []
    for r in rows:
        match = _PARTITION_NAME.match(r["relname"])
        if match is None:
            continue
        found.append(Partition(r["relname"], datetime.strptime(match.group(1), "%Y%m%d").date()))
    return sorted(found, key=lambda p: p.day)


class PartitionCache:
    """The days known to have a partition, for one writer (no module-level state).

    :meth:`ensure` asks the database only for days not yet seen; :meth:`forget` drops
    the cache, e.g. after PostgreSQL reported a row with no partition (someone dropped
    one).
    """

    def __init__(self) -> None:
        self._known: set[date] = set()

    def __contains__(self, day: object) -> bool:
        return day in self._known

    @property
    def known_days(self) -> frozenset[date]:
        """Days this cache believes have a partition."""
        return frozenset(self._known)

    async def load(self, conn: Conn) -> None:
        """Fill the cache with the partitions that exist now."""
        self._known.update(p.day for p in await list_partitions(conn))

    async def ensure(
        self, conn: Conn, days: Iterable[date], *, timeout_s: float | None = None
    ) -> list[date]:
        """Make sure every day in ``days`` has a partition; return the days created now."""
        missing = {d for d in days if d not in self._known}
        if not missing:
            return []
        created = await ensure_partitions(conn, missing, timeout_s=timeout_s)
        self._known.update(missing)
        return created

    def forget(self) -> None:
        """Forget every known day; the next :meth:`ensure` asks the database again."""
        self._known.clear()
