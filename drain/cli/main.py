"""The ``drain`` command: parse the arguments, run the command, turn errors into exit codes.

Commands, one module each in this package: ``serve`` (drain.cli.serve), ``migrate``,
``parse``, ``rollup list|run|backfill``, ``partitions list|maintain``,
``archive [list|verify|restore|release]``, ``clock``, ``bi-role`` (drain.cli.bi).

Exit codes: 0 success, 1 the database is not ready (unreachable, not migrated, no embedded
data directory), 2 usage or settings error or unreadable input, 3 the web service failed to
start (uvicorn's code).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from drain.cli import archive, bi, clock, migrate, parse, partitions, rollup, serve
from drain.errors import NotReady, SettingsError
from drain.settings import unknown_drain_variables

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of the ``drain`` command."""
    parser = argparse.ArgumentParser(
        prog="drain",
        description="Heroku log drain: Logplex batches in, @[tag] events stored in PostgreSQL.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (serve, migrate, parse, rollup, partitions, archive, clock, bi):
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``drain`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    unknown = unknown_drain_variables(os.environ)
    if unknown and args.command != "parse":
        print("drain: warning: unknown variables ignored: " + ", ".join(unknown), file=sys.stderr)
    try:
        code: int = args.func(args)
    except SettingsError as error:
        print(f"drain: {error}", file=sys.stderr)
        return 2
    except NotReady as error:
        print(f"drain: {error}", file=sys.stderr)
        return 1
    return code
