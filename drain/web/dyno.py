"""The dyno's own limits (memory, CPUs) and the WEB_CONCURRENCY they allow.

On Heroku the Python buildpack sets WEB_CONCURRENCY at dyno boot, when the app has not set
it (heroku-buildpack-python, ``vendor/WEB_CONCURRENCY.sh``, a ``.profile.d`` script): the
lower of ``2 x CPUs + 1`` and ``memory MB / 256``, the memory read from the cgroup v1 file
``/sys/fs/cgroup/memory/memory.limit_in_bytes``; 2 on Eco/Basic/Standard-1X (512 MB), 4 on
Standard-2X (1 GB). A drain started without that script (a container image, another
buildpack, a machine of one's own) gets its default from :func:`web_concurrency_for`:

    WEB_CONCURRENCY = max(1, min(CPUs, memory MiB // WORKER_MEMORY_MIB))

the memory limit and CPUs read from the process's cgroup (v1 or v2) and CPU affinity by
:func:`memory_limit_bytes` and :func:`cpu_limit`; without a memory limit, CPUs. Not
``2 x CPUs + 1``: a drain worker is busy on the CPU (decoding, COPY encoding), not waiting
for I/O, so workers beyond the CPUs only share them (bench/README.md compares 1 and 2
workers on 2 cores). On a 512 MB dyno both rules give 2.

:func:`web_concurrency_for` is pure; the two readers only read files.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

__all__ = [
    "WORKER_MEMORY_MIB",
    "cpu_limit",
    "memory_limit_bytes",
    "web_concurrency_for",
]

#: memory budget per worker, MiB: the Python buildpack's (a drain worker peaks near 100 MB
#: under a 10x burst, bench/README.md; the rest is room for the master and large bodies)
WORKER_MEMORY_MIB = 256
#: a cgroup v1 limit above this means "no limit" (v1 reports a huge number when unset)
_NO_LIMIT_BYTES = 2**40
#: WEB_CONCURRENCY's upper bound (drain.settings)
_MAX_WORKERS = 64

_CGROUP = Path("/sys/fs/cgroup")
_PROC_CGROUP = Path("/proc/self/cgroup")


def web_concurrency_for(memory_limit: int | None, cpus: int) -> int:
    """Worker processes for a dyno of ``memory_limit`` bytes (None: no limit) and ``cpus``
    CPUs: ``max(1, min(cpus, memory MiB // WORKER_MEMORY_MIB))``, at most 64."""
    workers = max(1, cpus)
    if memory_limit is not None:
        workers = min(workers, memory_limit // (WORKER_MEMORY_MIB * 2**20))
    return max(1, min(workers, _MAX_WORKERS))


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _own_dir(root: Path, proc_cgroup: Path, controller: str) -> Path | None:
    """This process's cgroup directory for ``controller`` ("" for cgroup v2: the
    ``0::/path`` line of /proc/self/cgroup; else the v1 line naming the controller)."""
    text = _read(proc_cgroup)
    if text is None:
        return None
    for line in text.splitlines():
        _, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if controller == "" and line.startswith("0::"):
            return root / path.lstrip("/")
        if controller and controller in controllers.split(","):
            return root / controller / path.lstrip("/")
    return None


def memory_limit_bytes(root: Path = _CGROUP, proc_cgroup: Path = _PROC_CGROUP) -> int | None:
    """The memory limit of this process's cgroup in bytes, or None when there is none.

    cgroup v2: ``memory.max`` of the process's cgroup (or of the root, inside a container;
    ``max`` means none); cgroup v1: ``memory.limit_in_bytes`` of the process's memory
    cgroup, else of ``memory/`` (what Heroku dynos have, as the Python buildpack reads it),
    values of 1 TiB or more meaning none. The first file found decides.
    """
    candidates = []
    own = _own_dir(root, proc_cgroup, "")
    if own is not None:
        candidates.append(own / "memory.max")
    candidates.append(root / "memory.max")
    own_v1 = _own_dir(root, proc_cgroup, "memory")
    if own_v1 is not None:
        candidates.append(own_v1 / "memory.limit_in_bytes")
    candidates.append(root / "memory" / "memory.limit_in_bytes")
    for path in candidates:
        text = _read(path)
        if text is None:
            continue
        if text == "max" or not text.isdigit():
            return None
        value = int(text)
        return value if value < _NO_LIMIT_BYTES else None
    return None


def _quota_cpus(root: Path, proc_cgroup: Path) -> int | None:
    """CPUs allowed by a CFS quota (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us`` over
    ``cpu.cfs_period_us``), rounded up; None without a quota."""
    own = _own_dir(root, proc_cgroup, "")
    for path in [p for p in (own, root) if p is not None]:
        text = _read(path / "cpu.max")
        if text is not None:
            quota, _, period = text.partition(" ")
            if quota.isdigit() and period.isdigit() and int(period) > 0:
                return max(1, math.ceil(int(quota) / int(period)))
            return None
    quota = _read(root / "cpu" / "cpu.cfs_quota_us") or ""
    period = _read(root / "cpu" / "cpu.cfs_period_us") or ""
    if quota.isdigit() and period.isdigit() and int(period) > 0:  # v1: -1 means no quota
        return max(1, math.ceil(int(quota) / int(period)))
    return None


def cpu_limit(root: Path = _CGROUP, proc_cgroup: Path = _PROC_CGROUP) -> int:
    """The CPUs this process may use: its CPU affinity, lowered by a cgroup CPU quota."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    quota = _quota_cpus(root, proc_cgroup)
    return max(1, min(cpus, quota) if quota is not None else cpus)
