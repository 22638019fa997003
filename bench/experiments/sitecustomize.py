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
  700,10,10); note that a worker's ``drain.web.tuning.tune_gc`` sets its own thresholds after
  start-up.
- ``BENCH_MEM_PROBE=DIR``: on SIGUSR2, write ``DIR/mem-PID-N.txt``: the process's RSS, glibc
  ``mallinfo2()`` (heap bytes in use and free, mmapped bytes: what the allocator holds
  against what the objects use), the cyclic GC's counts, and, with
  ``BENCH_TRACEMALLOC=DEPTH`` (tracemalloc started at start-up with that many frames), the
  Python heap traced now and its 15 largest allocation sites. With
  ``BENCH_MEM_PROBE_COLLECT=1`` it then runs ``gc.collect()`` and writes the same figures
  again: what the cyclic garbage collector alone frees; then glibc's ``malloc_trim(0)`` and
  the RSS again: what the allocator holds free. ``bench.memory --probe`` sends the
  signal to each worker at each new peak and after each load; a signal that arrives while
  a report is being written is ignored. SIGUSR1 starts tracemalloc then (``BENCH_TRACEMALLOC``
  frames, else 8; with ``BENCH_TRACEMALLOC_LATE=1`` not at start-up): what start-up and the
  first load allocated is left out, and the service runs at full speed until then
  (``bench.memory --tracemalloc-late``).
  ``BENCH_MEM_PROBE_HOLDERS=1`` adds the lists of 1000 or more rows alive and what holds them.

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

