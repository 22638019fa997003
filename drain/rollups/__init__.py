"""Rollups: scheduled SQL that turns raw events into summary tables.

- :mod:`drain.rollups.spec`: the format of a ``sql/rollups/*.sql`` file and its window
  arithmetic (pure);
- :mod:`drain.rollups.runner`: running one window in one transaction, replace semantics;
- :mod:`drain.rollups.clock`: the cron clock (leader lock, catch-up) of ``drain clock``.
"""

from drain.rollups.clock import Clock, ClockConfig
from drain.rollups.runner import RunKind, RunResult, load_rollups, rollup_status, run_window
from drain.rollups.spec import RollupSpec, parse_rollup, window_for_tick

__all__ = [
    "Clock",
    "ClockConfig",
    "RollupSpec",
    "RunKind",
    "RunResult",
    "load_rollups",
    "parse_rollup",
    "rollup_status",
    "run_window",
    "window_for_tick",
]
