"""uv.lock is in step with pyproject.toml: the check the Heroku build makes (``uv sync --locked``
fails on a stale lockfile), made here with ``uv lock --check`` on copies of the two files.

A stale lockfile is one whose recorded requirements of the project differ from pyproject.toml's
``dependencies`` and ``optional-dependencies``; fix it with ``uv lock`` (the README's Deploy
section). The mutated cases ask the package index to resolve; the unchanged case does not.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from uv import find_uv_bin

ROOT = Path(__file__).resolve().parent.parent.parent
FILES = ("pyproject.toml", "uv.lock", ".python-version")
#: a distribution that is nowhere in the lockfile (asserted below)
ABSENT = "rich"
STALE = "needs to be updated, but `--check` was provided"


def uv_lock_check(project: Path) -> subprocess.CompletedProcess[str]:
    """``uv lock --check`` in ``project`` (exit 0: the lockfile matches pyproject.toml)."""
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env.update(UV_PYTHON_DOWNLOADS="never", UV_NO_MANAGED_PYTHON="1")
    return subprocess.run(
        [find_uv_bin(), "lock", "--check", "--color", "never"],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
        cwd=project,
    )


def copy_project(dest: Path) -> Path:
    dest.mkdir()
    for name in FILES:
        shutil.copy2(ROOT / name, dest / name)
    return dest


def add_runtime_dependency(project: Path) -> None:
    edit(project / "pyproject.toml", "\ndependencies = [\n", f'    "{ABSENT}>=13",\n')


def add_dev_dependency(project: Path) -> None:
    edit(project / "pyproject.toml", "\ndev = [\n", f'    "{ABSENT}>=13",\n')


def add_lock_requirement(project: Path) -> None:
    """uv.lock records a requirement of the project that pyproject.toml does not have."""
    path = project / "uv.lock"
    text = path.read_text()
    start = text.index('[[package]]\nname = "drain"\n')
    anchor = text.index("requires-dist = [\n", start) + len("requires-dist = [\n")
    path.write_text(
        text[:anchor] + f'    {{ name = "{ABSENT}", specifier = ">=13" }},\n' + text[anchor:]
    )


def edit(path: Path, anchor: str, insert: str) -> None:
    text = path.read_text()
    assert text.count(anchor) == 1, f"{anchor!r} is not once in {path.name}"
    path.write_text(text.replace(anchor, anchor + insert))


def test_the_lockfile_matches_pyproject(tmp_path: Path) -> None:
    result = uv_lock_check(copy_project(tmp_path / "project"))
    assert result.returncode == 0, f"uv.lock is stale: run `uv lock`\n{result.stderr}"


def test_the_changed_dependency_is_absent_from_the_lock() -> None:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    assert ABSENT not in {package["name"] for package in lock["package"]}


@pytest.mark.parametrize(
    "change",
    [add_runtime_dependency, add_dev_dependency, add_lock_requirement],
    ids=lambda change: change.__name__,
)
def test_a_dependency_in_one_file_only_fails_the_check(
    change: Callable[[Path], None], tmp_path: Path
) -> None:
    project = copy_project(tmp_path / "project")
    change(project)
    result = uv_lock_check(project)
    assert result.returncode == 1, result.stderr
    assert STALE in result.stderr, result.stderr
