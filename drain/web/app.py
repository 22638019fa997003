"""The web service: ``POST /logs`` (the drain), ``GET /health`` and ``GET /metrics``.

:func:`create_app` builds one FastAPI app from :class:`~drain.settings.Settings`. Its
lifespan opens the asyncpg pool and starts the group-commit
:class:`~drain.store.writer.Writer`; on shutdown (SIGTERM through uvicorn) it closes the
writer first, so queued batches commit, then the pool.

- ``POST /logs``: :func:`drain.web.ingest.post_logs` (the answers are listed there).
- ``POST /v1/logs``, ``/v1/metrics``, ``/v1/traces`` (also under DRAIN_OTLP_PATH_PREFIX):
  OTLP/HTTP, :func:`drain.web.otlp.post_otlp` (the answers are listed there).
- ``GET /health``: no credentials; the database probe, the writer's queue, the counters, the
  rollups' lag and the warnings: upstream loss, recent platform errors, partitions
  (drain.web.health). 200 when the database answers, else 503.
- ``GET /metrics``: Prometheus text format (drain.web.metrics), behind the same HTTP Basic
  credentials as ``POST /logs``; off with DRAIN_METRICS=false (404).
- ``GET /`` and the dashboard's other pages, ``/api/...``, ``/static/...``
  (drain.web.dashboard), behind the viewer's own credentials.

The lifespan also hands ``drain serve``'s HTTP protocol its bounds on connections and
request heads (drain.web.connections).

Nothing here logs a body, a credential, or DATABASE_URL.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from drain.rollups.runner import load_rollups
from drain.settings import Settings
from drain.store.budget import plan_web_pool
from drain.store.database import create_pool
from drain.store.platform import load_client_hash_key
from drain.store.writer import Writer
from drain.web.access import check_credentials
from drain.web.body import BodyBudget
from drain.web.connections import GUARD_STATE_KEY, ConnectionGuard
from drain.web.dashboard import add_dashboard
from drain.web.health import Counters, LossMemory, archive_health
from drain.web.ingest import post_logs
from drain.web.metrics import CONTENT_TYPE, Metrics
from drain.web.otlp import otlp_routes
from drain.web.report import Telemetry
from drain.web.state import DrainState
from drain.web.status import health_report, refresh_partitions_ahead

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
        body_budget=BodyBudget(settings.web_config().body_budget_bytes),
    )
    config = state.config

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        plan = await plan_web_pool(settings, database_url)
        pool = await create_pool(database_url, min_size=1, max_size=plan.pool_size)
        state.decode_executor = ThreadPoolExecutor(1, "drain-decode")
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
                # the bounds on connections and heads, for drain serve's protocol
                yield {GUARD_STATE_KEY: ConnectionGuard(settings.connection_limits(), metrics)}
            finally:
                await writer.close(config.writer_close_timeout_s)
                state.writer = None
        finally:
            state.decode_executor.shutdown(wait=False, cancel_futures=True)
            state.decode_executor = None
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
        status, document = await health_report(state)
        return JSONResponse(document, status_code=status)

    async def get_metrics(request: Request) -> Response:
        refused = check_credentials(state, request)
        if refused is not None:
            state.telemetry.count_refusal(refused.reason)
            return refused.plain()
        if state.writer is not None:
            stats = state.writer.stats()
            metrics.set_queue(stats.queue_events, stats.queue_bytes)
        if state.pool is not None:
            await refresh_partitions_ahead(state)
            archive = await archive_health(state.pool, state.config.probe_timeout_s)
            if archive is not None:
                metrics.set_archive_failures(archive.failures)
        body = await asyncio.to_thread(metrics.render)
        return Response(body, media_type=CONTENT_TYPE)

    app.add_api_route("/logs", logs, methods=["POST"], include_in_schema=False)
    for path, endpoint in otlp_routes(state):
        app.add_api_route(path, endpoint, methods=["POST"], include_in_schema=False)
    app.add_api_route("/health", get_health, methods=["GET"], include_in_schema=False)
    if settings.drain_metrics:
        app.add_api_route("/metrics", get_metrics, methods=["GET"], include_in_schema=False)
    add_dashboard(app, state)  # GET / and its pages, /api/..., /static/... (drain.web.dashboard)
    return app
