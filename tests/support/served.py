"""Helpers for the web tests: Logplex bodies, sample requests, a `drain serve` subprocess.

Used by tests/test_app*.py, tests/test_e2e*.py, tests/test_cli.py and tests/test_readme.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from drain.settings import Settings

SAMPLES = Path(__file__).parent.parent / "data" / "samples"
USER, PASSWORD = "logplex", "correct horse battery staple"
AUTH = (USER, PASSWORD)
DRAIN_TOKEN = "d.fc6b856b-3332-4546-93de-7d0ee272c3bd"
#: seconds a `drain serve` subprocess may take to answer /health (embedded initdb included)
START_DEADLINE_S = 60.0
#: seconds a `drain serve` subprocess may take to exit after SIGTERM
STOP_DEADLINE_S = 15.0

# Request headers that the HTTP client sets itself.
_TRANSPORT_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "accept-encoding"})


def frame(line: str | bytes) -> bytes:
    """One RFC 6587 octet-counted frame: ``LEN SP line`` (the count includes a trailing LF)."""
    data = line.encode("utf-8") if isinstance(line, str) else line
    return str(len(data)).encode("ascii") + b" " + data


def event_line(at: datetime, tag: str, payload: Mapping[str, object], proc: str = "web.1") -> str:
    """A Heroku-dialect syslog line carrying one ``@[tag] {json}`` event, with LF."""
    body = json.dumps(payload, separators=(",", ":"))
    return f"<134>1 {at.isoformat()} host app {proc} - @[{tag}] {body}\n"


def events_body(at: datetime, tag: str, count: int, *, start: int = 0) -> bytes:
    """``count`` event frames ``{"n": start..start+count-1}`` at ``at``."""
    return b"".join(frame(event_line(at, tag, {"n": n})) for n in range(start, start + count))


def logplex_headers(
    *, msg_count: int | None = None, frame_id: str | None = None, token: str | None = DRAIN_TOKEN
) -> dict[str, str]:
    """The headers Logplex sends with a batch."""
    headers = {"Content-Type": "application/logplex-1", "User-Agent": "Logplex/v123"}
    if msg_count is not None:
        headers["Logplex-Msg-Count"] = str(msg_count)
    if frame_id is not None:
        headers["Logplex-Frame-Id"] = frame_id
    if token is not None:
        headers["Logplex-Drain-Token"] = token
    return headers


@dataclass(frozen=True)
class Sample:
    """A captured request: its body file and the headers to send (from ``.headers`` if any)."""

    name: str
    body: bytes
    headers: dict[str, str]
    chunked: bool


def samples() -> list[Sample]:
    """Every ``*.body`` under tests/data/samples, with its headers or Logplex's defaults."""
    found = []
    for path in sorted(SAMPLES.rglob("*.body")):
        name = str(path.relative_to(SAMPLES).with_suffix(""))
        headers_path = path.with_suffix(".headers")
        chunked = False
        if headers_path.exists():
            headers: dict[str, str] = {}
            for line in headers_path.read_text().splitlines()[1:]:
                key, _, value = line.partition(":")
                if key.strip().lower() == "transfer-encoding":
                    chunked = "chunked" in value.lower()
                if key.strip() and key.strip().lower() not in _TRANSPORT_HEADERS:
                    headers[key.strip()] = value.strip()
        else:
            headers = logplex_headers(frame_id=f"sample-{name}")
        headers.pop("Authorization", None)
        found.append(Sample(name, path.read_bytes(), headers, chunked))
    return found


