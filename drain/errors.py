"""Every exception drain raises on purpose, in one tree.

Each class says who raises it and what the caller does about it; the modules that raise
them import them from here. Input problems inside a body never escape as exceptions: the
decoder turns them into outcomes (quarantined, or counted as not an event) and only the
refusal of a whole body (:class:`TooManyFrames`, and for OTLP :class:`InvalidOtlpRequest`)
is raised. The tree::

    DrainError
    ├── DecodeError (ValueError)      bytes that are not what the grammar says; carry where
    │   ├── FramingError              no octet-counted frame at ``offset`` (RFC 6587 §3.4.1)
    │   ├── LineError                 a syslog header field does not parse (RFC 5424 §6)
    │   ├── InvalidOtlpRequest        an OTLP body is not an Export*ServiceRequest (400)
    │   └── TooManyFrames             a body holds more frames than the bound (answered 413)
    │       └── TooManyRecords        an OTLP request holds more log records than the bound
    ├── RequestError                  the web layer refuses a request; ``status_code``
    │   └── BodyError                 the body: too large, too slow, corrupt gzip
    │       └── BodyBudgetSpent       the bodies in progress hold the worker's budget
    ├── WriteError                    the writer did not commit a batch (answered 503)
    │   ├── QueueFull                 the write queue is past its bounds; ``retry_after_s``
    │   ├── DatabaseUnavailable       a transient database fault; a retry is safe
    │   └── WriterClosed              the writer is shutting down
    ├── ConfigError (ValueError)      configuration that cannot run; the message names it
    │   ├── SettingsError             environment variables (drain.settings)
    │   └── RollupFormatError         a file of sql/rollups (drain.rollups.spec)
    ├── MigrationError                migrations on disk and in the database disagree
    ├── RollupQueryError              a rollup's query result cannot be written
    ├── ArchiveError                  the Parquet archive (drain.archive) cannot do a step
    │   ├── ArchiveMismatch           a file read back is not what was written (corrupt,
    │   │                             partial, missing) or disagrees with the partition
    │   └── RestoreRefused            a restore or release would mix, lose or duplicate rows
    └── NotReady                      the database cannot serve yet (CLI exit code 1)

Errors raised by libraries (asyncpg, OSError, TimeoutError) are sorted by who is to blame
where they are caught: :func:`drain.store.faults.classify_error` for the writer.
"""

from __future__ import annotations

__all__ = [
    "ArchiveError",
    "ArchiveMismatch",
    "BodyBudgetSpent",
    "BodyError",
    "ConfigError",
    "DatabaseUnavailable",
    "DecodeError",
    "DrainError",
    "FramingError",
    "InvalidOtlpRequest",
    "LineError",
    "MigrationError",
    "NotReady",
    "QueueFull",
    "RequestError",
    "RestoreRefused",
    "RollupFormatError",
    "RollupQueryError",
    "SettingsError",
    "TooManyFrames",
    "TooManyRecords",
    "WriteError",
    "WriterClosed",
]


class DrainError(Exception):
    """Base of every exception drain raises on purpose (see the module docstring)."""


# --------------------------------------------------------------------------- decoding


class DecodeError(DrainError, ValueError):
    """Input bytes that do not follow the grammar; each subclass says where."""


class FramingError(DecodeError):
    """The body stops being a sequence of octet-counted frames at ``offset`` (RFC 6587
    §3.4.1). Raised by :func:`drain.decode.framing.iter_frames`.

    Attributes:
        offset: byte offset in the body where a frame (its MSG-LEN) was expected.
        expected: what was expected there, e.g. ``"a decimal length (1-9 digits, no
            leading zero) followed by a space"``.

    ``str(err)`` reads ``"expected <expected> at byte <offset>"``.
    """

    def __init__(self, offset: int, expected: str) -> None:
        super().__init__(f"expected {expected} at byte {offset}")
        self.offset = offset
        self.expected = expected


class LineError(DecodeError):
    """A syslog line's header does not parse (RFC 5424 §6). Raised by
    :func:`drain.decode.syslog.parse_line`.

    Attributes:
        field: the RFC 5424 field name: ``PRI``, ``VERSION``, ``TIMESTAMP``, ``HOSTNAME``,
            ``APP-NAME``, ``PROCID`` or ``MSGID``.
        column: 1-based byte column in the SYSLOG-MSG where the field was expected.
        expected: what was expected there, e.g. ``"APP-NAME (1-48 printable US-ASCII
            characters)"``.
    """

    def __init__(self, field: str, column: int, expected: str) -> None:
        super().__init__(f"expected {expected} at column {column}")
        self.field = field
        self.column = column
        self.expected = expected


class TooManyFrames(DecodeError):
    """The body holds more than ``max_frames`` frames (DRAIN_MAX_FRAMES_PER_BODY).

    Raised by the Logplex decoder (:mod:`drain.inputs.logplex`) when frame
    ``max_frames + 1`` starts, after at most ``max_frames`` frames were decoded; the web
    layer refuses the whole body (413), so nothing of it is stored.

    Attributes:
        max_frames: the bound.
        offset: byte offset of the first frame past it.
    """

    def __init__(self, max_frames: int, offset: int) -> None:
        super().__init__(
            f"the body holds more than {max_frames} frames (frame {max_frames + 1} "
            f"starts at byte {offset}): send smaller batches"
        )
        self.max_frames = max_frames
        self.offset = offset


