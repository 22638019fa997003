"""Daily partitions of the data tables (drain.store.tables): naming, creation, listing.

A partition ``<table>_pYYYYMMDD`` holds the rows whose time falls in [YYYY-MM-DD 00:00 UTC,
next day 00:00 UTC). They are created by the SQL function ``drain_ensure_partition(table,
day)`` (migration 0005), which names them the way :func:`partition_name` does (a test
checks the two agree). Creating one takes an ACCESS EXCLUSIVE lock on its table, so the
writer creates them in their own short transaction *before* the transaction that COPYs
rows, never inside it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from drain.store.database import Conn

__all__ = [
    "Partition",
    "PartitionCache",
    "ensure_partitions",
    "list_partitions",
    "partition_day",
    "partition_name",
    "partition_pattern",
    "utc_day",
]

_SUFFIX = re.compile(r"_p(\d{8})$")


def partition_name(table: str, day: date) -> str:
    """``<table>_pYYYYMMDD`` for ``day`` (a UTC calendar day)."""
    return f"{table}_p{day:%Y%m%d}"


def partition_pattern(table: str) -> str:
    """A PostgreSQL regular expression (``~``) that matches the partition names of ``table``."""
    return "^" + re.escape(table) + "_p[0-9]{8}$"


def partition_day(table: str, name: str) -> date | None:
    """The UTC day of partition ``name`` of ``table``, or None when it is not one."""
    match = _SUFFIX.search(name)
    if match is None or name[: match.start()] != table:
        return None
    try:
        return datetime.strptime(match.group(1), "%Y%m%d").date()
    except ValueError:
        return None


def utc_day(ts: datetime) -> date:
    """The UTC calendar day of a tz-aware timestamp (naive timestamps are taken as UTC)."""
    if ts.tzinfo is None:
        return ts.date()
    return ts.astimezone(UTC).date()


@dataclass(frozen=True, slots=True)
class Partition:
    """One daily partition: its table, name, UTC day, and bounds [lower, upper)."""

    table: str
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
    conn: Conn, table: str, days: Iterable[date], *, timeout_s: float | None = None
) -> list[date]:
    """Create the missing daily partitions of ``table`` for ``days``; return the days
    created now.

    Runs one statement outside any explicit transaction (its own short transaction);
    ``conn`` must not be inside a transaction that writes to ``table``.

    Raises:
        asyncpg.PostgresError: e.g. LockNotAvailableError (55P03) when the lock on
            ``table`` could not be had within the function's 5 s lock_timeout.
    """
    wanted = sorted(set(days))
    if not wanted:
        return []
    rows = await conn.fetch(
        "SELECT d, drain_ensure_partition($1::text, d) AS created"
        " FROM unnest($2::date[]) AS d ORDER BY d",
        table,
        wanted,
        timeout=timeout_s,
    )
    return [r["d"] for r in rows if r["created"]]


async def list_partitions(conn: Conn, table: str) -> list[Partition]:
    """The daily partitions attached to ``table``, by day."""
    rows = await conn.fetch(
        """
        SELECT c.relname
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = $1::regclass
        """,
        table,
    )
    found = []
    for r in rows:
        day = partition_day(table, r["relname"])
        if day is not None:
            found.append(Partition(table, r["relname"], day))
    return sorted(found, key=lambda p: p.day)


class PartitionCache:
    """The (table, day) pairs known to have a partition, for one writer (no module state).

    :meth:`ensure` asks the database only for days not yet seen; :meth:`forget` drops the
    cache, e.g. after PostgreSQL reported a row with no partition (someone dropped one).
    """

    def __init__(self) -> None:
        self._known: set[tuple[str, date]] = set()

    def __contains__(self, key: object) -> bool:
        return key in self._known

    @property
    def known(self) -> frozenset[tuple[str, date]]:
        """The (table, day) pairs this cache believes have a partition."""
        return frozenset(self._known)

    def known_days(self, table: str) -> frozenset[date]:
        """The days of ``table`` this cache believes have a partition."""
        return frozenset(day for name, day in self._known if name == table)

    async def load(self, conn: Conn, tables: Iterable[str]) -> None:
        """Fill the cache with the partitions of ``tables`` that exist now."""
        for table in tables:
            self._known.update((table, p.day) for p in await list_partitions(conn, table))

    async def ensure(
        self, conn: Conn, days: Mapping[str, Iterable[date]], *, timeout_s: float | None = None
    ) -> dict[str, list[date]]:
        """Make sure every (table, day) in ``days`` has a partition; return, by table, the
        days created now."""
        created: dict[str, list[date]] = {}
        for table, wanted in days.items():
            missing = {d for d in wanted if (table, d) not in self._known}
            if not missing:
                continue
            made = await ensure_partitions(conn, table, missing, timeout_s=timeout_s)
            if made:
                created[table] = made
            self._known.update((table, d) for d in missing)
        return created

    def forget(self) -> None:
        """Forget every known partition; the next :meth:`ensure` asks the database again."""
        self._known.clear()
