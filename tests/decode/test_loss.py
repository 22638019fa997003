"""Upstream loss reports (drain.decode.loss): Logplex's L10 in both wordings and its L11,
L14, L15, log-shuttle's L12 and L13 and their Logplex-Drop-Count / Logplex-Lost-Count
headers, read from the captured samples and from table cases (the samples through the
Logplex decoder, whose ledger keeps the reports)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from drain.decode.loss import (
    SOURCE_DROP_HEADER,
    SOURCE_L10,
    SOURCE_L11,
    SOURCE_L12,
    SOURCE_L13,
    SOURCE_L14,
    SOURCE_L15,
    SOURCE_LOST_HEADER,
    batch_loss,
    is_loss_line,
    parse_count_header,
    parse_lost_line,
)
from drain.inputs.logplex import decode_body
from drain.records import LostReport
from tests.support.config import RULES, decode_limits

SAMPLES = Path(__file__).parent.parent / "data" / "samples"
#: far from every sample's TIMESTAMP does not matter: loss lines are not events
NOW = datetime(2026, 12, 1, tzinfo=UTC)
WIDE = decode_limits(accept_past_s=1e10)


def reports(name: str) -> list[LostReport]:
    """The loss reports the decoder's ledger keeps for a sample body."""
    return decode_body(
        (SAMPLES / name).read_bytes(), now=NOW, limits=WIDE, rules=RULES
    ).ledger.loss_reports


@pytest.mark.parametrize(
    ("msg", "expected"),
    [
        pytest.param(
            b"Error L10 (output buffer overflow): 1 messages dropped since "
            b"2014-11-07T23:29:45+00:00.",
            LostReport(SOURCE_L10, 1, datetime(2014, 11, 7, 23, 29, 45, tzinfo=UTC)),
            id="l10_messages_dropped_since",
        ),
        pytest.param(
            b"Error L10 (output buffer overflow): drain 'd.cfcd3264-7259-4b12-ac5b-016032978174'"
            b" dropped 1 messages since 2020-06-12T14:40:59.280571+00:00.",
            LostReport(
                SOURCE_L10,
                1,
                datetime(2020, 6, 12, 14, 40, 59, 280571, tzinfo=UTC),
                "d.cfcd3264-7259-4b12-ac5b-016032978174",
            ),
            id="l10_drain_dropped_messages_since",
        ),
        pytest.param(
            b"Error L13: 7 messages lost since 2026-11-30T22:43:00.082055+00:00",
            LostReport(SOURCE_L13, 7, datetime(2026, 11, 30, 22, 43, 0, 82055, tzinfo=UTC)),
            id="l13_messages_lost_since",
        ),
        pytest.param(
            b"Error L13: 2 messages lost since 2026-11-30T23:43:00+01:00",
            LostReport(SOURCE_L13, 2, datetime(2026, 11, 30, 22, 43, tzinfo=UTC)),
            id="since_converted_to_utc",
        ),
        pytest.param(
            b"Error L13: 2 messages lost since 2026-13-45T99:00:00Z",
            LostReport(SOURCE_L13, 2, None),
            id="impossible_since_is_none",
        ),
        pytest.param(b"Error L10 (output buffer overflow)", None, id="no_count"),
        pytest.param(b"Error L11 (tail buffer overflow): 3 messages dropped", None, id="no_since"),
        pytest.param(
            # heroku/logplex logplex_api.erl, to a tail session
            b"Error L11 (Tail buffer overflow) -> This tail session dropped 5 messages since "
            b"2026-11-30T11:00:00+00:00.",
            LostReport(SOURCE_L11, 5, datetime(2026, 11, 30, 11, tzinfo=UTC)),
            id="l11_tail_session",
        ),
        pytest.param(
            # heroku/log-shuttle logplex_formatter.go (v0.22.0), with -num-outlets 8
            b"Error L12: 7100 messages dropped since 2026-11-30T22:43:00.082055+00:00",
            LostReport(SOURCE_L12, 7100, datetime(2026, 11, 30, 22, 43, 0, 82055, tzinfo=UTC)),
            id="l12_messages_dropped_since",
        ),
        pytest.param(
            # older log-shuttle (batch.go): a full stop after the time
            b"Error L12: 3 messages dropped since 2014-01-01T00:00:00.000000+00:00.",
            LostReport(SOURCE_L12, 3, datetime(2014, 1, 1, tzinfo=UTC)),
            id="l12_old_wording",
        ),
        pytest.param(
            b'Error L14 (certificate validation): error="unknown ca" uri="syslog+tls://x:1/"',
            LostReport(SOURCE_L14, 0, None),
            id="l14_no_count",
        ),
        pytest.param(
            b"Error L15 (Tail buffer temporarily unavailable)",
            LostReport(SOURCE_L15, 0, None),
            id="l15_no_count",
        ),
        pytest.param(b"Error L16: 3 messages lost since 2026-11-30T22:43:00Z", None, id="l16"),
        pytest.param(b"Error L100: 3 messages lost since 2026-11-30T22:43:00Z", None, id="l100"),
        pytest.param(
            b"Error L13: 9999999999999999 messages lost since 2026-11-30T22:43:00Z",
            None,
            id="count_too_long",
        ),
        pytest.param(b"State changed from starting to up", None, id="plain_line"),
    ],
)
def test_parse_lost_line(msg: bytes, expected: LostReport | None) -> None:
    assert parse_lost_line(msg) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", 1), (" 12 ", 12), (None, None), ("", None), ("-1", None), ("x", None), ("٣", None)],
)
def test_count_headers(value: str | None, expected: int | None) -> None:
    assert parse_count_header(value) == expected


