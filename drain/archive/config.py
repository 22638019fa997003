"""What the archive needs to run: where it writes and how big its files grow (pure data).

Built by :meth:`drain.settings.Settings.archive_config` (None when archiving is off); the
setting-backed fields have no default of their own.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ArchiveConfig"]


@dataclass(frozen=True, slots=True)
class ArchiveConfig:
    """Where and how expiring partitions are archived (docs/archive.md).

    Fields:
        url: the destination: a local directory (an absolute path) or ``s3://bucket/prefix``
            (DRAIN_ARCHIVE_URL, or the per-user default on the embedded PostgreSQL).
        file_max_bytes: a Parquet file is closed, and the next one of the same app and day
            begun, once it holds this many bytes (DRAIN_ARCHIVE_FILE_MAX_BYTES); a file may
            pass it by at most one row group.
        endpoint_url: the S3 endpoint for ``s3://`` (AWS_ENDPOINT_URL): an S3-compatible
            server (MinIO, moto); None: AWS's own.
        region: the bucket's AWS region (AWS_REGION).
        row_group_rows: rows per Parquet row group (the unit readers skip by min/max).
        spool_dir: where the export spools a partition as CSV and a read-back downloads a
            file (None: the system's temporary directory).
    """

    url: str
    file_max_bytes: int
    endpoint_url: str | None
    region: str
    row_group_rows: int = 131_072
    spool_dir: str | None = None
