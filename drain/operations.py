"""The web app's operational glue: the per-batch log line, /health warnings, the pool budget.

Kept apart from drain.app so that the request path there stays one line per step.

``/health`` warnings (the ``warnings`` list of the document), each a JSON object with a
``kind`` and a human ``message``:

- ``upstream_loss``: the last loss Heroku reported to the drain (Logplex's ``Error L10``,
  log-shuttle's ``Error L13`` / ``Logplex-Lost-Count``, drain.lost): how many messages,
  since when, for which drain token. With several workers the last report is shared
  through a small JSON file in the metrics directory (written whole, then renamed), so
  every worker shows it; it is forgotten when the drain restarts. The
  ``drain_upstream_lost_messages_total`` metric keeps the counts.
- ``partitions_ahead``: fewer than DRAIN_PARTITIONS_AHEAD_DAYS days after today have a
  partition (the clock's maintenance makes them; ``drain partitions maintain`` does it now).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

import asyncpg
import orjson

from drain.budget import PoolPlan, plan_pool, read_limit
from drain.database import connect_kwargs
from drain.lifecycle import days_ahead
from drain.lost import BatchLoss
from drain.records import Ledger, WriteResult
from drain.settings import Settings

if TYPE_CHECKING:
    from drain.app import DrainState

__all__ = [
    "BatchNote",
    "health_warnings",
    "last_loss",
    "loss_warning",
    "plan_web_pool",
    "refresh_partition_gauge",
    "remember_loss",
]

log = logging.getLogger("drain.operations")

#: seconds /health and /metrics may spend counting the partitions ahead
PARTITION_PROBE_TIMEOUT_S = 2.0
#: longest header value copied into a log line, characters
_MAX_LOGGED_HEADER = 200
#: the last upstream loss, shared by the workers, in the metrics directory
LAST_LOSS_FILE = "drain-last-upstream-loss.json"


def _short(value: str | None) -> str | None:
    return None if value is None else value[:_MAX_LOGGED_HEADER]


@dataclass(slots=True)
class BatchNote:
    """What one POST /logs did, for its single log line. Never holds body bytes.

    Fields:
        request_id: Heroku router's ``X-Request-Id`` (log-shuttle sends one too).
        drain_token / frame_id: the admitted request's identity (None before admission).
        ledger: the decoded body's counts. result: the writer's answer.
        lost_upstream: messages Heroku reported lost in this batch.
    """

    request_id: str | None
    drain_token: str | None = None
    frame_id: str | None = None
    ledger: Ledger | None = None
    result: WriteResult | None = None
    lost_upstream: int = 0

    @property
    def logged_request_id(self) -> str | None:
        """The request id as logged (cut to 200 characters)."""
        return _short(self.request_id)

    def log(self, logger: Any, status: int, started: float) -> None:
        """Emit the batch's one line: info for 2xx, warning otherwise."""
        fields: dict[str, Any] = {
            "request_id": _short(self.request_id),
            "drain_token": _short(self.drain_token),
            "frame_id": _short(self.frame_id),
            "status": status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
        }
        if self.ledger is not None:
            ledger = self.ledger
            fields.update(
                body_bytes=ledger.body_bytes,
                frames=ledger.frames,
                events=ledger.events,
                events_stored=self.result.events_stored if self.result else 0,
                quarantined=self.result.quarantined if self.result else 0,
                not_events=ledger.not_events,
                duplicate=bool(self.result and self.result.duplicate),
                lost_upstream=self.lost_upstream,
            )
            if ledger.msg_count_mismatch:
                fields["msg_count_header"] = ledger.msg_count_header
        if status < 400:
            logger.info("batch", **fields)
        else:
            logger.warning("batch", **fields)


def loss_warning(drain_token: str | None, loss: BatchLoss, received_at: datetime) -> dict[str, Any]:
    """The ``upstream_loss`` warning for /health from one batch's :class:`BatchLoss`."""
    latest = loss.latest
    since = latest.since.isoformat() if latest is not None and latest.since else None
    source = latest.source if latest is not None else None
    who = f"drain token {drain_token}" if drain_token else "a sender without drain token"
    return {
        "kind": "upstream_loss",
        "message": (
            f"Heroku reported {loss.lost} messages lost before they reached this drain "
            f"({source}, {who}{', since ' + since if since else ''}): those events are gone; "
            "the drain is too slow or was unreachable"
        ),
        "drain_token": drain_token,
        "lost": loss.lost,
        "since": since,
        "source": source,
        "reported_at": received_at.astimezone(UTC).isoformat(),
    }


def remember_loss(state: DrainState, warning: dict[str, Any]) -> None:
    """Keep ``warning`` as the last upstream loss, for every worker's /health."""
    state.last_loss = warning
    directory = state.metrics.directory
    if directory is not None:
        path = os.path.join(directory, LAST_LOSS_FILE)
        temporary = f"{path}.{os.getpid()}"
        with open(temporary, "wb") as out:
            out.write(orjson.dumps(warning))
        os.replace(temporary, path)


def last_loss(state: DrainState) -> dict[str, Any] | None:
    """The last upstream loss any worker saw (this process's only, with one worker)."""
    directory = state.metrics.directory
    if directory is None:
        return state.last_loss
    try:
        with open(os.path.join(directory, LAST_LOSS_FILE), "rb") as shared:
            found = orjson.loads(shared.read())
    except FileNotFoundError:
        return None
    except orjson.JSONDecodeError:  # cannot happen with os.replace; be safe
        return state.last_loss
    return found if isinstance(found, dict) else None


async def _days_ahead(pool: asyncpg.Pool) -> int | None:
    try:
        async with asyncio.timeout(PARTITION_PROBE_TIMEOUT_S), pool.acquire() as conn:
            return await days_ahead(conn, datetime.now(UTC).date())
    except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return None


async def refresh_partition_gauge(state: DrainState) -> int | None:
    """Count the days ahead that have a partition and set ``drain_partitions_ahead_days``;
    None when the database did not answer in time."""
    if state.pool is None:
        return None
    ahead = await _days_ahead(state.pool)
    if ahead is not None:
        state.metrics.partitions_ahead.set(ahead)
    return ahead


async def health_warnings(state: DrainState, reachable: bool) -> list[dict[str, Any]]:
    """The /health ``warnings`` list (see the module docstring)."""
    warnings: list[dict[str, Any]] = []
    loss = last_loss(state)
    if loss is not None:
        warnings.append(dict(loss))
    if reachable:
        wanted = state.settings.drain_partitions_ahead_days
        ahead = await refresh_partition_gauge(state)
        if ahead is not None and ahead < wanted:
            warnings.append(
                {
                    "kind": "partitions_ahead",
                    "message": (
                        f"only {ahead} of {wanted} days after today have a raw_events "
                        "partition: is `drain clock` running? `drain partitions maintain` "
                        "makes them now"
                    ),
                    "ahead_days": ahead,
                    "wanted_days": wanted,
                }
            )
    return warnings


async def plan_web_pool(settings: Settings, database_url: str) -> PoolPlan:
    """This worker's pool size (drain.budget), logged with its arithmetic.

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
