"""The ``drain partitions`` command: ``list`` and ``maintain`` (drain.store.lifecycle).

``drain partitions list``
    one row per daily partition of every data table (drain.store.tables: ``raw_events`` and
    the typed tables; and any detached leftover): its UTC day, state (ahead, today, kept,
    expired, detach pending, detached), the planner's row estimate and its size, in columns
    as wide as their widest cell; then how many partitions of how many tables, and the
    policy, in one line.

``drain partitions maintain``
    one maintenance run now (what ``drain clock`` does every DRAIN_MAINTENANCE_INTERVAL_S):
    make partitions ahead, detach and drop expired ones (archived and verified first when
    archiving is on: drain.archive), prune the ledger and quarantine.
    Exit 1 when a detach or an archive failed (it is retried by the next run).

Both use DATABASE_URL (or the embedded server), never DATABASE_CONNECTION_POOL_URL. ``list``
is read-only: it never creates an embedded database (drain.cli.common).
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import UTC, datetime

import asyncpg

from drain.cli.common import ready_database, run_with_pool
from drain.settings import Settings
from drain.store.lifecycle import RetentionPolicy, days_ahead, maintain, partition_table
from drain.store.partitions import partition_name
from drain.store.tables import TABLES

__all__ = ["format_bytes", "register", "text_table"]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``partitions list|maintain`` to the ``drain`` command's subparsers."""
    parser = commands.add_parser("partitions", help="list or maintain the daily partitions")
    sub = parser.add_subparsers(dest="partitions_command", required=True, metavar="ACTION")
    lst = sub.add_parser("list", help="the partitions of raw_events, their state and size")
    lst.set_defaults(func=lambda a: _run(_list, create=False))
    run = sub.add_parser("maintain", help="make partitions ahead, drop expired ones, prune")
    run.set_defaults(func=lambda a: _run(_maintain))


def _run(
    command: Callable[[asyncpg.Pool, RetentionPolicy], Awaitable[int]], *, create: bool = True
) -> int:
    policy = Settings.load().retention_policy()
    with ready_database(create=create) as url:
        return run_with_pool(url, lambda pool: command(pool, policy))


def format_bytes(n: int) -> str:
    """``n`` bytes as ``8.0 kB``, ``1.2 MB`` ... (powers of 1024, like pg_size_pretty)."""
    size = float(n)
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{n} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def text_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], right: Collection[int] = ()
) -> list[str]:
    """``header`` and ``rows`` as lines of text columns, two spaces apart, each column as
    wide as its widest cell (the heading included, in characters); the columns whose index
    is in ``right`` are right-aligned, the others left-aligned. The last column is padded
    too, so every line has the same length.

    Raises:
        ValueError: a row has not as many cells as ``header``.
    """
    if any(len(row) != len(header) for row in rows):
        raise ValueError("every row needs one cell per heading")
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        )

    return [line(header), *(line(row) for row in rows)]


async def _list(pool: asyncpg.Pool, policy: RetentionPolicy) -> int:
    now = datetime.now(UTC)
    async with pool.acquire() as conn:
        rows = await partition_table(conn, now, policy)
        ahead = await days_ahead(conn, now.date())
    cells = [
        [
            r.name,
            r.day.isoformat(),
            r.state,
            "?" if r.rows is None else f"{r.rows:,}",
            format_bytes(r.size_bytes),
        ]
        for r in rows
    ]
    header = ["PARTITION", "DAY (UTC)", "STATE", "ROWS (est.)", "SIZE"]
    for text in text_table(header, cells, right=(3, 4)):
        print(text)
    drop_before = policy.drop_before(now)
    retention = (
        f"retention {policy.retention_days} days (partitions ending by "
        f"{drop_before:%Y-%m-%d %H:%M} UTC are dropped)"
        if drop_before is not None
        else "retention off (DRAIN_RETENTION_DAYS=0)"
    )
    counted = f"{len(rows)} partition{'' if len(rows) == 1 else 's'} of {len(TABLES)} tables"
    print(f"{counted}; {ahead} of {policy.ahead_days} days ahead made; {retention}")
    return 0


async def _maintain(pool: asyncpg.Pool, policy: RetentionPolicy) -> int:
    config = Settings.load().archive_config()
    guard = None
    if config is not None:
        from drain.archive.archiver import Archiver

        guard = Archiver(pool, config)
    report = await maintain(pool, policy, guard=guard)
    for table, day in report.created:
        print(f"created   {partition_name(table, day)}")
    for name in report.detached:
        how = "" if name not in report.blocking else " (without CONCURRENTLY)"
        print(f"detached  {name}{how}")
    for name in report.dropped:
        print(f"dropped   {name}")
    for name, why in report.failed:
        print(f"FAILED    {name}: {why} (retried by the next run)")
    for name, why in report.kept:
        print(f"kept      {name}: {why}")
    print(report.summary())
    return 1 if report.failed else 0
