"""What the Heroku build and a dyno do with this repository, as facts the deploy tests share.

Sources: heroku/heroku-buildpack-python v351 (``bin/compile``, ``lib/package_manager.sh``,
``lib/uv.sh``, ``lib/python_version.sh``, ``requirements/uv.txt``); Heroku Dev Center
"Procfile" and "app.json Schema". Pure helpers: nothing here starts a process.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: the package-manager files the buildpack looks for at the root; exactly one must exist
#: (lib/package_manager.sh: determine_package_manager; two or more is "Multiple Python
#: package manager files were found", none is "Couldn't find any supported ...")
PACKAGE_MANAGER_FILES = ("Pipfile.lock", "requirements.txt", "poetry.lock", "uv.lock")

#: the uv version the buildpack installs (requirements/uv.txt at v351); the dev extra pins it
BUILDPACK_UV_VERSION = "0.12.5"

#: ``uv`` arguments of the buildpack's install step (lib/uv.sh: uv::install_dependencies):
#: ``uv sync --locked --no-default-groups`` (groups are omitted outside Heroku CI) then
#: ``--color always --compile-bytecode --no-progress``; ``--color never`` here only keeps the
#: test's failure messages legible. Extras are not requested, so the ``dev`` extra is not
#: installed; the project itself is installed, editable (uv's default).
UV_SYNC_ARGS = ("sync", "--locked", "--no-default-groups", "--color", "never")
UV_SYNC_TAIL = ("--compile-bytecode", "--no-progress")

#: where the buildpack puts Python, relative to the app directory (bin/compile: python_home)
PYTHON_HOME = Path(".heroku") / "python"

_PROCFILE_LINE = re.compile(r"^([A-Za-z0-9_-]+):\s*(.+?)\s*$")


def procfile(text: str) -> dict[str, str]:
    """Process types of a Procfile: ``{type: command}``.

    Each line is ``<process type>: <command>``; blank lines and lines that are not of that form
    are ignored (Dev Center "The Procfile").

    Raises:
        ValueError: a process type is declared twice.
    """
    commands: dict[str, str] = {}
    for line in text.splitlines():
        match = _PROCFILE_LINE.match(line)
        if match is None:
            continue
        name, command = match.groups()
        if name in commands:
            raise ValueError(f"process type {name!r} is declared twice in the Procfile")
        commands[name] = command
    return commands


def package_manager_files(names: set[str]) -> list[str]:
    """The package-manager files among a root directory's ``names``, in the buildpack's order."""
    return [name for name in PACKAGE_MANAGER_FILES if name in names]


def uv_build_env(app_dir: Path, uv_dir: Path, base: Mapping[str, str]) -> dict[str, str]:
    """The environment of the buildpack's ``uv sync``, from ``base`` (the caller's environment).

    lib/uv.sh (uv::install_uv) puts uv on PATH and sets UV_PROJECT_ENVIRONMENT to the Python
    install, UV_NO_MANAGED_PYTHON=1, UV_PYTHON_DOWNLOADS=never and UV_LINK_MODE=hardlink;
    bin/compile unsets PYTHONHOME and PYTHONPATH and sets PYTHONUNBUFFERED=1 and LANG. Other
    ``UV_*`` variables of ``base`` are dropped (an app's config vars do not reach uv) except
    UV_CACHE_DIR, so a warm cache stays warm; VIRTUAL_ENV is dropped too.
    """
    env = {
        k: v
        for k, v in base.items()
        if not (k.startswith("UV_") and k != "UV_CACHE_DIR")
        and k not in {"PYTHONHOME", "PYTHONPATH", "VIRTUAL_ENV"}
    }
    python_home = app_dir / PYTHON_HOME
    env.update(
        PATH=os.pathsep.join([str(uv_dir), str(python_home / "bin"), base.get("PATH", "")]),
        UV_PROJECT_ENVIRONMENT=str(python_home),
        UV_NO_MANAGED_PYTHON="1",
        UV_PYTHON_DOWNLOADS="never",
        UV_LINK_MODE="hardlink",
        PYTHONUNBUFFERED="1",
        LANG="en_US.UTF-8",
    )
    return env


def dyno_env(app_dir: Path, config_vars: Mapping[str, str]) -> dict[str, str]:
    """The environment a dyno's process starts with: the buildpack's ``.profile.d`` variables
    (bin/compile: PATH with the app's Python first, PYTHONUNBUFFERED, LANG, PYTHONPATH=$HOME)
    with HOME the app directory, then the app's config vars.

    Not reproduced: PYTHONHOME (the buildpack's Python is a full install at $HOME/.heroku/
    python; here it is a virtual environment, which PYTHONHOME would break) and the
    WEB_CONCURRENCY default that ``.profile.d/WEB_CONCURRENCY.sh`` derives from the dyno's
    memory (app.json sets WEB_CONCURRENCY).
    """
    env = {
        "HOME": str(app_dir),
        "PATH": os.pathsep.join(
            [str(app_dir / PYTHON_HOME / "bin"), "/usr/local/bin:/usr/bin:/bin"]
        ),
        "PYTHONUNBUFFERED": "true",
        "LANG": "en_US.UTF-8",
        "PYTHONPATH": str(app_dir),
    }
    env.update(config_vars)
    return env


def app_json_config_vars(app_json: Mapping[str, Any]) -> dict[str, str]:
    """The config vars a new app gets from app.json's ``env``: each ``value``, and for
    ``"generator": "secret"`` a random secret (64 hex digits); variables with neither are unset.

    Raises:
        ValueError: an env entry asks for a generator other than ``secret`` (the only one the
            app.json schema has).
    """
    config: dict[str, str] = {}
    for name, spec in app_json.get("env", {}).items():
        if isinstance(spec, str):
            config[name] = spec
            continue
        generator = spec.get("generator")
        if generator is not None:
            if generator != "secret":
                raise ValueError(f"{name}: unknown app.json generator {generator!r}")
            config[name] = secrets.token_hex(32)
        elif "value" in spec:
            config[name] = spec["value"]
    return config
