"""The decoder's CPU per line, by kind of line: events against Heroku's own lines.

Usage (from the repository root)::

    .venv/bin/python -m bench.lines                       # this tree, ~20 s
    .venv/bin/python -m bench.lines --compare /tmp/base   # and another tree, alternately

For each kind of line (``event``, ``router``, ``runtime_metrics``, ``addon_metrics``,
``platform``, ``plain``) and for the realistic mix of a Heroku app's drain (60 % router
lines, 20 % events, 15 % metrics, 5 % other: bench.gen.MIX), one body of that kind
(bench.gen.make_kind_body / make_mix_body, ~600 frames, times in the last minute) is decoded
by ``drain.inputs.logplex.decode_body`` over and over on one core; the figure is process CPU
time (user + system) per line, the best of ``--rounds`` rounds of about ``--seconds`` /
rounds each, the kinds interleaved within a round so that the machine's load falls on all
of them alike. Rows per line and CPU per row are printed too (a metrics line has one row
per sample).

``--compare DIR`` runs the same measurement, on the same bodies, with the ``drain``
package of another tree (e.g. ``git archive <commit> drain | tar -x -C DIR``): the two
alternate in subprocesses, ``--pairs`` times, and the table gives both and their ratio. A
tree whose decoder predates the rules for Heroku's lines is called without them.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import pickle
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

KINDS = ("event", "router", "runtime_metrics", "addon_metrics", "platform", "plain", "mix")

REPO = Path(__file__).resolve().parent.parent


def make_inputs(now: datetime, seed: int = 20261201) -> dict[str, tuple[bytes, int]]:
    """(body, frames) of each kind, deterministic in (now, seed)."""
    from bench.gen import make_kind_body, make_mix_body

    rng = random.Random(seed)
    out = {}
    for kind in KINDS:
        body = (
            make_mix_body(rng, now) if kind == "mix" else make_kind_body(kind, rng, now, frames=600)
        )
        out[kind] = (body.body, body.frames)
    return out


def measure(
    inputs: dict[str, tuple[bytes, int]], now: datetime, seconds: float, rounds: int
) -> dict[str, dict[str, float]]:
    """Per kind: ``us_per_line`` (best round) and ``rows_per_line``, decoding with the
    ``drain`` package found on ``sys.path``."""
    from drain.inputs.logplex import decode_body
    from drain.settings import Settings

    defaults = Settings.defaults()
    kwargs: dict[str, object] = {"limits": defaults.decode_limits()}
    if "rules" in inspect.signature(decode_body).parameters:
        kwargs["rules"] = defaults.line_rules(b"bench.lines: a fixed key, 32 bytes!")
    rows: dict[str, float] = {}
    for kind, (body, frames) in inputs.items():
        batch = decode_body(body, now=now, **kwargs)  # type: ignore[arg-type]
        rows[kind] = (sum(map(len, batch.rows.values())) + len(batch.quarantined)) / frames
    best = dict.fromkeys(inputs, float("inf"))
    per_kind_s = seconds / rounds / len(inputs)
    for _ in range(rounds):
        for kind, (body, frames) in inputs.items():
            start = time.process_time()
            decoded = 0
            for _i in range(100_000):  # bounded by the time too
                decode_body(body, now=now, **kwargs)  # type: ignore[arg-type]
                decoded += frames
                if time.process_time() - start > per_kind_s:
                    break
            best[kind] = min(best[kind], (time.process_time() - start) / decoded * 1e6)
    return {k: {"us_per_line": best[k], "rows_per_line": rows[k]} for k in inputs}


def _worker(path: Path, seconds: float, rounds: int) -> None:
    with path.open("rb") as f:
        now, inputs = pickle.load(f)
    print(json.dumps(measure(inputs, now, seconds, rounds)))


def _run_tree(tree: Path, data: Path, seconds: float, rounds: int) -> dict[str, dict[str, float]]:
    env = {**os.environ, "PYTHONPATH": f"{tree}{os.pathsep}{REPO}"}
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from bench.lines import _worker; from pathlib import Path; "
            f"_worker(Path({str(data)!r}), {seconds!r}, {rounds!r})",
        ],
        env=env,
        cwd=tree,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    result: dict[str, dict[str, float]] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def table(
    after: dict[str, list[float]], rows: dict[str, float], before: dict[str, list[float]] | None
) -> str:
    """Markdown: µs per line by kind (median over pairs), rows per line, µs per row, and
    against the event line of the same tree, and against the other tree."""
    event = statistics.median(after["event"])
    head = "| kind | µs/line | rows/line | µs/row | / event line |"
    sep = "|---|---|---|---|---|"
    if before is not None:
        head += " µs/line before | after / before |"
        sep += "---|---|"
    lines = [head, sep]
    for kind in KINDS:
        us = statistics.median(after[kind])
        line = (
            f"| {kind} | {us:.2f} | {rows[kind]:.2f} | "
            f"{us / rows[kind] if rows[kind] else float('nan'):.2f} | {us / event:.2f} |"
        )
        if before is not None:
            was = statistics.median(before[kind])
            line += f" {was:.2f} | {us / was:.2f} |"
        lines.append(line)
    if before is not None:
        lines.append(
            f"\nbefore's event line: {statistics.median(before['event']):.2f} µs; the mix "
            f"after / the event line before: "
            f"{statistics.median(after['mix']) / statistics.median(before['event']):.2f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.lines", description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=14.0, help="CPU seconds per measurement")
    ap.add_argument("--rounds", type=int, default=5, help="rounds per measurement (best kept)")
    ap.add_argument("--compare", type=Path, default=None, help="another tree's root (has drain/)")
    ap.add_argument("--pairs", type=int, default=3, help="with --compare: alternations")
    args = ap.parse_args(argv)
    now = datetime.now(UTC)
    inputs = make_inputs(now)
    print(f"# decode CPU per line by kind — {now:%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores")
    print("frames per body: " + ", ".join(f"{k} {f}" for k, (_, f) in inputs.items()))
    if args.compare is None:
        found = measure(inputs, now, args.seconds, args.rounds)
        after = {k: [v["us_per_line"]] for k, v in found.items()}
        print(table(after, {k: v["rows_per_line"] for k, v in found.items()}, None))
        return 0
    with tempfile.TemporaryDirectory(prefix="drain-bench-lines-") as tmp:
        data = Path(tmp) / "inputs.pickle"
        with data.open("wb") as f:
            pickle.dump((now, inputs), f)
        after_runs: dict[str, list[float]] = {k: [] for k in KINDS}
        before_runs: dict[str, list[float]] = {k: [] for k in KINDS}
        rows: dict[str, float] = {}
        for pair in range(args.pairs):
            for tree, runs in ((args.compare, before_runs), (REPO, after_runs)):
                found = _run_tree(tree.resolve(), data, args.seconds, args.rounds)
                for k, v in found.items():
                    runs[k].append(v["us_per_line"])
                    if tree == REPO:
                        rows[k] = v["rows_per_line"]
            print(f"pair {pair + 1}/{args.pairs} done", file=sys.stderr, flush=True)
    print(f"this tree: {REPO}; before: {args.compare}; medians of {args.pairs} pairs")
    print(table(after_runs, rows, before_runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
