"""Resource figures for the benchmark: CPU seconds and peak RSS of process groups.

A :class:`Sampler` polls, in a background thread every ``interval_s``, three groups:

- the service: ``drain serve`` and all its children (uvicorn workers);
- PostgreSQL: the postmaster's children that work for the benchmark's database (its
  client backends and autovacuum workers) plus the shared ones (checkpointer, background
  writer, walwriter, ...); backends of *other* databases on the same server are left out,
  so a test suite running elsewhere on the server does not count;
- the machine: all CPUs, to see what share of the 2 cores was busy.

A :class:`WaitSampler` polls ``pg_stat_activity`` for what the database's backends wait on.

CPU seconds are user + system, summed over the group, counted from the first sample of a
process (or from the start mark for processes alive then). A process that ends between
two samples loses at most one interval of CPU time.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import asyncpg
import psutil  # type: ignore[import-untyped]

# "postgres: 15/main: user dbname 127.0.0.1(5432) idle" or "postgres: user dbname [local] idle"
_BACKEND = re.compile(r"^postgres: (?:\S+: )?(\S+) (\S+) (?:\S+\(\d+\)|\[local\])")
_AUTOVAC = re.compile(r"autovacuum worker (\S+)")


def _cpu(p: psutil.Process) -> float:
    t = p.cpu_times()
    return float(t.user + t.system)


def service_tree(root_pid: int) -> Callable[[], list[psutil.Process]]:
    """A function that lists ``root_pid`` and its descendants (empty once it is gone)."""

    def procs() -> list[psutil.Process]:
        try:
            root = psutil.Process(root_pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    return procs


def postgres_group(postmaster_pid: int, dbname: str) -> Callable[[], list[psutil.Process]]:
    """A function that lists the PostgreSQL processes that work for ``dbname``.

    Client backends and autovacuum workers of other databases are excluded; the
    postmaster itself and the shared background processes are included.
    """

    def procs() -> list[psutil.Process]:
        try:
            pm = psutil.Process(postmaster_pid)
            kids = pm.children()
        except psutil.NoSuchProcess:
            return []
        out = [pm]
        for k in kids:
            try:
                title = " ".join(k.cmdline())
            except psutil.Error:
                continue
            m = _BACKEND.match(title)
            if m and m.group(2) != dbname:
                continue
            a = _AUTOVAC.search(title)
            if a and a.group(1) != dbname:
                continue
            out.append(k)
        return out

    return procs


def _machine_busy_s() -> float:
    """CPU seconds all cores spent running something (user, nice, system, irq, steal)."""
    ct = psutil.cpu_times()
    return sum(
        getattr(ct, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq", "steal")
    )


def postmaster_of(backend_pid: int) -> int:
    """The postmaster PID of a local server, from one of its backends' PID."""
    return int(psutil.Process(backend_pid).ppid())


@dataclass(slots=True)
class Figures:
    """What a :class:`Sampler` saw between ``start()`` and ``stop()``.

    Fields:
        wall_s: seconds between the marks.
        service_cpu_s / postgres_cpu_s / self_cpu_s: CPU seconds (user + system) of the
            service tree, of PostgreSQL (see module docstring), of this benchmark process
            (the load generator and the sampler).
        machine_busy_s: CPU seconds all cores spent not idle (2 cores: at most 2 x wall_s).
        service_peak_rss_bytes: the largest sum of RSS over the service tree in one sample.
        service_peak_pss_bytes: the largest sum of PSS (proportional set size: shared pages
            split between the processes that map them) over the tree in one sample.
        service_peak_proc_rss_bytes: the largest RSS of one process of the tree.
        service_peak_per_process: the RSS of each process of the tree (in the tree's
            order: master first) in the sample of ``service_peak_rss_bytes``.
    """

    wall_s: float = 0.0
    service_cpu_s: float = 0.0
    postgres_cpu_s: float = 0.0
    self_cpu_s: float = 0.0
    machine_busy_s: float = 0.0
    service_peak_rss_bytes: int = 0
    service_peak_pss_bytes: int = 0
    service_peak_proc_rss_bytes: int = 0
    service_peak_per_process: list[int] = field(default_factory=list)


