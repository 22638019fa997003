"""drain.web.dyno: WEB_CONCURRENCY from the dyno's memory limit and CPUs when nothing set it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from drain.web.dyno import WORKER_MEMORY_MIB, cpu_limit, memory_limit_bytes, web_concurrency_for
from tests.support.served import AUTH, clean_env, serving

MiB = 2**20


@pytest.mark.parametrize(
    ("memory", "cpus", "workers"),
    [
        (512 * MiB, 8, 2),  # Basic / Standard-1X: 8 host CPUs, 512 MB (the buildpack: 2)
        (1024 * MiB, 8, 4),  # Standard-2X (the buildpack: 4)
        (2560 * MiB, 2, 2),  # Performance-M: 2 dedicated CPUs (the buildpack: 5)
        (200 * MiB, 4, 1),  # less than one worker's budget: still one
        (None, 6, 6),  # no memory limit: the CPUs
        (None, 0, 1),
        (None, 500, 64),  # WEB_CONCURRENCY's upper bound
    ],
)
def test_web_concurrency_for_a_dyno(memory: int | None, cpus: int, workers: int) -> None:
    assert web_concurrency_for(memory, cpus) == workers
    assert WORKER_MEMORY_MIB == 256


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


def test_memory_limit_from_cgroup_v1_as_heroku_has_it(tmp_path: Path) -> None:
    write(tmp_path / "proc", "4:memory:/\n0::/")
    write(tmp_path / "cg" / "memory" / "memory.limit_in_bytes", str(512 * MiB))
    assert memory_limit_bytes(tmp_path / "cg", tmp_path / "proc") == 512 * MiB
    # no limit: cgroup v1 reports a number near 2**63
    write(tmp_path / "cg" / "memory" / "memory.limit_in_bytes", "9223372036854771712")
    assert memory_limit_bytes(tmp_path / "cg", tmp_path / "proc") is None


def test_memory_limit_from_the_process_own_cgroup(tmp_path: Path) -> None:
    write(tmp_path / "proc", "4:cpu,memory:/app/web.1\n")
    write(tmp_path / "cg" / "memory" / "app" / "web.1" / "memory.limit_in_bytes", str(MiB * 1024))
    assert memory_limit_bytes(tmp_path / "cg", tmp_path / "proc") == 1024 * MiB
    write(tmp_path / "proc2", "0::/user.slice/drain.scope")
    write(tmp_path / "cg" / "user.slice" / "drain.scope" / "memory.max", str(300 * MiB))
    assert memory_limit_bytes(tmp_path / "cg", tmp_path / "proc2") == 300 * MiB
    write(tmp_path / "cg" / "user.slice" / "drain.scope" / "memory.max", "max")
    assert memory_limit_bytes(tmp_path / "cg", tmp_path / "proc2") is None
    assert memory_limit_bytes(tmp_path / "none", tmp_path / "missing") is None


def test_cpu_limit_is_the_affinity_lowered_by_a_quota(tmp_path: Path) -> None:
    affinity = len(os.sched_getaffinity(0))
    write(tmp_path / "proc", "0::/")
    assert cpu_limit(tmp_path / "cg", tmp_path / "proc") == affinity
    write(tmp_path / "cg" / "cpu.max", "50000 100000")  # half a CPU: one
    assert cpu_limit(tmp_path / "cg", tmp_path / "proc") == 1
    write(tmp_path / "cg" / "cpu.max", "max 100000")
    assert cpu_limit(tmp_path / "cg", tmp_path / "proc") == affinity
    write(tmp_path / "v1" / "cpu" / "cpu.cfs_quota_us", "100000")
    write(tmp_path / "v1" / "cpu" / "cpu.cfs_period_us", "100000")
    assert cpu_limit(tmp_path / "v1", tmp_path / "missing") == 1


def test_drain_serve_without_web_concurrency_starts_the_dyno_default(
    migrated_url: str, tmp_path: Path
) -> None:
    """A deployed drain (DATABASE_URL) without WEB_CONCURRENCY logs the workers it derived
    and starts that many."""
    env = clean_env(DATABASE_URL=migrated_url, DRAIN_USERNAME=AUTH[0], DRAIN_PASSWORD=AUTH[1])
    del env["WEB_CONCURRENCY"]
    expected = web_concurrency_for(memory_limit_bytes(), cpu_limit())
    with serving(tmp_path, env) as served:
        output = served.output()
    assert f"WEB_CONCURRENCY is not set: {expected} worker(s)" in output, output
