"""decode_batch's fused fast path gives exactly what the layered general path gives.

``decode_batch`` takes the two common frame shapes (an event line, an untagged line) in
one loop and sends every other frame through the general per-frame path;
``decode_batch_general`` is the layered reference (iter_outcomes + tally). Both must give
the same events, quarantine rows and ledger for every body: the real samples (at several
clocks), the hostile corpus, mutated samples, and lines built by hypothesis around the
edges of the fast path's shapes (header fields, nil STRUCTURED-DATA, tags, JSON, NUL,
BOM, line ends, L10/L13 senders, the acceptance window, the frame count bound).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drain.decode.framing import encode_frames
from drain.decode.limits import DecodeLimits
from drain.errors import TooManyFrames
from drain.inputs.logplex import decode_body
from testkit.hostile import corpus, mutate, named_cases, sample_bodies
from tests.support.config import RULES, decode_limits
from tests.support.oracle import reference_decode

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
#: the samples were captured in 2012-2026: judge them against their own eras too
CLOCKS = [NOW, datetime(2026, 11, 30, 23, 0, tzinfo=UTC), datetime(2013, 5, 24, tzinfo=UTC)]
SAMPLES = sample_bodies()


def same(body: bytes, now: datetime = NOW, limits: DecodeLimits | None = None) -> None:
    """Decode ``body`` both ways and assert the same result (or the same TooManyFrames)."""
    limits = limits or decode_limits()
    try:
        want = reference_decode(body, now=now, limits=limits, rules=RULES, msg_count=3)
    except TooManyFrames as err:
        with pytest.raises(TooManyFrames) as raised:
            decode_body(body, now=now, limits=limits, rules=RULES, msg_count=3)
        assert (raised.value.max_frames, raised.value.offset) == (err.max_frames, err.offset)
        return
    got = decode_body(body, now=now, limits=limits, rules=RULES, msg_count=3)
    assert {k: v for k, v in got.rows.items() if v} == {k: v for k, v in want.rows.items() if v}
    assert got.events == want.events
    assert got.quarantined == want.quarantined
    assert got.ledger == want.ledger


@pytest.mark.parametrize("name", [name for name, _ in SAMPLES])
def test_every_sample_at_every_clock(name: str) -> None:
    body = dict(SAMPLES)[name]
    for now in CLOCKS:
        same(body, now)


def test_hostile_corpus_and_named_cases() -> None:
    for _name, body in corpus():
        same(body)
    for body, _frames in named_cases(NOW).values():
        same(body)


def test_mutated_samples() -> None:
    rng = random.Random(20261201)
    for _ in range(3):
        for _name, body in SAMPLES:
            if body:
                same(mutate(body, rng, edits=6), CLOCKS[rng.randrange(len(CLOCKS))])


def test_frame_count_bound_is_the_same() -> None:
    line = b"<190>1 2026-12-01T12:00:00Z host app web.1 - @[t.x] {}\n"
    body = encode_frames([line] * 5)
    same(body, limits=decode_limits(max_frames=5))
    same(body, limits=decode_limits(max_frames=4))
    with pytest.raises(TooManyFrames):
        decode_body(body, now=NOW, limits=decode_limits(max_frames=4), rules=RULES)


def _mostly(common: list[bytes], rare: list[bytes]) -> st.SearchStrategy[bytes]:
    """Mostly (~90 %) values that keep a line on the fast path, else one that must not."""
    return st.one_of(st.sampled_from(common * (9 * len(rare) // len(common) + 1) + rare))


_pri = _mostly([b"<190>1", b"<0>1", b"<191>1"], [b"<192>1", b"<01>1", b"<13>2", b"190>1"])
_ts = _mostly(
    [
        b"2026-12-01T12:00:00Z",
        b"2026-12-01T11:59:59.123456+00:00",
        b"2026-11-24T12:00:00Z",  # exactly 7 days before NOW: accepted
        b"2026-12-01T21:00:00+09:00",
    ],
    [
        b"2026-12-01T13:00:00.000001Z",  # 1 hour + 1 µs after NOW: out of window
        b"2026-11-24T11:59:59.999999Z",
        b"2026-02-30T12:00:00Z",
        b"-",
        b"2026-12-01t12:00:00z",
    ],
)
_field = _mostly([b"host", b"app", b"web.1", b"heroku", b"-"], [b"x" * 49, b"", b"\xc3\xa9"])
_proc = _mostly([b"web.1", b"logplex", b"log-shuttle", b"router"], [b"x" * 129, b""])
_sd = _mostly([b"- ", b""], [b"-", b'[meta a="1"] ', b"[x] ", b"-- ", b"- - ", b"\xef\xbb\xbf"])
_tag = _mostly(
    [b"t.x", b"production.pay", b"Pay"], [b"a..b", b".a", b"", b"x y", b"t]x", b"t" * 129]
)
_json = st.one_of(
    st.sampled_from([b"{}", b'{"a":1}', b'{"uid":12,"price":3.5}']),
    st.sampled_from(
        [
            b"{}",
            b'{"a":1}',
            b"[1]",
            b'{"a":"\\u0000"}',
            b'{"\\u0000":1}',
            b"{",
            b" {}",
            b'{"a":"\xff"}',
            b'{"a":NaN}',
            b'{"a":1} x',
            b'{"a":1}  ',
            b'{"a":"\xc3\xa9"}',
        ]
    ),
    st.binary(max_size=20),
)
_msg = st.one_of(
    st.builds(lambda tag, js: b"@[" + tag + b"] " + js, _tag, _json),
    st.builds(lambda tag, js: b"@[" + tag + b"] " + js, _tag, _json),
    st.builds(lambda tag, js: b"@[" + tag + b"] " + js, _tag, _json),
    st.builds(lambda tag, js: b"\xef\xbb\xbf@[" + tag + b"] " + js, _tag, _json),
    st.sampled_from(
        [
            b"at=info method=GET path=/",
            b"Error L10 (output buffer overflow): 5 messages dropped since x.",
            b"Error L13 (local delivery error): 3 messages dropped",
            b"@[t.x]{}",
            b'@[t.x) {"a":1}',
            b'@[t.x) ] {"a":1}',
            b"@[t.x]  {}",
            b"@[t.x]",
            b"@ [t.x] {}",
            b"[t.x] {}",
            b"-x",
            b"",
            b"  @[t.x] {}",
        ]
    ),
    st.binary(max_size=30),
)
_end = st.sampled_from([b"\n", b"", b"\r\n", b"\r", b"\n\n", b" \n"])


@st.composite
def _line(draw: st.DrawFn) -> bytes:
    app = draw(st.one_of(_field, st.just(b"heroku")))
    head = [draw(_pri), draw(_ts), draw(_field), app, draw(_proc), draw(_field)]
    return b" ".join(head) + b" " + draw(_sd) + draw(_msg) + draw(_end)


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.one_of(_line(), st.binary(min_size=1, max_size=60)), max_size=8),
    st.one_of(st.just(b""), st.just(b""), st.just(b""), st.binary(max_size=12)),  # framing
    st.sampled_from([65536, 65536, 65536, 40]),
    st.integers(-3, 3),
)
def test_built_lines(lines: list[bytes], tail: bytes, max_frame: int, shift_h: int) -> None:
    limits = decode_limits(max_frame_bytes=max_frame, max_quarantine_raw_bytes=30)
    same(encode_frames(lines) + tail, NOW + timedelta(hours=shift_h), limits)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from([body for _name, body in SAMPLES if body]),
    st.lists(
        st.tuples(st.integers(0, 30000), st.sampled_from(list(b'0123456789 \n<>@[]{}"\xff-x'))),
        min_size=1,
        max_size=5,
    ),
)
def test_mutated_samples_hypothesis(body: bytes, edits: list[tuple[int, int]]) -> None:
    edited = bytearray(body)
    for pos, byte in edits:
        edited[pos % len(edited)] = byte
    for now in CLOCKS:
        same(bytes(edited), now)
