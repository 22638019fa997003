"""app.json (the Heroku Button) is valid for Heroku's app.json schema and fits the Procfile.

tests/data/app-json.schema.json holds the parts of the schema drain uses (its $comment names
the sources); each rejected case below shows that a rule of it bites.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from drain.settings import unknown_drain_variables
from tests.support.heroku import app_json_config_vars, procfile

ROOT = Path(__file__).resolve().parent.parent.parent
APP_JSON = json.loads((ROOT / "app.json").read_text())
SCHEMA = json.loads((ROOT / "tests" / "data" / "app-json.schema.json").read_text())
PROCESSES = procfile((ROOT / "Procfile").read_text())


def validator() -> Draft202012Validator:
    Draft202012Validator.check_schema(SCHEMA)
    return Draft202012Validator(SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)


def test_app_json_is_valid() -> None:
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator().iter_errors(APP_JSON)
    ]
    assert errors == []


def test_formation_names_procfile_process_types() -> None:
    """Every formation entry is a Procfile process type; ``release`` is not scaled (it runs
    once per deploy, Dev Center "Release Phase")."""
    assert set(APP_JSON["formation"]) <= set(PROCESSES) - {"release"}
    assert "web" in APP_JSON["formation"]
    assert {"web", "release"} <= set(PROCESSES)


def test_the_database_addon_sets_database_url() -> None:
    """The Heroku Postgres add-on is attached as DATABASE, so it sets DATABASE_URL."""
    postgres = [
        addon
        for addon in APP_JSON["addons"]
        if isinstance(addon, dict) and addon["plan"].startswith("heroku-postgresql")
    ]
    assert [addon.get("as", "DATABASE") for addon in postgres] == ["DATABASE"]


def test_env_names_are_drain_settings() -> None:
    assert unknown_drain_variables(dict.fromkeys(APP_JSON["env"], "")) == []


def test_the_button_sets_the_credentials_a_deployed_drain_requires() -> None:
    config = app_json_config_vars(APP_JSON)
    assert config["DRAIN_USERNAME"]
    assert len(config["DRAIN_PASSWORD"]) == 64
    assert app_json_config_vars(APP_JSON)["DRAIN_PASSWORD"] != config["DRAIN_PASSWORD"]


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        node: Any = doc
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    change.__name__ = f"{path}={value!r}"
    return change


REJECTED = [
    _set("formation/web/size", "hobby"),  # retired dyno size
    _set("formation/web/size", "Standard-1X "),
    _set("formation/web/quantity", "1"),
    _set("addons/0/plan", "heroku-postgresql:hobby-dev"),  # retired plan
    _set("addons/0/plan", "heroku postgresql"),
    _set("addons/0/as", "database"),
    _set("env/DRAIN_PASSWORD/generator", "uuid"),
    _set("env/WEB_CONCURRENCY/value", 1),
    _set("env/DRAIN_TOKENS/required", "false"),
    _set("env/DRAIN_USERNAME/default", "logplex"),
    _set("stack", "heroku-20"),  # end of life
    _set("buildpacks/0/url", "heroku python"),
    _set("formations", {}),
]


@pytest.mark.parametrize("change", REJECTED, ids=lambda change: change.__name__)
def test_the_schema_rejects(change: Callable[[dict[str, Any]], None]) -> None:
    doc = copy.deepcopy(APP_JSON)
    change(doc)
    assert not validator().is_valid(doc)
