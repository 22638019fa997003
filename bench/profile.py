"""Profile ``drain serve`` under Logplex-like load with py-spy; print the hot spots.

Usage (from the repository root; needs ``pip install py-spy`` in the venv, and root or
ptrace permission)::

    .venv/bin/python -m bench.profile [--database-url URL] [--seconds 15] [--rate 0.8]

Starts ``drain serve`` (1 worker) on a fresh database, drives it with the load generator
(closed loop, or ``--rate`` x the closed-loop peak), and samples the service process with
``py-spy record --format raw`` (collapsed stacks, 200 Hz, GIL-holding and idle samples
excluded) for the load's duration. Prints the share of samples by own time (the function
on top of the stack) and by inclusive time (the function anywhere on the stack), and
writes the collapsed stacks and an SVG flame graph next to each other in ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench.gen import make_bodies
from bench.loadgen import prepare, run_load
from bench.run import admin_server
from bench.service import Service, migrate
from testkit.pg import create_database, drop_database

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def _short(frame: str) -> str:
    """``func (path/to/file.py:12)`` -> ``func (file.py)``: lines merged per function."""
    if frame.startswith("<lambda> (<string>"):
        return "NamedTuple.__new__ (<lambda> in <string>)"
    m = _FRAME.match(frame)
    if not m:
        return frame
    path = m.group("file")
    for marker in ("site-packages/", "lib/python3.11/", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{m.group('func')} ({path})"


#: The stages of "bytes in -> rows committed", in the order a sample is tested against them:
#: a sample belongs to the first stage one of whose markers appears in any of its frames
#: (compiled decode functions are C to py-spy, shown only with --native: their time is the
#: own time of the Python frame that calls them, run_decoder, or the decode thread's frame).
STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "decode",
        (
            "(drain/decode/",
            "(drain/inputs/",
            "run_decoder (drain/web/intake.py)",
            "_worker (concurrent/futures/thread.py)",
        ),
    ),
    ("COPY encoding and send", ("copy_records_to_table", "_copy_in_records", "copy_in")),
    ("row building", ("_copy_group (drain/store/", "<listcomp> (drain/store/writer.py)")),
    (
        "commit and ledger claim",
        ("_claim (drain/store/", "transaction", "_write_group (drain/store/"),
    ),
    ("HTTP and body", ("uvicorn/", "starlette/", "fastapi/", "httptools", "h11/", "(drain/web/")),
)


def stage_of(frames: Sequence[str]) -> str:
    """The stage (:data:`STAGES`) of one sample's stack (frames as py-spy prints them)."""
    for stage, markers in STAGES:
        if any(marker in frame for frame in frames for marker in markers):
            return stage
    return "event loop and other"


def summarize(collapsed: Path, *, top: int = 30) -> str:
    """Own-time and inclusive-time shares from py-spy's collapsed stacks."""
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    stages: Counter[str] = Counter()
    stage_top: dict[str, Counter[str]] = {}
    total = 0
    for line in collapsed.read_text(errors="replace").splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        n = int(count_s)
        frames = [_short(f) for f in stack.split(";")]
        # the first entry may be "process ..." / thread name: keep only python frames
        frames = [f for f in frames if "(" in f]
        if not frames:
            continue
        total += n
        own[frames[-1]] += n
        stage = stage_of(frames)
        stages[stage] += n
        stage_top.setdefault(stage, Counter())[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
    if not total:
        return "no samples"
    out = [f"{total} samples", "", "by stage (share of samples; its top own-time frames):"]
    for stage, n in stages.most_common():
        tops = ", ".join(f"{f} {m / total:.1%}" for f, m in stage_top[stage].most_common(3))
        out.append(f"  {n / total:6.1%}  {stage}: {tops}")
    out += ["", "own time (top of stack):"]
    out += [f"  {n / total:6.1%}  {f}" for f, n in own.most_common(top)]
    out += ["", "inclusive time (anywhere on the stack), drain and asyncpg functions:"]
    mine = [(f, n) for f, n in incl.most_common() if "(drain/" in f or "(asyncpg/" in f]
    out += [f"  {n / total:6.1%}  {f}" for f, n in mine[:top]]
    return "\n".join(out)


async def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.profile", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument(
        "--rate", type=float, default=None, help="fraction of the peak rate (open loop)"
    )
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "drain-profile")
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--service-env", action="append", default=[], metavar="NAME=VALUE")
    ap.add_argument("--native", action="store_true", help="also sample C/Cython frames")
    args = ap.parse_args(argv)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():  # noqa: ASYNC240 - before any load starts
        print("py-spy not found: .venv/bin/pip install py-spy", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)

    bodies = make_bodies(64, now=datetime.now(UTC), seed=20261203)
    with admin_server(args.database_url) as (admin_url, _kind):
        dbname, db_url = await create_database(admin_url, prefix="drain_prof")
        try:
            migrate(db_url)
            env = dict(kv.split("=", 1) for kv in args.service_env)
            svc = Service(db_url, workers=1, extra_env=env, log_path=args.out / "serve.log")
            await svc.start()
            try:
                prepared = prepare(bodies, host="127.0.0.1", port=svc.port)
                rate = None
                if args.rate is not None:
                    peak = await run_load(
                        prepared,
                        port=svc.port,
                        connections=args.connections,
                        duration_s=4.0,
                        max_requests=20_000,
                    )
                    rate = args.rate * peak.acked / peak.duration_s
                else:
                    await run_load(
                        prepared,
                        port=svc.port,
                        connections=args.connections,
                        duration_s=1.0,
                        max_requests=20_000,
                    )
                raw = args.out / "stacks.txt"
                svg = args.out / "flame.svg"
                spy = subprocess.Popen(  # noqa: ASYNC220 - runs beside the load
                    [
                        py_spy,
                        "record",
                        "--pid",
                        str(svc.pid),
                        "--rate",
                        "200",
                        "--format",
                        "raw",
                        "--duration",
                        str(int(args.seconds)),
                        "--output",
                        str(raw),
                        # py-spy samples native frames only with the process paused
                        *(["--native"] if args.native else ["--nonblocking"]),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                )
                res = await run_load(
                    prepared,
                    port=svc.port,
                    connections=args.connections,
                    duration_s=args.seconds,
                    max_requests=100_000,
                    rate_rps=rate,
                )
                try:
                    _, err = await asyncio.to_thread(spy.communicate, timeout=args.seconds + 30)
                except subprocess.TimeoutExpired:
                    spy.kill()
                    _, err = spy.communicate()
            finally:
                svc.stop()
            print(
                f"load: {res.acked_events / res.duration_s:,.0f} events/s over "
                f"{res.duration_s:.1f} s "
                f"({'closed loop' if rate is None else f'{rate:.0f} req/s'}), statuses "
                f"{res.status_counts}"
            )
            if spy.returncode != 0 or not raw.exists():
                print(f"py-spy failed ({spy.returncode}): {err.decode(errors='replace')[-2000:]}")
                return 1
            print(summarize(raw, top=args.top))
            flamegraph = shutil.which("flamegraph.pl") or shutil.which("inferno-flamegraph")
            if flamegraph:
                with svg.open("wb") as f:
                    subprocess.run([flamegraph, str(raw)], stdout=f, check=False)  # noqa: ASYNC221
            print(f"\ncollapsed stacks: {raw}")
        finally:
            await drop_database(admin_url, dbname)
    return 0


if __name__ == "__main__":
    try:
        import uvloop
    except ImportError:
        sys.exit(asyncio.run(main()))
    sys.exit(uvloop.run(main()))
