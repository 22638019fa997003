"""The ``@[tag] {json}`` rules: one explicit expectation per accepted and rejected shape."""

from __future__ import annotations

import contextlib
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drain.decode.events import RejectedEvent, TaggedEvent, parse_event
from drain.decode.framing import iter_frames
from drain.decode.syslog import parse_line
from drain.errors import FramingError
from drain.records import QuarantineReason as R

SAMPLES = Path(__file__).parent.parent / "data" / "samples"


def msgs(name: str) -> list[bytes]:
    out: list[bytes] = []
    with contextlib.suppress(FramingError):
        out.extend(
            parse_line(f.msg).msg
            for f in iter_frames((SAMPLES / name).read_bytes(), max_frame_bytes=65536)
        )
    return out


Expected = TaggedEvent | tuple[R, str | None] | None

# One row per line of log-shuttle/ls-td-convention-lines.body, in order.
TD_CONVENTION: list[tuple[str, Expected]] = [
    ("valid", TaggedEvent("production.pay", '{"uid":123,"price":321}')),
    (
        "nested",
        TaggedEvent(
            "production.login",
            '{"uid":7,"meta":{"ua":"Mozilla/5.0","tags":["a","b"]},"ok":true,"ratio":0.5,'
            '"nothing":null}',
        ),
    ),
    ("utf8_emoji", TaggedEvent("staging.events", '{"name":"café 日本","emoji":"😀"}')),
    ("tag_mid_line", None),
    ("invalid_json", (R.INVALID_JSON, "production.pay")),
    ("upper_case_tag", TaggedEvent("Production.Pay", '{"uid":2}')),
    ("json_array", (R.NOT_AN_OBJECT, "production.pay")),
    ("empty_object", TaggedEvent("production.pay", "{}")),
    ("no_space_after_bracket", (R.BAD_SEPARATOR, "production.pay")),
    ("tag_without_dot", TaggedEvent("pay", '{"no_db":1}')),
    ("two_spaces", (R.BAD_SEPARATOR, "production.pay")),
    ("trailing_garbage", (R.INVALID_JSON, "production.pay")),
    ("no_tag", None),
]

# One row per line of log-shuttle/ls-odd-bytes.body, in order.
ODD_BYTES: list[tuple[str, Expected]] = [
    ("crlf_line", TaggedEvent("production.pay", '{"crlf":1}')),
    ("invalid_utf8", (R.INVALID_UTF8, "production.pay")),
    ("bom_before_tag", TaggedEvent("production.pay", '{"bom":1}')),
    ("tab_leading", None),
    ("empty_msg", None),
    ("json_first_half", (R.INVALID_JSON, "production.pay")),
    ("json_second_half", None),
    ("raw_nul_byte_in_string", (R.INVALID_JSON, "production.pay")),
    ("last_line_no_lf", TaggedEvent("production.pay", '{"last":"no trailing newline"}')),
]


def check(got: TaggedEvent | RejectedEvent | None, expected: Expected) -> None:
    if expected is None or isinstance(expected, TaggedEvent):
        assert got == expected
    else:
        assert isinstance(got, RejectedEvent)
        assert (got.reason, got.tag) == expected
        assert got.detail


def test_td_convention_has_thirteen_lines() -> None:
    assert len(msgs("log-shuttle/ls-td-convention-lines.body")) == len(TD_CONVENTION) == 13


@pytest.mark.parametrize(
    ("index", "expected"),
    [pytest.param(i, e, id=name) for i, (name, e) in enumerate(TD_CONVENTION)],
)
def test_td_convention_line(index: int, expected: Expected) -> None:
    check(parse_event(msgs("log-shuttle/ls-td-convention-lines.body")[index]), expected)


def test_odd_bytes_has_nine_lines() -> None:
    assert len(msgs("log-shuttle/ls-odd-bytes.body")) == len(ODD_BYTES) == 9


@pytest.mark.parametrize(
    ("index", "expected"),
    [pytest.param(i, e, id=name) for i, (name, e) in enumerate(ODD_BYTES)],
)
def test_odd_bytes_line(index: int, expected: Expected) -> None:
    check(parse_event(msgs("log-shuttle/ls-odd-bytes.body")[index]), expected)


def test_invalid_json_detail_is_orjsons_message() -> None:
    got = parse_event(b"@[production.pay] {not json}")
    assert isinstance(got, RejectedEvent)
    assert got.detail.startswith("JSON: unexpected character, expected a string key")


def test_raw_nul_is_a_control_character_error() -> None:
    got = parse_event(b'@[production.pay] {"nul":"a\x00b"}')
    assert isinstance(got, RejectedEvent)
    assert "control character" in got.detail


def test_invalid_utf8_detail_has_position() -> None:
    got = parse_event(b'@[production.pay] {"bad_utf8":"\xff\xfe"}')
    assert isinstance(got, RejectedEvent)
    assert got.detail == "MSG is not UTF-8: invalid start byte at JSON byte 13"


