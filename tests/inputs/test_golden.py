"""Every captured body decodes to its committed golden file (drain.inputs.dump JSON lines).

Regenerate after an intended change with ``UPDATE_GOLDEN=1 .venv/bin/pytest
tests/inputs/test_golden.py``, then read the diff before committing it.
"""

from __future__ import annotations

import os

import orjson
import pytest

from drain.inputs.dump import dump_jsonl
from tests.support.config import LIMITS, RULES
from tests.support.samples import GOLDEN_NOW, SAMPLES, SampleCase, sample_cases

CASES = sample_cases()


def test_every_body_has_a_case() -> None:
    # 17 top-level bodies, 13 from heroku/x's scanner tests, 11 captured from log-shuttle,
    # 5 of Heroku's own lines in the acceptance window (heroku-lines/).
    assert len(CASES) == len(list(SAMPLES.rglob("*.body"))) == 46
    assert {c.golden_path for c in CASES} == set(SAMPLES.rglob("*.golden.jsonl"))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden(case: SampleCase) -> None:
    got = b"".join(dump_jsonl(case.decoded_body(), now=GOLDEN_NOW, limits=LIMITS, rules=RULES))
    if os.environ.get("UPDATE_GOLDEN") == "1":
        case.golden_path.write_bytes(got)
    expected = case.golden_path.read_bytes()
    # Compare parsed lines first for a readable diff, then the bytes exactly.
    assert [orjson.loads(x) for x in got.splitlines()] == [
        orjson.loads(x) for x in expected.splitlines()
    ]
    assert got == expected


def test_gzip_golden_is_named_for_the_gunzipped_body() -> None:
    (case,) = [c for c in CASES if c.gzipped]
    assert case.name == "log-shuttle/ls-gzip"
    assert case.golden_path.name == "ls-gzip.gunzipped.golden.jsonl"
    assert case.decoded_body().startswith(b"84 <190>1 ")


def test_headers_are_read() -> None:
    (doc,) = [c for c in CASES if c.name == "logplex-doc-10msg"]
    assert doc.headers["Logplex-Msg-Count"] == "10"
    assert doc.headers["Logplex-Frame-Id"] == "09C557EAFCFB6CF2740EE62F62971098"
    assert "Content-Length" not in doc.replay_headers()
    (odd,) = [c for c in CASES if c.name == "log-shuttle/ls-odd-bytes"]
    assert odd.replay_headers() == {
        "User-Agent": "log-shuttle/0.22.0(built-locally) (go1.19.8; linux; amd64; gc)",
        "Authorization": "Basic dXNlcjpwYXNz",
        "Content-Type": "application/logplex-1",
        "Logplex-Msg-Count": "9",
        "X-Request-Id": "fffed3d4-d6a4-4618-ba0c-b6db2b71d4d8",
    }
