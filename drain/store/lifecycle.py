"""Partition lifecycle: partitions made ahead, retention, and pruning of the ledger and quarantine.

:func:`maintain` is one maintenance run; ``drain clock`` runs it every
DRAIN_MAINTENANCE_INTERVAL_S seconds and ``drain partitions maintain`` on demand. It:

1. makes the daily partitions of today and DRAIN_PARTITIONS_AHEAD_DAYS days ahead, for
   every data table (drain.store.tables; ``drain_ensure_partition``, migration 0005; the
   web writer also does at start);
2. detaches, then drops, the partitions of every data table whose whole day is older than
   the retention (DRAIN_RETENTION_DAYS, and never inside the acceptance window
   DRAIN_ACCEPT_PAST_S, so a partition that may still receive rows is kept);
3. deletes ``received_batches`` (the exactly-once ledger) and ``quarantine`` rows received
   before the retention, in chunks of ``chunk_rows`` rows (short transactions).

Why this does not block ingest: ``ALTER TABLE raw_events DETACH PARTITION p CONCURRENTLY``
(PostgreSQL 14+) takes only a SHARE UPDATE EXCLUSIVE lock on the table, which does not
conflict with the writer's COPY (ROW EXCLUSIVE); it then waits for transactions that may
still see the partition. It cannot run inside a transaction block, so it runs on its own
connection in autocommit, bounded by ``lock_timeout`` and ``statement_timeout``. When it
cannot be used (PostgreSQL 13 or older, or a transaction block as some poolers impose),
the fallback is a plain DETACH in a transaction with ``SET LOCAL lock_timeout``: it needs an
ACCESS EXCLUSIVE lock for an instant, and the timeout bounds how long writers can queue
behind it. A detach interrupted half-way leaves the partition "detach pending"; the next
run finishes it with ``DETACH PARTITION ... FINALIZE``. Dropping the detached table then
locks only that table. A table detached by an earlier run that died before the DROP is
dropped by the next one.

With archiving on (drain.archive; DRAIN_ARCHIVE_URL, docs/archive.md), step 2 goes through a
:class:`RetirementGuard`: before a partition is detached the guard archives it and verifies
the archive (or says why it is kept: a failure, or a restored day), after the detach it
checks the detached table still holds what was verified, and after the drop it records
it. Without a guard, retention drops as described above.

Only one maintenance acts at a time: it holds a session advisory lock for the run
(``pg_try_advisory_lock``); another finds it taken and reports ``skipped``. Session locks
need a direct connection, so maintenance uses DATABASE_URL, never PgBouncer's
DATABASE_CONNECTION_POOL_URL.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

import asyncpg

from drain.store.database import Conn
from drain.store.partitions import (
    ensure_partitions,
    partition_day,
    partition_name,
    partition_pattern,
)
from drain.store.tables import TABLES

__all__ = [
    "MAINTENANCE_LOCK_KEY",
    "Hold",
    "MaintenanceReport",
    "PartitionRow",
    "RetentionPolicy",
    "RetirementGuard",
    "days_ahead",
    "maintain",
    "partition_table",
]

log = logging.getLogger("drain.store.lifecycle")

#: the session advisory lock one maintenance holds ("drn2" namespace, key 2; key 1 is the
#: clock's leader lock); ``drain archive restore|release`` take it too
MAINTENANCE_LOCK_KEY = 0x64726E32_00000002


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """What maintenance keeps. Built by :meth:`drain.settings.Settings.retention_policy`
    (the first three fields are settings; the others are this module's own tuning).

    Fields:
        ahead_days: days after today that must have a partition (DRAIN_PARTITIONS_AHEAD_DAYS).
        retention_days: days kept (DRAIN_RETENTION_DAYS); 0 keeps everything.
        accept_past_s: the acceptance window into the past (DRAIN_ACCEPT_PAST_S), seconds;
            partitions that can still receive events are never dropped.
        lock_timeout_s: longest wait for a lock by a detach, seconds.
        statement_timeout_s: longest detach or drop, seconds.
        chunk_rows: rows deleted per statement when pruning.
        max_chunks: most pruning statements per table per run (bounds one run).
    """

    ahead_days: int
    retention_days: int
    accept_past_s: float
    lock_timeout_s: float = 5.0
    statement_timeout_s: float = 120.0
    chunk_rows: int = 10_000
    max_chunks: int = 1_000

    def drop_before(self, now: datetime) -> datetime | None:
        """Partitions whose upper bound is at or before this instant are dropped (None:
        retention off). The later of now - retention and now - the acceptance window."""
        if self.retention_days <= 0:
            return None
        keep_s = max(self.retention_days * 86400.0, self.accept_past_s)
        return now - timedelta(seconds=keep_s)

    def prune_before(self, now: datetime) -> datetime | None:
        """Ledger and quarantine rows received before this instant are deleted (None: off)."""
        if self.retention_days <= 0:
            return None
        return now - timedelta(days=self.retention_days)


@dataclass(slots=True)
class MaintenanceReport:
    """What one :func:`maintain` run did.

    Fields:
        skipped: why nothing was done (another maintenance holds the lock), or None.
        created: (table, day) of each partition this run created.
        detached: partitions detached (``CONCURRENTLY`` unless listed in ``blocking``).
        blocking: partitions detached with the plain (ACCESS EXCLUSIVE) fallback.
        dropped: tables dropped.
        failed: (partition, why) for partitions that could not be retired: a detach that
            failed (error class and SQLSTATE), or an archive step (drain.archive); retried
            next run.
        kept: (partition, why) for expired partitions a guard keeps on purpose (a
            restored day).
        ledger_pruned / quarantine_pruned: rows deleted.
        ahead_days: days after today that have a partition, after the run.
    """

    skipped: str | None = None
    created: list[tuple[str, date]] = field(default_factory=list)
    detached: list[str] = field(default_factory=list)
    blocking: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    kept: list[tuple[str, str]] = field(default_factory=list)
    ledger_pruned: int = 0
    quarantine_pruned: int = 0
    ahead_days: int = 0

    def summary(self) -> str:
        """One line for logs and the CLI."""
        if self.skipped:
            return f"skipped: {self.skipped}"
        return (
            f"created {len(self.created)}, detached {len(self.detached)}"
            f" ({len(self.blocking)} without CONCURRENTLY), dropped {len(self.dropped)},"
            f" failed {len(self.failed)}, kept {len(self.kept)};"
            f" pruned {self.ledger_pruned} ledger rows,"
            f" {self.quarantine_pruned} quarantine rows; {self.ahead_days} days ahead"
        )


@dataclass(frozen=True, slots=True)
class Hold:
    """A :class:`RetirementGuard`'s answer: do not retire this partition now.

    Fields:
        reason: why, for the report and the log.
        failed: True for a failure (reported in ``failed``, retried next run), False for a
            partition kept on purpose (reported in ``kept``).
    """

    reason: str
    failed: bool


class RetirementGuard(Protocol):
    """What retention asks before and after it drops a partition (drain.archive.Archiver).

    Each method runs on the maintenance's connection (which holds its advisory lock) and
    handles its own errors: a problem is a :class:`Hold`, never an exception.
    """

    async def start(self, conn: Conn) -> None:
        """Once per run, before any partition: settle what an interrupted run left."""

    async def before_detach(self, conn: Conn, row: PartitionRow) -> Hold | None:
        """The partition ``row`` is expired: None lets it be detached and dropped."""

    async def before_drop(self, conn: Conn, row: PartitionRow) -> Hold | None:
        """``row`` is detached: None lets it be dropped (a Hold leaves it detached)."""

    async def after_drop(self, conn: Conn, row: PartitionRow) -> None:
        """``row`` was dropped."""


@dataclass(frozen=True, slots=True)
class PartitionRow:
    """One row of ``drain partitions list``.

    Fields:
        table: the data table it is a partition of.
        name: the partition's table name. day: its UTC day.
        rows: the planner's row estimate (``reltuples``), None before the first ANALYZE.
        size_bytes: table, indexes and TOAST, bytes.
        state: ``ahead``, ``today``, ``kept``, ``expired`` (dropped at the next maintenance),
            ``detach pending`` (a detach was interrupted), ``detached`` (awaiting DROP).
    """

    table: str
    name: str
    day: date
    rows: int | None
    size_bytes: int
    state: str


async def _tables(conn: Conn, table: str) -> list[asyncpg.Record]:
    """Every <table>_pYYYYMMDD table: attached (and pending) or left detached."""
    try:
        return await conn.fetch(
            """
            SELECT c.relname, c.reltuples::bigint AS reltuples,
                   pg_total_relation_size(c.oid) AS bytes,
                   i.inhrelid IS NOT NULL AS attached,
                   coalesce(i.inhdetachpending, false) AS pending
            FROM pg_class c
            LEFT JOIN pg_inherits i
                   ON i.inhrelid = c.oid AND i.inhparent = $2::regclass
            WHERE c.relkind = 'r' AND c.relname ~ $1
              AND c.relnamespace = current_schema()::regnamespace
            ORDER BY c.relname
            """,
            partition_pattern(table),
            table,
        )
    except asyncpg.UndefinedColumnError:  # PostgreSQL 13: no inhdetachpending
        return await conn.fetch(
            """
            SELECT c.relname, c.reltuples::bigint AS reltuples,
                   pg_total_relation_size(c.oid) AS bytes,
                   i.inhrelid IS NOT NULL AS attached, false AS pending
            FROM pg_class c
            LEFT JOIN pg_inherits i
                   ON i.inhrelid = c.oid AND i.inhparent = $2::regclass
            WHERE c.relkind = 'r' AND c.relname ~ $1
              AND c.relnamespace = current_schema()::regnamespace
            ORDER BY c.relname
            """,
            partition_pattern(table),
            table,
        )


async def partition_table(
    conn: Conn, now: datetime, policy: RetentionPolicy, tables: Iterable[str] = TABLES
) -> list[PartitionRow]:
    """The partitions (and detached leftovers) of ``tables`` with their state, by table
    and day."""
    rows = []
    for table in tables:
        rows.extend(await _partition_rows(conn, table, now, policy))
    return rows


async def _partition_rows(
    conn: Conn, table: str, now: datetime, policy: RetentionPolicy
) -> list[PartitionRow]:
    today = now.astimezone(UTC).date()
    drop_before = policy.drop_before(now)
    rows = []
    for r in await _tables(conn, table):
        day = partition_day(table, r["relname"])
        if day is None:
            continue
        upper = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
        if not r["attached"]:
            state = "detached"
        elif r["pending"]:
            state = "detach pending"
        elif day > today:
            state = "ahead"
        elif day == today:
            state = "today"
        elif drop_before is not None and upper <= drop_before:
            state = "expired"
        else:
            state = "kept"
        estimate = int(r["reltuples"])
        rows.append(
            PartitionRow(
                table, r["relname"], day, estimate if estimate >= 0 else None, r["bytes"], state
            )
        )
    return sorted(rows, key=lambda p: p.day)


async def days_ahead(
    conn: Conn, today: date, *, tables: Iterable[str] = TABLES, limit: int = 366
) -> int:
    """How many consecutive days after ``today`` have an attached partition in every one
    of ``tables`` (0 when tomorrow lacks one), counting at most ``limit``."""
    found = limit
    for table in tables:
        names = {
            r["relname"]
            for r in await conn.fetch(
                """
                SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                WHERE i.inhparent = $1::regclass
                """,
                table,
            )
        }
        ahead = 0
        while ahead < found and partition_name(table, today + timedelta(days=ahead + 1)) in names:
            ahead += 1
        found = ahead
    return found


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _describe(exc: BaseException) -> str:
    code = getattr(exc, "sqlstate", None)
    return f"{type(exc).__name__} {code}" if code else type(exc).__name__


async def _detach(
    conn: Conn, parent: str, name: str, pending: bool, policy: RetentionPolicy
) -> bool:
    """Detach partition ``name`` from ``parent``; True when done CONCURRENTLY (or
    finalized), False with the fallback.

    Raises:
        asyncpg.PostgresError: the fallback failed too (e.g. lock_timeout, 55P03).
    """
    table = _quote(name)
    alter = f"ALTER TABLE {_quote(parent)} DETACH PARTITION {table}"
    lock_ms = max(1, math.ceil(policy.lock_timeout_s * 1000))
    stmt_ms = max(1, math.ceil(policy.statement_timeout_s * 1000))
    await conn.execute(f"SET lock_timeout = {lock_ms}; SET statement_timeout = {stmt_ms}")
    try:
        if pending:
            await conn.execute(f"{alter} FINALIZE")
            return True
        try:
            await conn.execute(f"{alter} CONCURRENTLY")
            return True
        except (
            asyncpg.PostgresSyntaxError,  # PostgreSQL 13 and older
            asyncpg.ActiveSQLTransactionError,  # 25001: inside a transaction block
            asyncpg.FeatureNotSupportedError,  # 0A000
            asyncpg.ObjectNotInPrerequisiteStateError,  # 55000: a DEFAULT partition exists
        ) as exc:
            log.warning("DETACH CONCURRENTLY not possible (%s); plain DETACH", _describe(exc))
        async with conn.transaction():
            await conn.execute(f"SET LOCAL lock_timeout = {lock_ms}")
            await conn.execute(alter)
        return False
    finally:
        await conn.execute("RESET lock_timeout; RESET statement_timeout")


async def _prune(conn: Conn, table: str, before: datetime, policy: RetentionPolicy) -> int:
    """Delete ``table`` rows received before ``before``, chunk by chunk (short transactions)."""
    total = 0
    for _ in range(policy.max_chunks):
        status = await conn.execute(
            f"""
            DELETE FROM {table} WHERE ctid = ANY (ARRAY(
                SELECT ctid FROM {table} WHERE received_at < $1 LIMIT $2))
            """,
            before,
            policy.chunk_rows,
        )
        deleted = int(status.rpartition(" ")[2])
        total += deleted
        if deleted < policy.chunk_rows:
            break
    return total


async def maintain(
    pool: asyncpg.Pool,
    policy: RetentionPolicy,
    *,
    now: datetime | None = None,
    guard: RetirementGuard | None = None,
    retire_only: bool = False,
) -> MaintenanceReport:
    """One maintenance run (see the module docstring) on one connection of ``pool``.

    Args:
        pool: a pool on DATABASE_URL (a direct connection: the run holds a session lock).
        policy: what to keep.
        now: the current time, UTC (tests pass a fixed one). Default: the system clock.
        guard: asked before and after each expired partition is retired (archiving,
            drain.archive.Archiver); None: retention drops as it always did.
        retire_only: only step 2 (``drain archive``): no partitions made, nothing pruned.

    Returns:
        a :class:`MaintenanceReport`; a detach that fails is reported in ``failed`` and
        retried by the next run, and does not stop the rest.

    Raises:
        asyncpg.PostgresError, OSError: the database failed outside a detach (the caller
        logs it and tries again at the next interval).
    """
    at = now or datetime.now(UTC)
    today = at.astimezone(UTC).date()
    report = MaintenanceReport()
    async with pool.acquire() as conn:
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", MAINTENANCE_LOCK_KEY):
            report.skipped = "another maintenance is running"
            return report
        try:
            days = [today + timedelta(days=n) for n in range(policy.ahead_days + 1)]
            for table in () if retire_only else TABLES:
                made = await ensure_partitions(conn, table, days)
                report.created.extend((table, day) for day in made)
            if guard is not None:
                await guard.start(conn)
            drop_before = policy.drop_before(at)
            if drop_before is not None:
                for row in await partition_table(conn, at, policy):
                    upper = datetime(
                        row.day.year, row.day.month, row.day.day, tzinfo=UTC
                    ) + timedelta(days=1)
                    if upper > drop_before:
                        continue
                    await _retire(conn, row, policy, report, guard)
            if retire_only:
                return report
            prune_before = policy.prune_before(at)
            if prune_before is not None:
                report.ledger_pruned = await _prune(conn, "received_batches", prune_before, policy)
                report.quarantine_pruned = await _prune(conn, "quarantine", prune_before, policy)
            report.ahead_days = await days_ahead(conn, today)
        finally:
            if not conn.is_closed():
                await conn.execute("SELECT pg_advisory_unlock($1)", MAINTENANCE_LOCK_KEY)
    log.info("partition maintenance: %s", report.summary())
    return report


def _held(report: MaintenanceReport, name: str, hold: Hold) -> None:
    if hold.failed:
        log.warning("%s not retired: %s; next run retries", name, hold.reason)
        report.failed.append((name, hold.reason))
    else:
        report.kept.append((name, hold.reason))


async def _retire(
    conn: Conn,
    row: PartitionRow,
    policy: RetentionPolicy,
    report: MaintenanceReport,
    guard: RetirementGuard | None,
) -> None:
    """Detach (unless already detached) and drop one expired partition, when ``guard``
    (if any) lets it."""
    if guard is not None:
        hold = await guard.before_detach(conn, row)
        if hold is not None:
            _held(report, row.name, hold)
            return
    if row.state != "detached":
        try:
            pending = row.state == "detach pending"
            concurrently = await _detach(conn, row.table, row.name, pending, policy)
        except (asyncpg.PostgresError, TimeoutError) as exc:
            log.warning("could not detach %s (%s); next run retries", row.name, _describe(exc))
            report.failed.append((row.name, _describe(exc)))
            return
        report.detached.append(row.name)
        if not concurrently:
            report.blocking.append(row.name)
    if guard is not None:
        hold = await guard.before_drop(conn, row)
        if hold is not None:
            _held(report, row.name, hold)
            return
    stmt_ms = max(1, math.ceil(policy.statement_timeout_s * 1000))
    async with conn.transaction():
        await conn.execute(f"SET LOCAL statement_timeout = {stmt_ms}")
        await conn.execute(f"DROP TABLE IF EXISTS {_quote(row.name)}")
    report.dropped.append(row.name)
    if guard is not None:
        await guard.after_drop(conn, row)
