"""What one app instance holds: its configuration, telemetry, pool and writer (pure data).

Built by :func:`drain.web.app.create_app` and kept in ``app.state.drain``; the handlers
receive it as an argument. Nothing module-level.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from drain.decode.limits import DecodeLimits
from drain.decode.rules import LineRules
from drain.settings import Settings
from drain.store.writer import Writer, WriterConfig
from drain.web.body import BodyBudget
from drain.web.config import WebConfig
from drain.web.health import Counters
from drain.web.metrics import Metrics
from drain.web.report import Telemetry

__all__ = ["DrainState"]


@dataclass(slots=True)
class DrainState:
    """Everything one app instance holds (``app.state.drain``); built by :func:`create_app`.

    ``pool``, ``writer`` and ``rules`` are set by the lifespan and are None outside it
    (``rules`` needs the database: the key of the client hash may be kept there).
    """

    settings: Settings
    config: WebConfig
    clock: Callable[[], datetime]
    limits: DecodeLimits
    writer_config: WriterConfig
    telemetry: Telemetry
    rollup_names: list[str]
    #: the bytes of bodies this worker reads and decodes at once (WebConfig.body_budget_bytes)
    body_budget: BodyBudget
    pool: asyncpg.Pool | None = None
    writer: Writer | None = None
    rules: LineRules | None = None
    insecure_warned_at: float | None = None
    #: POSTs admitted whose body is being read or decoded (not yet queued), and the mean
    #: rows per decoded body: under overload the rows they carry join the write queue next
    #: (Writer.check_room), so a burst is refused before the event loop is swamped
    bodies_in_progress: int = 0
    rows_per_body: float = 0.0
    #: the one thread that decodes large bodies (set by the lifespan): the GIL lets one
    #: decode run at a time anyway, and each more thread would hold a body half-decoded in
    #: its own glibc malloc arena (asyncio's default executor has min(32, CPUs + 4))
    decode_executor: ThreadPoolExecutor | None = None

    @property
    def counters(self) -> Counters:
        """This process's ``/health`` counters."""
        return self.telemetry.counters

    @property
    def metrics(self) -> Metrics:
        """This app's Prometheus metrics."""
        return self.telemetry.metrics
