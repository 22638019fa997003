"""The rollup clock: fires each rollup on its cron schedule, catches up missed ticks.

``drain clock`` (the ``clock:`` process in the Procfile) runs one :class:`Clock`. Several
may run (two dynos, a laptop and a dyno): only the one holding a PostgreSQL session-level
advisory lock acts; the others wait and take over when its connection ends. Heroku restarts
every dyno at least daily; on start the clock looks up, per rollup, the newest tick that
ran successfully and runs every tick since, oldest first (at most ``max_catchup_ticks``;
older gaps are reported and left to ``drain rollup backfill``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from drain.rollups.runner import RunKind, RunResult, run_window
from drain.rollups.spec import RollupSpec, latest_tick, ticks_between

__all__ = ["Clock", "ClockConfig"]

log = logging.getLogger("drain.rollups.clock")

# Session-level advisory lock held by the acting clock: pg_try_advisory_lock(_LEADER_KEY).
_LEADER_KEY = 0x64726E32_00000001  # "drn2" namespace, key 1


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ClockConfig:
    """How the clock behaves.

    Fields:
        poll_s: seconds between checks while waiting for a tick or for the leader lock.
        max_catchup_ticks: the most missed ticks per rollup run on one wake-up.
        late_horizon_s: seconds before a window in which late events are looked for.
        maintenance_every_s: seconds between runs of the clock's ``maintenance``
            (partition lifecycle, drain.store.lifecycle); the first runs when it starts acting.
    """

    maintenance_every_s: float
    poll_s: float = 30.0
    max_catchup_ticks: int = 168
    late_horizon_s: float = 7 * 86400


class Clock:
    """Runs due rollup ticks; see the module docstring.

    Args:
        pool: asyncpg pool on the drain's database (rollups run on it).
        specs: the rollups to fire, e.g. from ``drain.rollups.runner.load_rollups()``.
        config: timing.
        now: the clock's source of "now" (UTC); tests pass a fixed one.
        maintenance: run every ``config.maintenance_every_s`` seconds while acting, e.g.
            partition maintenance (``drain clock`` passes drain.store.lifecycle.maintain); its
            database errors are logged and it runs again at the next interval.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        specs: dict[str, RollupSpec],
        config: ClockConfig,
        *,
        now: Callable[[], datetime] = _utcnow,
        maintenance: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self._pool = pool
        self._specs = dict(specs)
        self._config = config
        self._now = now
        self._maintenance = maintenance
        self._maintained_at: float | None = None

    async def due_ticks(self, spec: RollupSpec, now: datetime) -> list[datetime]:
        """Ticks of ``spec`` at or before ``now`` that have not run successfully, oldest first.

        With no successful scheduled run yet, only the latest tick is due (history is
        ``drain rollup backfill``'s job).
        """
        last = await self._pool.fetchval(
            """SELECT max(scheduled_for) FROM rollup_runs
                WHERE rollup = $1 AND kind = 'scheduled' AND error IS NULL""",
            spec.name,
        )
        if last is None:
            return [latest_tick(spec.schedule, now)]
        ticks: list[datetime] = []
        skipped = 0
        for tick in ticks_between(spec.schedule, last, now):
            ticks.append(tick)
            if len(ticks) > self._config.max_catchup_ticks:
                ticks.pop(0)
                skipped += 1
        if skipped:
            log.warning(
                "rollup %s: %d missed ticks are older than the catch-up limit; "
                "run `drain rollup backfill %s` for them",
                spec.name,
                skipped,
                spec.name,
            )
        return ticks

    async def run_due(self, now: datetime | None = None) -> list[RunResult]:
        """Run every due tick of every rollup once (oldest first); return the results.

        A rollup whose run fails stops there for this call (its later ticks stay due).
        """
        at = now or self._now()
        results: list[RunResult] = []
        for name in sorted(self._specs):
            spec = self._specs[name]
            for tick in await self.due_ticks(spec, at):
                result = await run_window(
                    self._pool,
                    spec,
                    kind=RunKind.SCHEDULED,
                    scheduled_for=tick,
                    late_horizon_s=self._config.late_horizon_s,
                )
                results.append(result)
                if not result.error and not result.skipped:
                    log.info(
                        "rollup %s tick %s: window %s .. %s, %d rows written",
                        name,
                        tick.isoformat(),
                        result.window_start.isoformat(),
                        result.window_end.isoformat(),
                        result.rows_written,
                    )
                if result.error:
                    log.error("rollup %s tick %s failed: %s", name, tick.isoformat(), result.error)
                    break
                if result.late_events:
                    log.warning(
                        "rollup %s: %d events arrived after the lateness allowance",
                        name,
                        result.late_events,
                    )
        return results

    def next_tick(self, now: datetime) -> datetime:
        """The earliest tick of any rollup strictly after ``now``."""
        candidates = []
        for spec in self._specs.values():
            nxt = next(iter(ticks_between(spec.schedule, now, datetime.max.replace(tzinfo=UTC))))
            candidates.append(nxt)
        return min(candidates)

    async def serve(self, stop: asyncio.Event) -> None:
        """Act as the clock until ``stop`` is set: wait for leadership, then run ticks.

        Leadership is a session-level advisory lock on a dedicated connection; it is released
        when that connection ends, so a crashed clock's lock passes to a waiting one.
        """
        while not stop.is_set():
            try:
                async with self._pool.acquire() as conn:
                    got = await conn.fetchval("SELECT pg_try_advisory_lock($1)", _LEADER_KEY)
                    if not got:
                        await _wait(stop, self._config.poll_s)
                        continue
                    try:
                        log.info("clock: acting (leader lock held)")
                        await self._lead(stop)
                    finally:
                        if not conn.is_closed():
                            await conn.execute("SELECT pg_advisory_unlock($1)", _LEADER_KEY)
            except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError) as exc:
                log.warning("clock: database unavailable (%s); retrying", type(exc).__name__)
                await _wait(stop, self._config.poll_s)

    async def maintain_if_due(self) -> bool:
        """Run the maintenance if it is set and due; True when it ran (even if it failed)."""
        if self._maintenance is None:
            return False
        at = time.monotonic()
        due = self._maintained_at is None or (
            at - self._maintained_at >= self._config.maintenance_every_s
        )
        if not due:
            return False
        self._maintained_at = at
        try:
            await self._maintenance()
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning(
                "clock: maintenance failed (%s); next in %.0f s",
                type(exc).__name__,
                self._config.maintenance_every_s,
            )
        return True

    async def _lead(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.run_due()
            await self.maintain_if_due()
            now = self._now()
            wait_s = (self.next_tick(now) - now).total_seconds() if self._specs else 1e9
            await _wait(stop, min(max(wait_s, 0.0), self._config.poll_s))


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    """Sleep up to ``seconds``, returning early when ``stop`` is set."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return
