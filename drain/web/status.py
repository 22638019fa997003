"""The drain's state as ``GET /health`` reports it, for ``/health`` and the dashboard.

:func:`health_report` probes the database, reads the writer's queue, the counters, the
rollups' lag, the partitions ahead, the archive's failures and Heroku's recent error codes,
and collects the warnings (drain.web.health has the document's shape);
:func:`refresh_partitions_ahead` also sets the ``drain_partitions_ahead_days`` gauge. Each
database read is bounded by DRAIN_HEALTH_PROBE_TIMEOUT_S.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from drain.store.platform import recent_codes
from drain.web.health import (
    archive_health,
    archive_warning,
    health_document,
    partitions_ahead,
    partitions_warning,
    platform_warnings,
    probe_database,
    rollup_health,
)
from drain.web.state import DrainState

__all__ = ["health_report", "platform_error_warnings", "refresh_partitions_ahead"]


async def health_report(state: DrainState) -> tuple[int, dict[str, Any]]:
    """``(HTTP status, document)`` of ``GET /health``: 503 with ``{"status": "starting"}``
    before the lifespan has opened the pool, else :func:`drain.web.health.health_document`."""
    if state.pool is None:
        return 503, {"status": "starting"}
    timeout_s = state.config.probe_timeout_s
    probe = await probe_database(state.pool, timeout_s)
    stats = state.writer.stats() if state.writer is not None else None
    rollups = None
    warnings: list[dict[str, Any]] = state.telemetry.losses.warnings()
    if probe.reachable:
        warnings.extend(await platform_error_warnings(state))
        rollups = await rollup_health(state.pool, state.rollup_names, timeout_s)
        ahead = await refresh_partitions_ahead(state)
        late = partitions_warning(ahead, state.settings.drain_partitions_ahead_days)
        if late is not None:
            warnings.append(late)
        archive = await archive_health(state.pool, timeout_s)
        if archive is not None:
            warnings.extend(archive_warning(failure) for failure in archive.failed)
    return health_document(probe, stats, state.counters, rollups, warnings)


async def platform_error_warnings(state: DrainState) -> list[dict[str, Any]]:
    """The ``platform_error`` warnings (drain.web.health.platform_warnings): Heroku error
    codes of DRAIN_PLATFORM_WARN_CODES in ``platform_events`` within
    DRAIN_PLATFORM_WARN_WINDOW_S seconds; [] when that table is off, no code is configured,
    or the database does not answer within the probe timeout."""
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


async def refresh_partitions_ahead(state: DrainState) -> int | None:
    """Count the days ahead that have a partition and set ``drain_partitions_ahead_days``;
    None when there is no pool yet or the database did not answer in time."""
    if state.pool is None:
        return None
    ahead = await partitions_ahead(state.pool, state.config.probe_timeout_s)
    if ahead is not None:
        state.metrics.partitions_ahead.set(ahead)
    return ahead
