"""The README's commands, as written: the quick start lines, its curl examples run through bash
against a started `drain serve` (only the port is changed to the test's free port), its psql
command against the embedded PostgreSQL of `drain serve`, and its SQL; and the examples of
docs/settings.md and docs/rollups.md against the code they describe."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.support.served import clean_env, drain_command, serving, start_drain

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()
DOCS = ROOT / "docs"
#: the URL in the README's psql block, replaced by the test's
PSQL_EXAMPLE_URL = "'postgresql://postgres:@/drain?host=/home/you/.local/share/drain/pgdata'"


def marked_blocks(kind: str) -> list[str]:
    """The ```bash blocks that follow a ``<!-- readme-test: KIND -->`` marker."""
    pattern = re.escape(f"<!-- readme-test: {kind} -->") + r"\s*```bash\n(.*?)```"
    return re.findall(pattern, README, flags=re.DOTALL)


def curl_blocks() -> list[str]:
    """The ```bash blocks that follow a ``<!-- readme-test: curl -->`` marker."""
    return marked_blocks("curl")


def readme_sql() -> str:
    """The ```sql block of the README's "Looking at the data" section."""
    section = README[README.index("## Looking at the data") :]
    return str(re.findall(r"```sql\n(.*?)```", section, flags=re.DOTALL)[0])


def test_quick_start_has_the_two_commands() -> None:
    venv = "python3.11 -m venv .venv && . .venv/bin/activate\n"
    assert f"```bash\n{venv}pip install . && drain serve\n```" in README
    assert "```bash\npip install -e '.[dev]' && pytest\n```" in README
    # the first screen: what it is, the quick start, and where the data is
    assert README.index("## Looking at the data") < README.index("## Point Heroku at it")


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_readme_curl_examples_run_as_written(database_url: str, tmp_path: Path) -> None:
    blocks = curl_blocks()
    assert len(blocks) == 3
    assert all("http://127.0.0.1:8000/logs" in block for block in blocks)
    viewer = ("viewer", "readme")
    env = clean_env(
        DATABASE_URL=database_url,
        DRAIN_ALLOW_ANONYMOUS="true",
        DRAIN_VIEWER_USERNAME=viewer[0],
        DRAIN_VIEWER_PASSWORD=viewer[1],
    )
    migrated = subprocess.run(
        [*drain_command(), "migrate"], env=env, capture_output=True, timeout=60, cwd=tmp_path
    )
    assert migrated.returncode == 0, migrated.stderr
    with serving(tmp_path, env) as served:
        outputs = []
        for block in blocks:
            command = block.replace("http://127.0.0.1:8000", served.base_url)
            result = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", command],
                capture_output=True,
                text=True,
                stdin=subprocess.DEVNULL,
                timeout=30,
                cwd=ROOT,
            )
            assert result.returncode == 0, result.stderr
            outputs.append(result.stdout.lower())
        # the dashboard page the README sends the reader to, and its chart's data
        page = httpx.get(served.base_url + "/rollups/payment_history", auth=viewer, timeout=30)
        chart = httpx.get(
            served.base_url + "/api/rollups/payment_history?range=1h", auth=viewer, timeout=30
        )
    signup, seed, sample = outputs
    assert signup.startswith("http/1.1 200")
    assert "drain-events-stored: 1" in signup
    assert sample.startswith("http/1.1 200")
    assert "drain-not-events: 10" in sample
    assert "drain-frames: 10" in sample
    assert seed.startswith("http/1.1 200")
    assert "drain-events-stored: 3" in seed
    assert page.status_code == 200 and "payment_history" in page.text
    assert "631,631" in README and "1,200" in README
    revenue = {s["label"]: s["values"] for s in chart.json()["chart"]["series"]}
    assert {label: [v for v in values if v] for label, values in revenue.items()} == {
        "categoryA": [631631.0],
        "categoryB": [1200.0],
    }
    asyncio.run(run_readme_queries(database_url))


async def run_readme_queries(url: str) -> None:
    """Every statement of the README's ```sql block runs on the migrated, filled database;
    the signup query finds the curl example's event, the partitions come oldest day first."""
    statements = [s.strip() for s in readme_sql().split(";") if _code(s).strip()]
    assert len(statements) >= 6
    conn = await asyncpg.connect(url)
    try:
        # an event three days old made its partition after today's and the days ahead: a
        # query ordered by oid (creation) would list it last
        await conn.execute("SELECT drain_ensure_partition(current_date - 3)")
        for statement in statements:
            await conn.fetch(_code(statement))
        signups = await conn.fetch(statements[2])
        assert [r["user_id"] for r in signups] == ["42"]
        partitions = await conn.fetch(next(s for s in statements if "pg_inherits" in s))
        days = [r["day"] for r in partitions]
        assert len(days) >= 4
        assert days == sorted(days)
        assert days[0] == await conn.fetchval("SELECT current_date - 3")
    finally:
        await conn.close()


