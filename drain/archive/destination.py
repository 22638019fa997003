"""Where the archive's files go: a local directory, or an S3 (or S3-compatible) bucket.

DRAIN_ARCHIVE_URL is either a local directory (a path, ``~`` expanded, or a ``file://``
URL) or ``s3://bucket/prefix``. S3 goes through pyarrow's S3 filesystem (the AWS C++ SDK):
credentials come from the standard AWS variables (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``) or the SDK's other sources (profile,
instance role); AWS_ENDPOINT_URL points it at an S3-compatible server (path-style
addressing), AWS_REGION names the bucket's region.

Every file is written whole or not at all under its final name:

- local: written to ``.<name>.tmp`` beside it, flushed and fsync'ed, renamed (atomic on
  POSIX), and the directory fsync'ed, so a file that a manifest lists survives a power cut;
- S3: a multipart upload, which S3 makes visible only when it completes (a process killed
  mid-upload leaves no object, only an incomplete upload that a bucket lifecycle rule
  ``AbortIncompleteMultipartUpload`` removes).

Each :class:`FileSink` counts the bytes it wrote and their SHA-256 (FIPS 180-4), which the
manifest records; a read-back (:meth:`Destination.fetch`) computes both again from what
the destination returns.
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow.fs as pafs

from drain.archive.config import ArchiveConfig
from drain.errors import ArchiveError

__all__ = [
    "Destination",
    "FetchedFile",
    "FileSink",
    "LocalDestination",
    "S3Destination",
    "display_url",
    "open_destination",
]

_CHUNK = 1 << 20


def display_url(url: str) -> str:
    """``url`` without any user name or password (what logs, manifests and the database
    record)."""
    parts = urlsplit(url)
    if parts.scheme and "@" in parts.netloc:
        host = parts.netloc.rpartition("@")[2]
        return parts._replace(netloc=host).geturl()
    return url


class FileSink(abc.ABC):
    """A file being written: :meth:`write` bytes, then :meth:`commit` or :meth:`abort`.

    A file-like object (``write``, ``tell``, ``flush``, ``closed``) that
    :class:`pyarrow.parquet.ParquetWriter` accepts.

    Attributes:
        size: bytes written so far. sha256: the hash object of those bytes.
    """

    def __init__(self, target: object) -> None:
        self._target = target
        self.size = 0
        self.sha256 = hashlib.sha256()
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Write ``data``; returns its length."""
        view = memoryview(data)
        self.sha256.update(view)
        self._target.write(view)  # type: ignore[attr-defined]
        self.size += len(view)
        return len(view)

    def tell(self) -> int:
        """Bytes written so far."""
        return self.size

    def flush(self) -> None:
        """Nothing to do: :meth:`commit` flushes."""
        return None

    def writable(self) -> bool:
        """True."""
        return True

    @abc.abstractmethod
    def commit(self) -> None:
        """Make the file visible under its final name, complete.

        Raises:
            OSError: the destination refused it.
        """

    @abc.abstractmethod
    def abort(self) -> None:
        """Give the file up (best effort; the caller deletes what may remain)."""


class _LocalSink(FileSink):
    def __init__(self, final: Path) -> None:
        final.parent.mkdir(parents=True, exist_ok=True)
        self._final = final
        self._temporary = final.with_name(f".{final.name}.tmp")
        self._file = open(self._temporary, "wb")  # noqa: SIM115 (closed by commit/abort)
        super().__init__(self._file)

    def commit(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self._temporary, self._final)
        _fsync_dir(self._final.parent)
        self.closed = True

    def abort(self) -> None:
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self._temporary.unlink()
        self.closed = True


class _S3Sink(FileSink):
    def __init__(self, stream: object) -> None:
        self._stream = stream
        super().__init__(stream)

    def commit(self) -> None:
        self._stream.close()  # type: ignore[attr-defined]  # completes the multipart upload
        self.closed = True

    def abort(self) -> None:
        # pyarrow has no abort: closing completes the upload; the caller deletes the object
        with contextlib.suppress(OSError):
            self._stream.close()  # type: ignore[attr-defined]
        self.closed = True


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True)
class FetchedFile:
    """A file read back from the destination: a local path to parse, its size and SHA-256
    (hex) as the destination returned it."""

    path: Path
    size: int
    sha256: str


