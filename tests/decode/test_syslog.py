"""RFC 5424 §6 syslog lines in Heroku's dialect, from every sample body."""

from __future__ import annotations

import contextlib
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drain.decode.framing import iter_frames
from drain.decode.syslog import SyslogMessage, parse_line, parse_timestamp
from drain.errors import FramingError, LineError

SAMPLES = Path(__file__).parent.parent / "data" / "samples"


def lines(name: str) -> list[bytes]:
    """The SYSLOG-MSGs of a sample body, up to its first framing error."""
    out: list[bytes] = []
    with contextlib.suppress(FramingError):
        out.extend(f.msg for f in iter_frames((SAMPLES / name).read_bytes(), max_frame_bytes=65536))
    return out


def test_logplex_doc_line() -> None:
    m = parse_line(lines("logplex-doc-10msg.body")[0])
    assert m == SyslogMessage(
        pri=174,
        facility=21,
        severity=6,
        timestamp=datetime(2012, 7, 22, 0, 6, 26, tzinfo=UTC),
        hostname="host",
        app_name="erlang",
        proc_id="console",
        msg_id="-",
        structured_data=None,
        msg=b"Hi from erlang",
    )
    assert m.timestamp.tzinfo is UTC


def test_devcenter_pri_40_and_heroku_dialect() -> None:
    a, b = (parse_line(x) for x in lines("devcenter-https-drain-2msg.body"))
    assert (a.pri, a.facility, a.severity) == (40, 5, 0)
    assert (a.app_name, a.proc_id, a.msg_id) == ("app", "web.3", "-")
    assert a.msg == b"State changed from starting to up"
    assert b.msg == b"Starting process with command `bundle exec rackup config.ru -p 24405`"


def test_nil_msgid_and_nil_sd_from_2014_drain() -> None:
    a, b = (parse_line(x) for x in lines("heroku-log-parser-2014-reconstructed.body"))
    assert a.hostname == "d.8f7a4b11-c323-c764-a74f-89bf4c1100ab"
    assert (a.msg_id, a.structured_data) == ("-", "-")
    assert a.msg.startswith(b'Started GET "/2013/02/26/')
    assert a.timestamp == datetime(2014, 7, 17, 12, 59, 25, 223980, tzinfo=UTC)
    assert b.proc_id == "web.1"


def test_l10_line_without_lf() -> None:
    a, b = (parse_line(x) for x in lines("logplex-issue105-l10-no-lf.body"))
    assert (a.app_name, a.proc_id) == ("heroku", "logplex")
    assert a.msg.startswith(b"Error L10 (output buffer overflow)")
    assert a.msg.endswith(b"+00:00.")
    assert (b.pri, b.facility, b.severity) == (45, 5, 5)
    assert b.timestamp.microsecond == 64853


def test_l2met_tcp_style_l10() -> None:
    (m,) = (parse_line(x) for x in lines("l2met-l10-tcpstyle-reconstructed.body"))
    assert m.hostname == "d.1234-drain-identifier-567"
    assert m.structured_data == "-"
    assert m.msg.startswith(b"Error L10 (output buffer overflow): 500 messages dropped")


def test_router_postgres_bracket_word_is_msg() -> None:
    router, pg, metrics = (
        parse_line(x) for x in lines("heroku-log-parser-spec-router-h12-pg.body")
    )
    assert (router.app_name, router.proc_id) == ("heroku", "router")
    assert router.msg.startswith(b"at=error code=H12")
    assert pg.structured_data is None
    assert pg.msg.startswith(b"[BLUE] duration: 153109.719 ms  statement:")
    assert metrics.proc_id == "heroku-postgres"


def test_gin_bracket_and_multibyte_msg() -> None:
    router, gin1, gin2 = (parse_line(x) for x in lines("loki-router-and-gin-multibyte.body"))
    assert router.msg.endswith(b"protocol=https")
    assert gin1.structured_data is None and gin1.msg.startswith(b"[GIN] 2022/06/13")
    assert "µs".encode() in gin2.msg


