"""Any RFC 3339-shaped TIMESTAMP, in any field that carries one, is an outcome, never a crash.

A TIMESTAMP such as ``9999-12-31T23:59:59-23:59`` is valid RFC 3339 but its UTC instant is
past year 9999, outside Python's datetime range: converting it raised OverflowError, which
made every POST of the batch answer 500, so Logplex dropped the good events beside it. The
rule now: a time that parse_timestamp cannot represent in UTC is a bad header (quarantined
BAD_SYSLOG_HEADER when the frame contains ``@[``, counted ``malformed_line`` otherwise), and
in an L10/L13 report it is a report without a ``since``.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from drain.decode.loss import batch_loss, parse_lost_line
from drain.decode.syslog import parse_timestamp
from drain.inputs.logplex import decode_body
from tests.support.app import drain, fetch
from tests.support.config import LIMITS, RULES
from tests.support.oracle import check_ledger, reference_decode
from tests.support.served import logplex_headers

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)


def _two(low: int, high: int) -> st.SearchStrategy[str]:
    return st.integers(low, high).map(lambda n: f"{n:02d}")


#: RFC 3339 ``date-time`` shapes: any year 0000..9999, months and days also out of range,
#: hours, minutes and seconds up to 99, 0..9 fraction digits, Z or any offset ±00:00..±23:59
#: (and some past it).
TIMESTAMPS = st.builds(
    lambda y, mo, d, h, mi, s, frac, zone: f"{y:04d}-{mo}-{d}T{h}:{mi}:{s}{frac}{zone}",
    st.integers(0, 9999),
    _two(0, 13),
    _two(0, 32),
    _two(0, 25),
    _two(0, 61),
    _two(0, 61),
    st.one_of(st.just(""), st.text("0123456789", min_size=1, max_size=10).map(lambda f: "." + f)),
    st.one_of(
        st.sampled_from(["Z", "z", "+00:00", "-00:00"]),
        st.builds(
            lambda sign, hh, mm: f"{sign}{hh}:{mm}", st.sampled_from("+-"), _two(0, 24), _two(0, 60)
        ),
    ),
).map(lambda text: text.encode("ascii"))

EXTREMES = [
    b"9999-12-31T23:59:59-23:59",
    b"9999-12-31T23:59:59.999999-00:01",
    b"0001-01-01T00:00:00+23:59",
    b"0001-01-01T00:00:00.000001+00:01",
    b"0000-01-01T00:00:00Z",
    b"9999-12-31T23:59:59Z",
]


def _frame(msg: bytes) -> bytes:
    return str(len(msg)).encode("ascii") + b" " + msg


def _good(n: int) -> bytes:
    at = NOW.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00").encode("ascii")
    return _frame(b"<190>1 " + at + b' host app web.1 - @[ts.good] {"n":%d}\n' % n)


def _body(ts: bytes) -> bytes:
    """A good event, then the same TIMESTAMP in a tagged line, a router line, an L10 line,
    an L10 ``since`` and an L13 ``since``, then a good event."""
    at = NOW.strftime("%Y-%m-%dT%H:%M:%S+00:00").encode("ascii")
    return b"".join(
        [
            _good(1),
            _frame(b"<190>1 " + ts + b' host app web.1 - @[ts.bad] {"n":0}\n'),
            _frame(b"<158>1 " + ts + b" host heroku router - at=info method=GET path=/\n"),
            _frame(
                b"<172>1 " + ts + b" host heroku logplex - Error L10 (output buffer overflow): "
                b"1 messages dropped since " + ts + b"."
            ),
            _frame(
                b"<172>1 " + at + b" host heroku logplex - Error L10 (output buffer overflow): "
                b"2 messages dropped since " + ts + b"."
            ),
            _frame(
                b"<190>1 "
                + at
                + b" shuttle app log-shuttle - Error L13: 3 messages lost since "
                + ts
                + b"\n"
            ),
            _good(2),
        ]
    )


def _check(ts: bytes) -> None:
    when = parse_timestamp(ts)
    assert when is None or when.tzinfo is UTC
    body = _body(ts)
    for decode in (decode_body, reference_decode):
        batch = decode(body, now=NOW, limits=LIMITS, rules=RULES)
        check_ledger(batch)
        assert batch.ledger.frames == 7
        good = [orjson.loads(e.payload)["n"] for e in batch.events if e.tag == "ts.good"]
        assert good == [1, 2]
    reports = decode_body(body, now=NOW, limits=LIMITS, rules=RULES).ledger.loss_reports
    loss = batch_loss(reports, "4")
    assert loss.lost >= 2 + 4  # the L10 with a valid header (2), the L13 or the header (>= 4)
    report = parse_lost_line(b"Error L13: 3 messages lost since " + ts)
    assert report is not None and report.lost == 3
    assert report.since == when


def test_times_outside_datetimes_range_are_none_not_overflow() -> None:
    for ts in EXTREMES:
        assert parse_timestamp(ts) in (None, parse_timestamp(ts))  # does not raise
    assert parse_timestamp(b"9999-12-31T23:59:59-23:59") is None
    assert parse_timestamp(b"0001-01-01T00:00:00+23:59") is None
    assert parse_timestamp(b"9999-12-31T23:59:59Z") == datetime(
        9999, 12, 31, 23, 59, 59, tzinfo=UTC
    )


def test_extreme_timestamps_in_every_field_keep_the_good_events() -> None:
    for ts in EXTREMES:
        _check(ts)


@settings(max_examples=500, deadline=None)
@given(TIMESTAMPS)
def test_any_rfc3339_shaped_timestamp_never_raises(ts: bytes) -> None:
    _check(ts)


async def test_content_never_makes_a_batch_answer_5xx(migrated_url: str) -> None:
    """Over HTTP against a real database: each extreme TIMESTAMP answers 200, the good
    events are stored once, the bad tagged line is quarantined as a bad header."""
    async with drain(migrated_url, drain_flush_max_delay_s=0.002) as client:
        for k, ts in enumerate(EXTREMES):
            for attempt in range(2):  # a retry of the same frame id adds nothing
                response = await client.post(
                    "/logs", content=_body(ts), headers=logplex_headers(frame_id=f"ts-{k}")
                )
                assert response.status_code == 200, (ts, attempt, response.text)
    rows = await fetch(migrated_url, "SELECT count(*) AS c FROM raw_events WHERE tag = 'ts.good'")
    assert rows[0]["c"] == 2 * len(EXTREMES)
    bad = await fetch(
        migrated_url,
        "SELECT reason, count(*) AS c FROM quarantine WHERE raw LIKE '%ts.bad%' GROUP BY reason",
    )
    by_reason = {r["reason"]: r["c"] for r in bad}
    # out of datetime's range: a bad header; in range but years away: out of the window
    assert set(by_reason) <= {"bad_syslog_header", "out_of_window"}
    assert sum(by_reason.values()) == len(EXTREMES)
    assert by_reason["bad_syslog_header"] >= 4
