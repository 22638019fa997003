"""Hostile input through the whole decode path: never a crash or a 5xx, every frame accounted for.

The bodies come from tests/hostile.py: the named cases (huge/negative/non-numeric lengths,
lengths past the end, NUL, invalid UTF-8, deeply nested JSON, 1 MB strings, numbers too big
for a double, duplicate keys, NaN...), the committed corpus tests/data/fuzz, and hypothesis
mutations of both and of the real captured bodies. Two levels:

- pure: decode_batch's ledger adds up (``frames == events + quarantined + not_events``) and
  the good events beside a bad one are decoded;
- HTTP: POST /logs (in process, real writer, real PostgreSQL) answers 200 (or 413 for too
  many frames), never 5xx, and the good events beside a bad one are in ``raw_events``.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

import asyncpg
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drain.errors import TooManyFrames
from drain.inputs.logplex import decode_body
from testkit.hostile import corpus, good, mutate, named_cases, sample_bodies
from tests.support.app import drain, fetch
from tests.support.config import LIMITS, RULES, decode_limits
from tests.support.oracle import check_ledger
from tests.support.served import logplex_headers

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
CASES = named_cases(NOW)
CORPUS = list(corpus())
SAMPLE_BODIES = [body for _name, body in sample_bodies()]


def test_corpus_is_committed_and_varied() -> None:
    names = {name for name, _ in CORPUS}
    assert len(CORPUS) >= 100
    assert {"huge_length", "negative_length", "sandwich_nan", "sandwich_nul_in_json"} <= names
    assert sum(name.startswith("mutated-") for name in names) >= 30


@pytest.mark.parametrize("name", sorted(CASES))
def test_named_case_keeps_the_ledger_and_the_good_events(name: str) -> None:
    body, expected = CASES[name]
    batch = decode_body(body, now=NOW, limits=LIMITS, rules=RULES)
    check_ledger(batch)
    assert batch.ledger.events == expected
    good_ns = [orjson.loads(e.payload).get("n") for e in batch.events if e.tag == "fuzz.good"]
    assert good_ns == [1, 2][: min(expected, 2)]


def test_every_corpus_file_keeps_the_ledger() -> None:
    for _name, body in CORPUS:
        check_ledger(decode_body(body, now=NOW, limits=LIMITS, rules=RULES))


def test_more_frames_than_the_cap_raise_after_decoding_at_most_the_cap() -> None:
    limits = decode_limits(max_frames=100)
    check_ledger(decode_body(b"1 x" * 100, now=NOW, limits=limits, rules=RULES))
    with pytest.raises(TooManyFrames) as raised:
        decode_body(b"1 x" * 101, now=NOW, limits=limits, rules=RULES)
    assert raised.value.offset == 300
    assert "more than 100 frames" in str(raised.value)
    unbounded = decode_body(
        b"1 x" * 30_000, now=NOW, limits=decode_limits(max_frames=None), rules=RULES
    )
    assert unbounded.ledger.not_events == 30_000


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.data())
def test_mutations_of_corpus_and_samples_keep_the_ledger(data: st.DataObject) -> None:
    pool = [body for _name, body in CORPUS if len(body) < 20_000] + SAMPLE_BODIES
    body = data.draw(st.sampled_from(pool))
    seed = data.draw(st.integers(0, 2**32 - 1))
    check_ledger(
        decode_body(mutate(body, random.Random(seed), edits=8), now=NOW, limits=LIMITS, rules=RULES)
    )


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000), st.binary(max_size=200))
def test_random_bytes_between_good_events_keep_both(junk: bytes, msg: bytes) -> None:
    """Any bytes as the middle frame's message: both good events are decoded."""
    middle = str(len(msg) + 1).encode() + b" " + msg + b"\n" if msg else b""
    body = good(NOW, 1) + middle + good(NOW, 2)
    batch = decode_body(body, now=NOW, limits=LIMITS, rules=RULES)
    check_ledger(batch)
    assert [orjson.loads(e.payload).get("n") for e in batch.events if e.tag == "fuzz.good"][:1] == [
        1
    ]
    assert batch.ledger.events >= 2
    check_ledger(decode_body(junk, now=NOW, limits=LIMITS, rules=RULES))
    check_ledger(decode_body(good(NOW, 1) + junk, now=NOW, limits=LIMITS, rules=RULES))


async def test_hostile_bodies_over_http_never_5xx_and_good_events_are_stored(
    migrated_url: str,
) -> None:
    """Every named case and corpus file through POST /logs against a real database."""
    rng = random.Random(5)
    expected_stored = 0
    statuses: dict[int, int] = {}
    async with drain(
        migrated_url, drain_max_frames_per_body=20_000, drain_flush_max_delay_s=0.002
    ) as client:
        sent = [(name, body, CASES[name][1]) for name, body in ((n, CASES[n][0]) for n in CASES)]
        sent += [(name, body, None) for name, body in CORPUS]
        sent += [(f"m{k}", mutate(rng.choice(SAMPLE_BODIES), rng), None) for k in range(40)]
        sent.append(("over_frame_cap", b"1 x" * 20_001, 0))
        for k, (name, body, expected) in enumerate(sent):
            response = await client.post(
                "/logs", content=body, headers=logplex_headers(frame_id=f"fuzz-{k}")
            )
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            assert response.status_code in (200, 413), (name, response.status_code)
            if response.status_code == 413:
                assert name == "over_frame_cap"
                continue
            h = response.headers
            frames = int(h["drain-frames"])
            stored = int(h["drain-events-stored"])
            typed = int(h.get("drain-typed-lines", "0"))
            accounted = stored + typed + int(h["drain-quarantined"]) + int(h["drain-not-events"])
            assert frames == accounted - (1 if "drain-framing-error-offset" in h else 0), name
            if expected is not None:
                assert stored == expected, name
                expected_stored += expected
        health = (await client.get("/health")).json()["counters"]
    assert statuses[413] == 1 and health["too_many_frames"] == 1
    # the named cases' good events are in raw_events (the corpus adds more, at CORPUS_TIME)
    rows = await fetch(migrated_url, "SELECT count(*) AS c FROM raw_events")
    sandwiches = sum(1 for name in CASES if name.startswith("sandwich_"))
    after_good = sum(1 for name in CASES if name.startswith("after_good_"))
    assert expected_stored >= 2 * sandwiches + after_good
    assert rows[0]["c"] >= expected_stored
    conn = await asyncpg.connect(migrated_url)
    try:
        quarantined = await conn.fetchval("SELECT count(*) FROM quarantine")
    finally:
        await conn.close()
    assert quarantined > len(CASES) // 2
