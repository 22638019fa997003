"""PostgreSQL's binary ``timestamptz``: the codec the pool's connections use (pure).

On the wire (the binary format of the extended protocol and of binary COPY) a
``timestamptz`` is a big-endian signed int64: microseconds since 2000-01-01 00:00:00 UTC,
with ``INT64_MAX``/``INT64_MIN`` for ``'infinity'``/``'-infinity'`` (PostgreSQL,
``src/include/datatype/timestamp.h``, ``timestamptz_send``).

asyncpg's built-in encoder compares each value with its two infinities, converts it with
``astimezone`` and subtracts an epoch (three new objects per value); on the COPY of a row with
two timestamps that was most of asyncpg's encoding of the row (bench/README, "Timestamps
on the wire"). :func:`encode_timestamptz` reads the fields of a UTC datetime (what every
decoder makes) instead, and is compiled with the decode path (drain.speedups). Both
functions give what asyncpg's own codec gives, value for value, infinities and local-time
rules included, so registering them (:func:`drain.store.database.create_pool`) changes
the speed and nothing else: ``tests/test_pgwire.py`` checks both against
asyncpg's.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Final

__all__ = ["TimestamptzEncoder", "decode_timestamptz", "encode_timestamptz"]

#: PostgreSQL's epoch of timestamps, as a proleptic Gregorian ordinal (date.toordinal)
_PG_EPOCH_ORDINAL: Final = date(2000, 1, 1).toordinal()
_PG_EPOCH_UTC: Final = datetime(2000, 1, 1, tzinfo=UTC)
_US_PER_S: Final = 1_000_000
_S_PER_DAY: Final = 86_400

#: PostgreSQL's 'infinity' and '-infinity' on the wire
_PG_INFINITY: Final = 0x7FFF_FFFF_FFFF_FFFF
_PG_NEGATIVE_INFINITY: Final = -0x8000_0000_0000_0000
_PG_INFINITY_BYTES: Final = _PG_INFINITY.to_bytes(8, "big", signed=True)
_PG_NEGATIVE_INFINITY_BYTES: Final = _PG_NEGATIVE_INFINITY.to_bytes(8, "big", signed=True)

#: what asyncpg reads 'infinity' and '-infinity' as (naive), and writes them from
_INFINITY: Final = datetime.max
_NEGATIVE_INFINITY: Final = datetime.min
#: the microseconds of datetime.max and datetime.min as UTC, also sent as the infinities
_INFINITY_US: Final = 252_455_615_999_999_999
_NEGATIVE_INFINITY_US: Final = -63_082_281_600_000_000


def _local_timezone() -> timezone:
    """The machine's current UTC offset, as asyncpg gives a ``date`` sent as a timestamptz."""
    offset = datetime.now(UTC).astimezone().utcoffset()
    assert offset is not None
    return timezone(offset)


def encode_timestamptz(value: object) -> bytes:
    """``value`` as the 8 bytes of a binary ``timestamptz`` (see the module docstring).

    A tz-aware datetime is converted to UTC; a naive one is taken as the machine's local
    time, and a ``date`` as its midnight there (as asyncpg does). ``datetime.max`` and
    ``datetime.min`` (naive, or as UTC) are sent as ``'infinity'`` and ``'-infinity'``.

    Raises:
        TypeError: ``value`` is neither a datetime nor a date.
        OverflowError: a naive or non-UTC value whose conversion to UTC leaves the range
            of datetime.
    """
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, date):
        when = datetime(value.year, value.month, value.day, tzinfo=_local_timezone())
    else:
        raise TypeError(
            f"expected a datetime.date or datetime.datetime instance, got {type(value).__name__!r}"
        )
    if when.tzinfo is None:
        if when == _INFINITY:
            return _PG_INFINITY_BYTES
        if when == _NEGATIVE_INFINITY:
            return _PG_NEGATIVE_INFINITY_BYTES
    if when.tzinfo is not UTC:
        when = when.astimezone(UTC)
    seconds = (
        (when.toordinal() - _PG_EPOCH_ORDINAL) * _S_PER_DAY
        + when.hour * 3600
        + when.minute * 60
        + when.second
    )
    micros = seconds * _US_PER_S + when.microsecond
    if micros == _INFINITY_US:
        return _PG_INFINITY_BYTES
    if micros == _NEGATIVE_INFINITY_US:
        return _PG_NEGATIVE_INFINITY_BYTES
    return micros.to_bytes(8, "big", signed=True)


#: what an empty slot of :class:`TimestamptzEncoder` holds (no value sent is this object)
_EMPTY: Final = object()


class TimestamptzEncoder:
    """:func:`encode_timestamptz` that remembers its last two UTC datetimes, by identity.

    The writer appends the batch's one ``received_at`` object to each of its rows, after
    the row's own ``event_time``: in a COPY the two alternate, so with two slots the
    batch's ``received_at`` is converted once per batch, not once per row. Only
    ``datetime`` objects whose tzinfo is a fixed offset (``UTC`` or another
    ``datetime.timezone``: what every decoder makes) are remembered; their bytes depend on
    nothing else. Any other value is converted each time: a naive datetime or a date is
    read in the machine's current local time, and another tzinfo's offset may change. One
    per connection (drain.store.database.use_drain_codecs): nothing is shared.
    """

    def __init__(self) -> None:
        self._recent: object = _EMPTY
        self._recent_bytes = b""
        self._older: object = _EMPTY
        self._older_bytes = b""

    def __call__(self, value: object) -> bytes:
        """The 8 bytes of ``value`` (raises as :func:`encode_timestamptz`)."""
        if value is self._recent:
            return self._recent_bytes
        if value is self._older:
            data = self._older_bytes
        else:
            data = encode_timestamptz(value)
            if type(value) is not datetime:
                return data
            zone = value.tzinfo
            if zone is not UTC and type(zone) is not timezone:
                return data
        self._older, self._older_bytes = self._recent, self._recent_bytes
        self._recent, self._recent_bytes = value, data
        return data


def decode_timestamptz(data: bytes) -> datetime:
    """The 8 bytes of a binary ``timestamptz`` as a UTC datetime; ``'infinity'`` and
    ``'-infinity'`` as the naive ``datetime.max`` and ``datetime.min`` (as asyncpg does).

    Raises:
        ValueError: ``data`` is not 8 bytes long.
        OverflowError: the value is outside the range of datetime (years 1..9999).
    """
    if len(data) != 8:
        raise ValueError(f"a binary timestamptz is 8 bytes, got {len(data)}")
    micros = int.from_bytes(data, "big", signed=True)
    if micros == _PG_INFINITY:
        return _INFINITY
    if micros == _PG_NEGATIVE_INFINITY:
        return _NEGATIVE_INFINITY
    return _PG_EPOCH_UTC + timedelta(microseconds=micros)
