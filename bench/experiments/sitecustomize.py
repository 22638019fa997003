"""Measure proposed changes to the service without editing drain/ (opt-in, bench only).

Put this directory on the service's PYTHONPATH and switch changes on with environment
variables; ``bench.run`` passes both with ``--service-env``::

    python -m bench.run --workers 1 \\
        --service-env PYTHONPATH=bench/experiments \\
        --service-env BENCH_FLUSHERS=2 --service-env BENCH_GC_THRESHOLD=50000,50,1000

Python imports ``sitecustomize`` at start-up in every process that has it on its path (the
``drain serve`` master and its workers). Switches:

- ``BENCH_FLUSHERS=N``: N flush tasks in ``drain.writer.Writer`` instead of one, so N
  groups are in flight (one COPY/COMMIT while the next group is built). Correct with the
  ledger: a frame id claimed by two concurrent groups waits on the primary key and then
  ``ON CONFLICT DO NOTHING`` marks the second as a duplicate.
- ``BENCH_GC_THRESHOLD=g0,g1,g2``: ``gc.set_threshold`` (CPython's default 700,10,10).
- ``BENCH_GC_PROBE=1``: every 5 s, print to stderr (the service log) the CPU seconds spent
  in the cyclic GC per generation (``GCPROBE ...`` lines).
- ``BENCH_FAST_DECODE=1``: ``drain.app`` decodes with :func:`fast_decode.fast_decode`, the
  prototype of a fused decoder (see that module).
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

_flushers = int(os.environ.get("BENCH_FLUSHERS", "1"))
if _flushers > 1:
    import asyncio

    import drain.writer

    _original_start = drain.writer.Writer.start

    async def _start(self: drain.writer.Writer) -> None:
        await _original_start(self)
        loop = asyncio.get_running_loop()
        self._bench_extra_flushers = [  # type: ignore[attr-defined]
            loop.create_task(self._run()) for _ in range(_flushers - 1)
        ]

    drain.writer.Writer.start = _start  # type: ignore[method-assign]

if os.environ.get("BENCH_FAST_DECODE"):
    from fast_decode import fast_decode  # this directory is on sys.path

    import drain.app

    drain.app.decode_batch = fast_decode  # type: ignore[assignment]