if os.environ.get("BENCH_MEM_PROBE"):
    import ctypes
    import signal
    import tracemalloc
    from types import FrameType

    _depth = int(os.environ.get("BENCH_TRACEMALLOC", "0") or 0)
    if _depth and not os.environ.get("BENCH_TRACEMALLOC_LATE"):
        tracemalloc.start(_depth)
    _mem_dir = os.environ["BENCH_MEM_PROBE"]
    _mem_count = [0]

    class _MallInfo2(ctypes.Structure):
        _fields_ = [
            (name, ctypes.c_size_t)
            for name in [
                "arena",
                "ordblks",
                "smblks",
                "hblks",
                "hblkhd",
                "usmblks",
                "fsmblks",
                "uordblks",
                "fordblks",
                "keepcost",
            ]
        ]

    def _mallinfo() -> str:
        try:
            libc = ctypes.CDLL("libc.so.6")
            libc.mallinfo2.restype = _MallInfo2
            m = libc.mallinfo2()
        except (OSError, AttributeError):
            return "mallinfo2: not available"
        mib = 2**20
        return (
            f"malloc heap {m.arena / mib:.1f} MiB: in use {m.uordblks / mib:.1f} MiB, "
            f"free {m.fordblks / mib:.1f} MiB; mmapped chunks {m.hblks} = "
            f"{m.hblkhd / mib:.1f} MiB"
        )

    def _tasks() -> str:
        """The event loop's tasks by coroutine, and the write queue (drain.store.writer.Writer)."""
        import asyncio
        import collections

        loop = asyncio._get_running_loop()
        if loop is None:
            return "no running event loop"
        names: collections.Counter[str] = collections.Counter()
        queue = ""
        for task in asyncio.all_tasks(loop):
            coro = task.get_coro()
            names[getattr(coro, "__qualname__", type(coro).__name__)] += 1
            frame = getattr(coro, "cr_frame", None)
            writer = frame.f_locals.get("self") if frame is not None else None
            if not queue and type(writer).__name__ == "Writer":
                st = writer.stats()
                queue = (
                    f"; write queue {st.queue_batches} batches, {st.queue_events} rows, "
                    f"{st.queue_bytes / 2**20:.1f} MiB (estimated)"
                )
        return f"tasks {sum(names.values())}: {dict(names.most_common(6))}{queue}"

    def _pymalloc() -> str:
        """pymalloc's arenas (sys._debugmallocstats, which writes to fd 2: captured)."""
        import tempfile

        with tempfile.TemporaryFile() as tmp:
            saved = os.dup(2)
            try:
                os.dup2(tmp.fileno(), 2)
                sys._debugmallocstats()
            finally:
                os.dup2(saved, 2)
                os.close(saved)
            tmp.seek(0)
            text = tmp.read().decode(errors="replace")
        want = ("# arenas allocated current", "# arenas highwater mark", "# bytes in allocated")
        keep = [" ".join(line.split()) for line in text.splitlines() if line.startswith(want)]
        return "pymalloc: " + "; ".join(keep)

    def _smaps() -> str:
        """Resident kB by kind of mapping (/proc/self/smaps)."""
        kinds: dict[str, int] = {}
        kind = "?"
        with open(f"/proc/{os.getpid()}/smaps") as f:
            for line in f:
                head = line.split()
                if "-" in head[0] and len(head) >= 5:
                    start, _, end = head[0].partition("-")
                    size = (int(end, 16) - int(start, 16)) // 1024
                    name = head[5] if len(head) > 5 else ""
                    if name == "[heap]":
                        kind = "[heap]"
                    elif name.startswith("/"):
                        kind = "files"
                    elif name:
                        kind = name
                    elif size == 1024:
                        kind = "anon 1 MiB (pymalloc arenas)"
                    else:
                        kind = "anon other"
                elif head[0] == "Rss:":
                    kinds[kind] = kinds.get(kind, 0) + int(head[1])
        return "resident by mapping: " + ", ".join(
            f"{k} {v / 1024:.1f} MiB" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])
        )

    def _rss() -> str:
        with open(f"/proc/{os.getpid()}/status") as f:
            return " ".join(line.strip() for line in f if line.startswith(("VmRSS", "VmHWM")))

    def _figures(lines: list[str], top: int) -> None:
        lines.append(_rss())
        lines.append(_smaps())
        lines.append(_pymalloc())
        lines.append(_mallinfo())
        lines.append(
            f"gc counts {gc.get_count()} thresholds {gc.get_threshold()}; "
            f"pymalloc blocks allocated {sys.getallocatedblocks():,}; "
            f"threads {threading.active_count()}"
        )
        lines.append(_tasks())
        if tracemalloc.is_tracing():
            current, peak = tracemalloc.get_traced_memory()
            lines.append(f"tracemalloc: {current / 2**20:.1f} MiB now, {peak / 2**20:.1f} MiB peak")
            if top:
                snap = tracemalloc.take_snapshot().filter_traces(
                    [tracemalloc.Filter(False, tracemalloc.__file__)]
                )
                for stat in snap.statistics("traceback")[:top]:
                    lines.append(f"{stat.size / 2**20:8.2f} MiB {stat.count:7d} blocks")
                    lines.extend("      " + x for x in stat.traceback.format()[-_depth:])

    def _garbage(objects: list[Any]) -> str:
        """What the collector found: types, and the code of the frames among them."""
        import collections

        kinds: collections.Counter[str] = collections.Counter()
        for obj in objects:
            name = type(obj).__qualname__
            if name == "frame":
                name = f"frame {obj.f_code.co_qualname} ({obj.f_code.co_filename}:{obj.f_lineno})"
            elif name == "function":
                name = f"function {obj.__qualname__}"
            elif name == "cell":
                try:
                    name = f"cell -> {type(obj.cell_contents).__qualname__}"
                except ValueError:
                    name = "cell (empty)"
            kinds[name] += 1
        return "; ".join(f"{n} x{k}" for n, k in kinds.most_common(25))

    def _describe(obj: Any) -> str:
        name = type(obj).__qualname__
        if name == "frame":
            return f"frame {obj.f_code.co_qualname} ({obj.f_code.co_filename}:{obj.f_lineno})"
        if name == "dict":
            return f"dict with keys {sorted(map(str, obj))[:8]}"
        if name == "cell":
            return "cell"
        if name in ("list", "tuple"):
            return f"{name} of {len(obj)}"
        if name == "coroutine":
            return f"coroutine {obj.__qualname__}"
        return name

    def _object_types() -> str:
        """The most common types among the objects the collector tracks (not frozen ones)."""
        import collections

        kinds: collections.Counter[str] = collections.Counter()
        for obj in gc.get_objects():
            kinds[type(obj).__qualname__] += 1
        return "tracked objects by type: " + ", ".join(f"{n} {k}" for n, k in kinds.most_common(15))

    def _holders() -> list[str]:
        """Lists of 100 or more decoded rows (drain.records.EventRow) that exist now, and
        what refers to them, three levels up (BENCH_MEM_PROBE_HOLDERS=1: slow)."""
        out = []
        seen = 0
        everything = gc.get_objects()
        for obj in everything:
            if type(obj) is not list or len(obj) < 100:
                continue
            first = obj[0]
            if type(first).__name__ != "EventRow" and not (
                type(first) is tuple and len(first) == 11
            ):
                continue
            seen += 1
            if seen > 4:
                continue
            out.append(f"  rows list of {len(obj)}:")
            level = [obj]
            for depth in range(3):
                nxt = []
                for held in level:
                    for ref in gc.get_referrers(held):
                        if ref is level or ref is nxt or ref is everything:
                            continue
                        if type(ref).__name__ == "frame" and ref.f_code.co_name == "_holders":
                            continue
                        out.append("    " + "  " * depth + "<- " + _describe(ref))
                        nxt.append(ref)
                level = nxt[:6]
        out.insert(0, f"row lists alive: {seen}")
        tbs = [o for o in everything if type(o).__name__ == "traceback"]
        out.append(f"tracebacks alive: {len(tbs)}")
        import collections

        frames: collections.Counter[str] = collections.Counter()
        for tb in tbs:
            frames[_describe(tb.tb_frame)] += 1
        out.extend(f"  {n} x {k}" for k, n in frames.most_common(8))
        for tb in tbs[:2]:
            for ref in gc.get_referrers(tb):
                if ref is tbs or ref is everything:
                    continue
                if type(ref).__name__ != "frame" or ref.f_code.co_name != "_holders":
                    out.append(f"  traceback <- {_describe(ref)} {str(ref)[:120]!r}")
        return out

    _busy = [False]

    def _dump(signum: int, frame: FrameType | None) -> None:
        if _busy[0]:
            return
        _busy[0] = True
        try:
            _mem_count[0] += 1
            n = _mem_count[0]
            lines = [f"pid {os.getpid()} report {n} at {time.time():.3f}"]
            _figures(lines, 15)
            if os.environ.get("BENCH_MEM_PROBE_HOLDERS"):
                lines.extend(_holders())
                lines.append(_object_types())
            if os.environ.get("BENCH_MEM_PROBE_COLLECT"):
                t0 = time.perf_counter()
                gc.set_debug(gc.DEBUG_SAVEALL)
                try:
                    found = gc.collect()
                    what = _garbage(gc.garbage)
                finally:
                    gc.set_debug(0)
                    gc.garbage.clear()
                ms = (time.perf_counter() - t0) * 1e3
                lines.append(f"after gc.collect() ({found} unreachable objects, {ms:.0f} ms):")
                lines.append(f"  unreachable: {what}")
                _figures(lines, 5)
                ctypes.CDLL(None).malloc_trim(0)
                lines.append("after malloc_trim(0):")
                lines.append(_rss())
                lines.append(_smaps())
                lines.append(_mallinfo())
            path = os.path.join(_mem_dir, f"mem-{os.getpid()}-{n}.txt")
            with open(path, "w") as f:
                f.write("\n".join(lines) + "\n")
        finally:
            _busy[0] = False

    def _start_tracing(signum: int, frame: FrameType | None) -> None:
        if not tracemalloc.is_tracing():
            tracemalloc.start(_depth or 8)

    signal.signal(signal.SIGUSR2, _dump)
    signal.signal(signal.SIGUSR1, _start_tracing)