class TooManyRecords(TooManyFrames):
    """An OTLP request holds more than ``max_frames`` log records (DRAIN_MAX_FRAMES_PER_BODY
    bounds Logplex frames and OTLP log records alike: the CPU of one body).

    Raised by the OTLP decoder (:mod:`drain.inputs.otlp`) after the body is parsed and
    before any record is decoded; answered 413 (an exporter does not retry it: OTLP
    specification, "OTLP/HTTP Request"), nothing of it is stored.

    Attributes:
        max_frames: the bound.
        offset: the number of log records in the request.
    """

    def __init__(self, max_frames: int, records: int) -> None:
        DecodeError.__init__(
            self,
            f"the request holds {records} log records, more than {max_frames}: "
            "export smaller batches",
        )
        self.max_frames = max_frames
        self.offset = records


class InvalidOtlpRequest(DecodeError):
    """An OTLP/HTTP body that is not a valid ``Export<signal>ServiceRequest``: protobuf that
    does not parse (a truncated message, a wrong wire type, a string that is not UTF-8),
    JSON that is not the protobuf JSON mapping, or a ``traceId``/``spanId`` that is not hex.

    Raised by :mod:`drain.inputs.otlp`; answered 400, which an exporter drops for good
    (OTLP specification, "OTLP/HTTP", Bad Data): resending the same bytes cannot help.
    """


# --------------------------------------------------------------------------- the web layer


class RequestError(DrainError):
    """The web layer refuses a request.

    Attributes:
        status_code: the HTTP status to answer.
        detail: one line that says why, sent as the answer's body.
        retry_after_s: the ``Retry-After`` of a 503 (seconds), or None for the web
            layer's default (DRAIN_RETRY_AFTER_S).
    """

    def __init__(self, status_code: int, detail: str, retry_after_s: int | None = None) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.retry_after_s = retry_after_s


class BodyError(RequestError):
    """The request body cannot be accepted (drain.web.body): 413 too large (before or after
    gzip decoding), 503 not received in time, 400 corrupt gzip or malformed
    Content-Length, 415 an unsupported Content-Encoding."""


class BodyBudgetSpent(BodyError):
    """503 with ``Retry-After: 1``: the bodies this worker is reading and decoding already
    hold its share of DRAIN_BODY_BUDGET_BYTES (drain.web.body.BodyBudget).

    Attributes:
        capacity: the worker's budget, bytes.
    """

    def __init__(self, capacity: int) -> None:
        super().__init__(
            503,
            f"too many request bodies in progress (this worker holds at most {capacity} "
            "bytes of bodies at once, DRAIN_BODY_BUDGET_BYTES): retry later",
            retry_after_s=1,
        )
        self.capacity = capacity


# --------------------------------------------------------------------------- the writer


class WriteError(DrainError):
    """The writer (drain.store.writer) did not commit a batch; the web layer answers 503."""


class QueueFull(WriteError):
    """The write queue is past its bounds; answer 503 with ``Retry-After: retry_after_s``.

    Attributes:
        retry_after_s: seconds after which the queue is expected to have room.
    """

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"write queue full; retry after {retry_after_s:.0f} s")
        self.retry_after_s = retry_after_s


class DatabaseUnavailable(WriteError):
    """The batch could not be committed for a transient reason (answer 503).

    The commit's outcome may be unknown (the connection died during COMMIT); a retry
    with the same frame id is safe because of the ``received_batches`` ledger.
    """


class WriterClosed(WriteError):
    """The writer is closing or closed and takes no more batches (answer 503)."""


# --------------------------------------------------------------------------- configuration


class ConfigError(DrainError, ValueError):
    """Configuration that cannot run; the message names what is wrong."""


class SettingsError(ConfigError):
    """The environment does not describe a drain that can run; the message names the
    variables and never echoes a secret (drain.settings)."""


class RollupFormatError(ConfigError):
    """A rollup file does not follow the format of :mod:`drain.rollups.spec`.

    Attributes:
        name: the rollup's name (its file name without ``.sql``).
        line: 1-based line of the problem, or 0 when it concerns the whole file.
    """

    def __init__(self, name: str, line: int, message: str) -> None:
        where = f"{name}.sql:{line}" if line else f"{name}.sql"
        super().__init__(f"{where}: {message}")
        self.name = name
        self.line = line


# --------------------------------------------------------------------------- database state


class MigrationError(DrainError):
    """The migrations on disk and those recorded in the database disagree
    (drain.store.migrate): an applied file changed, was renamed, or two share a version."""


class RollupQueryError(DrainError):
    """A rollup's query runs but its result cannot be written (no ``bucket`` column)."""


class ArchiveError(DrainError):
    """A step of the Parquet archive (drain.archive) cannot be done; the message says which
    partition or file and why. The partition it concerns is left in PostgreSQL."""


class ArchiveMismatch(ArchiveError):
    """A file of the archive read back is not what was written or what the partition holds:
    its size or SHA-256 differs, it does not parse as Parquet (a page checksum fails, it is
    cut short), or its rows, time range or key checksum disagree. Raised by the verification
    (drain.archive.verify); the file is never trusted.

    Attributes:
        path: the file, relative to the destination (or the partition's name).
    """

    def __init__(self, path: str, why: str) -> None:
        super().__init__(f"{path}: {why}")
        self.path = path
        self.why = why


class RestoreRefused(ArchiveError):
    """``drain archive restore`` or ``release`` would mix rows that are not the archive's
    with archived ones, or lose rows (drain.archive.restore); the CLI exits 1."""


class NotReady(DrainError):
    """The database cannot serve yet (unreachable, not migrated, no embedded data
    directory); the message says why. The CLI exits with code 1."""
