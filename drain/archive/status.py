"""What the archive tables say, for ``/health``, ``/metrics`` and ``drain archive list``.

Reads the database only (no pyarrow), so the web workers import it cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from drain.store.database import Conn

__all__ = [
    "ArchivedDay",
    "FailedArchive",
    "archive_failures",
    "archived_days",
    "failed_archives",
]


@dataclass(frozen=True, slots=True)
class FailedArchive:
    """A partition whose last archive attempt failed (it is still in PostgreSQL).

    Fields:
        table, day, generation: the generation. step: where it failed (plan, write,
        verify, drop). error: ``Class: message``. failures: attempts that failed so far.
        at: when it last failed (UTC).
    """

    table: str
    day: date
    generation: int
    step: str
    error: str
    failures: int
    at: datetime


async def failed_archives(conn: Conn, limit: int = 10) -> list[FailedArchive]:
    """The generations whose last attempt failed and that are not done since, newest
    failure first (at most ``limit``)."""
    rows = await conn.fetch(
        """SELECT table_name, day, generation, last_error_step, last_error, failures,
                  last_error_at
             FROM archive_partitions
            WHERE last_error IS NOT NULL AND state <> 'dropped'
            ORDER BY last_error_at DESC LIMIT $1""",
        limit,
    )
    return [
        FailedArchive(
            r["table_name"],
            r["day"],
            r["generation"],
            r["last_error_step"],
            r["last_error"],
            r["failures"],
            r["last_error_at"],
        )
        for r in rows
    ]


async def archive_failures(conn: Conn) -> dict[tuple[str, str], int]:
    """Failed attempts ever recorded, by (table, step): the counter behind
    ``drain_archive_failures_total``. Steps without a failure are left out."""
    rows = await conn.fetch(
        """SELECT table_name, coalesce(last_error_step, 'unknown') AS step,
                  sum(failures)::bigint AS n
             FROM archive_partitions WHERE failures > 0 GROUP BY 1, 2"""
    )
    return {(r["table_name"], r["step"]): int(r["n"]) for r in rows}


@dataclass(frozen=True, slots=True)
class ArchivedDay:
    """One row of ``drain archive list``: a table's day and its generations.

    Fields:
        table, day: the partition. state: the newest generation's state.
        generations: how many. files / rows / size_bytes: totals of the verified ones.
        restored_apps: apps loaded back into PostgreSQL (``drain archive restore``).
        error: the newest generation's last error, if it is not done.
    """

    table: str
    day: date
    state: str
    generations: int
    files: int
    rows: int
    size_bytes: int
    restored_apps: tuple[str, ...]
    error: str | None


async def archived_days(conn: Conn, table: str | None = None) -> list[ArchivedDay]:
    """Every archived (or being archived) day, by table and day."""
    rows = await conn.fetch(
        """
        SELECT p.table_name, p.day, count(*) AS generations,
               (array_agg(p.state ORDER BY p.generation DESC))[1] AS state,
               (array_agg(p.last_error ORDER BY p.generation DESC))[1] AS error,
               coalesce(sum(p.files) FILTER (WHERE p.state IN ('verified', 'dropped')), 0)
                   AS files,
               coalesce(sum(p.rows) FILTER (WHERE p.state IN ('verified', 'dropped')), 0)
                   AS rows,
               coalesce(sum(p.bytes) FILTER (WHERE p.state IN ('verified', 'dropped')), 0)
                   AS bytes,
               (SELECT coalesce(array_agg(r.app ORDER BY r.app), '{}') FROM archive_restores r
                 WHERE r.table_name = p.table_name AND r.day = p.day) AS restored
          FROM archive_partitions p
         WHERE $1::text IS NULL OR p.table_name = $1
         GROUP BY p.table_name, p.day
         ORDER BY p.table_name, p.day
        """,
        table,
    )
    return [
        ArchivedDay(
            r["table_name"],
            r["day"],
            r["state"],
            r["generations"],
            int(r["files"]),
            int(r["rows"]),
            int(r["bytes"]),
            tuple(r["restored"]),
            r["error"] if r["state"] != "dropped" else None,
        )
        for r in rows
    ]
