"""The ``drain archive`` command: archive expiring partitions to Parquet, list, verify,
restore and release (drain.archive, docs/archive.md).

``drain archive``
    now, what maintenance does for each partition past retention when archiving is on:
    write its rows as Parquet to DRAIN_ARCHIVE_URL, read them back and verify them against
    the partition, write the manifest, then detach and drop it. Prints each step; exit 1
    when a partition could not be archived (it is kept, and retried by the next run), 2
    when archiving is off.
``drain archive list [--table T]``
    each archived day: state, generations, files, rows, bytes, restored apps, last error.
``drain archive verify [DATE] [--table T]``
    read every file of the archived days (or of DATE) back and check it against its
    manifest (size, SHA-256, Parquet page checksums, rows, key checksum); exit 1 on any
    difference.
``drain archive restore DATE [--table T] [--app A]``
    load an archived day (or one app of it) back into PostgreSQL, exactly once; retention
    keeps it until ``release``. Exit 1 when refused (drain.archive.restore says when).
``drain archive release DATE [--table T]``
    drop a restored day again, once it is checked to hold exactly the restored rows.

All use DATABASE_URL (or the embedded server), never the pooler.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import date
from typing import TYPE_CHECKING

import asyncpg

from drain.cli.common import ready_database, run_with_pool
from drain.errors import ArchiveError, SettingsError
from drain.settings import Settings
from drain.store.tables import TABLES, DataTable

if TYPE_CHECKING:
    from drain.archive.destination import Destination

__all__ = ["register", "run_archive"]


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a day like 2026-11-30, got {text!r}") from None


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``archive [list|verify|restore|release]`` to the ``drain`` command's subparsers."""
    parser = commands.add_parser(
        "archive", help="archive expiring partitions to Parquet; list, verify, restore"
    )
    parser.set_defaults(func=lambda a: run_archive(Settings.load()))
    sub = parser.add_subparsers(dest="archive_command", metavar="ACTION")
    lst = sub.add_parser("list", help="what is archived: days, files, rows, bytes")
    lst.add_argument("--table", help="only this data table")
    lst.set_defaults(func=lambda a: _command(lambda pool, s: _list(pool, a.table), create=False))
    ver = sub.add_parser("verify", help="read the files back and check them")
    ver.add_argument("day", nargs="?", type=_day, help="only this UTC day (YYYY-MM-DD)")
    ver.add_argument("--table", help="only this data table")
    ver.set_defaults(func=lambda a: _command(lambda pool, s: _verify(pool, s, a.day, a.table)))
    res = sub.add_parser("restore", help="load an archived day back into PostgreSQL")
    res.add_argument("day", type=_day, help="the UTC day (YYYY-MM-DD)")
    res.add_argument("--table", help="only this data table (default: every one)")
    res.add_argument("--app", help="only this app's rows")
    res.set_defaults(
        func=lambda a: _command(lambda pool, s: _restore(pool, s, a.day, a.table, a.app))
    )
    rel = sub.add_parser("release", help="drop a restored day again")
    rel.add_argument("day", type=_day, help="the UTC day (YYYY-MM-DD)")
    rel.add_argument("--table", help="only this data table (default: every one)")
    rel.set_defaults(func=lambda a: _command(lambda pool, s: _release(pool, a.day, a.table)))


def _command(
    command: Callable[[asyncpg.Pool, Settings], Awaitable[int]], *, create: bool = True
) -> int:
    settings = Settings.load()
    with ready_database(create=create) as url:
        try:
            return run_with_pool(url, lambda pool: command(pool, settings))
        except ArchiveError as error:
            print(f"drain: {error}", file=sys.stderr)
            return 1


def _tables(name: str | None) -> dict[str, DataTable]:
    if name is None:
        return dict(TABLES)
    if name not in TABLES:
        raise SettingsError(f"--table {name}: not a data table ({', '.join(TABLES)})")
    return {name: TABLES[name]}


def run_archive(settings: Settings, observer: Callable[[str, str], None] | None = None) -> int:
    """``drain archive``: one archiving run now (see the module docstring); the exit code.

    ``observer`` hears each step (drain.archive.archiver.STEPS) with its detail; by
    default the steps that end a file or a partition are printed.

    Raises:
        SettingsError: the settings do not validate.
    """
    config = settings.archive_config()
    if config is None:
        print(
            "drain: archiving is off: set DRAIN_ARCHIVE_URL (s3://bucket/prefix or a "
            "directory), or DRAIN_ARCHIVE=true on the embedded PostgreSQL",
            file=sys.stderr,
        )
        return 2
    policy = settings.retention_policy()

    def show(step: str, detail: str) -> None:
        if step in ("file_recorded", "verified", "done"):
            print(f"{step:<14} {detail}", flush=True)

    async def run(pool: asyncpg.Pool) -> int:
        from drain.archive.archiver import Archiver
        from drain.store.lifecycle import maintain

        archiver = Archiver(pool, config, observer=observer or show)
        report = await maintain(pool, policy, guard=archiver, retire_only=True)
        for name, why in report.kept:
            print(f"kept           {name}: {why}")
        for name, why in report.failed:
            print(f"FAILED         {name}: {why} (kept; retried by the next run)")
        print(
            f"archive {archiver.destination.url}: {len(report.dropped)} partitions archived "
            f"and dropped, {len(report.failed)} failed, {len(report.kept)} kept"
        )
        return 1 if report.failed else 0

    with ready_database() as url:
        return run_with_pool(url, run)


