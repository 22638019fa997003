"""`drain serve` with DATABASE_URL unset: embedded PostgreSQL in DRAIN_DATA_DIR, then the curl
command it prints, run through bash exactly as printed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.support.served import clean_env, start_drain

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


def printed_curl_command(output: str) -> str:
    """The lines after 'post a one-line Logplex batch with:' up to the next blank line."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if "post a one-line Logplex batch" in line)
    command: list[str] = []
    for line in lines[start + 1 :]:
        if not line.strip():
            if command:
                break
            continue
        command.append(line)
    return "\n".join(command)


def test_embedded_serve_prints_a_curl_command_that_works(tmp_path: Path) -> None:
    data_dir = tmp_path / "pgdata"
    server = start_drain(tmp_path, clean_env(DRAIN_DATA_DIR=str(data_dir)))
    try:
        health = httpx.get(server.base_url + "/health", timeout=5)
        assert health.status_code == 200
        assert health.json()["database"]["reachable"] is True
        out = server.stdout_path.read_text()
        assert f"drain is starting on {server.base_url}" in out
        command = printed_curl_command(out)
        assert command.startswith("now=$(date -u")
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", command],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=30,
        )
        assert result.returncode == 0, result.stderr
        head = result.stdout.lower()
        assert head.startswith("http/1.1 200"), result.stdout
        assert "drain-events-stored: 1" in head
        assert "content-length: 0" in head
        counters = httpx.get(server.base_url + "/health", timeout=5).json()["counters"]
        assert counters["events_stored"] == 1
    finally:
        code = server.stop()
    assert code == 0, server.output()
    assert (data_dir / "PG_VERSION").exists()
