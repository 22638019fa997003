"""The connection guard's accounting (drain.web.connections), without sockets: the cap and
its file-descriptor bound, who is evicted at the cap, when a new connection is refused, and
the log lines' spacing. tests/web/test_hostile.py drives the same code over real sockets."""

from __future__ import annotations

import logging

import pytest

from drain.settings import Settings
from drain.web.config import FD_RESERVED, ConnectionLimits
from drain.web.connections import LOG_EVERY_S, ConnectionGuard, connection_cap


class Recorder:
    """The guard's observer: what it reported, in order."""

    def __init__(self) -> None:
        self.closed: list[str] = []
        self.open: list[int] = []

    def connection_closed(self, reason: str) -> None:
        self.closed.append(reason)

    def set_connections_open(self, count: int) -> None:
        self.open.append(count)


class Conn:
    """A connection as the guard sees it: something it can evict."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.evicted = False

    def evict(self) -> None:
        self.evicted = True

    def __repr__(self) -> str:
        return self.name


def limits(max_connections: int = 2, reserved_fds: int = 69) -> ConnectionLimits:
    return ConnectionLimits(
        max_head_bytes=16384,
        head_timeout_s=5.0,
        max_connections=max_connections,
        reserved_fds=reserved_fds,
        retry_after_s=5,
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("configured", "fds", "reserved", "cap"),
    [(1024, 20_000, 69, 1024), (1024, 128, 69, 59), (1024, 50, 69, 1), (8, 1 << 30, 69, 8)],
)
def test_the_cap_stays_below_the_descriptor_limit(
    configured: int, fds: int, reserved: int, cap: int
) -> None:
    assert connection_cap(configured, fds, reserved) == cap


def test_settings_give_the_defaults_and_reserve_the_pool() -> None:
    got = Settings.defaults(drain_db_pool_size=7).connection_limits()
    assert got == ConnectionLimits(
        max_head_bytes=16 * 1024,
        head_timeout_s=5.0,
        max_connections=1024,
        reserved_fds=FD_RESERVED + 7,
        retry_after_s=5,
    )


def test_at_the_cap_the_longest_waiting_is_evicted_and_busy_ones_are_kept() -> None:
    seen = Recorder()
    guard = ConnectionGuard(limits(2), seen, fd_limit=1 << 20)
    a, b, c, d = Conn("a"), Conn("b"), Conn("c"), Conn("d")
    assert guard.admit(a) and guard.admit(b)
    assert guard.admit(c)  # a waited longest
    assert (a.evicted, b.evicted) == (True, False)
    assert seen.closed == ["idle_evicted"]
    guard.busy(b)
    guard.busy(c)
    assert not guard.admit(d)  # every connection has a request in progress
    assert seen.closed == ["idle_evicted", "connection_cap"]
    guard.idle(c)  # answered first, so it waits longest now
    guard.idle(b)
    assert guard.admit(d)
    assert (b.evicted, c.evicted) == (False, True)
    guard.forget(b)
    guard.forget(b)  # idempotent
    assert guard.open_count == 1
    assert seen.open == [1, 2, 1, 2, 1, 2, 1]  # an eviction is counted before the admission
    assert guard.closed_by_reason["idle_evicted"] == 2


def test_a_forgotten_connection_is_never_evicted() -> None:
    guard = ConnectionGuard(limits(1), Recorder(), fd_limit=1 << 20)
    a, b = Conn("a"), Conn("b")
    assert guard.admit(a)
    guard.forget(a)
    guard.idle(a)  # a late callback of a closed connection changes nothing
    assert guard.admit(b) and not a.evicted


def test_one_log_line_a_minute_per_reason_with_the_count(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    guard = ConnectionGuard(limits(), Recorder(), fd_limit=1 << 20, clock=clock)
    with caplog.at_level(logging.WARNING, logger="drain.web.connections"):
        for _ in range(5):
            guard.closed_early("head_timeout")
            clock.now += 1
        guard.closed_early("head_too_large")
        clock.now += LOG_EVERY_S
        guard.closed_early("head_timeout")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3
    assert lines[0].startswith("1 connection closed for not completing a request head")
    assert "the first since start" in lines[0]
    assert lines[1].startswith("1 request refused with 431")
    assert lines[2].startswith("5 connections closed") and "in the last 65 s" in lines[2]
    assert guard.closed_by_reason["head_timeout"] == 6


def test_a_descriptor_limit_below_the_setting_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="drain.web.connections"):
        guard = ConnectionGuard(limits(1024, reserved_fds=69), Recorder(), fd_limit=256)
    assert guard.cap == 187
    (line,) = [r.getMessage() for r in caplog.records]
    assert "connection cap 187 per worker, below DRAIN_MAX_CONNECTIONS 1024" in line
