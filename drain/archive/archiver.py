"""Archive an expiring partition to Parquet, verify it, and only then let retention drop it.

:class:`Archiver` is the :class:`drain.store.lifecycle.RetirementGuard` that maintenance
(``drain clock``, ``drain partitions maintain``, ``drain archive``) consults for each
partition past retention. Per partition, a *generation* (table archive_partitions,
migration 0400) moves through these steps; the name of each is what the observer hears
when it is done (:data:`STEPS`), and a process killed right after any of them loses no
row and duplicates no file (tests/archive/test_sigkill.py kills it at each):

``planned``
    the generation's row is committed (state ``writing``) with the partition's oid.
``file_started``
    a data file's row (archive_files, state ``writing``) is committed, *before* the file
    is created: whatever a killed run leaves in the destination is known.
``row_group_written``
    the first row group of a file is written (a local ``.tmp`` file or an S3 upload in
    progress; neither is visible under the final name).
``file_closed``
    the file is complete under its final name (renamed, or the upload completed).
``file_recorded``
    its rows, bytes, SHA-256 and time range are committed (state ``written``).
``written``
    every file is; the generation is ``written``.
``read_back``
    every file was read back from the destination and measured (size, SHA-256, Parquet
    page checksums, rows, time range, order, app, key checksum) and the sums per app
    agree with what PostgreSQL computes from the partition itself.
``manifest_written``
    the manifest file is in the destination and reads back identical.
``verified``
    the generation is ``verified``: its manifest is in the database too.
``detached``
    (maintenance detached the partition) the detached table still has the verified
    row count and oid.
``dropped``
    (maintenance dropped the table) ...
``done``
    ... and the generation is ``dropped``.

A rerun resumes: a ``writing`` generation has every file its rows name deleted and is
written again (no file is ever listed twice: each file has a fresh UUID and a row, and a
manifest lists only the files of one verified attempt); a ``written`` one is verified;
a ``verified`` one is dropped; a ``verified`` one whose table is gone (killed after the
DROP) is marked ``dropped``. A failed verification deletes the files and leaves the
generation ``writing`` for the next run. A failure at any step is recorded on the
generation (failures, last_error, last_error_step: ``/health`` warns, the
``drain_archive_failures_total`` metric counts) and leaves the partition in PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pyarrow as pa

from drain.archive.columns import TableSchema, quote_ident, table_schema
from drain.archive.config import ArchiveConfig
from drain.archive.destination import Destination, open_destination
from drain.archive.layout import Checksum, data_file, manifest_file
from drain.archive.parquet import FileStats, PartWriter, app_runs, csv_batches, read_back
from drain.errors import ArchiveError, ArchiveMismatch
from drain.store.database import Conn
from drain.store.lifecycle import Hold, PartitionRow
from drain.store.tables import TABLES, DataTable

__all__ = [
    "ARCHIVE_FAULTS",
    "EXPORT_WORK_MEM",
    "MANIFEST_FORMAT",
    "STEPS",
    "Archiver",
    "Observer",
    "describe_fault",
    "file_stats_of",
]

log = logging.getLogger("drain.archive")

#: the steps of one partition's archive, in order (see the module docstring)
STEPS = (
    "planned",
    "file_started",
    "row_group_written",
    "file_closed",
    "file_recorded",
    "written",
    "read_back",
    "manifest_written",
    "verified",
    "detached",
    "dropped",
    "done",
)

#: PostgreSQL's work_mem for the export's sort (per export; the default 4MB sorts on disk)
EXPORT_WORK_MEM = "64MB"

#: the ``format`` of a manifest file
MANIFEST_FORMAT = "drain-archive-manifest/1"

#: called with (step, detail) after each step: the CLI prints progress, a test may stop
Observer = Callable[[str, str], None]

#: the errors a step may meet; each becomes a recorded failure, never an escape
ARCHIVE_FAULTS = (
    OSError,
    TimeoutError,
    pa.ArrowException,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    ArchiveError,
)


def describe_fault(exc: BaseException) -> str:
    """``Class: message`` of an error, for the database and the log."""
    return f"{type(exc).__name__}: {exc}"


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


@dataclass(frozen=True, slots=True)
class _Generation:
    table: str
    day: date
    generation: int
    partition: str
    oid: int
    state: str
    rows: int | None


@dataclass(slots=True)
class _Open:
    """The file being written: its row and its writer."""

    path: str
    app: str
    writer: PartWriter
    groups: int = 0


def file_stats_of(record: asyncpg.Record | Mapping[str, Any]) -> dict[str, Any]:
    """A manifest's entry for one file (an archive_files row)."""
    return {
        "path": record["path"],
        "app": record["app"],
        "rows": record["rows"],
        "bytes": record["bytes"],
        "sha256": record["sha256"],
        "checksum": record["checksum"],
        "min_time": _iso(record["min_time"]),
        "max_time": _iso(record["max_time"]),
    }


