"""The compiled decode path (mypyc) and its pure-Python twin: which one runs, and that they agree.

CI runs the whole suite on the compiled modules, then tests/decode, tests/inputs and this
file again with DRAIN_PURE_PYTHON=1 (.ci/run): both paths pass the same golden files.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from drain import speedups
from tests.support.served import clean_env, event_line, frame, logplex_headers, serving

ROOT = Path(__file__).resolve().parent.parent

# What a decode module must never import: the compiled path is pure (no I/O, no event loop).
IMPURE = {"asyncio", "asyncpg", "socket", "fastapi", "starlette", "httpx", "drain.store"}

# Decodes every captured sample body in a fresh process and prints one digest of the rows,
# the quarantine and the ledger: the same text whichever path decoded them.
DIGEST = """
import hashlib, sys
from datetime import UTC, datetime
import drain
from drain import speedups
from drain.inputs.logplex import decode_body
from testkit.hostile import sample_bodies
from tests.support.config import LIMITS, RULES
now = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
h = hashlib.sha256()
for name, body in sample_bodies():
    h.update(name.encode() + repr(decode_body(body, now=now, limits=LIMITS, rules=RULES)).encode())
states = set(speedups.status().values())
print(states.pop() if len(states) == 1 else "mixed")
print(h.hexdigest())
"""


def _digest(pure: bool) -> tuple[str, str]:
    env = {k: v for k, v in os.environ.items() if k != speedups.PURE_PYTHON_ENV}
    if pure:
        env[speedups.PURE_PYTHON_ENV] = "1"
    out = subprocess.run(
        [sys.executable, "-c", DIGEST],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.split()
    return out[0], out[1]


def test_ci_tests_the_path_it_was_asked_for() -> None:
    states = set(speedups.status().values())
    if speedups.pure_python_requested():
        assert states == {"source"}
    elif os.environ.get("CI"):
        # .ci/run installs with a C compiler: the suite must exercise the compiled modules
        assert states == {"compiled"}, speedups.status()
    elif states != {"compiled"}:
        pytest.skip(f"outside CI, decode path is {speedups.summary()}")


def test_the_sources_and_the_extensions_decode_the_samples_alike() -> None:
    pure_state, pure_digest = _digest(pure=True)
    assert pure_state == "source"
    state, digest = _digest(pure=False)
    if state != "compiled":
        assert not os.environ.get("CI"), "CI must build the extensions"
        pytest.skip("no extensions built here: only the sources were compared")
    assert digest == pure_digest


def test_every_compiled_module_is_a_pure_source_file_that_setup_compiles() -> None:
    setup_py = (ROOT / "setup.py").read_text()
    assert "speedups.COMPILED" in setup_py and "speedups.NATIVE_GROUP" in setup_py
    assert len(set(speedups.COMPILED)) == len(speedups.COMPILED)
    for name in speedups.COMPILED:
        source = speedups.source_path(name)
        assert source.is_file(), name
        imported: set[str] = set()
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
        bad = {m for m in imported if any(m == i or m.startswith(i + ".") for i in IMPURE)}
        assert not bad, f"{name} imports {bad}"


def test_the_summary_names_the_path_and_the_count() -> None:
    text = speedups.summary()
    n = len(speedups.COMPILED)
    assert text.endswith((f"of {n} modules", f"of {n} modules compiled"))
    if speedups.pure_python_requested():
        assert text.startswith("pure Python (DRAIN_PURE_PYTHON=1)")


def test_pure_python_cannot_be_asked_for_after_the_extensions_are_loaded() -> None:
    if set(speedups.status().values()) != {"compiled"}:
        pytest.skip("the extensions are not loaded in this run")
    with pytest.raises(RuntimeError, match="already imported compiled"):
        speedups.use_pure_python()


@pytest.mark.parametrize("value", ["1", "true", "YES"])
def test_the_environment_switch_reads_common_spellings(value: str) -> None:
    assert speedups.pure_python_requested({speedups.PURE_PYTHON_ENV: value})
    assert not speedups.pure_python_requested({speedups.PURE_PYTHON_ENV: "0"})
    assert not speedups.pure_python_requested({})


@pytest.mark.parametrize("pure", [False, True], ids=["default", "DRAIN_PURE_PYTHON=1"])
def test_drain_serve_logs_its_decode_path_and_stores_a_batch(
    migrated_url: str, tmp_path: Path, pure: bool
) -> None:
    """drain serve says which decode path runs, takes DRAIN_PURE_PYTHON without calling it
    an unknown setting, and stores a posted event on either path."""
    extra = {speedups.PURE_PYTHON_ENV: "1"} if pure else {}
    env = clean_env(DATABASE_URL=migrated_url, DRAIN_USERNAME="u", DRAIN_PASSWORD="p", **extra)
    body = frame(event_line(datetime.now(UTC), "speedups.check", {"pure": pure}))
    with serving(tmp_path, env) as served:
        response = httpx.post(
            served.base_url + "/logs",
            content=body,
            headers=logplex_headers(msg_count=1, frame_id=f"speedups-{pure}"),
            auth=("u", "p"),
            timeout=10,
        )
        assert response.status_code == 200, response.text
        assert response.headers["drain-events-stored"] == "1"
    output = served.output()
    assert "unknown variables" not in output, output
    if pure:
        assert "decode path: pure Python (DRAIN_PURE_PYTHON=1)" in output, output
    elif os.environ.get("CI"):
        assert "decode path: compiled (mypyc)" in output, output
    else:
        assert "decode path: " in output, output
