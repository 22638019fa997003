"""The real Logplex / log-shuttle bodies under tests/data/samples, with headers and goldens.

Shared by tests/inputs/test_golden.py (decode, compare with the golden file) and the web
tests (replay the same bodies through ``POST /logs``). Provenance: tests/data/samples/README.md.
"""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

SAMPLES = Path(__file__).parent.parent / "data" / "samples"

#: The receipt time the goldens are computed with (default decode limits).
GOLDEN_NOW = datetime(2026, 12, 1, tzinfo=UTC)

#: Request headers that the HTTP client must compute itself when a body is replayed.
HOP_HEADERS = frozenset({"host", "content-length", "transfer-encoding"})


class SampleCase(NamedTuple):
    """One captured body.

    Fields:
        body_path: the ``*.body`` file, bytes exactly as posted (``ls-gzip.body`` is gzip).
        headers: the ``*.headers`` file as a dict (the request line dropped), or ``{}``
            when the sample has none.
        golden_path: the ``*.golden.jsonl`` expected ``drain.inputs.dump.dump_jsonl`` output for
            the *decoded* body (gunzipped for ``ls-gzip``: ``ls-gzip.gunzipped.golden.jsonl``)
            with ``now = GOLDEN_NOW`` and default limits.
    """

    body_path: Path
    headers: dict[str, str]
    golden_path: Path

    @property
    def name(self) -> str:
        """Path below the samples folder without ``.body``, e.g. ``log-shuttle/ls-gzip``."""
        return str(self.body_path.relative_to(SAMPLES))[: -len(".body")]

    @property
    def gzipped(self) -> bool:
        """The body is sent with ``Content-Encoding: gzip``."""
        return any(
            k.lower() == "content-encoding" and v.strip().lower() == "gzip"
            for k, v in self.headers.items()
        )

    def body(self) -> bytes:
        """The body as posted (still gzip for ``ls-gzip``)."""
        return self.body_path.read_bytes()

    def decoded_body(self) -> bytes:
        """The body after Content-Encoding: what ``decode_body`` sees."""
        raw = self.body()
        return gzip.decompress(raw) if self.gzipped else raw

    def replay_headers(self) -> dict[str, str]:
        """The captured headers minus Host, Content-Length and Transfer-Encoding."""
        return {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}


def read_headers(path: Path) -> dict[str, str]:
    """``Name: value`` lines of a ``*.headers`` file; the first line (request line) skipped."""
    if not path.exists():
        return {}
    headers: dict[str, str] = {}
    for line in path.read_text("ascii").splitlines()[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip()] = value.strip()
    return headers


def sample_cases() -> list[SampleCase]:
    """Every ``*.body`` under tests/data/samples (sub-folders included), sorted by path."""
    cases = []
    for body_path in sorted(SAMPLES.rglob("*.body")):
        stem = body_path.name[: -len(".body")]
        headers = read_headers(body_path.with_name(stem + ".headers"))
        case = SampleCase(body_path, headers, body_path.with_name(stem + ".golden.jsonl"))
        if case.gzipped:
            case = case._replace(golden_path=body_path.with_name(stem + ".gunzipped.golden.jsonl"))
        cases.append(case)
    return cases
