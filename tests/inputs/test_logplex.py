"""decode_batch: one outcome per frame, the ledger, the acceptance window, on real bodies."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drain.decode.framing import encode_frames
from drain.inputs.logplex import decode_body
from drain.records import EventRow
from drain.records import QuarantineReason as R
from tests.support.config import LIMITS, RULES, decode_limits, line_rules
from tests.support.oracle import check_ledger

SAMPLES = Path(__file__).parent.parent / "data" / "samples"
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def sample(name: str) -> bytes:
    body = (SAMPLES / name).read_bytes()
    return gzip.decompress(body) if name.endswith("ls-gzip.body") else body


def test_td_convention_batch() -> None:
    batch = decode_body(
        sample("log-shuttle/ls-td-convention-lines.body"),
        now=NOW,
        msg_count=13,
        limits=LIMITS,
        rules=RULES,
    )
    check_ledger(batch)
    led = batch.ledger
    assert (led.frames, led.events, led.quarantined, led.not_events) == (13, 6, 5, 2)
    assert led.quarantined_by_reason == {"invalid_json": 2, "not_an_object": 1, "bad_separator": 2}
    assert led.not_events_by_kind == {"untagged": 2}
    assert led.msg_count_header == 13 and not led.msg_count_mismatch
    assert batch.events[0] == EventRow(
        datetime(2026, 11, 30, 22, 43, 31, 499198, tzinfo=UTC),
        "production.pay",
        '{"uid":123,"price":321}',
        23,
        6,
        "host",
        "app",
        "web.1",
        "",
    )
    assert [e.tag for e in batch.events] == [
        "production.pay",
        "production.login",
        "staging.events",
        "Production.Pay",
        "production.pay",
        "pay",
    ]
    q = batch.quarantined[0]
    assert q.reason is R.INVALID_JSON and q.tag == "production.pay"
    assert q.raw == (
        b"<190>1 2026-11-30T22:43:31.499249+00:00 host app web.1 - @[production.pay] {not json}\n"
    )
    assert q.raw_bytes == 86 and q.frame_offset == 99 + 3 + 169 + 4 + 114 + 4 + 101 + 4
    assert q.event_time == datetime(2026, 11, 30, 22, 43, 31, 499249, tzinfo=UTC)


def test_odd_bytes_batch() -> None:
    batch = decode_body(
        sample("log-shuttle/ls-odd-bytes.body"), now=NOW, limits=LIMITS, rules=RULES
    )
    check_ledger(batch)
    assert [e.payload for e in batch.events] == [
        '{"crlf":1}',
        '{"bom":1}',
        '{"last":"no trailing newline"}',
    ]
    assert [(q.reason, q.tag) for q in batch.quarantined] == [
        (R.INVALID_UTF8, "production.pay"),
        (R.INVALID_JSON, "production.pay"),
        (R.INVALID_JSON, "production.pay"),
    ]
    assert batch.ledger.not_events_by_kind == {"untagged": 3}
    assert all(e.proc_id == "worker.2" for e in batch.events)


def test_gzip_sample_gunzipped() -> None:
    batch = decode_body(
        sample("log-shuttle/ls-gzip.body"), now=NOW, msg_count=1, limits=LIMITS, rules=RULES
    )
    check_ledger(batch)
    assert [e.payload for e in batch.events] == ['{"gz":1}']


def test_logplex_and_log_shuttle_errors_are_classified() -> None:
    # log-shuttle's L13 of 2026-11-30 is in the acceptance window: a platform event, with
    # its loss report in the ledger
    led = decode_body(
        sample("log-shuttle/ls-l13-lost-frame.body"), now=NOW, limits=LIMITS, rules=RULES
    ).ledger
    assert (led.typed_by_kind, led.not_events_by_kind) == ({"platform": 1}, {"untagged": 1})
    assert [r.source for r in led.loss_reports] == ["L13"]
    # Logplex's L10 of 2014 is not: its bare loss report (logplex_error), and the dyno's
    # state change of 2014 is out_of_window
    led = decode_body(
        sample("logplex-issue105-l10-no-lf.body"), now=NOW, limits=LIMITS, rules=RULES
    ).ledger
    assert led.not_events_by_kind == {"logplex_error": 1, "out_of_window": 1}
    assert [r.source for r in led.loss_reports] == ["L10"]
    off = line_rules(drain_platform_events=False)
    led = decode_body(
        sample("log-shuttle/ls-l13-lost-frame.body"), now=NOW, limits=LIMITS, rules=off
    ).ledger
    assert led.not_events_by_kind == {"logplex_error": 1, "untagged": 1}
    led = decode_body(
        sample("l2met-l10-tcpstyle-reconstructed.body"), now=NOW, limits=LIMITS, rules=RULES
    ).ledger
    assert led.not_events_by_kind == {"logplex_error": 1}


def test_l10_from_an_app_is_untagged() -> None:
    body = encode_frames([b"<172>1 2026-11-30T00:00:00Z host app logplex - Error L10 (x)"])
    assert decode_body(body, now=NOW, limits=LIMITS, rules=RULES).ledger.not_events_by_kind == {
        "untagged": 1
    }


def test_msg_count_mismatch_is_reported() -> None:
    led = decode_body(
        sample("logplex-doc-10msg.body"), now=NOW, msg_count=11, limits=LIMITS, rules=RULES
    ).ledger
    assert led.frames == 10 and led.msg_count_header == 11 and led.msg_count_mismatch


def test_truncated_last_frame_keeps_earlier() -> None:
    body = sample("devcenter-https-drain-2msg-truncated-last.body")
    batch = decode_body(body, now=NOW, limits=LIMITS, rules=RULES)
    check_ledger(batch)
    assert batch.ledger.frames == 1
    (bad,) = batch.quarantined
    assert bad.reason is R.BAD_FRAMING
    assert bad.frame_offset == 86 and bad.raw == body[86:] and bad.raw_bytes == 122
    assert (
        bad.detail == "expected a frame of 119 bytes (truncated frame: 118 bytes remain) at byte 86"
    )
    assert batch.ledger.framing_error == bad.detail


def test_count_too_long_reads_into_next_frame() -> None:
    # Counts 1 byte too long (the fixture lost its LFs): the first frame eats the "1" of
    # "164", the next 64 bytes read as a frame whose header is cut (malformed line), and
    # the 99 bytes after that are not a frame.
    batch = decode_body(
        sample("heroku-log-parser-2014-asis.body"), now=NOW, limits=LIMITS, rules=RULES
    )
    check_ledger(batch)
    led = batch.ledger
    assert led.frames == 2
    assert led.not_events_by_kind == {"untagged": 1, "malformed_line": 1}
    assert led.framing_error_offset == 272 and batch.quarantined[0].raw_bytes == 99


def test_vector_asis_has_no_frames() -> None:
    batch = decode_body(sample("vector-router-asis.body"), now=NOW, limits=LIMITS, rules=RULES)
    check_ledger(batch)
    assert batch.ledger.frames == 0 and batch.ledger.framing_error_offset == 0
    assert batch.quarantined[0].raw_bytes == 270


def test_bad_framing_raw_is_cut() -> None:
    body = b"x" * 100
    batch = decode_body(
        body, now=NOW, limits=decode_limits(max_quarantine_raw_bytes=10), rules=RULES
    )
    (bad,) = batch.quarantined
    assert bad.raw == b"x" * 10 and bad.raw_bytes == 100 and bad.frame_offset == 0


EVENT = b"<190>1 2026-11-30T22:43:31.499198+00:00 host app web.1 - @[t.x] "


def test_moves_past_too_long_frame() -> None:
    big = EVENT + b'{"k":"' + b"x" * 200 + b'"}'
    body = encode_frames([EVENT + b"{}\n", big, EVENT + b'{"a":1}\n'])
    limits = decode_limits(max_frame_bytes=100, max_quarantine_raw_bytes=50)
    batch = decode_body(body, now=NOW, limits=limits, rules=RULES)
    check_ledger(batch)
    assert [e.payload for e in batch.events] == ["{}", '{"a":1}']
    (q,) = batch.quarantined
    assert q.reason is R.FRAME_TOO_LONG
    assert q.raw == big[:50] and q.raw_bytes == len(big)
    assert q.frame_offset == len(b"67 ") + len(EVENT) + len(b"{}\n")
    assert q.detail == f"frame of {len(big)} bytes is over max_frame_bytes (100)"
    assert q.event_time is None and q.tag is None


def test_bad_syslog_header_with_tag_is_quarantined() -> None:
    body = encode_frames(
        [b"<190>1 - host app web.1 - @[t] {}\n", b"<190>1 - host app web.1 - hello\n"]
    )
    batch = decode_body(body, now=NOW, limits=LIMITS, rules=RULES)
    check_ledger(batch)
    (q,) = batch.quarantined
    assert q.reason is R.BAD_SYSLOG_HEADER
    assert q.detail.startswith("syslog: expected TIMESTAMP")
    assert q.detail.endswith("at column 8")
    assert batch.ledger.not_events_by_kind == {"malformed_line": 1}


@pytest.mark.parametrize(
    ("when", "stored"),
    [
        pytest.param(NOW - timedelta(days=7), True, id="oldest_accepted"),
        pytest.param(NOW - timedelta(days=7, microseconds=1), False, id="too_old"),
        pytest.param(NOW + timedelta(hours=1), True, id="newest_accepted"),
        pytest.param(NOW + timedelta(hours=1, microseconds=1), False, id="too_new"),
        pytest.param(NOW, True, id="now"),
    ],
)
def test_acceptance_window(when: datetime, stored: bool) -> None:
    ts = when.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00").encode()
    body = encode_frames([b"<190>1 " + ts + b' host app web.1 - @[a.b] {"x":1}\n'])
    batch = decode_body(body, now=NOW, limits=LIMITS, rules=RULES)
    check_ledger(batch)
    assert len(batch.events) == int(stored)
    if not stored:
        (q,) = batch.quarantined
        assert q.reason is R.OUT_OF_WINDOW
        assert (q.tag, q.event_time) == ("a.b", when)


def test_out_of_window_detail() -> None:
    batch = decode_body(
        sample("log-shuttle/ls-rfc5424-passthrough.body"), now=NOW, limits=LIMITS, rules=RULES
    )
    (q,) = batch.quarantined
    assert q.detail == (
        "TIMESTAMP 2024-01-02T03:04:05.123456Z is more than 604800 s before receipt "
        "(2026-11-24T00:00:00.000000Z)"
    )


def test_out_of_window_detail_writes_years_with_four_digits() -> None:
    line = b'<190>1 0001-01-01T00:00:00+00:00 host app web.1 - @[a.b] {"x":1}\n'
    batch = decode_body(encode_frames([line]), now=NOW, limits=LIMITS, rules=RULES)
    (q,) = batch.quarantined
    assert q.detail.startswith("TIMESTAMP 0001-01-01T00:00:00.000000Z is more than ")


def test_empty_body() -> None:
    batch = decode_body(b"", now=NOW, msg_count=0, limits=LIMITS, rules=RULES)
    check_ledger(batch)
    assert batch.ledger.frames == 0 and batch.quarantined == [] and batch.events == []
    assert not batch.ledger.msg_count_mismatch


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="tz-aware"):
        decode_body(b"", now=datetime(2026, 12, 1), limits=LIMITS, rules=RULES)


def test_every_sample_keeps_the_ledger() -> None:
    for path in sorted(SAMPLES.rglob("*.body")):
        check_ledger(
            decode_body(sample(str(path.relative_to(SAMPLES))), now=NOW, limits=LIMITS, rules=RULES)
        )


_BODIES = sorted(p for p in SAMPLES.rglob("*.body") if p.name != "ls-gzip.body")

_lines = st.one_of(
    st.binary(min_size=1, max_size=120),
    st.builds(
        lambda tag, obj: EVENT.replace(b"t.x", tag) + obj,
        st.sampled_from([b"t.x", b"Pay", b"a..b", b"", b"x y"]),
        st.one_of(
            st.sampled_from([b"{}", b"[1]", b'{"a":"\\u0000"}', b"{", b" {}", b'{"a":1}\n']),
            st.binary(max_size=30),
        ),
    ),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_lines, max_size=10), st.binary(max_size=20), st.integers(0, 200))
def test_ledger_invariant_for_arbitrary_bodies(
    lines: list[bytes], tail: bytes, max_frame: int
) -> None:
    body = encode_frames(lines) + tail
    limits = decode_limits(max_frame_bytes=max_frame or 65536, max_quarantine_raw_bytes=40)
    batch = decode_body(body, now=NOW, limits=limits, rules=RULES)
    check_ledger(batch)
    assert batch.ledger.frames <= len(lines) + len(tail) // 2
    assert all(len(q.raw) <= 40 for q in batch.quarantined)
    for e in batch.events:
        assert isinstance(orjson.loads(e.payload), dict)


@settings(max_examples=300)
@given(
    st.sampled_from(_BODIES),
    st.lists(
        st.tuples(st.integers(0, 30000), st.sampled_from(list(b'0123456789 \n<>@[]{}"\xff-x'))),
        min_size=1,
        max_size=5,
    ),
)
def test_ledger_invariant_for_mutated_samples(path: Path, edits: list[tuple[int, int]]) -> None:
    body = bytearray(path.read_bytes())
    for pos, byte in edits:
        body[pos % len(body)] = byte
    check_ledger(decode_body(bytes(body), now=NOW, limits=LIMITS, rules=RULES))
