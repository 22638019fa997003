"""The connection budget: how many PostgreSQL connections each web worker's pool may open.

Every process of a drain holds connections: each uvicorn worker its asyncpg pool (the
writer holds one while it flushes, ``/health``, ``/metrics`` and the dashboard borrow one
briefly; the dashboard at most one at a time, drain.web.dashboard.db), the
clock process its own pool, the release phase one for ``drain migrate``, and an operator
one for ``heroku pg:psql``. Heroku Postgres Essential plans allow 20 connections; past the
limit PostgreSQL refuses new ones (SQLSTATE 53300) and the drain answers 503. So::

    web workers x pool size  +  reserved (clock 3 + release 1 + psql 1 = 5)  <=  limit

    pool size = min(DRAIN_DB_POOL_SIZE, (limit - DRAIN_DB_RESERVED_CONNECTIONS) // workers)

e.g. limit 20, 2 workers: min(5, (20 - 5) // 2) = 5; 4 workers: min(5, 15 // 4) = 3;
8 workers: 15 // 8 = 1, under :data:`MIN_POOL_SIZE`, so the plan does not fit and the
drain logs a warning and opens 2 each (the writer's one and one for /health).

The limit is DRAIN_DB_MAX_CONNECTIONS, else read from the server (:func:`read_limit`):
``max_connections`` minus ``superuser_reserved_connections`` (for a non-superuser), and
the role's ``rolconnlimit`` when it is set. Behind PgBouncer in transaction mode
(``DATABASE_CONNECTION_POOL_URL``) the server's limit belongs to PgBouncer, which
multiplexes many client connections on few server ones; the pool size is then
DRAIN_DB_POOL_SIZE as set. Several web dynos share one limit: set
DRAIN_DB_MAX_CONNECTIONS to the limit divided by the number of dynos.

:func:`plan_pool` is pure; :func:`read_limit` asks the server; :func:`plan_web_pool` does
both for one web worker and logs the arithmetic.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import asyncpg

from drain.store.database import Conn, connect_kwargs

if TYPE_CHECKING:
    from drain.settings import Settings

__all__ = [
    "CLOCK_POOL_SIZE",
    "MIN_POOL_SIZE",
    "PoolPlan",
    "plan_pool",
    "plan_web_pool",
    "read_limit",
]

log = logging.getLogger("drain.store.budget")

#: the writer's connection plus one for /health and /metrics
MIN_POOL_SIZE = 2
#: the connections ``drain clock`` (and ``drain partitions``, ``drain rollup``) may open
CLOCK_POOL_SIZE = 3


@dataclass(frozen=True, slots=True)
class PoolPlan:
    """The pool size chosen for one web worker, and why.

    Fields:
        pool_size: connections this worker's pool may open (>= MIN_POOL_SIZE).
        limit: the connection limit budgeted against, or None (PgBouncer, unknown).
        workers: web worker processes sharing the limit.
        reserved: connections left for the clock, the release phase and psql.
        fits: False when ``workers x MIN_POOL_SIZE + reserved`` exceeds ``limit``.
        explain: one line with the arithmetic, for the start-up log and the README.
    """

    pool_size: int
    limit: int | None
    workers: int
    reserved: int
    fits: bool
    explain: str


def plan_pool(*, configured: int, workers: int, reserved: int, limit: int | None) -> PoolPlan:
    """Choose a web worker's pool size.

    Args:
        configured: DRAIN_DB_POOL_SIZE, the most connections per worker (>= 1).
        workers: uvicorn worker processes (>= 1).
        reserved: DRAIN_DB_RESERVED_CONNECTIONS.
        limit: connections the server allows this role, or None when unknown or behind
            PgBouncer (then ``configured`` is used as it is).

    Raises:
        ValueError: ``configured`` or ``workers`` below 1, ``reserved`` negative.
    """
    if configured < 1 or workers < 1 or reserved < 0:
        raise ValueError("configured and workers must be >= 1 and reserved >= 0")
    floor = min(MIN_POOL_SIZE, configured)
    if limit is None:
        return PoolPlan(
            configured, None, workers, reserved, True, f"pool {configured} (no server limit)"
        )
    share = (limit - reserved) // workers
    size = max(floor, min(configured, share))
    fits = workers * size + reserved <= limit
    explain = (
        f"pool {size} = min(DRAIN_DB_POOL_SIZE {configured}, (limit {limit} - reserved "
        f"{reserved}) // workers {workers} = {share}); {workers} x {size} + {reserved} = "
        f"{workers * size + reserved} of {limit}"
    )
    return PoolPlan(size, limit, workers, reserved, fits, explain)


async def read_limit(conn: Conn) -> int:
    """Connections the server allows the connected role (see the module docstring).

    Raises:
        asyncpg.PostgresError: the catalog could not be read.
    """
    row = await conn.fetchrow(
        """
        SELECT current_setting('max_connections')::int AS max_connections,
               current_setting('superuser_reserved_connections')::int AS reserved,
               r.rolsuper, r.rolconnlimit
        FROM pg_roles r WHERE r.rolname = current_user
        """
    )
    assert row is not None
    limit = int(row["max_connections"])
    if not row["rolsuper"]:
        limit -= int(row["reserved"])
    if int(row["rolconnlimit"]) >= 0:
        limit = min(limit, int(row["rolconnlimit"]))
    return limit


async def plan_web_pool(settings: Settings, database_url: str) -> PoolPlan:
    """This worker's pool size, logged with its arithmetic.

    The limit: DRAIN_DB_MAX_CONNECTIONS, else read from the server over one short
    connection; none behind PgBouncer (``database_url`` is DATABASE_CONNECTION_POOL_URL)
    or when the server cannot be asked now (the pool then reports the outage itself).
    """
    pooled = settings.database_connection_pool_url
    limit: int | None = settings.drain_db_max_connections
    if pooled is not None and database_url == pooled.get_secret_value():
        limit = None
    elif limit is None:
        try:
            conn = await asyncpg.connect(**cast("dict[str, Any]", connect_kwargs(database_url)))
            try:
                limit = await read_limit(conn)
            finally:
                await conn.close()
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("connection budget: limit unknown (%s)", type(exc).__name__)
    plan = plan_pool(
        configured=settings.drain_db_pool_size,
        workers=settings.web_concurrency,
        reserved=settings.drain_db_reserved_connections,
        limit=limit,
    )
    if plan.fits:
        log.info("connection budget: %s", plan.explain)
    else:
        log.warning("connection budget exceeded: %s", plan.explain)
    return plan