def test_postgres_split_statement_keeps_tab() -> None:
    a, b = (parse_line(x) for x in lines("pganalyze-postgres-statement-split.body"))
    assert a.msg.startswith(b"[YELLOW] [12-1]  sql_error_code")
    assert b.msg == b"[YELLOW] [12-2] \tSELECT"
    assert b.structured_data is None


@pytest.mark.parametrize(
    "name", ["pganalyze-heroku-postgres-metrics.body", "pganalyze-heroku-redis-metrics.body"]
)
def test_addon_metrics_lines(name: str) -> None:
    (m,) = (parse_line(x) for x in lines(name))
    assert m.pri == 134 and m.app_name == "app"
    assert m.msg.startswith(b"source=")


def test_runtime_metrics_three_digit_fraction() -> None:
    a, b = (parse_line(x) for x in lines("sumo-runtime-metrics.body"))
    assert a.timestamp.microsecond == 153192
    assert b.timestamp == datetime(2023, 8, 24, 12, 31, 50, 112000, tzinfo=UTC)


def test_lpx_minus_zero_offset_and_numeric_msgid() -> None:
    a, b = (parse_line(x) for x in lines("lpx-reader-test.body"))
    assert a.timestamp == datetime(2012, 7, 22, 0, 6, 26, tzinfo=UTC)
    assert (a.hostname, a.app_name, a.proc_id, a.msg_id) == ("somehost", "Go", "console", "-")
    assert a.msg == b"Hi from Go"
    assert b.msg_id == "10" and b.msg == b"Hi from Py"


def test_vector_router_line() -> None:
    (m,) = (parse_line(x) for x in lines("vector-router-reconstructed.body"))
    assert m.timestamp == datetime(2020, 1, 8, 22, 33, 57, 353034, tzinfo=UTC)
    assert m.msg.endswith(b"protocol=http")


def test_heroku_x_scanner_shuttle_shape_z_timestamp() -> None:
    (m,) = (parse_line(x) for x in lines("heroku-x-scanner/single.body"))
    assert m.timestamp == datetime(2019, 7, 21, 22, 13, 34, 598992, tzinfo=UTC)
    assert (m.hostname, m.app_name, m.proc_id, m.structured_data, m.msg) == (
        "shuttle",
        "t.http",
        "shuttle",
        "-",
        b"168",
    )
    assert [parse_line(x).msg for x in lines("heroku-x-scanner/multiple.body")] == [b"99", b"100"]


def test_real_structured_data_is_split_off() -> None:
    (m,) = (parse_line(x) for x in lines("heroku-x-scanner/structured-data.body"))
    assert m.structured_data == '[meta sequenceId="518"][meta somethingElse="blah"]'
    assert m.msg == b"this is the message"


def test_unterminated_param_value_is_not_structured_data() -> None:
    # The upstream "quoted" fixture escapes the "]" but never closes the PARAM-VALUE's
    # quote (`"blah\]]`), so it is not well-formed RFC 5424 SD: the whole rest is MSG.
    (m,) = (parse_line(x) for x in lines("heroku-x-scanner/quoted-structured-data.body"))
    assert m.structured_data is None
    assert m.msg == b'[meta sequenceId="518"][meta somethingElse="blah\\]] this is the message'


def test_structured_data_with_escaped_bracket() -> None:
    m = parse_line(HEADER + b'[meta sequenceId="518"][meta somethingElse="blah\\]"] the message')
    assert m.structured_data == '[meta sequenceId="518"][meta somethingElse="blah\\]"]'
    assert m.msg == b"the message"


@pytest.mark.parametrize(
    "name",
    [
        "heroku-x-scanner/bad-prefix-structured-data.body",
        "heroku-x-scanner/bad-suffix-structured-data.body",
    ],
)
def test_broken_structured_data_stays_in_msg(name: str) -> None:
    (m,) = (parse_line(x) for x in lines(name))
    assert m.structured_data is None
    assert m.msg.endswith(b"] this is the message")
    assert m.msg.startswith((b"|meta", b"[meta"))


