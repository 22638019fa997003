"""Measure the service's garbage collection without editing drain/ (opt-in, bench only).

Put this directory on the service's PYTHONPATH and switch the probe on with an environment
variable; ``bench.run`` passes both with ``--service-env``::

    python -m bench.run --workers 1 \\
        --service-env PYTHONPATH=bench/experiments --service-env BENCH_GC_PROBE=1

Python imports ``sitecustomize`` at start-up in every process that has it on its path (the
``drain serve`` master and its workers). Switches:

- ``BENCH_GC_PROBE=1``: every 5 s, print to stderr (the service log) the CPU seconds spent
  in the cyclic GC per generation (``GCPROBE ...`` lines).
- ``BENCH_GC_THRESHOLD=g0,g1,g2``: ``gc.set_threshold`` at start-up (CPython's default
  700,10,10); note that a worker's ``drain.web.worker.tune_gc`` sets its own thresholds after
  start-up.

The other switches of the first round (BENCH_FLUSHERS, BENCH_FAST_DECODE) became real
changes in drain/ (DRAIN_WRITER_FLUSHERS, drain.inputs.logplex's fast path) and were removed.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
from typing import Any

_threshold = os.environ.get("BENCH_GC_THRESHOLD")
if _threshold:
    gc.set_threshold(*[int(x) for x in _threshold.split(",")])

if os.environ.get("BENCH_GC_PROBE"):
    _started: list[float] = [0.0]
    _spent = [0.0, 0.0, 0.0]
    _runs = [0, 0, 0]

    def _on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            _started[0] = time.process_time()
        else:
            g = info["generation"]
            _spent[g] += time.process_time() - _started[0]
            _runs[g] += 1

    def _report() -> None:
        for _ in range(100_000):  # bounded; a daemon thread, ends with the process
            time.sleep(5)
            print(
                f"GCPROBE pid={os.getpid()} cpu_s={time.process_time():.2f} "
                f"gc_s={[round(s, 3) for s in _spent]} collections={_runs} "
                f"threshold={gc.get_threshold()}",
                file=sys.stderr,
                flush=True,
            )

    gc.callbacks.append(_on_gc)
    threading.Thread(target=_report, name="bench-gc-probe", daemon=True).start()