async def _list(pool: asyncpg.Pool, table: str | None) -> int:
    from drain.archive.status import archived_days
    from drain.cli.partitions import format_bytes

    async with pool.acquire() as conn:
        days = await archived_days(conn, table)
    print(
        f"{'TABLE':<16} {'DAY (UTC)':<10}  {'STATE':<9} {'GEN':>3} {'FILES':>5} "
        f"{'ROWS':>12} {'PARQUET':>10}  RESTORED / ERROR"
    )
    for d in days:
        note = ""
        if d.restored_apps:
            note = "restored: " + ", ".join(a or "''" for a in d.restored_apps)
        elif d.error:
            note = d.error
        print(
            f"{d.table:<16} {d.day.isoformat():<10}  {d.state:<9} {d.generations:>3} "
            f"{d.files:>5} {d.rows:>12,} {format_bytes(d.size_bytes):>10}  {note}"
        )
    total_rows = sum(d.rows for d in days)
    total_bytes = sum(d.size_bytes for d in days)
    print(f"{len(days)} days; {total_rows:,} rows in {format_bytes(total_bytes)} of Parquet")
    return 0


def _destinations(settings: Settings) -> Callable[[str], Destination]:
    """The destination of a recorded URL, with this drain's S3 endpoint and region."""
    import dataclasses

    from drain.archive.config import ArchiveConfig
    from drain.archive.destination import open_destination

    config = settings.archive_config() or ArchiveConfig(
        url="",
        file_max_bytes=settings.drain_archive_file_max_bytes,
        endpoint_url=settings.aws_endpoint_url,
        region=settings.aws_region or "us-east-1",
    )
    return lambda url: open_destination(dataclasses.replace(config, url=url))


async def _verify(
    pool: asyncpg.Pool, settings: Settings, day: date | None, table: str | None
) -> int:
    from drain.archive.columns import schema_of
    from drain.archive.layout import Checksum
    from drain.archive.parquet import read_back
    from drain.archive.restore import manifest_of
    from drain.errors import ArchiveMismatch

    destinations = _destinations(settings)
    async with pool.acquire() as conn:
        generations = await conn.fetch(
            """SELECT * FROM archive_partitions
                WHERE state IN ('verified', 'dropped')
                  AND ($1::date IS NULL OR day = $1) AND ($2::text IS NULL OR table_name = $2)
                ORDER BY table_name, day, generation""",
            day,
            table,
        )
        bad = checked = 0
        for gen in generations:
            manifest = manifest_of(gen)
            schema = schema_of(
                gen["table_name"],
                manifest["columns"],
                manifest["time_column"],
                manifest["app_column"],
            )
            destination = destinations(gen["destination"])
            files = await conn.fetch(
                """SELECT * FROM archive_files
                    WHERE table_name = $1 AND day = $2 AND generation = $3 ORDER BY path""",
                gen["table_name"],
                gen["day"],
                gen["generation"],
            )
            for f in files:
                checked += 1
                try:
                    stats = await asyncio.to_thread(
                        read_back,
                        destination,
                        f["path"],
                        schema,
                        app=f["app"],
                        day=gen["day"],
                        size=f["bytes"],
                        sha256=f["sha256"],
                    )
                    if stats.checksum != Checksum.parse(f["rows"], f["checksum"]):
                        raise ArchiveMismatch(f["path"], "its rows are not the rows archived")
                except (ArchiveMismatch, OSError) as error:
                    bad += 1
                    print(f"FAILED  {error}")
                    continue
                print(f"ok      {f['path']} ({stats.rows:,} rows)")
    print(f"{checked} files checked, {bad} failed")
    return 1 if bad else 0


async def _restore(
    pool: asyncpg.Pool, settings: Settings, day: date, table: str | None, app: str | None
) -> int:
    from drain.archive.restore import restore_day

    results = await restore_day(
        pool,
        _destinations(settings),
        day,
        tables=_tables(table),
        app=app,
    )
    for r in results:
        who = "" if r.app is None else f" app {r.app or repr('')}"
        print(f"{r.status:<17} {r.table} {r.day}{who}: {r.rows:,} rows")
    return 0


async def _release(pool: asyncpg.Pool, day: date, table: str | None) -> int:
    from drain.archive.restore import release_day

    results = await release_day(pool, day, tables=_tables(table))
    for r in results:
        who = "" if r.app is None else f" app {r.app or repr('')}"
        print(f"{r.status:<17} {r.table} {r.day}{who}: {r.rows:,} rows")
    return 0