def test_passthrough_event() -> None:
    assert parse_event(msgs("log-shuttle/ls-rfc5424-passthrough.body")[0]) == TaggedEvent(
        "production.pay", '{"uid":5}'
    )


def test_gzip_sample_event() -> None:
    import gzip

    body = gzip.decompress((SAMPLES / "log-shuttle" / "ls-gzip.body").read_bytes())
    (frame,) = iter_frames(body, max_frame_bytes=65536)
    assert parse_event(parse_line(frame.msg).msg) == TaggedEvent("production.pay", '{"gz":1}')


def test_split_json_first_chunk_is_invalid_json() -> None:
    first, second, third = msgs("log-shuttle/ls-split-max-line-100.body")
    got = parse_event(first)
    assert isinstance(got, RejectedEvent) and got.reason is R.INVALID_JSON
    assert parse_event(second) is None and parse_event(third) is None


def test_untagged_samples_are_not_events() -> None:
    for name in [
        "logplex-doc-10msg.body",
        "heroku-log-parser-spec-router-h12-pg.body",
        "loki-router-and-gin-multibyte.body",
        "heroku-x-scanner/weird-stuff-but-valid.body",
        "log-shuttle/ls-l13-lost-frame.body",
    ]:
        assert all(parse_event(m) is None for m in msgs(name)), name


T = "production.pay"


def _has_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


@pytest.mark.parametrize(
    ("msg", "expected"),
    [
        # accepted
        pytest.param(b"@[a] {}", TaggedEvent("a", "{}"), id="one_char_tag"),
        pytest.param(b"@[" + b"a" * 128 + b"] {}", TaggedEvent("a" * 128, "{}"), id="tag_128"),
        pytest.param(b"@[A-b_c.9] {}", TaggedEvent("A-b_c.9", "{}"), id="all_tag_chars"),
        pytest.param(b"@[-] {}", TaggedEvent("-", "{}"), id="dash_tag"),
        pytest.param(b"@[t] {} \t\r", TaggedEvent("t", "{} \t\r"), id="trailing_json_ws"),
        pytest.param(b"@[t] {}\n", TaggedEvent("t", "{}\n"), id="trailing_lf_in_msg"),
        pytest.param(b'@[t] {"a":"\\u0001"}', TaggedEvent("t", '{"a":"\\u0001"}'), id="u0001"),
        pytest.param(b'@[t] {"a":"\\\\u0000"}', TaggedEvent("t", '{"a":"\\\\u0000"}'), id="esc_bs"),
        pytest.param(b'@[t] {"a":1e308}', TaggedEvent("t", '{"a":1e308}'), id="big_double"),
        pytest.param(
            b'@[t] {"n":123456789012345678901234567890}',
            TaggedEvent("t", '{"n":123456789012345678901234567890}'),
            id="big_integer_text_kept",
        ),
        pytest.param(b"\xef\xbb\xbf@[t] {}", TaggedEvent("t", "{}"), id="bom"),
        # not tagged
        pytest.param(b"", None, id="empty"),
        pytest.param(b"@", None, id="at_only"),
        pytest.param(b" @[t] {}", None, id="leading_space"),
        pytest.param(b"\t@[t] {}", None, id="leading_tab"),
        pytest.param(b"x @[t] {}", None, id="mid_line"),
        pytest.param(b"@ [t] {}", None, id="space_inside_marker"),
        pytest.param(b"\xef\xbb\xbf\xef\xbb\xbf@[t] {}", None, id="two_boms"),
        pytest.param(b"\xef\xbb@[t] {}", None, id="partial_bom"),
        pytest.param(b"[t] {}", None, id="no_at"),
        # rejected
        pytest.param(b"@[", (R.BAD_TAG, None), id="marker_only"),
        pytest.param(b"@[] {}", (R.BAD_TAG, None), id="empty_tag"),
        pytest.param(b"@[" + b"a" * 129 + b"] {}", (R.BAD_TAG, None), id="tag_129"),
        pytest.param(b"@[.a] {}", (R.BAD_TAG, None), id="leading_dot"),
        pytest.param(b"@[a.] {}", (R.BAD_TAG, None), id="trailing_dot"),
        pytest.param(b"@[a..b] {}", (R.BAD_TAG, None), id="double_dot"),
        pytest.param(b"@[a b] {}", (R.BAD_TAG, None), id="space_in_tag"),
        pytest.param(b"@[a/b] {}", (R.BAD_TAG, None), id="slash_in_tag"),
        pytest.param("@[café] {}".encode(), (R.BAD_TAG, None), id="non_ascii_tag"),
        pytest.param(b"@[a\xff] {}", (R.BAD_TAG, None), id="binary_tag"),
        pytest.param(b"@[t]", (R.BAD_SEPARATOR, "t"), id="nothing_after_tag"),
        pytest.param(b"@[t]{}", (R.BAD_SEPARATOR, "t"), id="no_space"),
        pytest.param(b"@[t]  {}", (R.BAD_SEPARATOR, "t"), id="two_spaces"),
        pytest.param(b"@[t]\t{}", (R.BAD_SEPARATOR, "t"), id="tab"),
        pytest.param(b"@[t] \t{}", (R.BAD_SEPARATOR, "t"), id="space_tab"),
        pytest.param(b"@[t] ", (R.INVALID_JSON, "t"), id="space_then_nothing"),
        pytest.param(b"@[t] {", (R.INVALID_JSON, "t"), id="truncated"),
        pytest.param(b'@[t] {"a":NaN}', (R.INVALID_JSON, "t"), id="nan"),
        pytest.param(b'@[t] {"a":Infinity}', (R.INVALID_JSON, "t"), id="infinity"),
        pytest.param(b'@[t] {"a":1e400}', (R.INVALID_JSON, "t"), id="double_overflow"),
        pytest.param(b'@[t] {"a":"\\ud800"}', (R.INVALID_JSON, "t"), id="lone_surrogate"),
        pytest.param(b'@[t] {"a":"\x01"}', (R.INVALID_JSON, "t"), id="raw_control_char"),
        pytest.param(b"@[t] {'a':1}", (R.INVALID_JSON, "t"), id="single_quotes"),
        pytest.param(b'@[t] {"a":1,}', (R.INVALID_JSON, "t"), id="trailing_comma"),
        pytest.param(b"@[t] {} {}", (R.INVALID_JSON, "t"), id="two_objects"),
        pytest.param(
            b'@[t] {"a":' + b"[" * 1024 + b"]" * 1024 + b"}",
            (R.INVALID_JSON, "t"),
            id="too_deep",
        ),
        pytest.param(b"@[t] {\xc3(}", (R.INVALID_UTF8, "t"), id="bad_continuation"),
        pytest.param(b'@[t] {"a":"\xed\xa0\x80"}', (R.INVALID_UTF8, "t"), id="utf8_surrogate"),
        pytest.param(b'@[t] {"a":"\xc0\xaf"}', (R.INVALID_UTF8, "t"), id="overlong"),
        pytest.param(b"@[t] [1,2,3]", (R.NOT_AN_OBJECT, "t"), id="array"),
        pytest.param(b'@[t] "s"', (R.NOT_AN_OBJECT, "t"), id="string"),
        pytest.param(b"@[t] 42", (R.NOT_AN_OBJECT, "t"), id="number"),
        pytest.param(b"@[t] true", (R.NOT_AN_OBJECT, "t"), id="boolean"),
        pytest.param(b"@[t] null", (R.NOT_AN_OBJECT, "t"), id="null"),
        pytest.param(b'@[t] {"a":"x\\u0000"}', (R.NUL_IN_JSON, "t"), id="nul_in_value"),
        pytest.param(b'@[t] {"\\u0000":1}', (R.NUL_IN_JSON, "t"), id="nul_in_key"),
        pytest.param(b'@[t] {"a":[{"b":["\\u0000"]}]}', (R.NUL_IN_JSON, "t"), id="nul_nested"),
    ],
)
def test_event_shapes(msg: bytes, expected: Expected) -> None:
    check(parse_event(msg), expected)