def in_chunks(data: bytes, size: int = 97) -> Iterator[bytes]:
    """Yield ``data`` in pieces, so httpx sends it with Transfer-Encoding: chunked."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def async_chunks(data: bytes, size: int = 97) -> AsyncIterator[bytes]:
    """``in_chunks`` for httpx.AsyncClient."""
    for piece in in_chunks(data, size):
        yield piece


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def drain_command() -> list[str]:
    """The installed ``drain`` console script next to this Python, else ``python -m``."""
    script = Path(sys.executable).parent / "drain"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "drain"]


def clean_env(**extra: str) -> dict[str, str]:
    """os.environ without drain's settings, with ``WEB_CONCURRENCY=1`` (one worker whatever
    the machine: drain serve would derive it from the CPUs and memory, drain.web.dyno), plus
    ``extra``."""
    drop = {"DATABASE_URL", "PORT", "WEB_CONCURRENCY", "TEST_DATABASE_URL"}
    env = {
        k: v for k, v in os.environ.items() if k not in drop and not k.upper().startswith("DRAIN_")
    }
    env["WEB_CONCURRENCY"] = "1"
    env.update(extra)
    return env


@dataclass
class Served:
    """A running ``drain serve`` subprocess; its output goes to files (no pipe to fill)."""

    proc: subprocess.Popen[bytes]
    base_url: str
    stdout_path: Path
    stderr_path: Path
    stopped: bool = field(default=False)

    def output(self) -> str:
        return self.stdout_path.read_text(errors="replace") + self.stderr_path.read_text(
            errors="replace"
        )

    def stop(self, deadline_s: float = STOP_DEADLINE_S) -> int:
        """SIGTERM, wait for the exit (bounded); kill if it does not come. Returns the code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(deadline_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError(
                f"drain serve did not exit within {deadline_s} s of SIGTERM\n{self.output()}"
            ) from None


def start_drain(
    tmp_path: Path,
    env: dict[str, str],
    args: list[str] | None = None,
    *,
    wait: bool = True,
    fd_limit: int | None = None,
) -> Served:
    """Start ``drain serve`` on a free port of 127.0.0.1 and wait until /health answers.

    ``fd_limit``: the process's soft RLIMIT_NOFILE (``ulimit -n``), when given.
    """
    port = free_port()
    stdout_path = tmp_path / f"drain-{port}.out"
    stderr_path = tmp_path / f"drain-{port}.err"
    full_env = {"PORT": str(port), "DRAIN_HOST": "127.0.0.1", **env}
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        proc = subprocess.Popen(
            [*drain_command(), "serve", *(args or [])],
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            cwd=tmp_path,
            preexec_fn=None if fd_limit is None else (lambda: _lower_fd_limit(fd_limit)),
        )
    served = Served(proc, f"http://127.0.0.1:{port}", stdout_path, stderr_path)
    if wait:
        wait_ready(served)
    return served


def _lower_fd_limit(soft: int) -> None:
    """In the child before exec: the soft RLIMIT_NOFILE to ``soft``."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def wait_ready(served: Served, deadline_s: float = START_DEADLINE_S) -> None:
    """Poll GET /health until it answers 200; fail with the process output otherwise."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if served.proc.poll() is not None:
            raise AssertionError(
                f"drain serve exited with {served.proc.returncode}\n{served.output()}"
            )
        try:
            if httpx.get(served.base_url + "/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)  # start-up polling, bounded by the deadline
    served.proc.kill()
    served.proc.wait(5)
    raise AssertionError(f"drain serve did not become healthy\n{served.output()}")


@contextmanager
def serving(
    tmp_path: Path,
    env: dict[str, str],
    args: list[str] | None = None,
    *,
    fd_limit: int | None = None,
) -> Iterator[Served]:
    """``start_drain`` as a context manager that stops the process (by its PID) on exit."""
    served = start_drain(tmp_path, env, args, fd_limit=fd_limit)
    try:
        yield served
    finally:
        if served.proc.poll() is None:
            served.stop()


@asynccontextmanager
async def served_app(app: FastAPI) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn in this process on a free 127.0.0.1 port; yield its base URL.

    Start-up is polled with a bound; on exit uvicorn shuts down gracefully (the lifespan runs,
    so the writer flushes).
    """
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + START_DEADLINE_S
    while not server.started:  # start-up polling, bounded
        assert not task.done(), "uvicorn stopped during start-up"
        assert time.monotonic() < deadline, "uvicorn did not start"
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, STOP_DEADLINE_S)


def app_settings(**overrides: Any) -> Settings:
    """Settings for an in-process app: no DATABASE_URL (the test passes its own), the test
    credentials, and ``overrides``."""
    values: dict[str, Any] = {
        "database_url": None,
        "drain_username": USER,
        "drain_password": PASSWORD,
    }
    values.update(overrides)
    return Settings.defaults(**values)
