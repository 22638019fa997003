"""logfmt (drain.decode.logfmt): table cases from Heroku's lines, a round trip of any pairs,
and properties on any bytes: it never raises, and it stays linear on hostile input."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drain.decode.logfmt import parse_logfmt, unquote


@pytest.mark.parametrize(
    ("line", "pairs"),
    [
        pytest.param(
            b'at=info method=GET path="/" host=a.herokuapp.com fwd="1.2.3.4" dyno=web.1',
            [
                (b"at", b"info"),
                (b"method", b"GET"),
                (b"path", b"/"),
                (b"host", b"a.herokuapp.com"),
                (b"fwd", b"1.2.3.4"),
                (b"dyno", b"web.1"),
            ],
            id="router",
        ),
        pytest.param(
            b'at=error code=H12 desc="Request timeout" connect= service=30000ms',
            [
                (b"at", b"error"),
                (b"code", b"H12"),
                (b"desc", b"Request timeout"),
                (b"connect", b""),
                (b"service", b"30000ms"),
            ],
            id="router_error_empty_value",
        ),
        pytest.param(
            b'fwd="203.0.113.9, 10.0.0.1" path=/a?b=c&d=e',
            [(b"fwd", b"203.0.113.9, 10.0.0.1"), (b"path", b"/a?b=c&d=e")],
            id="spaces_in_quotes_equals_in_value",
        ),
        pytest.param(
            b"source=web.1 sample#memory_rss=21.22MB sample#load_avg_1m=2.46",
            [
                (b"source", b"web.1"),
                (b"sample#memory_rss", b"21.22MB"),
                (b"sample#load_avg_1m", b"2.46"),
            ],
            id="metrics",
        ),
        pytest.param(b"flag a=1", [(b"flag", None), (b"a", b"1")], id="flag"),
        pytest.param(b'x="a \\"b\\" \\\\"', [(b"x", b'a "b" \\')], id="escapes"),
        pytest.param(b'x="never closed y=1', [(b"x", b"never closed y=1")], id="unclosed_quote"),
        pytest.param(b'x="ends with \\"', [(b"x", b'ends with "')], id="escaped_last_quote"),
        pytest.param(b'=== "" a=b', [(b"a", b"b")], id="stray_equals_and_quotes"),
        pytest.param(b"", [], id="empty"),
        pytest.param(b"  \t a=1\tb=2 ", [(b"a", b"1"), (b"b", b"2")], id="tabs_and_spaces"),
    ],
)
def test_pairs(line: bytes, pairs: list[tuple[bytes, bytes | None]]) -> None:
    assert parse_logfmt(line) == pairs


_KEY = st.binary(min_size=1, max_size=12).filter(lambda k: not re.search(rb'[\s="]', k))
_VALUE = st.binary(max_size=30)


def _quoted(value: bytes) -> bytes:
    return b'"' + value.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_KEY, _VALUE), max_size=12))
def test_what_is_written_quoted_reads_back(pairs: list[tuple[bytes, bytes]]) -> None:
    line = b" ".join(key + b"=" + _quoted(value) for key, value in pairs)
    assert parse_logfmt(line) == pairs


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=400))
def test_any_bytes_parse_without_raising(line: bytes) -> None:
    pairs = parse_logfmt(line)
    for key, value in pairs:
        assert key and not re.search(rb'[\s="]', key)
        assert value is None or isinstance(value, bytes)
    assert isinstance(unquote(line), bytes)


@pytest.mark.parametrize(
    "unit",
    [b'"', b"\\", b"=", b'a="', b'a="\\', b"a= ", b'"\\"', b"a=\\\\\\", b"k" * 50 + b"="],
)
def test_hostile_runs_are_read_in_one_pass(unit: bytes) -> None:
    """Long runs of what makes a backtracking reader slow come back (pytest-timeout bounds
    the test; the regular expression has no backtracking by construction)."""
    line = unit * (200_000 // len(unit))
    pairs = parse_logfmt(line)
    assert sum(len(k) + len(v or b"") for k, v in pairs) <= len(line)