def tree_rss(procs: list[psutil.Process]) -> int:
    """The sum of RSS (bytes) over ``procs``; processes gone meanwhile count 0."""
    total = 0
    for p in procs:
        try:
            total += int(p.memory_info().rss)
        except psutil.Error:
            continue
    return total


class _CpuGroup:
    def __init__(self, procs: Callable[[], list[psutil.Process]], *, pss: bool = False) -> None:
        self.procs = procs
        self.pss = pss
        self.pss_sum = 0
        self.base: dict[tuple[int, float], float] = {}
        self.last: dict[tuple[int, float], float] = {}
        self.rss_sum = 0
        self.rss_per_process: list[int] = []

    def sample(self, *, baseline: bool = False) -> None:
        rss = 0
        pss = 0
        self.rss_max_proc = 0
        per: list[int] = []
        for p in self.procs():
            try:
                with p.oneshot():
                    key = (p.pid, p.create_time())
                    c = _cpu(p)
                    if self.pss:
                        full = p.memory_full_info()  # /proc/PID/smaps_rollup: ~0.2 ms
                        r = full.rss
                        pss += full.pss
                    else:
                        r = p.memory_info().rss
            except psutil.Error:
                continue
            rss += r
            per.append(r)
            self.rss_max_proc = max(self.rss_max_proc, r)
            if baseline:
                self.base[key] = c
            elif key not in self.base and key not in self.last:
                self.base[key] = 0.0  # born after the start mark
            self.last[key] = c
        self.rss_sum = rss
        self.pss_sum = pss
        self.rss_per_process = per

    def cpu_s(self) -> float:
        return sum(v - self.base.get(k, 0.0) for k, v in self.last.items())


