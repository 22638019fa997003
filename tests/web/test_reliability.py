"""bench/reliability.py in shortened form: every acknowledged event stored exactly once.

Each test runs one scenario of the reliability script (see its docstring) for a few seconds,
at a fixed gentle rate (20 requests/s of ~16 KiB Logplex bodies), against `drain serve`
subprocesses and a dedicated embedded PostgreSQL that the module starts itself (it is stopped
and started again by the outage test, so it is never the session's shared server). The full
run, with its figures, is ``python -m bench.reliability``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench.gen import make_bodies
from bench.reliability import (
    Ctx,
    Outcome,
    OwnPostgres,
    scenario_cuts,
    scenario_multi,
    scenario_outage,
    scenario_overload,
    scenario_sigterm,
    scenario_soak,
    summary,
)

RATE_RPS = 20.0


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[OwnPostgres]:
    pg = OwnPostgres()
    try:
        pg.open()
        yield pg
    finally:
        pg.close()


@pytest.fixture
def ctx(own_postgres: OwnPostgres, tmp_path: Path) -> Ctx:
    bodies = make_bodies(8, now=datetime.now(UTC), seed=7, target_bytes=16 * 1024)
    return Ctx(
        pg=own_postgres,
        bodies=bodies,
        log_dir=tmp_path,
        quick=True,
        rate_rps=RATE_RPS,
        events_per_request=sum(len(b.events) for b in bodies) / len(bodies),
        scale=0.4,
    )


def assert_kept_everything(outcome: Outcome) -> None:
    assert outcome.check is not None
    assert outcome.check.acked_events > 0, outcome.line()
    assert outcome.check.missing == 0, outcome.line()
    assert outcome.check.duplicated == 0, outcome.line()
    assert outcome.ok(), outcome.line()


async def test_postgres_stopped_and_started_under_load(ctx: Ctx) -> None:
    outcome = await scenario_outage(ctx)
    assert_kept_everything(outcome)
    assert outcome.faults == 1
    assert outcome.statuses.get(503, 0) > 0  # answered 503 while it could not write, no 4xx
    assert not [s for s in outcome.statuses if 400 <= s < 500]


async def test_connections_cut_under_load(ctx: Ctx) -> None:
    outcome = await scenario_cuts(ctx)
    assert_kept_everything(outcome)
    assert outcome.faults == 3


async def test_burst_over_a_small_write_queue_is_503_with_retry_after(ctx: Ctx) -> None:
    outcome = await scenario_overload(ctx, small_queue=True)
    assert_kept_everything(outcome)
    assert outcome.figures["503 with Retry-After"] > 0, outcome.line()
    assert outcome.faults == 1  # served normally once the burst ended


async def test_sigterm_under_load(ctx: Ctx) -> None:
    outcome = await scenario_sigterm(ctx)
    assert_kept_everything(outcome)
    assert outcome.faults == 1  # exited 0 within 30 s


async def test_two_services_two_workers_same_frames(ctx: Ctx) -> None:
    outcome = await scenario_multi(ctx)
    assert_kept_everything(outcome)
    assert outcome.figures["frame ids acknowledged by both services"] > 0


async def test_soak_and_summary_line(ctx: Ctx) -> None:
    outcome = await scenario_soak(ctx, 3.0)
    assert_kept_everything(outcome)
    line = summary([outcome], 3.0)
    assert line.startswith("load held ")
    assert "acknowledged-but-missing: 0; duplicated: 0" in line
    assert "FAILED" not in line


def test_own_postgres_is_not_the_shared_server(own_postgres: OwnPostgres) -> None:
    assert "host=/" in own_postgres.admin_url  # a unix socket of its own temporary directory
    assert own_postgres.admin_url.split("host=")[1].startswith(
        (tempfile.gettempdir(), "/tmp", "/run", "/var")
    )
