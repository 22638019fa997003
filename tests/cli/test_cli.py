"""The `drain` command: parse (no database), migrate, and serve's refusals to start."""

from __future__ import annotations

import asyncio
import gzip
import io
import socket
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from drain.cli import main
from tests.support.samples import GOLDEN_NOW, SampleCase, sample_cases
from tests.support.served import clean_env, drain_command, free_port

NOW_ARG = GOLDEN_NOW.strftime("%Y-%m-%dT%H:%M:%SZ")


def run_drain(
    args: list[str], env: dict[str, str], tmp_path: Path, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*drain_command(), *args],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        cwd=tmp_path,
    )


@pytest.mark.parametrize(
    "case",
    [c for c in sample_cases() if c.name in {"logplex-doc-10msg", "log-shuttle/ls-odd-bytes"}],
    ids=lambda c: c.name,
)
def test_parse_prints_the_golden_json_lines(
    case: SampleCase, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    assert main(["parse", str(case.body_path), "--now", NOW_ARG]) == 0
    assert capsysbinary.readouterr().out == case.golden_path.read_bytes()


def test_parse_gunzips_by_magic_bytes(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    (case,) = [c for c in sample_cases() if c.name == "log-shuttle/ls-gzip"]
    assert case.body().startswith(b"\x1f\x8b")
    assert main(["parse", str(case.body_path), "--now", NOW_ARG]) == 0
    assert capsysbinary.readouterr().out == case.golden_path.read_bytes()


def test_parse_reads_stdin_and_exits_zero_with_quarantined_lines(
    monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    (case,) = [c for c in sample_cases() if c.name == "log-shuttle/ls-td-convention-lines"]
    fake_stdin = io.TextIOWrapper(io.BytesIO(gzip.compress(case.body())))
    monkeypatch.setattr(sys, "stdin", fake_stdin)
    assert main(["parse", "-", "--now", NOW_ARG]) == 0
    out = capsysbinary.readouterr().out
    assert out == case.golden_path.read_bytes()
    assert b'"outcome":"quarantined"' in out


def test_parse_of_unreadable_input_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["parse", str(tmp_path / "missing.body")]) == 2
    assert "cannot read" in capsys.readouterr().err
    broken = tmp_path / "broken.body"
    broken.write_bytes(gzip.compress(b"70 <174>1 x")[:12])
    assert main(["parse", str(broken)]) == 2


def test_parse_rejects_a_bad_now(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["parse", "-", "--now", "yesterday"])
    assert raised.value.code == 2
    assert "ISO 8601" in capsys.readouterr().err


def test_migrate_is_idempotent(database_url: str, tmp_path: Path) -> None:
    env = clean_env(DATABASE_URL=database_url)
    first = run_drain(["migrate"], env, tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("applied: 0001_")
    second = run_drain(["migrate"], env, tmp_path)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "schema up to date"


def test_serve_refuses_a_deployed_drain_without_credentials(tmp_path: Path) -> None:
    env = clean_env(DATABASE_URL="postgres://u:hunter2@127.0.0.1:1/d", PORT=str(free_port()))
    result = run_drain(["serve"], env, tmp_path)
    assert result.returncode == 2
    assert "DRAIN_USERNAME" in result.stderr and "DRAIN_ALLOW_ANONYMOUS" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout


def test_serve_names_an_invalid_variable(tmp_path: Path) -> None:
    result = run_drain(["serve"], clean_env(PORT="eighty"), tmp_path)
    assert result.returncode == 2
    assert "PORT:" in result.stderr


def test_serve_refuses_an_unmigrated_database(database_url: str, tmp_path: Path) -> None:
    env = clean_env(
        DATABASE_URL=database_url,
        DRAIN_USERNAME="u",
        DRAIN_PASSWORD="p",
        DRAIN_HOST="127.0.0.1",
        PORT=str(free_port()),
    )
    result = run_drain(["serve"], env, tmp_path)
    assert result.returncode == 1
    assert "not migrated" in result.stderr and "drain migrate" in result.stderr


def test_serve_reports_an_unreachable_database(tmp_path: Path) -> None:
    env = clean_env(
        DATABASE_URL=f"postgres://u:hunter2@127.0.0.1:{free_port()}/d?connect_timeout=3",
        DRAIN_USERNAME="u",
        DRAIN_PASSWORD="p",
        DRAIN_HOST="127.0.0.1",
        PORT=str(free_port()),
    )
    result = run_drain(["serve"], env, tmp_path)
    assert result.returncode == 1
    assert "cannot connect to DATABASE_URL" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout


def test_serve_refuses_a_busy_port_before_printing_a_url(database_url: str, tmp_path: Path) -> None:
    from drain.store.migrate import migrate

    asyncio.run(migrate(database_url))
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        env = clean_env(
            DATABASE_URL=database_url,
            DRAIN_USERNAME="u",
            DRAIN_PASSWORD="p",
            DRAIN_HOST="127.0.0.1",
            PORT=str(port),
        )
        result = run_drain(["serve"], env, tmp_path)
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "curl" not in result.stdout


def test_parse_into_a_closed_pipe_stops_quietly(tmp_path: Path) -> None:
    """``drain parse FILE | head -1``: the reader goes away, drain exits 0 without a
    BrokenPipeError traceback."""
    (case,) = [c for c in sample_cases() if c.name == "logplex-doc-10msg"]
    body = tmp_path / "big.body"
    body.write_bytes(case.body() * 300)  # ~1 MB of JSON lines: far more than a pipe holds
    command = " ".join([*drain_command(), "parse", str(body), "--now", NOW_ARG])
    done = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {command} | head -c 1"],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "{"
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr


def test_parse_counts_the_unframeable_rest_as_quarantined(tmp_path: Path) -> None:
    """``printf garbage | drain parse -``: the summary's quarantined is the BAD_FRAMING row,
    as the server's Drain-Quarantined header says."""
    done = subprocess.run(
        [*drain_command(), "parse", "-"],
        input=b"garbage",
        env=clean_env(),
        capture_output=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    summary = orjson.loads(done.stdout.splitlines()[-1])
    assert summary["quarantined"] == 1 == sum(summary["quarantined_by_reason"].values())
    assert summary["quarantined_by_reason"] == {"bad_framing": 1}


@pytest.mark.parametrize("command", [["partitions", "list"], ["rollup", "list"]])
def test_a_read_only_command_never_creates_an_embedded_database(
    command: list[str], tmp_path: Path
) -> None:
    """Without the DRAIN_DATA_DIR that `drain serve` used, a read-only command says which
    data directory it looked in and stops (exit 1) rather than make a second database."""
    data_dir = tmp_path / "elsewhere" / "pgdata"
    done = run_drain(command, clean_env(DRAIN_DATA_DIR=str(data_dir)), tmp_path)
    assert done.returncode == 1, done.stderr
    assert str(data_dir) in done.stderr and "DRAIN_DATA_DIR" in done.stderr
    assert not data_dir.exists()
