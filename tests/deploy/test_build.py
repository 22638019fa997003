"""The Heroku build and release, reproduced from a clean clone (the README's "Deploy" section).

``git clone`` of this repository's HEAD (committed files only, as ``git push heroku`` sends),
then what heroku-buildpack-python does for a ``uv.lock`` app (tests/heroku.py has the sources):
one package-manager file at the root, the Python version from ``.python-version``, and
``uv sync --locked --no-default-groups --compile-bytecode`` into the app's ``.heroku/python``
with the buildpack's uv variables: the runtime dependencies from the lockfile, nothing else,
with only the package index as network. Then the Procfile's ``release`` command and its ``web``
command, read from the Procfile, run from the app directory with the dyno environment, the
config vars app.json gives a new app, ``DATABASE_URL`` (a fresh database on the session's real
PostgreSQL) and ``PORT``; a Logplex batch posted over HTTP must land in ``raw_events``.

Not reproduced: the buildpack's own CPython build (the environment here is a virtual
environment made by uv from a local Python of the ``.python-version`` series), its build cache,
slug compression and the router. ``DRAIN_HOST=127.0.0.1`` keeps the server on loopback (on
Heroku it binds 0.0.0.0).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import uuid
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import pytest
from packaging.specifiers import SpecifierSet
from uv import find_uv_bin

from drain import speedups
from tests.support.heroku import (
    BUILDPACK_UV_VERSION,
    PYTHON_HOME,
    UV_SYNC_ARGS,
    UV_SYNC_TAIL,
    app_json_config_vars,
    dyno_env,
    package_manager_files,
    procfile,
    uv_build_env,
)
from tests.support.served import event_line, frame, free_port, logplex_headers

ROOT = Path(__file__).resolve().parent.parent.parent
#: seconds for the whole `uv sync` (a cold uv cache fills with ~130 MB from the package index)
BUILD_TIMEOUT_S = 600
#: seconds the release command and the web start may take
RUN_TIMEOUT_S = 60
#: seconds Heroku waits after SIGTERM before SIGKILL
HEROKU_STOP_S = 30
#: Python minor versions the buildpack supports (lib/python_version.sh)
BUILDPACK_PYTHONS = {f"3.{minor}" for minor in range(10, 15)}


def clean_clone(dest: Path) -> Path:
    """``git clone`` this repository's HEAD into ``dest``: committed files only."""
    result = subprocess.run(
        ["git", "clone", "--quiet", str(ROOT), str(dest)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert result.returncode == 0, (
        f"git clone of {ROOT} failed (not a git checkout?)\n{result.stderr}"
    )
    return dest


def test_the_root_has_what_the_buildpack_requires() -> None:
    """Exactly one package-manager file (uv.lock) and a ``.python-version`` the buildpack and
    ``requires-python`` accept, in the committed tree (lib/package_manager.sh,
    lib/python_version.sh: uv apps must have .python-version)."""
    listed = subprocess.run(
        ["git", "ls-tree", "--name-only", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=30,
    ).stdout.split()
    assert package_manager_files(set(listed)) == ["uv.lock"], listed
    assert "Pipfile" not in listed  # a Pipfile without Pipfile.lock fails the build
    assert ".python-version" in listed
    version = (ROOT / ".python-version").read_text().strip()
    assert version in BUILDPACK_PYTHONS, version
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert SpecifierSet(requires).contains(f"{version}.0"), (version, requires)


def test_the_dev_extra_pins_the_buildpacks_uv() -> None:
    result = subprocess.run(
        [find_uv_bin(), "--version"], capture_output=True, text=True, check=True, timeout=30
    )
    assert result.stdout.split()[1] == BUILDPACK_UV_VERSION


@pytest.mark.timeout(BUILD_TIMEOUT_S + 4 * RUN_TIMEOUT_S)
def test_clean_clone_builds_releases_and_serves_as_on_heroku(
    database_url: str, tmp_path: Path
) -> None:
    app = clean_clone(tmp_path / "app")
    assert (app / "uv.lock").is_file(), "uv.lock is not committed"
    uv = Path(find_uv_bin())

    build = subprocess.run(
        [str(uv), *UV_SYNC_ARGS, *UV_SYNC_TAIL],
        env=uv_build_env(app, uv.parent, os.environ),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=BUILD_TIMEOUT_S,
        cwd=app,
    )
    assert build.returncode == 0, f"uv sync failed\n{build.stdout}\n{build.stderr}"
    python = app / PYTHON_HOME / "bin" / "python"
    check_built_environment(python, app)

    processes = procfile((app / "Procfile").read_text())
    port = free_port()
    config = {
        **app_json_config_vars(json.loads((app / "app.json").read_text())),
        "DATABASE_URL": database_url,
        "PORT": str(port),
        "DRAIN_HOST": "127.0.0.1",
    }

    release = subprocess.run(
        ["bash", "-c", processes["release"]],
        env=dyno_env(app, {**config, "DYNO": "release.1"}),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=RUN_TIMEOUT_S,
        cwd=app,
    )
    assert release.returncode == 0, f"release failed\n{release.stdout}\n{release.stderr}"

    out_path, err_path = tmp_path / "web.out", tmp_path / "web.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        web = subprocess.Popen(
            ["bash", "-c", processes["web"]],
            env=dyno_env(app, {**config, "DYNO": "web.1"}),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            cwd=app,
            start_new_session=True,
        )
    base_url = f"http://127.0.0.1:{port}"
    marker = uuid.uuid4().hex
    try:
        wait_healthy(web, base_url, out_path, err_path)
        body = frame(event_line(datetime.now(UTC), "deploy.check", {"marker": marker}))
        response = httpx.post(
            base_url + "/logs",
            content=body,
            headers=logplex_headers(msg_count=1, frame_id=f"deploy-{marker}"),
            auth=(config["DRAIN_USERNAME"], config["DRAIN_PASSWORD"]),
            timeout=10,
        )
        assert response.status_code == 200, response.text
        assert response.headers["drain-events-stored"] == "1"
        anonymous = httpx.post(base_url + "/logs", content=body, headers=logplex_headers())
        assert anonymous.status_code == 401
    finally:
        code = stop(web)
    assert code == 0, (
        f"web exited {code} after SIGTERM\n{out_path.read_text()}{err_path.read_text()}"
    )
    assert asyncio.run(stored_markers(database_url)) == [marker]


def check_built_environment(python: Path, app: Path) -> None:
    """The Python of ``.python-version``, drain installed from the clone, no dev tool, and
    the decode path compiled (the build image has a C compiler, as Heroku's does)."""
    probe = (
        "import importlib.util, json, sys, drain\n"
        "from drain import speedups\n"
        "tools = ['pytest', 'mypy', 'ruff', 'hypothesis', 'uv', 'jsonschema', 'httpx']\n"
        "print(json.dumps({'version': '%d.%d' % sys.version_info[:2], 'drain': drain.__file__,"
        " 'tools': [t for t in tools if importlib.util.find_spec(t)],"
        " 'decode': speedups.status()}))\n"
    )
    result = subprocess.run(
        [str(python), "-P", "-c", probe],
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(app)},
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        cwd=app,
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["version"] == (app / ".python-version").read_text().strip()
    assert Path(found["drain"]).is_relative_to(app)
    assert set(found["decode"].values()) == {"compiled"}, found["decode"]
    assert found["tools"] == [], "dev-only packages were installed"


def wait_healthy(web: subprocess.Popen[bytes], base_url: str, *logs: Path) -> None:
    """Poll GET /health (bounded by RUN_TIMEOUT_S) until 200; fail with the output if not."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        if web.poll() is not None:
            break
        try:
            if httpx.get(base_url + "/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)  # start-up polling, bounded by the deadline
    output = "".join(path.read_text(errors="replace") for path in logs)
    raise AssertionError(f"web did not become healthy (exit {web.poll()})\n{output}")


def stop(web: subprocess.Popen[bytes]) -> int:
    """SIGTERM to the web process by its PID, as Heroku stops a dyno; after HEROKU_STOP_S,
    SIGKILL to the process group it leads (our own session) and fail."""
    if web.poll() is None:
        os.kill(web.pid, signal.SIGTERM)
    try:
        return web.wait(HEROKU_STOP_S)
    except subprocess.TimeoutExpired:
        os.killpg(web.pid, signal.SIGKILL)
        web.wait(5)
        raise AssertionError(f"web did not exit within {HEROKU_STOP_S} s of SIGTERM") from None


async def stored_markers(url: str) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT payload->>'marker' AS marker FROM raw_events WHERE tag = 'deploy.check'"
        )
    finally:
        await conn.close()
    return [row["marker"] for row in rows]


def docker_build_context(app: Path, dest: Path) -> Path:
    """The files the Dockerfile's build stage COPYs, laid out as its WORKDIR holds them.

    Reads the ``COPY src... dest`` lines of the first stage (up to the next ``FROM``); a
    directory is copied whole. Raises AssertionError when a source is missing.
    """
    dest.mkdir()
    stage = (app / "Dockerfile").read_text().split("\nFROM ", 2)[1]
    for line in stage.splitlines():
        words = line.split()
        if not words or words[0] != "COPY" or any(w.startswith("--") for w in words):
            continue
        *sources, target = words[1:]
        for source in sources:
            src = app / source
            assert src.exists(), f"the Dockerfile copies {source}, which is not in the clone"
            into = dest / target
            if src.is_dir():  # COPY dir ./dir: the directory's contents into ./dir
                shutil.copytree(src, into, dirs_exist_ok=True)
            else:  # COPY a b ./: files into the directory
                assert target.endswith("/"), line
                into.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, into / src.name)
    return dest


def test_the_docker_build_stage_without_a_c_compiler_makes_a_pure_python_wheel(
    tmp_path: Path,
) -> None:
    """The Dockerfile's build stage, without docker: its COPY set alone must build (so it
    copies everything ``pip install .`` needs, setup.py included), and where no C compiler
    works (CC is /bin/false) the build warns and still makes a wheel with every source file,
    the SQL, and no extension: the decode path runs as pure Python. With a compiler the same
    setup.py compiles (the Heroku build test above)."""
    context = docker_build_context(clean_clone(tmp_path / "app"), tmp_path / "context")
    env = {**os.environ, "CC": "/bin/false", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-v",
            "--no-deps",
            "-w",
            str(tmp_path / "dist"),
            ".",
        ],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=BUILD_TIMEOUT_S,
        cwd=context,
    )
    assert build.returncode == 0, f"pip wheel failed\n{build.stdout}\n{build.stderr}"
    # setup.py ran (it is in the COPY set), tried the compiler and fell back
    assert "drain: compiling the decode path failed" in build.stdout + build.stderr
    (wheel,) = (tmp_path / "dist").glob("drain-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert not [n for n in names if n.endswith(".so")], names
    for module in speedups.COMPILED:
        assert "/".join(module.split(".")) + ".py" in names, module
    assert any(n.startswith("drain/sql/migrations/") for n in names), names
    assert any(n.startswith("drain/web/dashboard/templates/") for n in names), names