class Archiver:
    """The archive step of retention (see the module docstring).

    Args:
        pool: a pool on DATABASE_URL; the export reads the partition on a connection of
            its own, besides the maintenance's.
        config: where and how (drain.settings.Settings.archive_config).
        destination: the destination (default: :func:`open_destination` of the config).
        observer: told each step as it completes.
        tables: the data tables by name (default: drain.store.tables.TABLES).
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        config: ArchiveConfig,
        *,
        destination: Destination | None = None,
        observer: Observer | None = None,
        tables: Mapping[str, DataTable] | None = None,
    ) -> None:
        self._pool = pool
        self._config = config
        self.destination = destination or open_destination(config)
        self._observer = observer
        self._tables = dict(TABLES if tables is None else tables)

    def _observe(self, step: str, detail: str) -> None:
        if self._observer is not None:
            self._observer(step, detail)

    # ----------------------------------------------------------------- the guard

    async def start(self, conn: Conn) -> None:
        """Mark ``dropped`` each verified generation whose table is gone (a run killed
        between the DROP and its record)."""
        await conn.execute(
            """UPDATE archive_partitions p SET state = 'dropped', dropped_at = now()
                WHERE state = 'verified' AND NOT EXISTS (
                      SELECT 1 FROM pg_class c
                       WHERE c.oid = p.partition_oid AND c.relname = p.partition_name)"""
        )

    async def before_detach(self, conn: Conn, row: PartitionRow) -> Hold | None:
        """Archive and verify ``row`` unless done; None when it may be detached."""
        table = self._tables.get(row.table)
        if table is None:
            return Hold(f"{row.table} is not a registered data table", failed=True)
        restored = await conn.fetchval(
            "SELECT count(*) FROM archive_restores WHERE table_name = $1 AND day = $2",
            row.table,
            row.day,
        )
        if restored:
            return Hold(
                f"restored from the archive: kept until `drain archive release {row.day}`",
                failed=False,
            )
        step = ["plan"]
        try:
            await self._archive(conn, table, row, step)
        except ARCHIVE_FAULTS as exc:
            await self._failed(conn, row, step[0], exc)
            return Hold(f"archive failed at {step[0]}: {describe_fault(exc)}", failed=True)
        return None

    async def before_drop(self, conn: Conn, row: PartitionRow) -> Hold | None:
        """``row`` is detached: None when it still is what was verified."""
        self._observe("detached", row.name)
        try:
            gen = await self._latest(conn, row.table, row.day)
            oid = await self._oid(conn, row.name)
            count = await conn.fetchval(f"SELECT count(*) FROM {quote_ident(row.name)}")
            if gen is None or gen.state != "verified" or gen.oid != oid or gen.rows != count:
                if gen is not None and gen.state == "verified":
                    await self._set_state(conn, gen, "writing")
                raise ArchiveMismatch(
                    row.name,
                    f"holds {count} rows, not the {gen.rows if gen else 0} verified: "
                    "archived again by the next run",
                )
        except ARCHIVE_FAULTS as exc:
            await self._failed(conn, row, "drop", exc)
            return Hold(f"not dropped: {describe_fault(exc)}", failed=True)
        return None

    async def after_drop(self, conn: Conn, row: PartitionRow) -> None:
        """``row`` was dropped: its generation is ``dropped``."""
        self._observe("dropped", row.name)
        await conn.execute(
            """UPDATE archive_partitions SET state = 'dropped', dropped_at = now()
                WHERE table_name = $1 AND day = $2 AND state = 'verified'""",
            row.table,
            row.day,
        )
        self._observe("done", row.name)

    # ----------------------------------------------------------------- steps

    async def _archive(
        self, conn: Conn, table: DataTable, row: PartitionRow, step: list[str]
    ) -> None:
        oid = await self._oid(conn, row.name)
        gen = await self._latest(conn, row.table, row.day)
        if gen is None or gen.state == "dropped":
            number = 1 if gen is None else gen.generation + 1
            await conn.execute(
                """INSERT INTO archive_partitions (table_name, day, generation, partition_name,
                        partition_oid, state, destination)
                   VALUES ($1, $2, $3, $4, $5, 'writing', $6)""",
                row.table,
                row.day,
                number,
                row.name,
                oid,
                self.destination.url,
            )
            gen = _Generation(row.table, row.day, number, row.name, oid, "writing", None)
            self._observe("planned", f"{row.name} generation {number}")
        elif gen.oid != oid:
            # the table was dropped and made again since this generation began
            await conn.execute(
                """UPDATE archive_partitions SET partition_oid = $4, partition_name = $5
                    WHERE table_name = $1 AND day = $2 AND generation = $3""",
                gen.table,
                gen.day,
                gen.generation,
                oid,
                row.name,
            )
            gen = await self._set_state(conn, gen, "writing")
        schema = await table_schema(conn, table)
        if gen.state == "writing":
            step[0] = "write"
            await self._discard(conn, gen)
            await self._write(conn, schema, gen)
            gen = await self._set_state(conn, gen, "written")
            self._observe("written", row.name)
        if gen.state == "written":
            step[0] = "verify"
            try:
                await self._verify(conn, schema, gen)
            except ArchiveMismatch:
                await self._discard(conn, gen)
                await self._set_state(conn, gen, "writing")
                raise

    async def _write(self, conn: Conn, schema: TableSchema, gen: _Generation) -> None:
        """Export the partition and write its files (steps file_started .. file_recorded)."""
        spool = await self._export(schema, gen.partition)
        current: _Open | None = None
        pending: list[pa.RecordBatch] = []
        try:
            batches = csv_batches(spool, schema)
            while (batch := await asyncio.to_thread(next, batches, None)) is not None:
                for app, run in app_runs(batch, schema.app_column):
                    if current is not None and current.app != app:
                        await self._group(current, pending)
                        await self._finish(conn, current)
                        current = None
                    if current is None:
                        current = await self._begin(conn, schema, gen, app)
                    pending.append(run)
                    if sum(b.num_rows for b in pending) >= self._config.row_group_rows:
                        await self._group(current, pending)
                        if current.writer.sink.size >= self._config.file_max_bytes:
                            await self._finish(conn, current)
                            current = None
            if current is not None:
                await self._group(current, pending)
                await self._finish(conn, current)
                current = None
        except BaseException:
            if current is not None:
                with contextlib.suppress(*ARCHIVE_FAULTS):
                    await asyncio.to_thread(current.writer.abort)
            raise
        finally:
            with contextlib.suppress(FileNotFoundError):
                spool.unlink()

    async def _export(self, schema: TableSchema, partition: str) -> Path:
        """The partition as CSV in a spool file, sorted by app then time."""
        handle, name = tempfile.mkstemp(
            prefix="drain-export-", suffix=".csv", dir=self._config.spool_dir
        )
        os.close(handle)
        try:
            async with self._pool.acquire() as export, export.transaction(readonly=True):
                # the sort by app and time: in memory up to this, then on disk
                await export.execute(f"SET LOCAL work_mem = '{EXPORT_WORK_MEM}'")
                await export.copy_from_query(
                    schema.export_query(partition), output=Path(name), format="csv"
                )
        except BaseException:
            os.unlink(name)
            raise
        return Path(name)

    async def _begin(self, conn: Conn, schema: TableSchema, gen: _Generation, app: str) -> _Open:
        path = data_file(gen.table, app, gen.day, uuid.uuid4())
        await conn.execute(
            """INSERT INTO archive_files (path, table_name, day, generation, app, state)
               VALUES ($1, $2, $3, $4, $5, 'writing')""",
            path,
            gen.table,
            gen.day,
            gen.generation,
            app,
        )
        self._observe("file_started", path)
        metadata = {
            "drain.table": gen.table,
            "drain.day": gen.day.isoformat(),
            "drain.generation": str(gen.generation),
            "drain.app": app,
        }
        sink = await asyncio.to_thread(self.destination.create, path)
        try:
            writer = PartWriter(sink, schema, metadata)
        except BaseException:
            sink.abort()
            raise
        return _Open(path, app, writer)

    async def _group(self, current: _Open, pending: list[pa.RecordBatch]) -> None:
        if not pending:
            return
        batches = list(pending)
        pending.clear()
        await asyncio.to_thread(current.writer.write, batches)
        current.groups += 1
        if current.groups == 1:
            self._observe("row_group_written", current.path)

    async def _finish(self, conn: Conn, current: _Open) -> None:
        writer = current.writer
        await asyncio.to_thread(writer.close)
        self._observe("file_closed", current.path)
        await conn.execute(
            """UPDATE archive_files SET state = 'written', rows = $2, bytes = $3, sha256 = $4,
                      min_time = $5, max_time = $6
                WHERE path = $1""",
            current.path,
            writer.rows,
            writer.sink.size,
            writer.sink.sha256.hexdigest(),
            writer.min_time,
            writer.max_time,
        )
        self._observe("file_recorded", current.path)

    async def _verify(self, conn: Conn, schema: TableSchema, gen: _Generation) -> None:
        """Read every file back, compare with the partition, write the manifest."""
        files = await conn.fetch(
            """SELECT * FROM archive_files
                WHERE table_name = $1 AND day = $2 AND generation = $3 ORDER BY path""",
            gen.table,
            gen.day,
            gen.generation,
        )
        unfinished = [f["path"] for f in files if f["state"] != "written"]
        if unfinished:
            raise ArchiveMismatch(unfinished[0], "was never finished")

        def measure() -> list[FileStats]:
            return [
                read_back(
                    self.destination,
                    f["path"],
                    schema,
                    app=f["app"],
                    day=gen.day,
                    size=f["bytes"],
                    sha256=f["sha256"],
                    spool_dir=self._config.spool_dir,
                )
                for f in files
            ]

        # PostgreSQL and the read-back work at once; both finish before either's error
        # is raised (the connection is used again right after)
        in_db, measured = await asyncio.gather(
            conn.fetch(schema.stats_query(gen.partition)),
            asyncio.to_thread(measure),
            return_exceptions=True,
        )
        for outcome in (measured, in_db):
            if isinstance(outcome, BaseException):
                raise outcome
        assert isinstance(in_db, list) and isinstance(measured, list)
        partition = {
            r["app"]: (Checksum.of_sums(r["rows"], int(r["sum_a"]), int(r["sum_b"])), r)
            for r in in_db
        }
        archived: dict[str, Checksum] = {}
        for record, stats in zip(files, measured, strict=True):
            if stats.rows != record["rows"]:
                written = record["rows"]
                raise ArchiveMismatch(record["path"], f"{stats.rows} rows, {written} written")
            archived[record["app"]] = archived.get(record["app"], Checksum()) + stats.checksum
        for app in sorted(set(partition) | set(archived)):
            want = partition[app][0] if app in partition else Checksum()
            got = archived.get(app, Checksum())
            if want != got:
                raise ArchiveMismatch(
                    gen.partition,
                    f"app {app!r}: the partition has {want.rows} rows (checksum {want.hex}),"
                    f" the files {got.rows} (checksum {got.hex})",
                )
        self._observe("read_back", gen.partition)
        entries = []
        for record, stats in zip(files, measured, strict=True):
            entry = file_stats_of(record)
            entry["checksum"] = stats.checksum.hex
            entries.append(entry)
        total = sum((s.checksum for s in measured), Checksum())
        times = [r for _, r in partition.values()]
        low = min((r["min_time"] for r in times), default=None)
        high = max((r["max_time"] for r in times), default=None)
        rel = manifest_file(gen.table, gen.day, gen.generation)
        manifest = {
            "format": MANIFEST_FORMAT,
            "table": gen.table,
            "day": gen.day.isoformat(),
            "generation": gen.generation,
            "partition": gen.partition,
            "destination": self.destination.url,
            "verified_at": datetime.now(UTC).isoformat(),
            "time_column": schema.time_column,
            "app_column": schema.app_column,
            "sorted_by": [schema.time_column],
            "columns": schema.describe(),
            "checksum": {"rows": total.rows, "md5_lanes": total.hex},
            "rows": total.rows,
            "bytes": sum(s.size for s in measured),
            "min_time": _iso(low),
            "max_time": _iso(high),
            "files": entries,
        }
        data = orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
        await asyncio.to_thread(self.destination.put, rel, data)
        if await asyncio.to_thread(self.destination.get, rel) != data:
            raise ArchiveMismatch(rel, "the manifest read back differs from what was written")
        self._observe("manifest_written", rel)
        async with conn.transaction():
            for entry in entries:
                await conn.execute(
                    "UPDATE archive_files SET checksum = $2 WHERE path = $1",
                    entry["path"],
                    entry["checksum"],
                )
            await conn.execute(
                """UPDATE archive_partitions SET state = 'verified', rows = $4, bytes = $5,
                          files = $6, checksum = $7, min_time = $8, max_time = $9,
                          manifest_path = $10, manifest = $11::jsonb, verified_at = now(),
                          last_error = NULL, last_error_step = NULL
                    WHERE table_name = $1 AND day = $2 AND generation = $3""",
                gen.table,
                gen.day,
                gen.generation,
                total.rows,
                manifest["bytes"],
                len(entries),
                total.hex,
                low,
                high,
                rel,
                data.decode("utf-8"),
            )
        self._observe("verified", gen.partition)

    async def _discard(self, conn: Conn, gen: _Generation) -> None:
        """Delete every file an unfinished attempt of ``gen`` may have left, then its rows."""
        paths = [
            r["path"]
            for r in await conn.fetch(
                """SELECT path FROM archive_files
                    WHERE table_name = $1 AND day = $2 AND generation = $3""",
                gen.table,
                gen.day,
                gen.generation,
            )
        ]
        for path in paths:
            await asyncio.to_thread(self.destination.delete, path)
        await asyncio.to_thread(
            self.destination.delete, manifest_file(gen.table, gen.day, gen.generation)
        )
        await conn.execute("DELETE FROM archive_files WHERE path = ANY($1::text[])", paths)

    # ----------------------------------------------------------------- records

    async def _oid(self, conn: Conn, name: str) -> int:
        oid = await conn.fetchval("SELECT to_regclass($1)::oid", quote_ident(name))
        if oid is None:
            raise ArchiveError(f"{name}: no such table")
        return int(oid)

    async def _latest(self, conn: Conn, table: str, day: date) -> _Generation | None:
        r = await conn.fetchrow(
            """SELECT table_name, day, generation, partition_name, partition_oid, state, rows
                 FROM archive_partitions WHERE table_name = $1 AND day = $2
                ORDER BY generation DESC LIMIT 1""",
            table,
            day,
        )
        if r is None:
            return None
        return _Generation(
            r["table_name"],
            r["day"],
            r["generation"],
            r["partition_name"],
            int(r["partition_oid"]),
            r["state"],
            r["rows"],
        )

    async def _set_state(self, conn: Conn, gen: _Generation, state: str) -> _Generation:
        await conn.execute(
            """UPDATE archive_partitions SET state = $4
                WHERE table_name = $1 AND day = $2 AND generation = $3""",
            gen.table,
            gen.day,
            gen.generation,
            state,
        )
        return _Generation(
            gen.table, gen.day, gen.generation, gen.partition, gen.oid, state, gen.rows
        )

    async def _failed(self, conn: Conn, row: PartitionRow, step: str, exc: BaseException) -> None:
        message = describe_fault(exc)
        log.warning("archive of %s failed at %s: %s", row.name, step, message)
        with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
            await conn.execute(
                """UPDATE archive_partitions SET failures = failures + 1, last_error = $3,
                          last_error_step = $4, last_error_at = now()
                    WHERE (table_name, day, generation) = (
                          SELECT table_name, day, max(generation) FROM archive_partitions
                           WHERE table_name = $1 AND day = $2 GROUP BY table_name, day)""",
                row.table,
                row.day,
                message,
                step,
            )
