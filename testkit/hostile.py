"""Hostile and broken request bodies, for the fuzz tests and bench/reliability.py.

Three sources, all ``application/logplex-1`` bodies (bytes):

- :func:`named_cases` — one body per kind of trouble the issue lists: huge, negative and
  non-numeric lengths, lengths past the end, NUL, invalid UTF-8, deeply nested JSON, a 1 MB
  JSON string, numbers too big for a double, duplicate keys, NaN/Infinity, lone surrogates,
  tiny frames, and each of those *between two good events* (a "sandwich");
- :func:`corpus` — the committed files under ``tests/data/fuzz`` (written by
  ``python -m testkit.hostile``: the named cases at a fixed time, plus seeded mutations of the
  real bodies in ``tests/data/samples``);
- :func:`mutate` — random edits of a body (flip, insert, delete, duplicate, rewrite a length).

A sandwich's two good events must be stored whatever the middle frame does.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

DATA = Path(__file__).parent.parent / "tests" / "data"
FUZZ = DATA / "fuzz"
SAMPLES = DATA / "samples"

#: the time the committed corpus was written at (its events are out of window later: that is
#: one more outcome to account for, not a failure)
CORPUS_TIME = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)


def frame(msg: bytes) -> bytes:
    """``LEN SP msg`` (RFC 6587 octet counting; the count includes whatever LF msg has)."""
    return str(len(msg)).encode("ascii") + b" " + msg


def syslog(at: datetime, msg: bytes, *, app: bytes = b"app", proc: bytes = b"web.1") -> bytes:
    """A Heroku-dialect syslog line with ``msg`` as MSG, LF-terminated."""
    ts = at.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00").encode("ascii")
    return b"<134>1 " + ts + b" host " + app + b" " + proc + b" - " + msg + b"\n"


def good(at: datetime, n: int) -> bytes:
    """One framed good event ``@[fuzz.good] {"n": n}``."""
    return frame(syslog(at, b'@[fuzz.good] {"n": %d}' % n))


def bad_event_messages() -> dict[str, bytes]:
    """MSG parts that carry a tag but a troublesome payload (one per kind)."""
    return {
        "nul_in_json": b'@[fuzz.bad] {"a": "x\x00y"}',
        "nul_escape": b'@[fuzz.bad] {"a": "\\u0000"}',
        "invalid_utf8": b'@[fuzz.bad] {"a": "\xff\xfe\xc3"}',
        "lone_surrogate": b'@[fuzz.bad] {"a": "\\ud800"}',
        "deeply_nested": b"@[fuzz.bad] " + b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        "nested_objects": b"@[fuzz.bad] " + b'{"a":' * 5000 + b"1" + b"}" * 5000,
        "huge_string": b'@[fuzz.bad] {"a": "' + b"x" * 1_000_000 + b'"}',
        "too_big_number": b'@[fuzz.bad] {"a": 1e400}',
        "huge_integer": b'@[fuzz.bad] {"a": ' + b"9" * 5000 + b"}",
        "negative_huge": b'@[fuzz.bad] {"a": -' + b"9" * 400 + b".5e99999}",
        "duplicate_keys": b'@[fuzz.bad] {"a": 1, "a": 2}',
        "nan": b'@[fuzz.bad] {"a": NaN}',
        "infinity": b'@[fuzz.bad] {"a": Infinity, "b": -Infinity}',
        "not_an_object": b"@[fuzz.bad] [1, 2, 3]",
        "truncated_json": b'@[fuzz.bad] {"a": ',
        "empty_tag": b'@[] {"a": 1}',
        "tag_with_nul": b'@[fu\x00zz] {"a": 1}',
        "long_tag": b"@[" + b"t" * 10_000 + b'] {"a": 1}',
        "control_chars": b'@[fuzz.bad] {"a": "\x01\x02\x1b[31m"}',
        "bom": b'@[fuzz.bad] \xef\xbb\xbf{"a": 1}',
    }


def bad_frames() -> dict[str, bytes]:
    """Whole frames (or framing faults) that are broken below the event layer."""
    return {
        "nul_header": frame(b"<134>1 \x00\x00 host app web.1 - @[fuzz.bad] {}\n"),
        "invalid_utf8_header": frame(b"<134>1 2026-12-01T00:00:00Z h\xff\xfe app w - @[x] {}\n"),
        "bad_pri": frame(b"<999>1 2026-12-01T00:00:00Z host app web.1 - @[x] {}\n"),
        "bad_timestamp": frame(b"<134>1 2026-13-45T99:99:99Z host app web.1 - @[x] {}\n"),
        "year_zero": frame(b"<134>1 0000-01-01T00:00:00Z host app web.1 - @[x] {}\n"),
        "huge_sd": frame(b"<134>1 2026-12-01T00:00:00Z host app web.1 - " + b"[a]" * 20_000),
        "only_newlines": frame(b"\n" * 50),
        "frame_too_long": frame(b"x" * 70_000),
    }


def framing_faults() -> dict[str, bytes]:
    """Bodies whose octet counting goes wrong (the rest of the body is one BAD_FRAMING row)."""
    return {
        "huge_length": b"999999999 <134>1 x",
        "ten_digit_length": b"9999999999 x",
        "negative_length": b"-5 hello",
        "non_numeric_length": b"abc <134>1 x",
        "zero_length": b"0 ",
        "leading_zero": b"07 <134>1 ",
        "length_past_end": b"500 <134>1 2026-12-01T00:00:00Z host app web.1 - short\n",
        "no_space": b"12345678901234567890",
        "space_first": b" 5 hello",
        "nul_bytes": b"\x00" * 64,
        "random_binary": bytes(range(256)) * 4,
        "crlf_separated": b"5 hello\r\n5 world",
    }


def named_cases(now: datetime) -> dict[str, tuple[bytes, int]]:
    """name -> (body, events it must store). A sandwich stores its two good events (and the
    middle one too when it is a valid event: JSON with duplicate keys is an object, RFC 8259
    §4 only says names SHOULD be unique; PostgreSQL keeps the last)."""
    cases: dict[str, tuple[bytes, int]] = {}
    for name, msg in bad_event_messages().items():
        middle = 1 if name == "duplicate_keys" else 0
        body = good(now, 1) + frame(syslog(now, msg)) + good(now, 2)
        cases[f"sandwich_{name}"] = (body, 2 + middle)
    for name, body in bad_frames().items():
        cases[f"sandwich_{name}"] = (good(now, 1) + body + good(now, 2), 2)
    for name, body in framing_faults().items():
        # a framing fault ends the framed part: the good event before it is kept
        cases[f"after_good_{name}"] = (good(now, 1) + body, 1)
        cases[name] = (body, 0)
    cases["tiny_frames"] = (b"1 x" * 19_000, 0)
    cases["empty"] = (b"", 0)
    return cases


def mutate(body: bytes, rng: random.Random, edits: int = 4) -> bytes:
    """``body`` with up to ``edits`` random edits (never longer than 2x + 64 bytes)."""
    data = bytearray(body)
    for _ in range(rng.randint(1, edits)):
        op = rng.randrange(6)
        pos = rng.randrange(len(data) + 1)
        if op == 0 and data:  # flip a byte
            data[min(pos, len(data) - 1)] = rng.randrange(256)
        elif op == 1:  # insert junk
            data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif op == 2 and data:  # delete a run
            del data[pos : pos + rng.randint(1, 16)]
        elif op == 3 and data and len(data) < 2 * len(body) + 64:  # duplicate a slice
            end = min(len(data), pos + rng.randint(1, 64))
            data[pos:pos] = data[pos:end]
        elif op == 4:  # rewrite a length prefix into something odd
            start = data.find(b" ", pos)
            if start > 0:
                digits = rng.choice([b"0", b"-1", b"999999999", b"1e3", b"", b"00012", b"+5"])
                back = start
                while back > 0 and chr(data[back - 1]).isdigit():
                    back -= 1
                data[back:start] = digits
        else:  # a special byte
            data[pos:pos] = rng.choice([b"\x00", b"\xff", b"\n", b"@[", b"{", b'"', b"\\u"])
    return bytes(data)


def sample_bodies() -> list[tuple[str, bytes]]:
    """The real captured bodies of tests/data/samples (gzip ones decompressed)."""
    import gzip

    out = []
    for path in sorted(SAMPLES.rglob("*.body")):
        data = path.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        out.append((path.stem, data))
    return out


def corpus() -> Iterator[tuple[str, bytes]]:
    """The committed corpus: every file of tests/data/fuzz (name, body)."""
    for path in sorted(FUZZ.glob("*.body")):
        yield path.stem, path.read_bytes()


def write_corpus(mutations_per_sample: int = 3, seed: int = 20261201) -> int:
    """(Re)write tests/data/fuzz: the named cases at CORPUS_TIME and seeded mutations."""
    FUZZ.mkdir(parents=True, exist_ok=True)
    for old in FUZZ.glob("*.body"):
        old.unlink()
    written = 0
    for name, (body, _good) in named_cases(CORPUS_TIME).items():
        if len(body) <= 256 * 1024:  # the big ones are generated at test time
            (FUZZ / f"{name}.body").write_bytes(body)
            written += 1
    rng = random.Random(seed)
    for name, body in sample_bodies():
        for k in range(mutations_per_sample):
            (FUZZ / f"mutated-{name}-{k}.body").write_bytes(mutate(body, rng))
            written += 1
    return written


if __name__ == "__main__":
    print(f"wrote {write_corpus()} files to {FUZZ}", file=sys.stderr)
