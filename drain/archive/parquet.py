"""Parquet in and out: the partition's CSV export read as Arrow batches, files written with
zstd and page checksums, and a file read back and measured (pyarrow; no format code here).

Export: PostgreSQL writes the partition, sorted by app (bytewise) then time, as CSV
(``COPY (SELECT ...) TO STDOUT (FORMAT csv)``, RFC 4180 quoting) into a spool file; pyarrow's
streaming CSV reader turns it into batches of the archive's types
(:meth:`drain.archive.columns.Column.csv_type`). An unquoted empty field is NULL and a quoted
one the empty string, as PostgreSQL writes them.

Files: one app's rows of one day per file, split when :attr:`ArchiveConfig.file_max_bytes`
is reached; row groups of :attr:`ArchiveConfig.row_group_rows` rows; zstd; a CRC-32 per page
(``write_page_checksum``), checked when read back; statistics per row group (min/max of
the time column, so readers skip row groups); the time column declared as the sort order.

Read-back (:func:`read_back`): the file as the destination returns it, its size and
SHA-256 against what was written, the Parquet footer and every page (checksums verified),
the schema, then per row: the count, min/max time, that rows are sorted by time, that every
row is the file's app, and the key checksum.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from drain.archive.columns import TableSchema
from drain.archive.destination import Destination, FileSink
from drain.archive.layout import Checksum
from drain.errors import ArchiveMismatch

__all__ = [
    "FileStats",
    "PartWriter",
    "app_runs",
    "csv_batches",
    "measure_file",
    "read_back",
]


def csv_batches(path: Path, schema: TableSchema) -> Iterator[pa.RecordBatch]:
    """The rows of a CSV export of ``schema``'s table, as batches of its Arrow schema."""
    names = schema.names
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(column_names=names, block_size=4 << 20),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types={c.name: c.csv_type for c in schema.columns},
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            true_values=["t"],
            false_values=["f"],
        ),
    )
    target = schema.arrow_schema
    for batch in reader:
        columns = [batch.column(i).cast(target.field(i).type) for i in range(batch.num_columns)]
        yield pa.RecordBatch.from_arrays(columns, schema=target)


def app_runs(batch: pa.RecordBatch, app_column: str) -> list[tuple[str, pa.RecordBatch]]:
    """``batch`` (sorted by app) cut into runs of one app each, in order."""
    if batch.num_rows == 0:
        return []
    encoded: Any = pc.run_end_encode(batch.column(app_column))  # type: ignore[attr-defined]
    ends = encoded.run_ends.to_pylist()
    apps = encoded.values.to_pylist()
    runs = []
    start = 0
    for end, app in zip(ends, apps, strict=True):
        runs.append((str(app), batch.slice(start, end - start)))
        start = end
    return runs


class PartWriter:
    """One Parquet file being written into a :class:`FileSink` (see the module docstring)."""

    def __init__(self, sink: FileSink, schema: TableSchema, metadata: dict[str, str]) -> None:
        self.sink = sink
        self.rows = 0
        self.min_time: datetime | None = None
        self.max_time: datetime | None = None
        self._time = schema.time_column
        arrow_schema = schema.arrow_schema.with_metadata(metadata)
        self._writer = pq.ParquetWriter(
            sink,  # type: ignore[arg-type]  # a file-like object (write, tell, closed)
            arrow_schema,
            compression="zstd",
            write_page_checksum=True,
            write_statistics=True,
            sorting_columns=[pq.SortingColumn(schema.names.index(self._time))],
        )

    def write(self, batches: list[pa.RecordBatch]) -> None:
        """Write ``batches`` as one row group."""
        table = pa.Table.from_batches(batches)
        if table.num_rows == 0:
            return
        self._writer.write_table(table, row_group_size=table.num_rows)
        self.rows += table.num_rows
        low, high = _min_max(table.column(self._time))
        if low is not None:
            self.min_time = low if self.min_time is None else min(self.min_time, low)
        if high is not None:
            self.max_time = high if self.max_time is None else max(self.max_time, high)

    def close(self) -> None:
        """Write the footer and make the file visible (:meth:`FileSink.commit`)."""
        self._writer.close()
        self.sink.commit()

    def abort(self) -> None:
        """Give the file up."""
        try:
            self._writer.close()
        finally:
            self.sink.abort()


def _min_max(values: Any) -> tuple[datetime | None, datetime | None]:
    found = pc.min_max(values)
    low, high = found["min"].as_py(), found["max"].as_py()
    return _utc(low), _utc(high)