def test_bad_prival_is_version_error() -> None:
    first = lines("heroku-x-scanner/bad-prival.body")[0]
    with pytest.raises(LineError) as info:
        parse_line(first)
    assert info.value.field == "VERSION"
    assert str(info.value) == 'expected VERSION "1" followed by a space at column 6'


def test_control_characters_in_msg() -> None:
    (m,) = (parse_line(x) for x in lines("heroku-x-scanner/weird-stuff-but-valid.body"))
    assert m.proc_id == "test.5583" and m.msg.startswith(b"\x08\x08\x08")


def test_very_long_message() -> None:
    (m,) = (parse_line(x) for x in lines("heroku-x-scanner/very-long-message.body"))
    assert (m.hostname, m.app_name) == ("shuttle", "t.aaaaaaaa-ea8f-43ea-a89d-6faad7cc66fc")
    assert set(m.msg) == {ord("A")}


def test_log_shuttle_default_header() -> None:
    (m,) = (parse_line(x) for x in lines("log-shuttle/ls-default-raw.body"))
    assert (m.hostname, m.app_name, m.proc_id, m.msg_id, m.structured_data) == (
        "shuttle",
        "token",
        "shuttle",
        "-",
        "-",
    )
    assert m.msg == b"hello world"


def test_log_shuttle_heroku_shape() -> None:
    ms = [parse_line(x) for x in lines("log-shuttle/ls-td-convention-lines.body")]
    assert len(ms) == 13
    assert all((m.hostname, m.app_name, m.proc_id) == ("host", "app", "web.1") for m in ms)
    assert ms[0].msg == b'@[production.pay] {"uid":123,"price":321}'
    assert ms[7].msg == b"@[production.pay] {}"
    assert ms[12].msg == b"plain text line without tag"


def test_crlf_and_empty_msg() -> None:
    ms = [parse_line(x) for x in lines("log-shuttle/ls-odd-bytes.body")]
    assert ms[0].msg == b'@[production.pay] {"crlf":1}'
    assert ms[1].msg == b'@[production.pay] {"bad_utf8":"\xff\xfe"}'
    assert ms[2].msg.startswith(b"\xef\xbb\xbf@[")
    assert ms[3].msg == b"\ttab-leading line"
    assert ms[4].msg == b""
    assert ms[5].msg == b'@[production.pay] {"multi":'
    assert ms[6].msg == b'  "line json split by newline"}'
    assert ms[7].msg == b'@[production.pay] {"nul":"a\x00b"}'
    assert ms[8].msg == b'@[production.pay] {"last":"no trailing newline"}'


def test_l13_line() -> None:
    first = parse_line(lines("log-shuttle/ls-l13-lost-frame.body")[0])
    assert (first.pri, first.hostname, first.app_name, first.proc_id) == (
        172,
        "heroku",
        "app",
        "log-shuttle",
    )
    assert first.msg.startswith(b"Error L13: 1 messages lost since")


def test_rfc5424_passthrough() -> None:
    a, b, c = (parse_line(x) for x in lines("log-shuttle/ls-rfc5424-passthrough.body"))
    assert a.msg == b'@[production.pay] {"uid":5}'
    assert b.structured_data == '[meta sequenceId="1"]' and b.msg == b"with structured data"
    assert c.timestamp == datetime(2024, 1, 1, 18, 4, 5, 100000, tzinfo=UTC)
    assert c.msg == b"fractional 1 digit, +09:00 offset"


def test_split_chunks_each_parse() -> None:
    ms = [parse_line(x) for x in lines("log-shuttle/ls-split-max-line-100.body")]
    assert [len(m.msg) for m in ms] == [100, 100, 30 - 1]
    ms = [parse_line(x) for x in lines("log-shuttle/ls-split-default-10000.body")]
    assert [len(m.msg) for m in ms] == [10000, 10000, 5000]


HEADER = b"<190>1 2026-11-30T22:43:31.499198+00:00 host app web.1 - "


