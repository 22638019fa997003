"""Start and stop ``drain serve`` (and ``drain migrate``) as subprocesses for the benchmark.

The service is configured the way docs/settings.md tells an operator to: environment variables
(``DATABASE_URL``, ``PORT``, ``DRAIN_HOST``, ``WEB_CONCURRENCY``, ``DRAIN_ALLOW_ANONYMOUS``).
It listens on 127.0.0.1 only. It is stopped by SIGTERM to the PID this module started
(uvicorn then stops its workers and the writer flushes); after a grace period the
remaining processes of that tree, and only those, get SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import psutil  # type: ignore[import-untyped]


def drain_command() -> list[str]:
    """The ``drain`` console script of the running interpreter's environment."""
    script = Path(sys.executable).with_name("drain")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "drain"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def migrate(database_url: str, *, timeout_s: float = 120.0) -> str:
    """Run ``drain migrate`` against ``database_url``; return its output; raise on failure."""
    env = {**os.environ, "DATABASE_URL": database_url}
    p = subprocess.run(
        [*drain_command(), "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if p.returncode != 0:
        raise RuntimeError(f"drain migrate failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p.stdout + p.stderr


async def _http_get_status(port: int, path: str, timeout_s: float) -> int:
    async with asyncio.timeout(timeout_s):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
            )
            await writer.drain()
            line = await reader.readline()
            return int(line.split(b" ", 2)[1])
        finally:
            writer.close()


class Service:
    """One ``drain serve`` process tree on 127.0.0.1:``port``.

    Args:
        database_url: the benchmark database.
        workers: uvicorn worker processes (WEB_CONCURRENCY).
        extra_env: more environment (e.g. DRAIN_QUEUE_MAX_BYTES for the burst).
        log_path: where the service's stdout and stderr go.
        command: the program to start instead of ``drain serve`` (bench/floor.py starts
            bare uvicorn apps the same way); it must answer ``GET /health`` with 200.
        fd_limit: when set, the soft RLIMIT_NOFILE of the service (``ulimit -n``), to reach
            file-descriptor exhaustion with few connections (bench/hostile.py).
    """

    def __init__(
        self,
        database_url: str,
        *,
        workers: int = 1,
        extra_env: Mapping[str, str] | None = None,
        log_path: Path,
        command: Sequence[str] | None = None,
        fd_limit: int | None = None,
    ) -> None:
        self.database_url = database_url
        self.workers = workers
        self.port = free_port()
        self.extra_env = dict(extra_env or {})
        self.log_path = log_path
        self.command = list(command) if command is not None else [*drain_command(), "serve"]
        self.fd_limit = fd_limit
        self.proc: subprocess.Popen[bytes] | None = None

    def _lower_fd_limit(self) -> None:
        """In the child before exec: the soft RLIMIT_NOFILE to ``fd_limit``."""
        import resource

        _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        assert self.fd_limit is not None
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.fd_limit, hard))

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self, *, ready_timeout_s: float = 60.0) -> None:
        """Start the service and wait until ``GET /health`` answers 200."""
        # credentials only from extra_env (the log-shuttle run sets them), never inherited
        inherited = {
            k: v for k, v in os.environ.items() if k not in ("DRAIN_USERNAME", "DRAIN_PASSWORD")
        }
        env = {
            **inherited,
            "DATABASE_URL": self.database_url,
            "PORT": str(self.port),
            "DRAIN_HOST": "127.0.0.1",
            "WEB_CONCURRENCY": str(self.workers),
            "DRAIN_ALLOW_ANONYMOUS": "true",
            **self.extra_env,
        }
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(  # noqa: ASYNC220 - returns at once
            self.command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=None if self.fd_limit is None else self._lower_fd_limit,
        )
        log.close()
        deadline = time.monotonic() + ready_timeout_s
        last: object = None
        for _ in range(10_000):  # bounded by the deadline too
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{shlex.join(self.command)} exited with {self.proc.returncode}; "
                    f"log:\n{self.log_tail()}"
                )
            try:
                if await _http_get_status(self.port, "/health", 2.0) == 200:
                    break
            except (OSError, TimeoutError, ValueError, IndexError) as e:
                last = e
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"{shlex.join(self.command)} not ready after {ready_timeout_s} s ({last!r})"
                )
            await asyncio.sleep(0.1)
        if self.workers > 1:
            # all workers up: the tree holds the master plus `workers` processes
            for _ in range(200):
                if len(self.tree()) >= self.workers + 1:
                    break
                await asyncio.sleep(0.1)

    def tree(self) -> list[psutil.Process]:
        """This service's processes: the one started here and its descendants."""
        try:
            root = psutil.Process(self.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self, *, grace_s: float = 30.0) -> int | None:
        """SIGTERM the service; SIGKILL what is left of its tree after ``grace_s``."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        tree = self.tree()
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            for p in tree:
                with contextlib.suppress(psutil.NoSuchProcess):
                    p.kill()
            return self.proc.wait(timeout=10)
        finally:
            for p in tree[1:]:  # workers that outlived the master
                try:
                    if p.is_running():
                        p.kill()
                except psutil.NoSuchProcess:
                    pass
