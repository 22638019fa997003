"""Router lines (drain.decode.router): the common shape's fast path and the general logfmt
path give the same row for every line the fast path takes; new keys, bad numbers and any
bytes never fail; the client address is hashed, kept or dropped as the rules say."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from drain.decode.router import _parse_general, parse_router
from drain.records import RouterRow

WHEN = datetime(2026, 11, 30, 12, tzinfo=UTC)


class Client(dict[str, tuple[bytes | None, str | None]]):
    def __missing__(self, fwd: str) -> tuple[bytes | None, str | None]:
        return fwd.encode()[:16] or None, fwd


client = Client()


def test_a_common_line() -> None:
    msg = (
        b'at=info method=GET path="/cart_link" host=lumberjack-store.timber.io '
        b'request_id=05726858-c44e-4f94-9a20-37df73be9006 fwd="73.75.38.87" dyno=web.1 '
        b"connect=1ms service=22ms status=304 bytes=656 protocol=http"
    )
    assert parse_router(WHEN, "shop", msg, client) == RouterRow(
        WHEN,
        "shop",
        "info",
        "GET",
        "/cart_link",
        "lumberjack-store.timber.io",
        304,
        1,
        22,
        656,
        "05726858-c44e-4f94-9a20-37df73be9006",
        "web.1",
        "http",
        None,
        None,
        b"73.75.38.87",
        "73.75.38.87",
        None,
    )


def test_an_error_line_with_empty_fields() -> None:
    # Heroku Dev Center, "Heroku Error Codes", H10
    msg = (
        b'at=error code=H10 desc="App crashed" method=GET path="/" host=myapp.herokuapp.com '
        b"fwd=17.17.17.17 dyno= connect= service= status=503 bytes="
    )
    row = parse_router(WHEN, "", msg, client)
    assert (row.at, row.code, row.description, row.status) == ("error", "H10", "App crashed", 503)
    assert (row.dyno, row.connect_ms, row.service_ms, row.bytes) == (None, None, None, None)
    assert row.fwd == "17.17.17.17" and row.extra is None


def test_new_keys_and_bad_numbers_go_to_extra() -> None:
    msg = (
        b'sock=client at=warning code=H27 method=POST path="/" host=h status=abc bytes=1x '
        b"service=5ms protocol=http2 tls_version=tls1.3 flag"
    )
    row = parse_router(WHEN, "", msg, client)
    assert (row.status, row.bytes, row.service_ms) == (None, None, 5)
    assert row.extra == (
        '{"sock":"client","tls_version":"tls1.3","flag":"","status":"abc","bytes":"1x"}'
    )


def test_a_status_beyond_smallint_is_kept_in_extra() -> None:
    row = parse_router(WHEN, "", b"at=info status=99999", client)
    assert row.status is None and row.extra == '{"status":"99999"}'


def test_no_client_when_the_rules_keep_none() -> None:
    row = parse_router(WHEN, "", b'at=info fwd="1.2.3.4"', {"1.2.3.4": (None, None)})
    assert (row.client_hash, row.fwd) == (None, None)


_TOKEN = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-._:/?&=", min_size=1, max_size=20)


@settings(max_examples=300, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST", "DELETE", "PATCH"]),
    path=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789/?&=-._~% ", max_size=40),
    host=_TOKEN.filter(lambda t: "=" not in t),
    rid=_TOKEN.filter(lambda t: "=" not in t),
    fwd=st.text(alphabet="0123456789., ", max_size=30),
    dyno=_TOKEN.filter(lambda t: "=" not in t),
    numbers=st.tuples(
        st.integers(0, 999_999_999),
        st.integers(0, 999_999_999),
        st.integers(100, 999),
        st.integers(0, 10**18 - 1),
    ),
    protocol=st.sampled_from(["http", "https", "http2", "http1.1"]),
)
def test_the_fast_path_gives_the_general_paths_row(
    method: str,
    path: str,
    host: str,
    rid: str,
    fwd: str,
    dyno: str,
    numbers: tuple[int, int, int, int],
    protocol: str,
) -> None:
    connect, service, status, size = numbers
    msg = (
        f'at=info method={method} path="{path}" host={host} request_id={rid} fwd="{fwd}" '
        f"dyno={dyno} connect={connect}ms service={service}ms status={status} bytes={size} "
        f"protocol={protocol}"
    ).encode()
    fast = parse_router(WHEN, "a", msg, client)
    assert fast == _parse_general(WHEN, "a", msg, client)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_give_a_row(msg: bytes) -> None:
    row = parse_router(WHEN, "a", msg, client)
    assert isinstance(row, RouterRow)
    for value in row:
        assert not (isinstance(value, str) and "\x00" in value)
    assert row.status is None or 0 <= row.status <= 32767
