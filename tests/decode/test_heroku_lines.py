"""What each of Heroku's own lines becomes (drain.decode.lines, drain.decode.platform): the
dispatch by APP-NAME and PROCID, the platform kinds, the tables turned off, exclusion rules,
the acceptance window, the client hash; and the tag behind a header not fully read
(drain.inputs.logplex)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from drain.decode.lines import (
    KIND_EXCLUDED,
    KIND_LOGPLEX_ERROR,
    KIND_OUT_OF_WINDOW,
    KIND_UNTAGGED,
    TypedLine,
    as_typed,
    line_decoder,
)
from drain.decode.platform import code_label, parse_platform
from drain.decode.rules import parse_exclusions
from drain.inputs.logplex import decode_body
from drain.records import LostReport, MetricRow, PlatformEventRow, QuarantineReason, RouterRow
from drain.settings import Settings
from tests.support.config import CLIENT_KEY, LIMITS, RULES, line_rules
from tests.support.oracle import check_ledger
from tests.support.served import frame

NOW = datetime(2026, 11, 30, 12, 30, tzinfo=UTC)
WHEN = datetime(2026, 11, 30, 12, tzinfo=UTC)
ROUTER = (
    b'at=info method=GET path="/health" host=a.example.com request_id=r-1 fwd="1.2.3.4" '
    b"dyno=web.1 connect=0ms service=3ms status=200 bytes=2 protocol=https"
)
H12 = (
    b'at=error code=H12 desc="Request timeout" method=GET path="/slow" host=a.example.com '
    b'request_id=r-2 fwd="1.2.3.4" dyno=web.1 connect=1ms service=30000ms status=503 bytes=0'
)
METRICS = b"source=web.1 dyno=heroku.1.x sample#memory_rss=100.00MB sample#memory_quota=512.00MB"
PG = b"source=DATABASE addon=postgresql-x sample#db_size=10bytes sample#tables=3"


def decode(
    app_name: bytes, proc: bytes, msg: bytes, rules: object = RULES, when: datetime = WHEN
) -> object:
    decode_line = line_decoder(NOW, LIMITS, "shop", rules)  # type: ignore[arg-type]
    out = decode_line(when, 134, b"host", app_name, proc, msg, msg, 0)
    return as_typed(out) or out  # a bare RouterRow stands for its TypedLine


def test_router_line() -> None:
    out = decode(b"heroku", b"router", ROUTER)
    assert isinstance(out, TypedLine) and out.kind == "router" and out.loss is None
    (row,) = out.rows
    assert isinstance(row, RouterRow) and (row.app, row.path, row.status) == (
        "shop",
        "/health",
        200,
    )
    expected = hashlib.blake2b(b"1.2.3.4", key=CLIENT_KEY, digest_size=16).digest()
    assert (row.client_hash, row.fwd) == (expected, None)


def test_an_h_code_is_a_router_row_and_a_platform_event_without_the_address() -> None:
    out = decode(b"heroku", b"router", H12)
    assert isinstance(out, TypedLine)
    router, event = out.rows
    assert isinstance(router, RouterRow) and router.code == "H12"
    assert isinstance(event, PlatformEventRow)
    assert (event.dyno, event.code, event.kind) == ("router", "H12", "error")
    assert "1.2.3.4" not in event.text and "fwd=(hidden)" in event.text
    assert orjson.loads(event.details or "{}")["path"] == "/slow"


@pytest.mark.parametrize(
    ("setting", "expected"),
    [("hash", (True, None)), ("raw", (True, "1.2.3.4")), ("none", (False, None))],
)
def test_router_fwd_setting(setting: str, expected: tuple[bool, str | None]) -> None:
    out = decode(b"heroku", b"router", H12, line_rules(drain_router_fwd=setting))
    assert isinstance(out, TypedLine)
    row, event = out.rows
    assert isinstance(row, RouterRow) and isinstance(event, PlatformEventRow)
    assert (row.client_hash is not None, row.fwd) == expected
    assert ("1.2.3.4" in event.text) is (setting == "raw")


def test_the_hash_is_the_settings_key_everywhere() -> None:
    """DRAIN_CLIENT_HASH_KEY gives the same hash in every process; the database key is
    used only without it."""
    a = Settings.defaults(drain_client_hash_key="s" * 20).line_rules(None)
    b = Settings.defaults(drain_client_hash_key="s" * 20).line_rules(b"ignored")
    c = Settings.defaults(drain_client_hash_key="t" * 20).line_rules(None)
    hashes = [
        decode(b"heroku", b"router", ROUTER, rules).rows[0].client_hash for rules in (a, b, c)
    ]  # type: ignore[attr-defined]
    assert hashes[0] == hashes[1] != hashes[2]
    with pytest.raises(ValueError, match="drain_secrets"):
        Settings.defaults().line_rules(None)
    assert Settings.defaults(drain_router_fwd="none").line_rules(None).client_key == b""


def test_runtime_and_addon_metrics() -> None:
    runtime = decode(b"heroku", b"web.1", METRICS)
    assert isinstance(runtime, TypedLine) and runtime.kind == "runtime_metrics"
    assert all(isinstance(r, MetricRow) for r in runtime.rows) and len(runtime.rows) == 2
    addon = decode(b"app", b"heroku-postgres", PG)
    assert isinstance(addon, TypedLine) and addon.kind == "addon_metrics"
    assert [r.name for r in addon.rows] == ["db_size", "tables"]  # type: ignore[attr-defined]
    # a Postgres server line, and an add-on line that holds no sample, are app output
    assert decode(b"app", b"postgres.20595", b"[BLUE] duration: 1 ms") == KIND_UNTAGGED
    assert decode(b"app", b"heroku-postgres", b"checkpoint complete") == KIND_UNTAGGED


def test_platform_lines_and_loss_lines() -> None:
    r14 = decode(b"heroku", b"web.1", b"Error R14 (Memory quota exceeded)")
    assert isinstance(r14, TypedLine) and r14.kind == "platform"
    (event,) = r14.rows
    assert isinstance(event, PlatformEventRow) and (event.code, event.kind) == ("R14", "error")
    l12 = decode(
        b"shop", b"log-shuttle", b"Error L12: 7100 messages dropped since 2026-11-30T11:00:00Z"
    )
    assert isinstance(l12, TypedLine)
    assert l12.loss == LostReport("L12", 7100, datetime(2026, 11, 30, 11, tzinfo=UTC))
    assert orjson.loads(l12.rows[0].details)["lost"] == 7100  # type: ignore[attr-defined]
    # an ordinary line of a process called log-shuttle is app output
    assert decode(b"app", b"log-shuttle", b"starting up") == KIND_UNTAGGED
    # Heroku's words in the app's own output are not Heroku's lines
    assert decode(b"app", b"web.1", b"Error R14 (Memory quota exceeded)") == KIND_UNTAGGED


@pytest.mark.parametrize(
    ("msg", "kind", "code", "details"),
    [
        (b"State changed from up to crashed", "state", None, {"from": "up", "to": "crashed"}),
        (b"Process exited with status 137", "exit", None, {"status": 137}),
        (b"Process exited", "exit", None, None),
        (b"Stopping all processes with SIGTERM", "stop", None, {"signal": "SIGTERM"}),
        (b"Restarting", "restart", None, None),
        (
            b"Process running mem=1028M(103.3%)",
            "memory",
            None,
            {"mem_bytes": 1077936128, "percent": 103.3},
        ),
        (b"Release v42 created by user jane@example.com", "release", None, {"version": "v42"}),
        (b"Deploy 2c3d3ad by user jane@example.com", "deploy", None, {"commit": "2c3d3ad"}),
        (b"Set FOO, BAR config vars by user jane@example.com", "config", None, None),
        (b"Build succeeded", "build", None, None),
        (b"Error R99 (Platform error)", "error", "R99", {"desc": "Platform error"}),
        (b"Error H99", "error", "H99", None),
        (b"Error Z12 nothing", "other", None, None),
        (b"\xff\x00 odd", "other", None, None),
    ],
)
def test_platform_kinds(msg: bytes, kind: str, code: str | None, details: object) -> None:
    row = parse_platform(WHEN, "a", "web.1", msg)
    assert (row.kind, row.code) == (kind, code)
    assert (orjson.loads(row.details) if row.details else None) == details
    assert "\x00" not in row.text


def test_code_labels_are_bounded() -> None:
    assert [code_label(c) for c in ("H12", "L13", None, "H77", "xyz")] == [
        "H12",
        "L13",
        "none",
        "other",
        "other",
    ]


def test_tables_turned_off() -> None:
    no_router = line_rules(drain_router_requests=False)
    assert decode(b"heroku", b"router", ROUTER, no_router) == KIND_UNTAGGED
    only_event = decode(b"heroku", b"router", H12, no_router)
    assert isinstance(only_event, TypedLine)
    assert [type(r) for r in only_event.rows] == [PlatformEventRow]
    nothing = line_rules(drain_router_requests=False, drain_platform_events=False)
    assert decode(b"heroku", b"router", H12, nothing) == KIND_UNTAGGED
    no_metrics = line_rules(drain_platform_metrics=False)
    assert decode(b"app", b"heroku-redis", PG, no_metrics) == KIND_UNTAGGED
    # a runtime-metrics line is not a platform event when its table is off
    assert decode(b"heroku", b"web.1", METRICS, no_metrics) == KIND_UNTAGGED
    no_platform = line_rules(drain_platform_events=False)
    assert (
        decode(b"heroku", b"web.1", b"State changed from up to down", no_platform) == KIND_UNTAGGED
    )
    loss = decode(
        b"heroku",
        b"logplex",
        b"Error L10 (output buffer overflow): 2 messages dropped since 2026-11-30T11:00:00Z",
        no_platform,
    )
    assert isinstance(loss, LostReport) and loss.lost == 2
    assert decode(b"heroku", b"logplex", b"Error L10 (garbled)", no_platform) == KIND_LOGPLEX_ERROR


def test_exclusion_rules() -> None:
    rules = line_rules(
        drain_exclude_lines=(
            "router.path=/health*,router.status=30?,metrics.source=run.*,platform.kind=state,"
            "platform.code=L1*"
        )
    )
    assert decode(b"heroku", b"router", ROUTER, rules) == KIND_EXCLUDED
    assert isinstance(decode(b"heroku", b"router", H12, rules), TypedLine)
    redirect = ROUTER.replace(b"/health", b"/a").replace(b"status=200", b"status=302")
    assert decode(b"heroku", b"router", redirect, rules) == KIND_EXCLUDED
    run = METRICS.replace(b"source=web.1", b"source=run.42")
    assert decode(b"heroku", b"run.42", run, rules) == KIND_EXCLUDED
    assert isinstance(decode(b"heroku", b"web.1", METRICS, rules), TypedLine)
    assert decode(b"heroku", b"web.1", b"State changed from up to down", rules) == KIND_EXCLUDED
    # an excluded loss line is not stored, but its loss is still reported
    loss = decode(
        b"heroku",
        b"logplex",
        b"Error L10 (output buffer overflow): 2 messages dropped since 2026-11-30T11:00:00Z",
        rules,
    )
    assert isinstance(loss, LostReport) and loss.lost == 2


@pytest.mark.parametrize(
    "text",
    ["router.nope=x", "router.path", "router.path=", "nope.path=x", "path=/x", "router.path=/a,x"],
)
def test_bad_exclusion_rules_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"KIND\.FIELD=GLOB"):
        parse_exclusions(text)


def test_outside_the_acceptance_window() -> None:
    old = NOW - timedelta(seconds=LIMITS.accept_past_s + 60)
    assert decode(b"heroku", b"router", ROUTER, when=old) == KIND_OUT_OF_WINDOW
    loss = decode(
        b"heroku",
        b"logplex",
        b"Error L10 (output buffer overflow): 2 messages dropped since 2014-01-01T00:00:00Z",
        when=old,
    )
    assert isinstance(loss, LostReport)


def test_a_body_of_every_kind_keeps_its_ledger() -> None:
    at = WHEN.isoformat()
    lines = [
        f"<158>1 {at} host heroku router - {ROUTER.decode()}",
        f"<158>1 {at} host heroku router - {H12.decode()}",
        f"<134>1 {at} host heroku web.1 - {METRICS.decode()}",
        f"<134>1 {at} host app heroku-postgres - {PG.decode()}",
        f"<45>1 {at} host heroku web.1 - Error R14 (Memory quota exceeded)",
        f"<134>1 {at} host app web.1 - @[shop.x] {{}}",
        f"<134>1 {at} host app web.1 - plain",
    ]
    batch = decode_body(
        b"".join(frame(line) for line in lines), now=NOW, limits=LIMITS, rules=RULES
    )
    check_ledger(batch)
    ledger = batch.ledger
    assert ledger.typed_by_kind == {
        "router": 2,
        "runtime_metrics": 1,
        "addon_metrics": 1,
        "platform": 1,
    }
    assert (ledger.events, ledger.not_events, ledger.typed) == (1, 1, 5)
    assert {table: len(rows) for table, rows in batch.rows.items()} == {
        "raw_events": 1,
        "router_requests": 2,
        "platform_events": 2,
        "platform_metrics": 4,
    }
    assert ledger.platform_codes == {"H12": 1, "R14": 1}


@pytest.mark.parametrize(
    ("after_msgid", "outcome"),
    [
        (b"- [exampleSDID@32473] @[t.x] {}", "event"),
        (b"- [a][b] @[t.x] {}", "event"),
        (b"- - [a] @[t.x] {}", "event"),
        (b"-  @[t.x] {}", QuarantineReason.MISPLACED_TAG),
        (b"- - - @[t.x] {}", QuarantineReason.MISPLACED_TAG),
        (b"- \t@[t.x] {}", QuarantineReason.MISPLACED_TAG),
        (b'- [m a="1"]  @[t.x] {}', QuarantineReason.MISPLACED_TAG),
        (b"- [a]  @[t.x] {}", QuarantineReason.MISPLACED_TAG),
        (b"- [a] @[t.x] {nope", QuarantineReason.INVALID_JSON),
        (b"- INFO 2026 @[t.x] {}", KIND_UNTAGGED),
        (b"- see @[t.x]", KIND_UNTAGGED),
        (b"- [GIN] 200 | GET @[x]", KIND_UNTAGGED),
    ],
)
def test_a_tag_behind_a_header_not_fully_read(after_msgid: bytes, outcome: object) -> None:
    line = b"<134>1 " + WHEN.isoformat().encode() + b" host app web.1 " + after_msgid  # MSGID on
    batch = decode_body(frame(line), now=NOW, limits=LIMITS, rules=RULES)
    check_ledger(batch)
    if outcome == "event":
        assert [e.tag for e in batch.events] == ["t.x"]
    elif isinstance(outcome, QuarantineReason):
        assert [q.reason for q in batch.quarantined] == [outcome]
        assert batch.quarantined[0].event_time == WHEN
    else:
        assert batch.ledger.not_events_by_kind == {outcome: 1}
