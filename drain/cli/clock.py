"""``drain clock`` (the Procfile's ``clock:`` process): fire every rollup on its cron
schedule and run partition maintenance every DRAIN_MAINTENANCE_INTERVAL_S (archiving each
expiring partition first when archiving is on: drain.archive), until SIGTERM.

Exits 0 on SIGTERM or SIGINT. See :class:`drain.rollups.clock.Clock` for leadership (one
acting clock among many) and catch-up.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

import asyncpg

from drain.cli.common import ready_database, run_with_pool

__all__ = ["register"]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``clock`` to the ``drain`` command's subparsers."""
    clock = commands.add_parser("clock", help="fire rollups on their cron schedules (Procfile)")
    clock.set_defaults(func=cmd_clock)


def cmd_clock(args: argparse.Namespace) -> int:
    """Run the clock until SIGTERM/SIGINT; exit code 0."""
    with ready_database() as url:
        return run_with_pool(url, _clock)


async def _clock(pool: asyncpg.Pool) -> int:
    from drain.rollups.clock import Clock
    from drain.rollups.runner import load_rollups
    from drain.settings import Settings
    from drain.store.lifecycle import maintain

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):  # platforms without signal handlers
            loop.add_signal_handler(sig, stop.set)
    specs = load_rollups()
    print(f"drain clock: {len(specs)} rollups: {', '.join(sorted(specs))}", flush=True)
    settings = Settings.load()
    policy = settings.retention_policy()
    archive = settings.archive_config()
    guard = None
    if archive is not None:
        from drain.archive.archiver import Archiver

        guard = Archiver(pool, archive)
        print(f"drain clock: archiving to {guard.destination.url} before retention", flush=True)
    clock = Clock(
        pool,
        specs,
        settings.clock_config(),
        maintenance=lambda: maintain(pool, policy, guard=guard),
    )
    await clock.serve(stop)
    print("drain clock: stopped", flush=True)
    return 0
