"""Process-level tuning of a ``drain serve`` worker (the cyclic garbage collector).

The write path allocates many short-lived containers per request (rows, tuples, dicts from
``orjson.loads``) and almost no reference cycles, so CPython's default collector
thresholds (700, 10, 10) run a gen-0 collection every ~700 allocations and a full
collection every ~70,000, each of which walks every object the process holds (the imported
modules of FastAPI, pydantic, asyncpg...: ~20 ms per full collection, measured with a
gc.callbacks probe). Measured under the benchmark's load (bench/README.md): 5 % of the
worker's CPU in the collector, and 20 ms pauses in the POST latency.

:func:`tune_gc` freezes what exists after start-up (``gc.freeze()``: the objects of the
imports and the app move to a permanent generation the collector no longer walks) and
raises the gen-0 threshold, so collections are rarer and cheap. Cycles are still
collected; memory is bounded by the thresholds (a collection every 50,000 net container
allocations).
"""

from __future__ import annotations

import gc

__all__ = ["GC_THRESHOLDS", "tune_gc"]

#: (gen-0, gen-1, gen-2) thresholds for a worker; CPython's default is (700, 10, 10).
GC_THRESHOLDS = (50_000, 50, 1000)


def tune_gc(thresholds: tuple[int, int, int] = GC_THRESHOLDS) -> None:
    """Collect once, freeze the surviving objects, set ``thresholds``. Call once, after
    the app is built (drain.cli.worker_app)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)
