"""``drain bi-role NAME``: a read-only PostgreSQL role for a BI tool (Metabase, Grafana).

Makes the role (``LOGIN``, no other attribute, a generated password, at most 5 connections,
``default_transaction_read_only`` on and a 60 s ``statement_timeout``), makes every rollup's
table (its ``-- @setup``), and grants ``SELECT`` on those tables and on the views
:data:`BI_VIEWS`, and nothing else: not ``raw_events`` nor ``quarantine`` (payloads and raw
lines stay out of reach). Prints the role's connection URL: DATABASE_URL's host and database
with the role's name and password, or for the embedded PostgreSQL ``127.0.0.1:PORT`` when
DRAIN_EMBEDDED_PG_PORT is set (its unix socket otherwise).

Run again, it grants again (a new rollup's table) and keeps the password unless
``--reset-password``. On Heroku Postgres, where a role cannot be created with SQL, make it with
``heroku pg:credentials:create --name NAME`` first: the command then only grants.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import secrets
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

from drain.cli.common import ready_database
from drain.errors import NotReady, SettingsError
from drain.settings import Settings

__all__ = ["BI_VIEWS", "ROLE_NAME", "register", "role_url"]

#: the views a BI role may read (migration 0301)
BI_VIEWS = ("rollup_status", "quarantine_daily")
#: a role name drain accepts: a plain lower-case identifier
ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
#: connections one BI role may hold (counted in docs/operations.md, Connection budget)
BI_CONNECTION_LIMIT = 5


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``bi-role`` to the ``drain`` command's subparsers."""
    bi = commands.add_parser(
        "bi-role", help="make a read-only PostgreSQL role for a BI tool and print its URL"
    )
    bi.add_argument("name", help="the role's name (lower-case letters, digits, _)")
    bi.add_argument(
        "--reset-password", action="store_true", help="give an existing role a new password"
    )
    bi.set_defaults(func=cmd_bi_role)


def role_url(
    database_url: str, role: str, password: str | None, *, tcp_port: int | None = None
) -> str:
    """The URL a BI tool connects with: ``database_url`` with ``role`` and ``password``
    (``PASSWORD`` when unknown); with ``tcp_port``, the embedded server's 127.0.0.1:PORT. Pure."""
    parts = urlsplit(database_url)
    secret = quote(password, safe="") if password is not None else "PASSWORD"
    user = f"{quote(role, safe='')}:{secret}"
    if tcp_port is not None:
        return urlunsplit(("postgresql", f"{user}@127.0.0.1:{tcp_port}", parts.path, "", ""))
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, f"{user}@{host}", parts.path, parts.query, ""))


async def _make_role(url: str, name: str, reset: bool) -> tuple[str | None, list[str]]:
    """Make or update the role; (its new password or None, the relations granted)."""
    from drain.rollups.runner import load_rollups
    from drain.store.database import connect_kwargs

    kwargs: dict[str, Any] = dict(connect_kwargs(url))
    conn = await asyncpg.connect(**kwargs)
    password: str | None = None
    quoted = f'"{name}"'
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", name)
        if not exists or reset:
            password = secrets.token_urlsafe(24)  # [A-Za-z0-9_-]: safe in a SQL literal
            verb = "ALTER" if exists else "CREATE"
            try:
                await conn.execute(
                    f"{verb} ROLE {quoted} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
                    f"NOREPLICATION CONNECTION LIMIT {BI_CONNECTION_LIMIT} "
                    f"PASSWORD '{password}'"
                )
            except asyncpg.InsufficientPrivilegeError:
                raise NotReady(
                    f"this database user may not {verb.lower()} roles (Heroku Postgres): run "
                    f"`heroku pg:credentials:create --name {name}` and then "
                    f"`drain bi-role {name}` again to grant it read access"
                ) from None
        granted = []
        async with conn.transaction():
            for spec in load_rollups().values():
                await conn.execute(spec.setup_sql)
                granted.append(spec.target)
            granted.extend(BI_VIEWS)
            database = await conn.fetchval("SELECT current_database()")
            schema = await conn.fetchval("SELECT current_schema()")
            await conn.execute(f'GRANT CONNECT ON DATABASE "{database}" TO {quoted}')
            await conn.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO {quoted}')
            for relation in dict.fromkeys(granted):
                await conn.execute(f'GRANT SELECT ON "{relation}" TO {quoted}')
        # a Heroku credential may refuse it: read-only by its grants alone then
        with contextlib.suppress(asyncpg.InsufficientPrivilegeError):
            await conn.execute(
                f"ALTER ROLE {quoted} SET default_transaction_read_only = on; "
                f"ALTER ROLE {quoted} SET statement_timeout = '60s'"
            )
    finally:
        await conn.close()
    return password, list(dict.fromkeys(granted))


def cmd_bi_role(args: argparse.Namespace) -> int:
    """Run ``drain bi-role`` (see the module docstring); returns the exit code."""
    name = args.name
    if not ROLE_NAME.fullmatch(name) or name == "postgres":
        raise SettingsError(
            f"{name[:70]!r} is not a role name drain makes: lower-case letters, digits and _ "
            "(not postgres)"
        )
    settings = Settings.load()
    with ready_database() as url:
        try:
            password, granted = asyncio.run(_make_role(url, name, args.reset_password))
        except (OSError, asyncpg.InterfaceError, TimeoutError) as error:
            raise NotReady(f"cannot connect to the database ({type(error).__name__})") from None
    port = settings.drain_embedded_pg_port if not settings.deployed else None
    print(f"role {name}: SELECT on {', '.join(granted)}")
    if password is None:
        print("the role existed: its password is unchanged (--reset-password sets a new one)")
    print(role_url(url, name, password, tcp_port=port))
    if not settings.deployed and port is None:
        print(
            "(the embedded PostgreSQL listens on its unix socket only: set "
            "DRAIN_EMBEDDED_PG_PORT for `drain serve` to reach it from 127.0.0.1)"
        )
    return 0
