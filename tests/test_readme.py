"""The README's commands, as written: the quick start lines, and its curl examples run through
bash against a started `drain serve` (only the port is changed to the test's free port)."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from pathlib import Path

import asyncpg
import pytest

from tests.support.served import clean_env, drain_command, serving

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()
MARKER = "<!-- readme-test: curl -->"


def curl_blocks() -> list[str]:
    """The ```bash blocks that follow a ``<!-- readme-test: curl -->`` marker."""
    pattern = re.escape(MARKER) + r"\s*```bash\n(.*?)```"
    return re.findall(pattern, README, flags=re.DOTALL)


def test_quick_start_has_the_two_commands() -> None:
    assert "```bash\npip install . && drain serve\n```" in README
    assert "```bash\npip install -e '.[dev]' && pytest\n```" in README
    assert "<!-- event rules table: parser helper -->" in README or "## Event rules" in README


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_readme_curl_examples_run_as_written(database_url: str, tmp_path: Path) -> None:
    blocks = curl_blocks()
    assert len(blocks) == 2
    assert all("http://127.0.0.1:8000/logs" in block for block in blocks)
    env = clean_env(DATABASE_URL=database_url, DRAIN_ALLOW_ANONYMOUS="true")
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
    signup, sample = outputs
    assert signup.startswith("http/1.1 200")
    assert "drain-events-stored: 1" in signup
    assert sample.startswith("http/1.1 200")
    assert "drain-not-events: 10" in sample
    assert "drain-frames: 10" in sample
    asyncio.run(run_readme_queries(database_url))


async def run_readme_queries(url: str) -> None:
    """Every statement of the README's ```sql block runs on the migrated, filled database."""
    section = README[README.index("## Looking at the data") :]
    block = re.findall(r"```sql\n(.*?)```", section, flags=re.DOTALL)[0]
    statements = [s.strip() for s in block.split(";") if _code(s).strip()]
    assert len(statements) >= 6
    conn = await asyncpg.connect(url)
    try:
        for statement in statements:
            await conn.fetch(_code(statement))
        signups = await conn.fetch(statements[2])
        assert [r["user_id"] for r in signups] == ["42"]
    finally:
        await conn.close()


def _code(sql: str) -> str:
    """``sql`` without its ``--`` comment lines."""
    return "\n".join(line for line in sql.splitlines() if not line.strip().startswith("--"))


def test_every_setting_is_in_the_readme_table() -> None:
    from drain.settings import Settings

    rows = {
        line.split("|")[1].strip().strip("`")
        for line in README.splitlines()
        if line.startswith("| `")
    }
    assert {name.upper() for name in Settings.model_fields} <= rows


def test_readme_rollup_example_is_the_shipped_file() -> None:
    """Every line of the README's payment_history.sql stands in sql/rollups, in order."""
    section = README[README.index("### How the seed's hourly query maps onto it") :]
    blocks = re.findall(r"```sql\n(.*?)```", section, flags=re.DOTALL)
    block = next(b for b in blocks if "@query" in b)
    shipped = (ROOT / "sql" / "rollups" / "payment_history.sql").read_text().splitlines()
    position = 0
    for line in filter(None, block.splitlines()):
        position = shipped.index(line, position) + 1