def test_nesting_1024_deep_is_accepted_and_walked() -> None:
    inner = b"[" * 1023 + b'"\\u0000"' + b"]" * 1023
    got = parse_event(b'@[t] {"a":' + inner + b"}")
    assert isinstance(got, RejectedEvent) and got.reason is R.NUL_IN_JSON


@settings(max_examples=500)
@given(st.binary(max_size=200))
def test_any_msg_never_raises(msg: bytes) -> None:
    got = parse_event(msg)
    if isinstance(got, TaggedEvent):
        assert isinstance(orjson.loads(got.payload), dict)
        assert got.payload.encode() in msg


@settings(max_examples=300)
@given(
    st.dictionaries(
        st.text(max_size=8),
        st.recursive(
            st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8),
            lambda children: (
                st.lists(children, max_size=3)
                | st.dictionaries(st.text(max_size=5), children, max_size=3)
            ),
            max_leaves=10,
        ),
        max_size=4,
    )
)
def test_any_object_round_trips_or_is_nul(value: dict[str, object]) -> None:
    text = orjson.dumps(value)
    got = parse_event(b"@[" + T.encode() + b"] " + text)
    if _has_nul(value):  # orjson writes U+0000 as \u0000
        assert isinstance(got, RejectedEvent) and got.reason is R.NUL_IN_JSON
    else:
        assert got == TaggedEvent(T, text.decode())


def test_tag_memo_holds_only_valid_tags() -> None:
    memo: dict[bytes, str] = {}
    assert parse_event(b"@[t1] {}", memo) == TaggedEvent("t1", "{}")
    assert parse_event(b"@[t1] {}", memo) == TaggedEvent("t1", "{}")  # from the memo
    got = parse_event(b"@[a..b] {}", memo)
    assert isinstance(got, RejectedEvent) and got.reason is R.BAD_TAG
    assert memo == {b"t1": "t1"}
