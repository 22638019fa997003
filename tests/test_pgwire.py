"""drain.pgwire's binary timestamptz codec gives what asyncpg's gives, value for value,
checked against PostgreSQL over a real connection (one without the codec: asyncpg's own)."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo

import asyncpg
import pytest

from drain.pgwire.timestamptz import TimestamptzEncoder, decode_timestamptz, encode_timestamptz
from drain.store import database
from drain.store.database import create_pool

#: values a query or a COPY may send: UTC (what the decoders make), other offsets, naive
#: (the machine's local time), dates, the two infinities, the ends of datetime's range
SENT: list[object] = [
    datetime(2026, 12, 2, 4, 44, 2, 123456, tzinfo=UTC),
    datetime(2000, 1, 1, tzinfo=UTC),
    datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(1970, 1, 1, tzinfo=UTC),
    datetime(1, 1, 1, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999998, tzinfo=UTC),
    datetime(2026, 3, 1, 0, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    datetime(2026, 3, 1, 0, 30, tzinfo=timezone(timedelta(hours=-8))),
    datetime(2026, 12, 2, 4, 44, 2, 7),
    date(2026, 12, 2),
    datetime.max,
    datetime.min,
    datetime.max.replace(tzinfo=UTC),
    datetime.min.replace(tzinfo=UTC),
]

#: values PostgreSQL sends back, as text
STORED = [
    "2026-12-02 04:44:02.123456+00",
    "2000-01-01 00:00:00+00",
    "1999-12-31 23:59:59.999999+00",
    "0001-01-01 00:00:00+00",
    "9999-12-31 23:59:59.999999+00",
    "1969-07-20 20:17:40.5-04",
    "infinity",
    "-infinity",
]


@pytest.mark.parametrize("value", SENT, ids=repr)
async def test_encodes_what_asyncpg_encodes(database_url: str, value: object) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        sent_by_asyncpg = await conn.fetchval("SELECT timestamptz_send($1::timestamptz)", value)
    finally:
        await conn.close()
    assert encode_timestamptz(value) == sent_by_asyncpg


@pytest.mark.parametrize("text", STORED)
async def test_decodes_what_asyncpg_decodes(database_url: str, text: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow(
            "SELECT $1::text::timestamptz AS v, timestamptz_send($1::text::timestamptz) AS b", text
        )
    finally:
        await conn.close()
    assert row is not None
    decoded = decode_timestamptz(row["b"])
    assert decoded == row["v"]
    assert decoded.tzinfo is row["v"].tzinfo


def test_refuses_what_is_not_a_time() -> None:
    with pytest.raises(TypeError, match="got 'str'"):
        encode_timestamptz("2026-12-02")
    with pytest.raises(ValueError, match="8 bytes"):
        decode_timestamptz(b"\x00" * 7)


async def test_the_pools_connections_use_it_in_both_directions(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parameters, arrays, COPY and results go through the codec and keep their values."""
    calls = {"encode": 0, "decode": 0}

    class CountingEncoder:
        def __init__(self) -> None:
            self.encoder = TimestamptzEncoder()

        def __call__(self, value: object) -> bytes:
            calls["encode"] += 1
            return self.encoder(value)

    def decode(data: bytes) -> datetime:
        calls["decode"] += 1
        return decode_timestamptz(data)

    monkeypatch.setattr(database, "TimestamptzEncoder", CountingEncoder)
    monkeypatch.setattr(database, "decode_timestamptz", decode)
    pool = await create_pool(database_url, min_size=1, max_size=1)
    when = [datetime(2026, 12, 2, 4, 44, 2, n, tzinfo=UTC) for n in range(3)]
    try:
        async with pool.acquire() as conn:
            await conn.execute("CREATE TABLE t (at timestamptz)")
            await conn.copy_records_to_table("t", records=[(w,) for w in when])
            assert [r["at"] for r in await conn.fetch("SELECT at FROM t ORDER BY at")] == when
            same = await conn.fetchval(
                "SELECT $1::timestamptz[] = array(SELECT at FROM t ORDER BY at)", when
            )
            assert same is True
            assert await conn.fetchval("SELECT 'infinity'::timestamptz") == datetime.max
            text = await conn.fetchval("SELECT $1::timestamptz::text", when[1])
            assert text == "2026-12-02 04:44:02.000001+00"
    finally:
        await pool.close()
    # the COPY (3), the array (3), the cast (1); the SELECT (3) and 'infinity' (1)
    assert calls == {"encode": 7, "decode": 4}