class Sampler:
    """Polls the service and PostgreSQL groups between :meth:`start` and :meth:`stop`.

    ``on_service_sample(rss_sum_bytes)``, when given, is called (in the sampler's thread)
    after each sample of the service tree.
    """

    def __init__(
        self,
        *,
        service: Callable[[], list[psutil.Process]] | None,
        postgres: Callable[[], list[psutil.Process]],
        interval_s: float = 0.1,
        on_service_sample: Callable[[int], None] | None = None,
    ) -> None:
        self.on_service_sample = on_service_sample
        self.service = _CpuGroup(service, pss=True) if service is not None else None
        self.postgres = _CpuGroup(postgres)
        self.interval_s = interval_s
        self.figures = Figures()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._me = psutil.Process()

    def _tick(self) -> None:
        self.postgres.sample()
        if self.service is not None:
            self.service.sample()
            f = self.figures
            if self.service.rss_sum > f.service_peak_rss_bytes:
                f.service_peak_rss_bytes = self.service.rss_sum
                f.service_peak_per_process = self.service.rss_per_process
            if self.on_service_sample is not None:
                self.on_service_sample(self.service.rss_sum)
            f.service_peak_pss_bytes = max(f.service_peak_pss_bytes, self.service.pss_sum)
            f.service_peak_proc_rss_bytes = max(
                f.service_peak_proc_rss_bytes, self.service.rss_max_proc
            )

    def _loop(self) -> None:
        for _ in range(10_000_000):  # bounded; ends at stop()
            if self._stop.wait(self.interval_s):
                return
            self._tick()

    def start(self) -> None:
        """Take the baseline and start polling."""
        self.postgres.sample(baseline=True)
        if self.service is not None:
            self.service.sample(baseline=True)
            self.figures.service_peak_rss_bytes = self.service.rss_sum
            self.figures.service_peak_per_process = self.service.rss_per_process
            self.figures.service_peak_pss_bytes = self.service.pss_sum
            self.figures.service_peak_proc_rss_bytes = self.service.rss_max_proc
        self._t0 = time.monotonic()
        self._self0 = _cpu(self._me)
        self._busy0 = _machine_busy_s()
        self._thread = threading.Thread(target=self._loop, name="bench-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> Figures:
        """Take a last sample, stop polling, and return the figures."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._tick()
        f = self.figures
        f.wall_s = time.monotonic() - self._t0
        f.self_cpu_s = _cpu(self._me) - self._self0
        f.machine_busy_s = _machine_busy_s() - self._busy0
        f.postgres_cpu_s = self.postgres.cpu_s()
        if self.service is not None:
            f.service_cpu_s = self.service.cpu_s()
        return f


class WaitSampler:
    """Samples what the benchmark database's PostgreSQL backends are doing (pg_stat_activity).

    Every ``interval_s`` it counts the non-idle backends of ``dbname`` (other than its own)
    by state and wait event: ``active: CPU`` (running), ``active: IO/WALSync`` (fsync of
    the WAL at COMMIT), ``active: Lock/transactionid`` (a row lock, e.g. two batches with
    one frame id), ``idle in transaction: Client/ClientRead`` (inside a transaction,
    waiting for the client to send the next command or COPY data)...
    :meth:`stop` returns each category's share of all backend samples, and ``samples``
    holds how many polls were made.

    :attr:`wal_bytes` is the WAL the whole server wrote between :meth:`start` and
    :meth:`stop` (``pg_current_wal_lsn()``), what sizes ``max_wal_size``: a checkpoint
    starts each time about ``max_wal_size / (1 + checkpoint_completion_target)`` of it has
    been written (PostgreSQL's ``CalculateCheckpointSegments``). The checkpointer is
    sampled too: :attr:`checkpoint_sync` is the share of polls that found it in the sync
    phase of a checkpoint (wait event ``DataFileSync``: the fsync of every data file the
    checkpoint wrote). Meanwhile the WAL fsync of each COMMIT queues behind those flushes
    on the same disk, so a COMMIT can take hundreds of milliseconds: it explains a latency
    tail (bench/README.md, "Where the latency tail comes from").
    """

    _QUERY = """
        SELECT state || ': ' || coalesce(wait_event_type || '/' || wait_event, 'CPU') AS what,
               count(*) AS n
        FROM pg_stat_activity
        WHERE datname = $1 AND pid <> pg_backend_pid() AND state IS NOT NULL AND state <> 'idle'
        GROUP BY 1
    """
    _LSN = "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn"
    _CHECKPOINTER = """
        SELECT count(*) FROM pg_stat_activity
        WHERE backend_type = 'checkpointer' AND wait_event = 'DataFileSync'
    """

    def __init__(self, database_url: str, dbname: str, *, interval_s: float = 0.1) -> None:
        self.database_url = database_url
        self.dbname = dbname
        self.interval_s = interval_s
        self.counts: dict[str, int] = {}
        self.samples = 0
        self._sync_samples = 0
        self._lsn_start: int | None = None
        self.wal_bytes = 0
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def start(self) -> None:
        conn = await asyncpg.connect(self.database_url)
        try:
            self._lsn_start = int(await conn.fetchval(self._LSN))
        except BaseException:
            await conn.close()
            raise
        self._task = asyncio.get_running_loop().create_task(self._loop(conn))

    async def _loop(self, conn: asyncpg.Connection) -> None:
        try:
            for _ in range(10_000_000):  # bounded; ends at stop()
                for row in await conn.fetch(self._QUERY, self.dbname):
                    self.counts[row["what"]] = self.counts.get(row["what"], 0) + row["n"]
                if await conn.fetchval(self._CHECKPOINTER):
                    self._sync_samples += 1
                self.samples += 1
                try:
                    await asyncio.wait_for(self._stop.wait(), self.interval_s)
                    break
                except TimeoutError:
                    pass
            if self._lsn_start is not None:
                self.wal_bytes = int(await conn.fetchval(self._LSN)) - self._lsn_start
        finally:
            await conn.close()

    @property
    def checkpoint_sync(self) -> float:
        """The share of polls (0..1) that found the checkpointer in a checkpoint's sync
        phase."""
        return self._sync_samples / self.samples if self.samples else 0.0

    async def stop(self) -> dict[str, float]:
        """Stop sampling; return {category: share of backend samples}."""
        self._stop.set()
        if self._task is not None:
            await self._task
        total = sum(self.counts.values())
        return (
            {k: v / total for k, v in sorted(self.counts.items(), key=lambda kv: -kv[1])}
            if total
            else {}
        )
