"""Instructions per line of ``decode_body``, compiled and pure Python, counted by callgrind.

Usage (from the repository root; needs valgrind)::

    .venv/bin/python -m bench.instructions [--bodies 8]

Timings on a shared 2-core machine move with the neighbours; instruction counts do not
(the same binary, inputs and environment give the same count). For each decode path (the
mypyc extensions, then the sources with DRAIN_PURE_PYTHON=1) and each kind of body (the
event bodies of bench.run, and the realistic mix of bench.gen.MIX), a child process is run
twice under ``valgrind --tool=callgrind``: once decoding the bodies once (the warm-up pass
every run does), once decoding them ``1 + --passes`` times. The difference of the two
totals, divided by the lines of the extra passes, is the decode path's instructions per
line, start-up and body generation cancelled out. Prints one table and the ratio
compiled / pure.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

#: the child: generate the bodies, decode them ``passes`` times, print the lines decoded
_CHILD = """
import random, sys
from datetime import UTC, datetime
import drain
from drain import speedups
from drain.inputs.logplex import decode_body
from drain.settings import Settings
from bench.gen import make_body, make_mix_body
kind, n, passes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
now = datetime.fromisoformat(sys.argv[4])
rng = random.Random(20261202)
make = make_body if kind == "events" else make_mix_body
bodies = [make(rng, now) for _ in range(n)]
defaults = Settings.defaults()
limits, rules = defaults.decode_limits(), defaults.line_rules(b"bench")
lines = 0
for _ in range(passes):
    for b in bodies:
        decoded = decode_body(b.body, now=now, msg_count=b.frames, limits=limits, rules=rules)
        lines += decoded.ledger.frames
print(lines, speedups.summary())
"""

_COLLECTED = re.compile(rb"Collected : (\d+)")


def count(
    kind: str, bodies: int, passes: int, *, pure: bool, now: datetime
) -> tuple[int, int, str]:
    """(instructions, lines, decode path) of one child run under callgrind.

    Raises RuntimeError when valgrind fails or prints no total.
    """
    env = {k: v for k, v in os.environ.items() if k != "DRAIN_PURE_PYTHON"}
    if pure:
        env["DRAIN_PURE_PYTHON"] = "1"
    env["PYTHONHASHSEED"] = "0"  # the same dict layouts, so the same count
    cmd = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        "-c",
        _CHILD,
        kind,
        str(bodies),
        str(passes),
        now.isoformat(),
    ]
    out = subprocess.run(cmd, env=env, capture_output=True, timeout=1800, check=False)
    found = _COLLECTED.search(out.stderr)
    if out.returncode != 0 or found is None:
        raise RuntimeError(f"valgrind failed ({out.returncode}): {out.stderr[-2000:]!r}")
    lines_s, path = out.stdout.decode().strip().split(" ", 1)
    return int(found.group(1)), int(lines_s), path


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.instructions", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--bodies", type=int, default=4, help="distinct ~100 KiB bodies per kind")
    ap.add_argument("--passes", type=int, default=2, help="extra passes over the bodies")
    args = ap.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("valgrind not found (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2
    now = datetime.now(UTC).replace(microsecond=0)
    print("| bodies | decode path | instructions per line |")
    print("|---|---|---|")
    per_line: dict[tuple[str, bool], float] = {}
    for kind in ("events", "mix"):
        for pure in (False, True):
            base, lines0, path = count(kind, args.bodies, 1, pure=pure, now=now)
            more, lines1, _ = count(kind, args.bodies, 1 + args.passes, pure=pure, now=now)
            per_line[kind, pure] = (more - base) / (lines1 - lines0)
            print(f"| {kind} | {path} | {per_line[kind, pure]:,.0f} |", flush=True)
    print()
    for kind in ("events", "mix"):
        ratio = per_line[kind, False] / per_line[kind, True]
        print(f"- {kind}: compiled / pure = {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
