"""``drain parse FILE [--now ISO]``: how drain reads a captured body, without a database.

Decodes the body (``-``: stdin; gzip is detected by its magic bytes) with the limits the
settings describe (DRAIN_MAX_FRAME_BYTES, the acceptance window; no bound on the number of
frames) and the rules for Heroku's own lines (DRAIN_ROUTER_REQUESTS ... DRAIN_EXCLUDE_LINES),
and prints one JSON object per frame and a summary line (drain.inputs.dump). Without a
database there is no stored key: ``client_hash`` is computed with DRAIN_CLIENT_HASH_KEY when
it is set, else with :data:`PARSE_CLIENT_KEY`, so it differs from the stored hashes. Exit 0
even when frames are quarantined, and when the reader of the output goes away (``drain parse
FILE | head``); 2 when the input cannot be read.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import os
import sys
import zlib
from datetime import UTC, datetime
from pathlib import Path

import orjson

from drain.cli.common import iso_datetime
from drain.settings import Settings

__all__ = ["PARSE_CLIENT_KEY", "register"]

#: the client-hash key of ``drain parse`` when DRAIN_CLIENT_HASH_KEY is unset (not secret)
PARSE_CLIENT_KEY = b"drain parse: not the database's key"


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``parse`` to the ``drain`` command's subparsers."""
    parse = commands.add_parser("parse", help="decode a captured body to JSON lines (no database)")
    parse.add_argument("file", help="file holding a request body, or - for stdin")
    parse.add_argument(
        "--now",
        type=iso_datetime,
        help="the time that decides the acceptance window (default: now), e.g. 2026-12-01T00:00Z",
    )
    parse.set_defaults(func=cmd_parse)


def _read_input(path: str) -> bytes:
    data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data


def cmd_parse(args: argparse.Namespace) -> int:
    """Print the body's frames as JSON lines; see the module docstring for exit codes."""
    from drain.inputs.dump import dump_body

    try:
        body = _read_input(args.file)
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as error:
        print(f"drain parse: cannot read {args.file}: {error}", file=sys.stderr)
        return 2
    settings = Settings.load()
    limits = dataclasses.replace(settings.decode_limits(), max_frames=None)
    rules = settings.line_rules(PARSE_CLIENT_KEY)
    now = args.now if args.now is not None else datetime.now(UTC)
    out = sys.stdout.buffer
    try:
        for item in dump_body(body, now=now, limits=limits, rules=rules):
            out.write(orjson.dumps(item, default=_json_default) + b"\n")
        out.flush()
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly. Point stdout at /dev/null so that
        # the interpreter's own flush at exit does not fail again (Python docs, "signal":
        # note on SIGPIPE).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return 0


def _json_default(value: object) -> object:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "backslashreplace")
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")