class Destination(abc.ABC):
    """The archive's destination (a local directory or an S3 prefix); paths are relative
    to it, ``/``-separated (drain.archive.layout)."""

    url: str

    @abc.abstractmethod
    def create(self, rel: str) -> FileSink:
        """Begin writing the file ``rel`` (see the module docstring).

        Raises:
            OSError: the destination cannot be written.
        """

    @abc.abstractmethod
    def fetch(
        self, rel: str, spool_dir: str | None
    ) -> contextlib.AbstractContextManager[FetchedFile]:
        """Read ``rel`` whole, hashing it; yield it as a local file (an S3 object is
        downloaded into ``spool_dir`` and removed afterwards).

        Raises:
            FileNotFoundError: no such file.
            OSError: the destination cannot be read.
        """

    def put(self, rel: str, data: bytes) -> None:
        """Write the small file ``rel`` (a manifest) whole.

        Raises:
            OSError: the destination cannot be written.
        """
        sink = self.create(rel)
        try:
            sink.write(data)
        except BaseException:
            sink.abort()
            raise
        sink.commit()

    @abc.abstractmethod
    def get(self, rel: str) -> bytes:
        """The content of the small file ``rel``.

        Raises:
            FileNotFoundError: no such file.
        """

    @abc.abstractmethod
    def delete(self, rel: str) -> None:
        """Delete ``rel`` and any temporary file of it; a missing file is no error.

        Raises:
            OSError: the destination refused.
        """

    @abc.abstractmethod
    def size(self, rel: str) -> int | None:
        """The size of ``rel`` in bytes, or None when it does not exist."""

    @abc.abstractmethod
    def walk(self, prefix: str) -> list[str]:
        """Every file under the directory ``prefix`` (relative paths, sorted), temporary
        ones included."""


class LocalDestination(Destination):
    """A directory on this machine (created on first write)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = str(root)

    def _path(self, rel: str) -> Path:
        return self.root.joinpath(*rel.split("/"))

    def create(self, rel: str) -> FileSink:
        return _LocalSink(self._path(rel))

    @contextlib.contextmanager
    def fetch(self, rel: str, spool_dir: str | None) -> Iterator[FetchedFile]:
        path = self._path(rel)
        digest = hashlib.sha256()
        size = 0
        with open(path, "rb") as source:
            while chunk := source.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
        yield FetchedFile(path, size, digest.hexdigest())

    def get(self, rel: str) -> bytes:
        return self._path(rel).read_bytes()

    def delete(self, rel: str) -> None:
        path = self._path(rel)
        for victim in (path, path.with_name(f".{path.name}.tmp")):
            with contextlib.suppress(FileNotFoundError):
                victim.unlink()

    def size(self, rel: str) -> int | None:
        try:
            return self._path(rel).stat().st_size
        except FileNotFoundError:
            return None

    def walk(self, prefix: str) -> list[str]:
        top = self._path(prefix)
        found = []
        for folder, _, files in os.walk(top):
            for name in files:
                found.append(Path(folder, name).relative_to(self.root).as_posix())
        return sorted(found)


class S3Destination(Destination):
    """``s3://bucket/prefix`` through pyarrow's S3 filesystem."""

    def __init__(self, url: str, filesystem: pafs.FileSystem, base: str) -> None:
        self.url = url
        self._fs = filesystem
        self._base = base.strip("/")

    def _key(self, rel: str) -> str:
        return f"{self._base}/{rel}" if self._base else rel

    def create(self, rel: str) -> FileSink:
        return _S3Sink(self._fs.open_output_stream(self._key(rel)))

    @contextlib.contextmanager
    def fetch(self, rel: str, spool_dir: str | None) -> Iterator[FetchedFile]:
        digest = hashlib.sha256()
        size = 0
        handle, name = tempfile.mkstemp(prefix="drain-archive-", suffix=".parquet", dir=spool_dir)
        try:
            source = self._fs.open_input_stream(self._key(rel))
            with os.fdopen(handle, "wb") as spool, source as src:
                while chunk := src.read(_CHUNK):
                    digest.update(chunk)
                    spool.write(chunk)
                    size += len(chunk)
            yield FetchedFile(Path(name), size, digest.hexdigest())
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)

    def get(self, rel: str) -> bytes:
        with self._fs.open_input_stream(self._key(rel)) as src:
            return bytes(src.read())

    def delete(self, rel: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._fs.delete_file(self._key(rel))

    def size(self, rel: str) -> int | None:
        info = self._fs.get_file_info(self._key(rel))
        return info.size if info.type == pafs.FileType.File else None

    def walk(self, prefix: str) -> list[str]:
        selector = pafs.FileSelector(self._key(prefix), recursive=True, allow_not_found=True)
        skip = len(self._base) + 1 if self._base else 0
        return sorted(
            info.path[skip:]
            for info in self._fs.get_file_info(selector)
            if info.type == pafs.FileType.File
        )


def open_destination(config: ArchiveConfig) -> Destination:
    """The destination of ``config.url``.

    Raises:
        ArchiveError: the URL is neither a directory nor ``s3://bucket[/prefix]``.
    """
    url = config.url
    parts = urlsplit(url)
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ArchiveError(f"{display_url(url)}: expected s3://bucket/prefix")
        endpoint = config.endpoint_url
        options: dict[str, object] = {"region": config.region}
        if endpoint:
            options["endpoint_override"] = endpoint
            options["scheme"] = urlsplit(endpoint).scheme or "https"
        filesystem = pafs.S3FileSystem(**options)  # type: ignore[arg-type]
        base = f"{parts.netloc}/{parts.path.strip('/')}"
        return S3Destination(display_url(url), filesystem, base)
    if parts.scheme == "file":
        return LocalDestination(Path(parts.path))
    if parts.scheme and len(parts.scheme) > 1:
        raise ArchiveError(f"{display_url(url)}: expected a directory or s3://bucket/prefix")
    return LocalDestination(Path(url).expanduser().resolve())
