"""The ``drain rollup ...`` commands.

``drain rollup list``                       the rollups, their schedule and where they stand
``drain rollup run NAME [--at TIME]``       run the tick at or before TIME (default: now)
``drain rollup backfill NAME --from T1 --to T2``  recompute [T1, T2) with a progress bar

``list`` is read-only: it never creates an embedded database (drain.cli.common).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import asyncpg
from tqdm import tqdm

from drain.cli.common import iso_datetime, ready_database, run_with_pool
from drain.rollups.runner import (
    RunKind,
    backfill_windows,
    load_rollups,
    rollup_status,
    run_window,
)
from drain.rollups.spec import RollupSpec, complete_until, latest_tick, window_for_tick

__all__ = ["register"]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``rollup list|run|backfill`` to the ``drain`` command's subparsers."""
    rollup = commands.add_parser("rollup", help="list, run and backfill rollups (sql/rollups)")
    sub = rollup.add_subparsers(dest="rollup_command", required=True, metavar="ACTION")

    lst = sub.add_parser("list", help="the rollups, their schedules, lag and last error")
    lst.set_defaults(func=lambda a: _run(_list, create=False))

    run = sub.add_parser("run", help="run one rollup for the tick at or before --at (now)")
    run.add_argument("name")
    run.add_argument("--at", type=iso_datetime, help="a time; the tick at or before it runs")
    run.set_defaults(func=lambda a: _run(lambda pool: _run_one(pool, a.name, a.at)))

    backfill = sub.add_parser("backfill", help="recompute a rollup over [--from, --to)")
    backfill.add_argument("name")
    backfill.add_argument("--from", dest="start", type=iso_datetime, required=True)
    backfill.add_argument("--to", dest="end", type=iso_datetime, required=True)
    backfill.set_defaults(func=lambda a: _run(lambda pool: _backfill(pool, a.name, a.start, a.end)))


def _run(command: Callable[[asyncpg.Pool], Awaitable[int]], *, create: bool = True) -> int:
    with ready_database(create=create) as url:
        return run_with_pool(url, command)


def _spec(name: str) -> RollupSpec:
    specs = load_rollups()
    if name not in specs:
        known = ", ".join(sorted(specs)) or "none"
        raise SystemExit(f"drain: no rollup named {name!r} (known: {known})")
    return specs[name]


def _fmt(t: datetime | None) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if t else "-"


async def _list(pool: asyncpg.Pool) -> int:
    specs = load_rollups()
    status = {s.rollup: s for s in await rollup_status(pool, sorted(specs), datetime.now(UTC))}
    header = f"{'NAME':<24} {'SCHEDULE':<12} {'TARGET':<24} {'COMPLETE TO':<17} {'LAG':>8}  ERROR"
    print(header)
    for name in sorted(specs):
        spec, st = specs[name], status[name]
        lag = f"{st.lag_s / 3600:.1f}h" if st.lag_s is not None else "never"
        print(
            f"{name:<24} {spec.schedule:<12} {spec.target:<24} "
            f"{_fmt(st.last_window_end):<17} {lag:>8}  {st.last_error or ''}"
        )
    return 0


def _refuse_incomplete(spec: RollupSpec, option: str, asked: datetime, end: datetime) -> None:
    """Exit (status 1, the message on stderr) when a window ending at ``end``, which the
    option ``option`` set to ``asked`` asks for, is not complete now (drain.rollups.spec.
    complete_until: past the window of the last tick)."""
    now = datetime.now(UTC)
    until = complete_until(spec, now)
    if end <= until:
        return
    when = "is in the future" if asked > now else "reaches past the last complete tick"
    raise SystemExit(
        f"drain: {option} {asked.isoformat()} {when}: its window is not complete yet "
        f"({spec.name}'s last complete tick ends its window at {_fmt(until)} UTC; "
        f"use {option} {until.strftime('%Y-%m-%dT%H:%MZ')} or earlier)"
    )


async def _run_one(pool: asyncpg.Pool, name: str, at: datetime | None) -> int:
    spec = _spec(name)
    tick = latest_tick(spec.schedule, at or datetime.now(UTC))
    if at is not None:
        _refuse_incomplete(spec, "--at", at, window_for_tick(spec, tick)[1])
    result = await run_window(pool, spec, kind=RunKind.MANUAL, scheduled_for=tick)
    print(
        f"{name}: window {_fmt(result.window_start)} .. {_fmt(result.window_end)} UTC, "
        f"{result.rows_written} rows written"
        + (f", FAILED: {result.error}" if result.error else "")
    )
    return 1 if result.error else 0


async def _backfill(pool: asyncpg.Pool, name: str, start: datetime, end: datetime) -> int:
    spec = _spec(name)
    if end <= start:
        raise SystemExit("drain: --to must be after --from")
    windows = list(backfill_windows(spec, start, end))
    _refuse_incomplete(spec, "--to", end, windows[-1][1])
    began = time.monotonic()
    rows = errors = 0
    with tqdm(total=len(windows), unit="window", disable=not sys.stderr.isatty()) as bar:
        for lo, hi in windows:
            result = await run_window(
                pool, spec, kind=RunKind.BACKFILL, scheduled_for=hi, window=(lo, hi)
            )
            rows += result.rows_written
            if result.error:
                errors += 1
                tqdm.write(f"{_fmt(lo)} .. {_fmt(hi)}: FAILED: {result.error}")
            bar.update(1)
    elapsed = time.monotonic() - began
    print(
        f"{name}: backfilled {_fmt(windows[0][0])} .. {_fmt(windows[-1][1])} UTC in "
        f"{len(windows)} windows, {rows} rows written, {errors} failed, {elapsed:.1f} s"
    )
    return 1 if errors else 0