def _utc(value: object) -> datetime | None:
    if value is None:
        return None
    assert isinstance(value, datetime)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class FileStats:
    """What a read-back measured of one file.

    Fields:
        rows: rows in it. size: bytes. sha256: hex digest of its bytes.
        checksum: :class:`Checksum` of its rows' keys.
        min_time / max_time: its time column's range (None when it has no rows).
    """

    rows: int
    size: int
    sha256: str
    checksum: Checksum
    min_time: datetime | None
    max_time: datetime | None


def read_back(
    destination: Destination,
    rel: str,
    schema: TableSchema,
    *,
    app: str,
    day: date,
    size: int | None,
    sha256: str | None,
    spool_dir: str | None = None,
) -> FileStats:
    """Read ``rel`` back from ``destination`` and measure it (see the module docstring).

    Args:
        size, sha256: what was written (None: not checked, e.g. a first look).
        app, day: every row must be of this app and fall in this UTC day.

    Raises:
        ArchiveMismatch: the file is missing, its size or SHA-256 differ, it is not
            readable Parquet (cut short, a page checksum fails), its schema is not the
            table's, or a row is out of order, of another app or outside the day.
        OSError: the destination could not be read (a retry may succeed).
    """
    try:
        with destination.fetch(rel, spool_dir) as fetched:
            if size is not None and fetched.size != size:
                raise ArchiveMismatch(rel, f"{fetched.size} bytes, {size} were written")
            if sha256 is not None and fetched.sha256 != sha256:
                raise ArchiveMismatch(rel, "SHA-256 differs from what was written")
            checksum, rows, low, high = measure_file(fetched.path, rel, schema, app, day)
            return FileStats(rows, fetched.size, fetched.sha256, checksum, low, high)
    except FileNotFoundError:
        raise ArchiveMismatch(rel, "missing from the destination") from None


def measure_file(
    path: Path, rel: str, schema: TableSchema, app: str, day: date
) -> tuple[Checksum, int, datetime | None, datetime | None]:
    """Parse the local Parquet file ``path`` (``rel`` in messages) and measure it:
    ``(key checksum, rows, min time, max time)``; the checks of :func:`read_back` but
    size and SHA-256.

    Raises:
        ArchiveMismatch: see :func:`read_back`.
    """
    try:
        parquet = pq.ParquetFile(path, page_checksum_verification=True)
        found = parquet.schema_arrow
    except (pa.ArrowException, OSError) as exc:
        why = f"not readable as Parquet ({type(exc).__name__}: {exc})"
        raise ArchiveMismatch(rel, why) from None
    expected = schema.arrow_schema
    if [(f.name, f.type) for f in found] != [(f.name, f.type) for f in expected]:
        raise ArchiveMismatch(rel, f"schema {found.names} is not the table's {expected.names}")
    lower = datetime(day.year, day.month, day.day, tzinfo=UTC)
    upper = lower + timedelta(days=1)
    checksum = Checksum()
    rows = 0
    low: datetime | None = None
    high: datetime | None = None
    previous: int | None = None
    try:
        for batch in parquet.iter_batches(batch_size=65_536):
            if batch.num_rows == 0:
                continue
            rows += batch.num_rows
            checksum = checksum + schema.key_checksum(batch)
            apps: Any = batch.column(schema.app_column)
            if not pc.all(pc.equal(apps, pa.scalar(app))).as_py():
                raise ArchiveMismatch(rel, f"holds rows of another app than {app!r}")
            micros = batch.column(schema.time_column).cast(pa.int64())
            if micros.null_count:
                raise ArchiveMismatch(rel, "a row has no time")
            if len(micros) > 1 and pc.any(pc.less(micros[1:], micros[:-1])).as_py():
                raise ArchiveMismatch(rel, "rows are not sorted by time")
            first, last = micros[0].as_py(), micros[-1].as_py()
            if previous is not None and first < previous:
                raise ArchiveMismatch(rel, "rows are not sorted by time")
            previous = last
            b_low, b_high = _min_max(batch.column(schema.time_column))
            low = b_low if low is None else low
            high = b_high
    except (pa.ArrowException, OSError) as exc:
        raise ArchiveMismatch(rel, f"unreadable ({type(exc).__name__}: {exc})") from None
    if rows != parquet.metadata.num_rows:
        raise ArchiveMismatch(rel, f"{rows} rows read, its footer says {parquet.metadata.num_rows}")
    if low is not None and high is not None and (low < lower or high >= upper):
        raise ArchiveMismatch(rel, f"rows outside {day.isoformat()} (UTC)")
    return checksum, rows, low, high
