"""drain.web.auth (HTTP Basic, drain tokens) and drain.web.body (streamed, capped, gzip), as
functions."""

from __future__ import annotations

import asyncio
import base64
import gzip
from collections.abc import AsyncIterator

import pytest

from drain.errors import BodyError
from drain.web.auth import check_basic, check_drain_token, parse_basic
from drain.web.body import GzipDecoder, read_stream


def basic(raw: bytes) -> str:
    return "Basic " + base64.b64encode(raw).decode("ascii")


# --------------------------------------------------------------------------- auth


def test_basic_accepts_the_right_pair() -> None:
    assert check_basic(basic(b"logplex:pa:ss"), username="logplex", password="pa:ss")
    assert check_basic(
        "basic  " + basic(b"logplex:pa:ss")[6:], username="logplex", password="pa:ss"
    )


def test_basic_accepts_utf8_credentials() -> None:
    header = basic("jos\u00e9:m\u00f8t".encode())
    assert check_basic(header, username="jos\u00e9", password="m\u00f8t")


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Basic",
        "Basic ",
        "Bearer abc",
        "Basic !!!notbase64!!!",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        basic(b"logplex:wrong"),
        basic(b"wrong:secret"),
        basic(b"logplex:secret\x00"),
        basic(b"\xff\xfe:secret"),
        "Basic bG9ncGxleDpzZWNyZXQ=\u00e9",
        "Digest username=logplex",
    ],
    ids=[
        "missing",
        "empty",
        "scheme_only",
        "scheme_space",
        "wrong_scheme",
        "bad_base64",
        "no_colon",
        "wrong_password",
        "wrong_user",
        "longer_password",
        "not_utf8",
        "non_ascii_header",
        "digest",
    ],
)
def test_basic_refuses_malformed_or_wrong(header: str | None) -> None:
    assert not check_basic(header, username="logplex", password="secret")


def test_parse_basic_splits_at_the_first_colon() -> None:
    assert parse_basic(basic(b"u:p:q")) == (b"u", b"p:q")
    assert parse_basic(basic(b":")) == (b"", b"")


def test_drain_token_allow_list() -> None:
    allowed = frozenset({"d.one", "d.two"})
    assert check_drain_token("d.one", allowed)
    assert check_drain_token(None, None)
    assert check_drain_token("d.any", None)
    assert not check_drain_token("d.three", allowed)
    assert not check_drain_token(None, allowed)
    assert not check_drain_token("d.on", allowed)


# --------------------------------------------------------------------------- body


async def chunks_of(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def read(
    *parts: bytes,
    length: str | None = None,
    encoding: str | None = None,
    max_bytes: int = 1000,
    timeout_s: float = 5.0,
) -> bytes:
    return await read_stream(
        chunks_of(*parts),
        content_length=length,
        content_encoding=encoding,
        max_bytes=max_bytes,
        timeout_s=timeout_s,
    )


async def test_body_joins_chunks() -> None:
    assert await read(b"ab", b"", b"cd") == b"abcd"
    assert await read() == b""


async def test_body_at_the_cap_is_accepted_and_one_more_byte_is_413() -> None:
    assert await read(b"x" * 600, b"y" * 400, max_bytes=1000) == b"x" * 600 + b"y" * 400
    with pytest.raises(BodyError) as raised:
        await read(b"x" * 600, b"y" * 401, max_bytes=1000)
    assert raised.value.status_code == 413


async def test_content_length_over_the_cap_is_413_before_reading() -> None:
    async def never() -> AsyncIterator[bytes]:
        raise AssertionError("the body must not be read")
        yield b""  # pragma: no cover

    with pytest.raises(BodyError) as raised:
        await read_stream(
            never(), content_length="1001", content_encoding=None, max_bytes=1000, timeout_s=1
        )
    assert raised.value.status_code == 413


async def test_bad_content_length_is_400() -> None:
    with pytest.raises(BodyError) as raised:
        await read(b"x", length="ten")
    assert raised.value.status_code == 400


async def test_slow_body_is_503_a_transient_fault_logplex_retries() -> None:
    never_done = asyncio.Event()

    async def stalls() -> AsyncIterator[bytes]:
        yield b"12 <1>1 - - -"
        await never_done.wait()

    with pytest.raises(BodyError) as raised:
        await read_stream(
            stalls(), content_length=None, content_encoding=None, max_bytes=1000, timeout_s=0.05
        )
    assert raised.value.status_code == 503


async def test_gzip_body_is_decoded_across_chunks() -> None:
    plain = b"70 " + b"a" * 67 + b"\n"
    packed = gzip.compress(plain * 5)
    parts = [packed[i : i + 7] for i in range(0, len(packed), 7)]
    assert await read(*parts, encoding="gzip") == plain * 5
    assert await read(packed, encoding="x-gzip, identity") == plain * 5


async def test_concatenated_gzip_members_are_decoded() -> None:
    assert await read(gzip.compress(b"one") + gzip.compress(b"two"), encoding="gzip") == b"onetwo"


async def test_gzip_bomb_is_413_after_at_most_cap_plus_one_bytes() -> None:
    bomb = gzip.compress(b"\x00" * (10 * 2**20))
    assert len(bomb) < 20_000
    decoder = GzipDecoder(max_bytes=4096)
    with pytest.raises(BodyError) as raised:
        decoder.feed(bomb)
    assert raised.value.status_code == 413
    assert decoder._out == 4097


@pytest.mark.parametrize(
    "data",
    [b"not gzip at all", gzip.compress(b"hello world")[:-6], gzip.compress(b"x")[:5]],
    ids=["not_gzip", "truncated_trailer", "truncated_header"],
)
async def test_corrupt_gzip_is_400(data: bytes) -> None:
    with pytest.raises(BodyError) as raised:
        await read(data, encoding="gzip")
    assert raised.value.status_code == 400


@pytest.mark.parametrize("encoding", ["br", "deflate", "gzip, br", "zstd"])
async def test_other_content_encodings_are_415(encoding: str) -> None:
    with pytest.raises(BodyError) as raised:
        await read(b"x", encoding=encoding)
    assert raised.value.status_code == 415