def test_logplex_l10_sample_without_lf() -> None:
    loss = batch_loss(reports("logplex-issue105-l10-no-lf.body"), None)
    assert loss.lost == 1
    assert loss.reports == (
        LostReport(SOURCE_L10, 1, datetime(2014, 11, 7, 23, 29, 45, tzinfo=UTC)),
    )


@pytest.mark.parametrize("name", ["l2met-l10-tcpstyle-reconstructed.body"])
def test_l2met_l10_sample(name: str) -> None:
    loss = batch_loss(reports(name), None)
    assert loss.lost == 500
    assert loss.latest == LostReport(SOURCE_L10, 500, datetime(2013, 4, 17, 19, 4, 46, tzinfo=UTC))


def test_l2met_asis_sample_cut_inside_its_since_still_reports_the_count() -> None:
    # Its octet count is wrong (162 for 169 bytes): the frame ends inside the since time
    # ("... since 2013-04-17T19:04") and the rest of the body is bad_framing. The count
    # the line states is still read; the cut time is not trusted.
    loss = batch_loss(reports("l2met-l10-tcpstyle-asis.body"), None)
    assert loss.lost == 500
    assert loss.latest == LostReport(SOURCE_L10, 500, None)


def test_log_shuttle_l13_and_header_are_one_loss() -> None:
    headers = (SAMPLES / "log-shuttle/ls-l13-lost-frame.headers").read_text()
    (header,) = [
        line.partition(":")[2] for line in headers.splitlines() if line.startswith("Logplex-Lost")
    ]
    loss = batch_loss(reports("log-shuttle/ls-l13-lost-frame.body"), header)
    assert loss.lost == 1  # the L13 line and the header describe the same message
    assert loss.by_code == {SOURCE_L13: 1}
    assert [r.source for r in loss.reports] == [SOURCE_L13, SOURCE_LOST_HEADER]
    assert loss.latest == LostReport(
        SOURCE_L13, 1, datetime(2026, 11, 30, 22, 43, 0, 82055, tzinfo=UTC)
    )


def test_header_alone_counts_and_larger_of_l13_and_header_wins() -> None:
    assert batch_loss([], "4").lost == 4
    body = reports("log-shuttle/ls-l13-lost-frame.body")
    assert batch_loss(body, "3").lost == 3
    assert batch_loss(body, None).lost == 1


def test_drops_and_losses_are_told_apart_and_each_pair_counted_once() -> None:
    """log-shuttle sends an L12 line with Logplex-Drop-Count and an L13 line with
    Logplex-Lost-Count (logplex_formatter.go): each pair is one loss; L10 adds up; L11,
    L14 and L15 concern tail sessions and other drains, not this drain's lines."""
    since = datetime(2026, 11, 30, 22, 43, tzinfo=UTC)
    lines = [
        LostReport(SOURCE_L12, 7100, since),
        LostReport(SOURCE_L13, 20, since),
        LostReport(SOURCE_L10, 2, since),
        LostReport(SOURCE_L10, 3, since),
        LostReport(SOURCE_L11, 9, since),
        LostReport(SOURCE_L14, 0, None),
    ]
    loss = batch_loss(lines, "30", "7000")
    assert loss.by_code == {SOURCE_L10: 5, SOURCE_L12: 7100, SOURCE_L13: 30}
    assert loss.lost == 7135
    assert [r.source for r in loss.reports[-2:]] == [SOURCE_DROP_HEADER, SOURCE_LOST_HEADER]
    only_headers = batch_loss([], None, "7100")
    assert (only_headers.lost, only_headers.by_code) == (7100, {SOURCE_L12: 7100})
    assert batch_loss([LostReport(SOURCE_L11, 9, since)], None).lost == 0


@pytest.mark.parametrize(
    ("app_name", "proc", "msg", "expected"),
    [
        (b"heroku", b"logplex", b"Error L10 (output buffer overflow): 1 messages", True),
        (b"heroku", b"logplex", b"Error L14 (certificate validation): x", True),
        (b"shop", b"log-shuttle", b"Error L12: 1 messages dropped since x", True),
        (b"app", b"log-shuttle", b"Error L13: 1 messages lost since x", True),
        (b"heroku", b"web.1", b"Error L10 (output buffer overflow): 1 messages", False),
        (b"app", b"web.1", b"Error L13: 1 messages lost since x", False),
        (b"heroku", b"logplex", b"State changed from up to down", False),
    ],
)
def test_which_lines_are_loss_lines(
    app_name: bytes, proc: bytes, msg: bytes, expected: bool
) -> None:
    assert is_loss_line(app_name, proc, msg) is expected


def test_lines_from_an_app_are_not_loss_reports() -> None:
    # The same words from the app's own output (APP-NAME app, PROCID web.1) are just lines.
    body = (
        b"<134>1 2026-11-30T22:43:05Z host app web.1 - "
        b"Error L13: 5 messages lost since 2026-11-30T22:43:00Z\n"
    )
    framed = str(len(body)).encode() + b" " + body
    found = decode_body(framed, now=NOW, limits=WIDE, rules=RULES).ledger.loss_reports
    assert batch_loss(found, None).lost == 0
