"""How the dashboard reads PostgreSQL: read-only transactions with a statement time-out, on
the web worker's own pool, and identifiers quoted from a whitelist read from the catalog.

Every dashboard query runs inside :func:`read_only`: ``BEGIN READ ONLY`` (PostgreSQL refuses
any write in it with SQLSTATE 25006), ``SET LOCAL statement_timeout``, ``SET LOCAL
TimeZone = 'UTC'`` (so ``date_trunc`` buckets are UTC days and hours) and ``SET LOCAL jit =
off``: the dashboard's queries read bounded ranges in milliseconds, and the planner's
estimates for a rollup's query (tag_catalog_daily's per-day index walk is costed in the
millions) would otherwise make PostgreSQL spend seconds compiling it. Values are always bound
parameters; the only names put into SQL text are column and table names that the catalog
returned and that :func:`quote_ident` accepts.

The dashboard opens no connections of its own: it borrows from the worker's pool, at most
:data:`DASHBOARD_CONNECTIONS` at a time per worker (a semaphore), so the writer keeps its
connections (drain.store.budget counts the dashboard's one with /health's).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
from asyncpg.pool import PoolConnectionProxy

__all__ = [
    "DASHBOARD_CONNECTIONS",
    "NUMERIC_TYPES",
    "TEXT_TYPES",
    "Column",
    "DashboardUnavailable",
    "Gate",
    "quote_ident",
    "read_only",
    "table_columns",
]

log = logging.getLogger("drain.web.dashboard")

#: pooled connections the dashboard may hold at once in one web worker
DASHBOARD_CONNECTIONS = 1

#: PostgreSQL types (pg_type.typname) whose columns are a rollup's measures
NUMERIC_TYPES = frozenset({"int2", "int4", "int8", "float4", "float8", "numeric"})
#: PostgreSQL types whose columns are a rollup's dimensions
TEXT_TYPES = frozenset({"text", "varchar", "bpchar"})

#: the names :func:`quote_ident` accepts: plain identifiers, as the rollup files use
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")

Conn = asyncpg.Connection | PoolConnectionProxy


class DashboardUnavailable(Exception):
    """The database did not answer a dashboard query in time or at all (HTTP 503); the
    message says which, without any of the query's data."""


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a table: its name and its type's ``pg_type.typname``."""

    name: str
    type_name: str


class Gate:
    """What the dashboard's reads share in one worker: the pool, the semaphore and the
    time-out (DRAIN_DASHBOARD_STATEMENT_TIMEOUT_S, seconds)."""

    def __init__(self, timeout_s: float, connections: int = DASHBOARD_CONNECTIONS) -> None:
        self.timeout_s = timeout_s
        self.semaphore = asyncio.Semaphore(connections)


def quote_ident(name: str, allowed: Collection[str]) -> str:
    """``name`` as a quoted SQL identifier (``"name"``).

    Raises:
        ValueError: ``name`` is not in ``allowed`` (the names the catalog returned) or is
            not a plain identifier (letters, digits, ``_``; at most 63 characters).
    """
    if name not in allowed or not _PLAIN_NAME.fullmatch(name):
        raise ValueError(f"not a known column or table: {name[:70]!r}")
    return f'"{name}"'


@asynccontextmanager
async def read_only(pool: asyncpg.Pool | None, gate: Gate) -> AsyncIterator[Conn]:
    """A pooled connection inside a read-only transaction with ``statement_timeout``.

    Waiting for the semaphore and the connection is bounded by the same time-out.

    Raises:
        DashboardUnavailable: no pool yet, no connection in time, the statement time-out
            fired, the database is unreachable, or it refused a query (a write among them:
            SQLSTATE 25006, ``ReadOnlySQLTransactionError``).
    """
    if pool is None:
        raise DashboardUnavailable("the drain is starting")
    timeout_ms = max(1, int(gate.timeout_s * 1000))
    try:
        async with asyncio.timeout(gate.timeout_s):
            await gate.semaphore.acquire()
    except TimeoutError:
        raise DashboardUnavailable(
            f"busy: no dashboard connection within {gate.timeout_s:g} s"
        ) from None
    try:
        try:
            async with asyncio.timeout(gate.timeout_s):
                conn = await pool.acquire()
        except TimeoutError:
            raise DashboardUnavailable(
                f"no database connection within {gate.timeout_s:g} s"
            ) from None
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            raise DashboardUnavailable(f"database unreachable ({type(error).__name__})") from None
        try:
            async with conn.transaction(readonly=True):
                await conn.execute(
                    f"SET LOCAL statement_timeout = {timeout_ms}; SET LOCAL TimeZone = 'UTC'; "
                    "SET LOCAL jit = off"
                )
                try:
                    yield conn
                except asyncpg.QueryCanceledError:
                    raise DashboardUnavailable(
                        f"a query took longer than {gate.timeout_s:g} s "
                        "(DRAIN_DASHBOARD_STATEMENT_TIMEOUT_S)"
                    ) from None
                except asyncpg.PostgresError as error:
                    log.warning("dashboard query failed: %s", type(error).__name__)
                    raise DashboardUnavailable(f"database error ({type(error).__name__})") from None
        except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError) as error:
            raise DashboardUnavailable(f"database unreachable ({type(error).__name__})") from None
        finally:
            await pool.release(conn)
    finally:
        gate.semaphore.release()


async def table_columns(conn: Conn, table: str) -> list[Column] | None:
    """The columns of ``table`` in the current schema, in order; None when it does not
    exist. ``table`` is bound as a parameter (``format('%I', ...)`` quotes it)."""
    rows = await conn.fetch(
        """SELECT a.attname, t.typname
             FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
            WHERE a.attrelid = to_regclass(format('%I', $1::text))
              AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY a.attnum""",
        table,
    )
    if not rows:
        return None
    return [Column(r["attname"], r["typname"]) for r in rows]