@pytest.mark.parametrize(
    ("line", "field", "column"),
    [
        pytest.param(b"190>1 x", "PRI", 1, id="no_angle"),
        pytest.param(b"<>1 x", "PRI", 1, id="empty_pri"),
        pytest.param(b"<192>1 x", "PRI", 1, id="pri_over_191"),
        pytest.param(b"<01>1 x", "PRI", 1, id="pri_leading_zero"),
        pytest.param(b"<1900>1 x", "PRI", 1, id="pri_four_digits"),
        pytest.param(b"<190>2 2026-11-30T22:43:31Z h a p - m", "VERSION", 6, id="version_2"),
        pytest.param(b"<190>12 2026-11-30T22:43:31Z h a p - m", "VERSION", 6, id="version_12"),
        pytest.param(b"<190>1", "VERSION", 6, id="nothing_after_version"),
        pytest.param(b"<190>1 - h a p - m", "TIMESTAMP", 8, id="nil_timestamp"),
        pytest.param(b"<190>1 2026-11-30 22:43:31Z h a p - m", "TIMESTAMP", 8, id="space_in_ts"),
        pytest.param(b"<190>1 2026-11-30T22:43:31 h a p - m", "TIMESTAMP", 8, id="no_zone"),
        pytest.param(b"<190>1 2026-11-30T22:43:31Z", "HOSTNAME", 29, id="ends_after_ts"),
        pytest.param(b"<0>1 2026-11-30T22:43:31Z  a p - m", "HOSTNAME", 27, id="empty_host"),
        pytest.param(
            b"<0>1 2026-11-30T22:43:31Z h " + b"a" * 49 + b" p - m", "APP-NAME", 29, id="app_49"
        ),
        pytest.param(b"<0>1 2026-11-30T22:43:31Z h a\x7f p - m", "APP-NAME", 29, id="app_del"),
        pytest.param(b"<0>1 2026-11-30T22:43:31Z h a \xc3\xa9 - m", "PROCID", 31, id="proc_utf8"),
        pytest.param(
            b"<0>1 2026-11-30T22:43:31Z h a p " + b"m" * 33 + b" x", "MSGID", 33, id="msgid_33"
        ),
        pytest.param(b"<0>1 2026-11-30T22:43:31Z h a p", "MSGID", 33, id="no_msgid"),
        pytest.param(b"<0>1 2026-11-30T22:43:31Z h a p -\t", "MSGID", 33, id="msgid_tab"),
    ],
)
def test_header_errors(line: bytes, field: str, column: int) -> None:
    with pytest.raises(LineError) as info:
        parse_line(line)
    assert (info.value.field, info.value.column) == (field, column)
    assert str(info.value).startswith("expected " + field)
    assert str(info.value).endswith(f" at column {column}")


def test_app_name_error_text() -> None:
    line = b"<190>1 2026-11-30T22:43:31.499198+00:00 hostname-is-long " + b"a" * 49 + b" web.1 - m"
    with pytest.raises(
        LineError, match=r"^expected APP-NAME \(1-48 printable US-ASCII characters\) at column 58$"
    ):
        parse_line(line)


