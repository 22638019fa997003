"""The Parquet archive: expiring partitions written to a directory or S3, verified, listed,
restorable, before retention drops them (docs/archive.md).

- :mod:`drain.archive.config`: what it needs (ArchiveConfig, from the settings);
- :mod:`drain.archive.layout`: where each file lives (Hive layout) and the row checksum (pure);
- :mod:`drain.archive.columns`: a table's columns as Parquet columns, each row's key;
- :mod:`drain.archive.destination`: a local directory or an S3 bucket (pyarrow);
- :mod:`drain.archive.parquet`: the CSV export read as Arrow, files written and read back;
- :mod:`drain.archive.archiver`: the steps of one partition, the guard retention consults;
- :mod:`drain.archive.restore`: a day loaded back exactly once, and released again;
- :mod:`drain.archive.status`: what the archive tables say (/health, /metrics, list).

This package imports only the light modules: pyarrow is loaded by those that need it, so
the web workers (which read :mod:`drain.archive.status`) do not pay for it.
"""

from drain.archive.config import ArchiveConfig
from drain.archive.layout import Checksum
from drain.archive.status import ArchivedDay, FailedArchive

__all__ = ["ArchiveConfig", "ArchivedDay", "Checksum", "FailedArchive"]
