"""Where each file of the archive lives, and the order-independent checksum of rows (pure).

The layout (Hive-style partition directories, which DuckDB, Spark, Trino and Athena read)::

    DEST/<table>/app=<app>/date=<YYYY-MM-DD>/part-<uuid>.parquet
    DEST/<table>/_manifests/date=<YYYY-MM-DD>/generation=<n>.json

``<app>`` is escaped as Hive escapes a partition value: every byte of its UTF-8 form outside
``A-Z a-z 0-9 . _ -`` becomes ``%XX`` (readers decode it back), and the empty app (a batch
sent without a drain token) is ``__HIVE_DEFAULT_PARTITION__``, which readers show as NULL;
each file also holds the row's own ``app`` column, exact. Directories whose name starts with
``_`` are skipped by Hive, Spark and Trino, and the glob ``*/*/*.parquet`` does not reach the
manifests, so readers see data files only.

The row checksum (:class:`Checksum`): each row's *key* is every column of the row, rendered
by :mod:`drain.archive.columns` the same way in PostgreSQL and from Parquet; the key's MD5
(RFC 1321) is cut into two 64-bit lanes, and the checksum is the row count and the sum of
each lane modulo 2^64. Sums do not depend on the order of the rows, add up across files and
apps, and count a repeated row twice (unlike XOR, under which a pair of equal rows would
cancel). A lost, added or changed row changes the count or both sums, unless 128 bits of
MD5 happen to collide: it detects accidents, not forgeries.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date

__all__ = [
    "HIVE_NULL",
    "LANE",
    "Checksum",
    "data_dir",
    "data_file",
    "escape_value",
    "manifest_file",
    "unescape_value",
]

#: how Hive (and Spark, Trino, DuckDB) spell a NULL partition value in a path
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"

#: the modulus of each checksum lane
LANE = 2**64

_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")


def escape_value(value: str) -> str:
    """The directory spelling of a partition value: ``""`` is :data:`HIVE_NULL`, every
    UTF-8 byte outside ``A-Za-z0-9._-`` is ``%XX`` (upper-case hex)."""
    if value == "":
        return HIVE_NULL
    raw = value.encode("utf-8")
    if all(b in _SAFE for b in raw):
        return value
    return "".join(chr(b) if b in _SAFE else f"%{b:02X}" for b in raw)


def unescape_value(text: str) -> str:
    """The inverse of :func:`escape_value`."""
    if text == HIVE_NULL:
        return ""
    raw = bytearray()
    pos = 0
    for match in _ESCAPE.finditer(text):
        raw += text[pos : match.start()].encode("utf-8")
        raw.append(int(match.group(1), 16))
        pos = match.end()
    raw += text[pos:].encode("utf-8")
    return raw.decode("utf-8")


def data_dir(table: str, app: str, day: date) -> str:
    """``<table>/app=<app>/date=<day>``: the directory of one app's files of one day."""
    return f"{table}/app={escape_value(app)}/date={day.isoformat()}"


def data_file(table: str, app: str, day: date, file_id: uuid.UUID) -> str:
    """``<table>/app=<app>/date=<day>/part-<uuid>.parquet``, relative to the destination."""
    return f"{data_dir(table, app, day)}/part-{file_id}.parquet"


def manifest_file(table: str, day: date, generation: int) -> str:
    """``<table>/_manifests/date=<day>/generation=<n>.json``, relative to the destination."""
    return f"{table}/_manifests/date={day.isoformat()}/generation={generation}.json"


@dataclass(frozen=True, slots=True)
class Checksum:
    """The checksum of a multiset of rows (see the module docstring).

    Fields:
        rows: how many rows.
        lane_a, lane_b: the sums of the first and second 64-bit halves of each row key's
            MD5, read as big-endian integers, modulo 2^64.
    """

    rows: int = 0
    lane_a: int = 0
    lane_b: int = 0

    @classmethod
    def of_sums(cls, rows: int, sum_a: int, sum_b: int) -> Checksum:
        """From a row count and the lanes' plain sums (any sign, e.g. PostgreSQL's
        ``sum(bigint)``)."""
        return cls(rows, sum_a % LANE, sum_b % LANE)

    @classmethod
    def of_digest(cls, digest: bytes) -> Checksum:
        """The checksum of one row whose key's MD5 is ``digest`` (16 bytes)."""
        return cls(1, int.from_bytes(digest[:8], "big"), int.from_bytes(digest[8:16], "big"))

    @classmethod
    def parse(cls, rows: int, text: str) -> Checksum:
        """From ``rows`` and :attr:`hex` (as a manifest records them).

        Raises:
            ValueError: ``text`` is not 32 hexadecimal digits.
        """
        if not re.fullmatch(r"[0-9a-f]{32}", text):
            raise ValueError(f"a checksum is 32 lower-case hex digits, got {text!r}")
        return cls(rows, int(text[:16], 16), int(text[16:], 16))

    def __add__(self, other: Checksum) -> Checksum:
        return Checksum(
            self.rows + other.rows,
            (self.lane_a + other.lane_a) % LANE,
            (self.lane_b + other.lane_b) % LANE,
        )

    @property
    def hex(self) -> str:
        """The two lanes as 32 hex digits (lane a first)."""
        return f"{self.lane_a:016x}{self.lane_b:016x}"
