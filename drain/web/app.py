"""The web service: ``POST /logs`` (the drain), ``GET /health`` and ``GET /metrics``.

:func:`create_app` builds one FastAPI app from :class:`~drain.settings.Settings`. Its
lifespan opens the asyncpg pool and starts the group-commit
:class:`~drain.store.writer.Writer`; on shutdown (SIGTERM through uvicorn) it closes the
writer first, so queued batches commit, then the pool.

- ``POST /logs``: :func:`drain.web.ingest.post_logs` (the answers are listed there).
- ``GET /health``: no credentials; the database probe, the writer's queue, the counters, the
  rollups' lag and the warnings: upstream loss, recent platform errors, partitions
  (drain.web.health). 200 when the database answers, else 503.
- ``GET /metrics``: Prometheus text format (drain.web.metrics), behind the same HTTP Basic
  credentials as ``POST /logs``; off with DRAIN_METRICS=false (404).

Nothing here logs a body, a credential, or DATABASE_URL.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from drain.rollups.runner import load_rollups
from drain.settings import Settings
from drain.store.budget import plan_web_pool
from drain.store.database import create_pool
from drain.store.platform import load_client_hash_key, recent_codes
from drain.store.writer import Writer
from drain.web.access import check_credentials
from drain.web.health import (
    Counters,
    LossMemory,
    health_document,
    partitions_ahead,
    partitions_warning,
    platform_warnings,
    probe_database,
    rollup_health,
)
from drain.web.ingest import post_logs
from drain.web.metrics import CONTENT_TYPE, Metrics
from drain.web.report import Telemetry
from drain.web.state import DrainState

__all__ = ["create_app"]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(
    settings: Settings,
    *,
    database_url: str,
    clock: Callable[[], datetime] | None = None,
) -> FastAPI:
    """Build the drain's ASGI app.

    Args:
        settings: validated settings; :meth:`Settings.check_serving` is applied here.
        database_url: the PostgreSQL to write to (DATABASE_URL, or the embedded server's URL).
        clock: returns "now" as a tz-aware UTC datetime; used for ``received_at`` and the
            acceptance window. Default: the system clock.

    Raises:
        SettingsError: the settings must not serve (see :meth:`Settings.check_serving`).
    """
    settings.check_serving()
    metrics = Metrics.create()
    state = DrainState(
        settings=settings,
        config=settings.web_config(),
        clock=clock or _utc_now,
        limits=settings.decode_limits(),
        writer_config=settings.writer_config(),
        telemetry=Telemetry(Counters(), metrics, LossMemory(metrics.directory), settings),
        rollup_names=sorted(load_rollups()),
    )
    config = state.config

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        plan = await plan_web_pool(settings, database_url)
        pool = await create_pool(database_url, min_size=1, max_size=plan.pool_size)
        try:
            key = None
            if settings.needs_database_client_key:
                async with pool.acquire() as conn:
                    key = await load_client_hash_key(conn)
            state.rules = settings.line_rules(key)
            writer = Writer(pool, state.writer_config, observer=metrics)
            await writer.start()
            state.pool, state.writer = pool, writer
            try:
                yield
            finally:
                await writer.close(config.writer_close_timeout_s)
                state.writer = None
        finally:
            state.pool = None
            state.rules = None
            metrics.process_exiting()
            try:
                await asyncio.wait_for(pool.close(), config.pool_close_timeout_s)
            except TimeoutError:
                pool.terminate()

    app = FastAPI(
        title="drain",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.drain = state

    async def logs(request: Request) -> Response:
        return await post_logs(state, request)

    async def get_health() -> Response:
        if state.pool is None:
            return JSONResponse({"status": "starting"}, status_code=503)
        timeout_s = config.probe_timeout_s
        probe = await probe_database(state.pool, timeout_s)
        stats = state.writer.stats() if state.writer is not None else None
        rollups = None
        warnings: list[dict[str, Any]] = state.telemetry.losses.warnings()
        if probe.reachable:
            warnings.extend(await _platform_warnings(state))
            rollups = await rollup_health(state.pool, state.rollup_names, timeout_s)
            ahead = await _refresh_partitions_ahead(state)
            late = partitions_warning(ahead, settings.drain_partitions_ahead_days)
            if late is not None:
                warnings.append(late)
        status, document = health_document(probe, stats, state.counters, rollups, warnings)
        return JSONResponse(document, status_code=status)

    async def get_metrics(request: Request) -> Response:
        refused = check_credentials(state, request)
        if refused is not None:
            state.telemetry.count_refusal(refused.reason)
            return refused.response
        if state.writer is not None:
            stats = state.writer.stats()
            metrics.set_queue(stats.queue_events, stats.queue_bytes)
        if state.pool is not None:
            await _refresh_partitions_ahead(state)
        body = await asyncio.to_thread(metrics.render)
        return Response(body, media_type=CONTENT_TYPE)

    app.add_api_route("/logs", logs, methods=["POST"], include_in_schema=False)
    app.add_api_route("/health", get_health, methods=["GET"], include_in_schema=False)
    if settings.drain_metrics:
        app.add_api_route("/metrics", get_metrics, methods=["GET"], include_in_schema=False)
    return app


async def _platform_warnings(state: DrainState) -> list[dict[str, Any]]:
    """The ``platform_error`` warnings (drain.web.health), [] when platform_events is off or
    the database does not answer within the probe timeout."""
    settings = state.settings
    codes = settings.platform_warn_codes
    if state.pool is None or not settings.drain_platform_events or not codes:
        return []
    window_s = settings.drain_platform_warn_window_s
    try:
        async with asyncio.timeout(state.config.probe_timeout_s), state.pool.acquire() as conn:
            found = await recent_codes(conn, codes, state.clock(), window_s)
    except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return []
    return platform_warnings(found, window_s, settings.app_label)


async def _refresh_partitions_ahead(state: DrainState) -> int | None:
    """Count the days ahead that have a partition and set ``drain_partitions_ahead_days``."""
    if state.pool is None:
        return None
    ahead = await partitions_ahead(state.pool, state.config.probe_timeout_s)
    if ahead is not None:
        state.metrics.partitions_ahead.set(ahead)
    return ahead