@pytest.mark.parametrize(
    ("rest", "sd", "msg"),
    [
        pytest.param(b"-", "-", b"", id="nil_sd_alone"),
        pytest.param(b"- msg", "-", b"msg", id="nil_sd_then_msg"),
        pytest.param(b"-msg", None, b"-msg", id="dash_word_is_msg"),
        pytest.param(b"--", None, b"--", id="double_dash_is_msg"),
        pytest.param(b"", None, b"", id="empty_msg"),
        pytest.param(b'[a b="c"]', '[a b="c"]', b"", id="sd_at_end"),
        pytest.param(b'[a b="c"] m', '[a b="c"]', b"m", id="sd_then_msg"),
        pytest.param(b'[a b="c"]  m', '[a b="c"]', b" m", id="sd_then_two_spaces"),
        pytest.param(b'[a][b c="d"] m', '[a][b c="d"]', b"m", id="paramless_then_param"),
        pytest.param(b'[a b="\\"" c="\\\\"] m', '[a b="\\"" c="\\\\"]', b"m", id="escapes"),
        pytest.param(b'[a b="x]"] m', None, b'[a b="x]"] m', id="unescaped_bracket"),
        pytest.param(b"[GIN] x", None, b"[GIN] x", id="paramless_element"),
        pytest.param(b"[a b=c] m", None, b"[a b=c] m", id="unquoted_value"),
        pytest.param(b'[a b="c"]x', None, b'[a b="c"]x', id="no_space_after_sd"),
        pytest.param(b'[a b="c"] [d e="f"] m', '[a b="c"]', b'[d e="f"] m', id="second_sd_is_msg"),
        pytest.param(b'[a b="\xff"] m', None, b'[a b="\xff"] m', id="sd_not_utf8"),
        pytest.param(b'[a b="c"', None, b'[a b="c"', id="unclosed"),
        pytest.param(b'[a b="c"]' * 2000 + b"x", None, b'[a b="c"]' * 2000 + b"x", id="long_run"),
        pytest.param(b'[a b="c"]' * 2000 + b" x", '[a b="c"]' * 2000, b"x", id="long_sd"),
        pytest.param(
            b"[" + b"n" * 33 + b' b="c"] m', None, b"[" + b"n" * 33 + b' b="c"] m', id="long_sd_id"
        ),
    ],
)
def test_structured_data_rule(rest: bytes, sd: str | None, msg: bytes) -> None:
    m = parse_line(HEADER + rest)
    assert (m.structured_data, m.msg) == (sd, msg)


@pytest.mark.parametrize(
    ("tail", "msg"),
    [
        (b"m\n", b"m"),
        (b"m\r\n", b"m"),
        (b"m\n\n", b"m\n"),
        (b"m\r", b"m"),
        (b"m\r\r\n", b"m\r"),
        (b"\n", b""),
        (b"m", b"m"),
    ],
)
def test_one_trailing_lf_then_cr_removed(tail: bytes, msg: bytes) -> None:
    assert parse_line(HEADER + tail).msg == msg


def test_line_ending_after_msgid_has_empty_msg() -> None:
    m = parse_line(b"<190>1 2026-11-30T22:43:31Z host app web.1 -\n")
    assert (m.msg_id, m.structured_data, m.msg) == ("-", None, b"")


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        (b"2026-11-30T22:43:31Z", datetime(2026, 11, 30, 22, 43, 31, tzinfo=UTC)),
        (b"2026-11-30T22:43:31.1Z", datetime(2026, 11, 30, 22, 43, 31, 100000, tzinfo=UTC)),
        (b"2026-11-30T22:43:31.123456789Z", datetime(2026, 11, 30, 22, 43, 31, 123456, tzinfo=UTC)),
        (b"2026-11-30T22:43:31.999999999Z", datetime(2026, 11, 30, 22, 43, 31, 999999, tzinfo=UTC)),
        (b"2026-11-30T22:43:31-00:00", datetime(2026, 11, 30, 22, 43, 31, tzinfo=UTC)),
        (b"2026-11-30T22:43:31+01:30", datetime(2026, 11, 30, 21, 13, 31, tzinfo=UTC)),
        (b"2026-12-31T23:30:00-05:00", datetime(2027, 1, 1, 4, 30, tzinfo=UTC)),
        (b"2026-11-30T22:43:31.+00:00", None),
        (b"2026-11-30T22:43:31.1234567890Z", None),
        (b"2026-11-30t22:43:31Z", None),
        (b"2026-11-30T22:43:31z", None),
        (b"2026-11-30T22:43:60Z", None),
        (b"2026-02-30T22:43:31Z", None),
        (b"2026-11-30T22:43:31+24:00", None),
        (b"2026-11-30T22:43:31+05:60", None),
        (b"2026-11-30T22:43:31+0500", None),
        (b"2026-11-30T22:43:31,5Z", None),
        (b"2026-11-30T22:43:31+05", None),
        (b"2026-11-30T22:43:31.5+05:00:00", None),
        (b"-", None),
        (b"", None),
    ],
)
def test_timestamps(ts: bytes, expected: datetime | None) -> None:
    got = parse_timestamp(ts)
    assert got == expected
    if got is not None:
        assert got.tzinfo is UTC