def _code(sql: str) -> str:
    """``sql`` without its ``--`` comment lines."""
    return "\n".join(line for line in sql.splitlines() if not line.strip().startswith("--"))


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def assert_prints_the_readmes_curl(stdout: str) -> None:
    """``drain serve``'s start-up text ``stdout`` shows, after "post a one-line Logplex batch
    with:", the README's first curl block as written but for its base URL."""
    base = re.search(r"^drain is starting on (\S+) ", stdout, re.M)
    shown = re.search(r"^post a one-line Logplex batch with:\n\n(.*?)\n\n", stdout, re.M | re.S)
    assert base is not None and shown is not None, stdout
    readme = curl_blocks()[0].replace("http://127.0.0.1:8000", base[1]).strip()
    assert shown[1] == readme


def test_readme_psql_is_the_embedded_servers_version(tmp_path: Path) -> None:
    """The README's psql command, with the URL `drain serve` prints for its embedded
    PostgreSQL: psql and server have the same major version, and the README's SQL runs
    through it with ON_ERROR_STOP. The curl command `drain serve` prints is the README's."""
    (block,) = marked_blocks("psql")
    assert PSQL_EXAMPLE_URL in block
    env = clean_env(DRAIN_DATA_DIR=str(tmp_path / "pgdata"))
    server = start_drain(tmp_path, env)
    try:
        printed = re.search(r"^database \(psql\): (\S+)$", server.stdout_path.read_text(), re.M)
        assert printed is not None, server.output()
        assert_prints_the_readmes_curl(server.stdout_path.read_text())
        rc = tmp_path / "psqlrc"
        rc.write_text("\\set ON_ERROR_STOP on\n")
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block.replace(PSQL_EXAMPLE_URL, f"'{printed[1]}'")],
            input="\\echo versions :VERSION_NUM :SERVER_VERSION_NUM\n" + readme_sql(),
            capture_output=True,
            text=True,
            timeout=60,
            env={
                **env,
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
                "PSQLRC": str(rc),
            },
        )
    finally:
        code = server.stop()
    assert code == 0, server.output()
    assert result.returncode == 0, result.stderr
    assert "ERROR" not in result.stderr, result.stderr
    client, server_version = re.findall(r"^versions (\d+) (\d+)$", result.stdout, re.M)[0]
    assert int(client) // 10000 == int(server_version) // 10000 >= 18, result.stdout
    assert "example.signup" not in result.stdout  # a fresh database: nothing posted yet
    assert "raw_events_p" in result.stdout  # the partitions query listed today's


def test_every_setting_is_in_the_settings_table() -> None:
    from drain.settings import Settings

    rows = {
        line.split("|")[1].strip().strip("`")
        for line in (DOCS / "settings.md").read_text().splitlines()
        if line.startswith("| `")
    }
    assert {name.upper() for name in Settings.model_fields} <= rows


def test_rollup_example_is_the_shipped_file() -> None:
    """Every line of docs/rollups.md's payment_history.sql stands in sql/rollups, in order."""
    rollups = (DOCS / "rollups.md").read_text()
    section = rollups[rollups.index("## How the seed's hourly query maps onto it") :]
    blocks = re.findall(r"```sql\n(.*?)```", section, flags=re.DOTALL)
    block = next(b for b in blocks if "@query" in b)
    shipped = (ROOT / "sql" / "rollups" / "payment_history.sql").read_text().splitlines()
    position = 0
    for line in filter(None, block.splitlines()):
        position = shipped.index(line, position) + 1
