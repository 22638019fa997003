"""``drain serve``: run the web service (POST /logs, GET /health, GET /metrics).

Settings come from the environment (drain.settings). With ``DATABASE_URL`` unset it starts
an embedded PostgreSQL in ``DRAIN_DATA_DIR`` (kept across runs), migrates it, listens on
127.0.0.1:$PORT and prints the URL and a curl command that posts a one-line Logplex batch.
With ``DATABASE_URL`` set it only serves (migrations are the release phase's job) after
checking that every shipped migration is applied, and replaces itself (``os.execv``, same
PID) with the light master process :mod:`drain.web.master`. ``--workers`` (default
``WEB_CONCURRENCY``) uvicorn worker processes each build their own app
(:func:`drain.web.worker.worker_app`). SIGTERM: uvicorn stops accepting, finishes requests
in flight, runs the lifespan shutdown (the writer commits what it queued) and the process
exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shlex
import socket
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import asyncpg

from drain import speedups
from drain.cli.common import configure_logging, open_database
from drain.errors import NotReady
from drain.settings import Settings

__all__ = ["EXAMPLE_DRAIN_TOKEN", "curl_example", "register", "schema_problem"]

log = logging.getLogger("drain.cli")

#: a Logplex drain token used by the printed curl example
EXAMPLE_DRAIN_TOKEN = "d.fc6b856b-3332-4546-93de-7d0ee272c3bd"


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``serve`` to the ``drain`` command's subparsers."""
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


def curl_example(base_url: str, *, with_credentials: bool) -> str:
    """A bash command that posts one real Logplex frame (one ``@[tag] {json}`` event): the
    README's quick-start command, character for character but for ``base_url`` and the
    credentials line (tests/test_readme.py checks it).

    The frame's TIMESTAMP is taken when the command runs (``date -u``), so it always falls
    in the acceptance window; ``len`` is the octet count, in bytes (``wc -c``, not ``${#msg}``,
    which counts characters in a UTF-8 locale). With ``with_credentials`` the command reads
    ``$DRAIN_USERNAME``/``$DRAIN_PASSWORD`` from the shell rather than printing the secret.
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
        '  -H "Logplex-Frame-Id: readme-$now" \\',
        '  --data-binary "$len $msg"',
    ]
    return "\n".join(lines)


async def schema_problem(url: str) -> str | None:
    """None when every shipped migration is applied at ``url``, else what is wrong."""
    from drain.store.database import connect_kwargs
    from drain.store.migrate import load_migrations

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


def _dyno_web_concurrency(overrides: dict[str, object]) -> Settings:
    """The settings with WEB_CONCURRENCY from the dyno's limits (drain.web.dyno), for a
    deployed drain (DATABASE_URL set) started where nothing set it (Heroku's Python buildpack
    sets it at dyno boot; a container image does not). A local drain (embedded PostgreSQL)
    keeps 1."""
    from drain.web.dyno import cpu_limit, memory_limit_bytes, web_concurrency_for

    memory, cpus = memory_limit_bytes(), cpu_limit()
    workers = web_concurrency_for(memory, cpus)
    limit = f"{memory // 2**20} MiB" if memory is not None else "no memory limit"
    log.info(
        "WEB_CONCURRENCY is not set: %d worker(s) for this machine's limits (%s, %d CPUs)",
        workers,
        limit,
        cpus,
    )
    return Settings.load(**overrides, web_concurrency=workers)


@contextmanager
def _tcp_listener(settings: Settings, url: str) -> Iterator[None]:
    """DRAIN_EMBEDDED_PG_PORT: passwords for every role but postgres (pg_hba.conf, reloaded),
    then 127.0.0.1:PORT forwarded to the embedded server's socket (drain.store.listener).

    Raises:
        NotReady: the port is taken.
    """
    from drain.store.listener import listening, require_passwords

    port = settings.drain_embedded_pg_port
    assert port is not None
    busy = _address_in_use("127.0.0.1", port)
    if busy is not None:
        raise NotReady(f"cannot listen on 127.0.0.1:{port} ({busy}): DRAIN_EMBEDDED_PG_PORT")
    if require_passwords(settings.data_dir()):
        asyncio.run(_reload_configuration(url))
    host = parse_qs(urlsplit(url).query)["host"][0]
    with listening(os.path.join(host, ".s.PGSQL.5432"), port):
        yield


async def _reload_configuration(url: str) -> None:
    from drain.store.database import connect_kwargs

    conn = await asyncpg.connect(**cast("dict[str, Any]", connect_kwargs(url)))
    try:
        await conn.execute("SELECT pg_reload_conf()")
    finally:
        await conn.close()


def cmd_serve(args: argparse.Namespace) -> int:
    """Run ``drain serve`` (see the module docstring); returns the exit code."""
    from drain.web import master
    from drain.web.worker import SERVE_DATABASE_URL_ENV

    overrides: dict[str, object] = {}
    if args.port is not None:
        overrides["port"] = args.port
    if args.host is not None:
        overrides["drain_host"] = args.host
    if args.workers is not None:
        overrides["web_concurrency"] = args.workers
    settings = Settings.load(**overrides)
    settings.check_serving()
    configure_logging(sys.stdout)
    if "web_concurrency" not in settings.model_fields_set and settings.database_url is not None:
        settings = _dyno_web_concurrency(overrides)
    with ExitStack() as stack:
        url, embedded = stack.enter_context(open_database(settings))
        if embedded:
            from drain.store.migrate import migrate

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
        if embedded and settings.drain_embedded_pg_port is not None:
            stack.enter_context(_tcp_listener(settings, url))
        if embedded:
            print(f"drain is starting on {base_url} (POST /logs, GET /health)", flush=True)
            if settings.dashboard_access != "off":
                print(f"dashboard: {base_url}/", flush=True)
            print(f"data directory: {settings.data_dir()}", flush=True)
            print(f"database (psql): {url}", flush=True)
            if settings.drain_embedded_pg_port is not None:
                print(
                    f"database (TCP, for BI tools): 127.0.0.1:{settings.drain_embedded_pg_port}, "
                    "roles with a password only (`drain bi-role NAME` makes one)",
                    flush=True,
                )
            print("post a one-line Logplex batch with:\n", flush=True)
            print(curl_example(base_url, with_credentials=settings.basic_configured), flush=True)
            print(flush=True)
        log.info("decode path: %s", speedups.summary())
        os.environ[SERVE_DATABASE_URL_ENV] = url
        os.environ["PORT"] = str(settings.port)
        os.environ["WEB_CONCURRENCY"] = str(settings.web_concurrency)  # the pool budget
        if args.host is not None:
            os.environ["DRAIN_HOST"] = args.host
        host, port, workers = settings.host, str(settings.port), str(settings.web_concurrency)
        graceful_s = settings.drain_shutdown_requests_s
        if not embedded:  # the light master process (drain.web.master), same PID
            sys.stdout.flush()
            sys.stderr.flush()
            python = sys.executable
            # -P: do not put the working directory first on sys.path, or a repository
            # checkout there (Heroku's /app, the Docker image's WORKDIR) would shadow
            # the installed package.
            os.execv(
                python,
                [python, "-P", "-m", "drain.web.master", host, port, workers, str(graceful_s)],
            )
        master.run(settings.host, settings.port, settings.web_concurrency, graceful_s)
    return 0
