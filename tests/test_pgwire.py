"""drain.pgwire's binary timestamptz codec gives what asyncpg's gives, value for value,
checked against PostgreSQL over a real connection (one without the codec: asyncpg's own)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import asyncpg
import pytest

from drain.pgwire.timestamptz import decode_timestamptz, encode_timestamptz
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

    def encode(value: object) -> bytes:
        calls["encode"] += 1
        return encode_timestamptz(value)

    def decode(data: bytes) -> datetime:
        calls["decode"] += 1
        return decode_timestamptz(data)

    monkeypatch.setattr(database, "encode_timestamptz", encode)
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