_REFERENCE = re.compile(
    rb"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(?:(Z)|([+-])(\d\d):(\d\d))\Z"
)


def reference_timestamp(ts: bytes) -> datetime | None:
    """A slow, obviously-right RFC 3339 reader to check the fast one against."""
    m = _REFERENCE.match(ts)
    if m is None:
        return None
    y, mo, d, h, mi, s, frac, z, sign, oh, om = m.groups()
    micro = int((frac + b"00000")[:6]) if frac else 0
    if z:
        tz = UTC
    else:
        if int(oh) > 23 or int(om) > 59:
            return None
        off = timedelta(hours=int(oh), minutes=int(om))
        tz = timezone(-off if sign == b"-" else off)
    try:
        when = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), micro, tz)
    except ValueError:
        return None
    return when.astimezone(UTC)


_ts_chars = st.sampled_from(list(b"0123456789-T:.Z+ z,\xd9"))


@settings(max_examples=2000)
@given(
    st.builds(
        lambda template, edits: _mutate(template, edits),
        st.sampled_from(
            [
                b"2026-11-30T22:43:31Z",
                b"2026-11-30T22:43:31.499198+00:00",
                b"2024-01-02T03:04:05.1+09:00",
                b"2012-07-22T00:06:26-00:00",
                b"2026-11-30T22:43:31.123456789-11:59",
            ]
        ),
        st.lists(st.tuples(st.integers(0, 40), _ts_chars, st.booleans()), max_size=3),
    )
)
def test_timestamp_matches_reference(ts: bytes) -> None:
    assert parse_timestamp(ts) == reference_timestamp(ts)


def _mutate(template: bytes, edits: list[tuple[int, int, bool]]) -> bytes:
    out = bytearray(template)
    for pos, char, insert in edits:
        pos = min(pos, len(out))
        if insert:
            out.insert(pos, char)
        elif pos < len(out):
            out[pos] = char
    return bytes(out)


@settings(max_examples=500)
@given(st.binary(max_size=300))
def test_any_bytes_parse_or_line_error(line: bytes) -> None:
    try:
        m = parse_line(line)
    except LineError as err:
        assert err.column >= 1
    else:
        assert 0 <= m.pri <= 191
        assert m.timestamp.tzinfo is UTC


@settings(max_examples=500)
@given(st.binary(max_size=200))
def test_any_msg_after_valid_header(msg: bytes) -> None:
    m = parse_line(HEADER + msg)
    assert m.timestamp == datetime(2026, 11, 30, 22, 43, 31, 499198, tzinfo=UTC)
    if m.structured_data is None:
        assert msg.startswith(m.msg)


@settings(max_examples=1000)
@given(
    st.one_of(
        st.binary(max_size=120),
        st.builds(
            lambda head, fields, rest: head + b" " + b" ".join(fields) + b" " + rest,
            st.sampled_from([b"<190>1 2026-11-30T22:43:31Z", b"<0>1 2026-11-30T22:43:31.5+01:00"]),
            st.lists(
                st.sampled_from([b"-", b"host", b"", b"a\x7f", b"x" * 33, b"x" * 49, b"\n"]),
                min_size=4,
                max_size=4,
            ),
            st.binary(max_size=40),
        ),
    )
)
def test_every_line_parses_or_names_the_field_that_does_not(line: bytes) -> None:
    """split_header's one-pass check and the field-by-field walk that locates an error use
    the same tables: a line either parses, or its LineError names a field (the walk never
    fails to find what the check refused)."""
    try:
        parsed = parse_line(line)
    except LineError as err:
        assert err.field in {
            "PRI",
            "VERSION",
            "TIMESTAMP",
            "HOSTNAME",
            "APP-NAME",
            "PROCID",
            "MSGID",
        }
        assert 1 <= err.column <= len(line) + 2
        return
    assert parsed.pri == int(line[1 : line.index(b">")])
    assert parsed.facility == parsed.pri >> 3 and parsed.severity == parsed.pri & 7