def test_the_encoder_gives_the_same_bytes_with_values_repeated_and_alternating() -> None:
    """Two alternating columns (a row's event_time, the batch's received_at) and repeats."""
    received = datetime(2026, 12, 2, 7, 30, tzinfo=UTC)
    sequence = [v for value in SENT for v in (value, received, value)] + [received] * 3
    encoder = TimestamptzEncoder()
    assert [encoder(v) for v in sequence] == [encode_timestamptz(v) for v in sequence]
    with pytest.raises(TypeError, match="got 'str'"):
        encoder("2026-12-02")
    for fresh in (TimestamptzEncoder(), encoder):  # an empty slot is no value
        with pytest.raises(TypeError, match="got 'NoneType'"):
            fresh(None)


class _Shifting(tzinfo):
    """A tzinfo whose offset is whatever ``hours`` says now."""

    hours = 0

    def utcoffset(self, dt: datetime | None) -> timedelta:
        return timedelta(hours=self.hours)

    def dst(self, dt: datetime | None) -> timedelta:
        return timedelta(0)


def test_the_encoder_converts_a_value_of_a_tzinfo_of_its_own_each_time() -> None:
    """Only fixed offsets are remembered: another tzinfo may answer differently later."""
    zone = _Shifting()
    value = datetime(2026, 12, 2, 12, 0, tzinfo=zone)
    encoder = TimestamptzEncoder()
    first = encoder(value)
    zone.hours = 5
    assert encoder(value) == encode_timestamptz(value) != first


def test_the_encoder_reads_naive_values_in_the_current_local_time_each_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A naive datetime or a date is not remembered: its bytes follow the local time zone."""
    naive, day = datetime(2026, 12, 2, 12, 0), date(2026, 12, 2)
    encoder = TimestamptzEncoder()
    try:
        monkeypatch.setenv("TZ", "UTC")
        time.tzset()
        in_utc = (encoder(naive), encoder(day))
        monkeypatch.setenv("TZ", "IST-5:30")  # POSIX: needs no tz database
        time.tzset()
        in_india = (encoder(naive), encoder(day))
        assert in_india == (encode_timestamptz(naive), encode_timestamptz(day))
        assert in_india != in_utc
    finally:
        monkeypatch.undo()
        time.tzset()


async def test_a_copy_of_rows_sharing_one_received_at_stores_every_value(
    database_url: str,
) -> None:
    """The writer's shape: a distinct event_time per row, then the batch's received_at."""
    received = datetime(2026, 12, 2, 7, 30, 0, 5, tzinfo=UTC)
    events = [datetime(2026, 12, 2, 7, 29, 59, n, tzinfo=UTC) for n in range(50)]
    pool = await create_pool(database_url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            await conn.execute(
                "CREATE TABLE t (n int, event_time timestamptz, received_at timestamptz)"
            )
            rows = [(n, e, received) for n, e in enumerate(events)]
            await conn.copy_records_to_table("t", records=rows)
            stored = await conn.fetch("SELECT n, event_time, received_at FROM t ORDER BY n")
    finally:
        await pool.close()
    assert [tuple(r) for r in stored] == rows


async def test_a_pool_keeps_the_codec_after_a_release(database_url: str) -> None:
    """asyncpg's reset on release (RESET ALL, ...) leaves client-side codecs in place."""
    pool = await create_pool(database_url, min_size=1, max_size=1)
    try:
        for _ in range(2):
            async with pool.acquire() as conn:
                got = await conn.fetchval("SELECT $1::timestamptz", datetime.max)
                assert got == datetime.max
    finally:
        await pool.close()
