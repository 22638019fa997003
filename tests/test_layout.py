"""The layout's rules, checked on the source: one package per stage, pure parsing, no import
cycle, pinned public names, and test and bench code that import only what they should."""

from __future__ import annotations

import ast
import importlib
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
DRAIN = ROOT / "drain"

#: what the pure packages may not import: I/O, the event loop, the web stack, the process
#: environment (os), and the parts of drain that do I/O or read the environment
IMPURE = {
    "asyncio",
    "asyncpg",
    "fastapi",
    "httpx",
    "os",
    "shutil",
    "socket",
    "starlette",
    "subprocess",
    "threading",
    "urllib",
    "uvicorn",
    "drain.cli",
    "drain.rollups",
    "drain.settings",
    "drain.store",
    "drain.web",
}

#: each package's public names; a change here is a change of the public API
PUBLIC = {
    "drain.archive": ["ArchiveConfig", "ArchivedDay", "Checksum", "FailedArchive"],
    "drain.cli": ["build_parser", "main"],
    "drain.decode": [
        "BatchLoss",
        "ClientMode",
        "DecodeLimits",
        "Frame",
        "Line",
        "LineDecoder",
        "LineResult",
        "LineRules",
        "RejectedEvent",
        "SyslogMessage",
        "TaggedEvent",
        "TypedLine",
        "batch_loss",
        "encode_frames",
        "is_loss_line",
        "iter_frames",
        "line_decoder",
        "parse_event",
        "parse_exclusions",
        "parse_line",
        "parse_logfmt",
        "parse_lost_line",
        "parse_timestamp",
        "quarantine_row",
        "split_frames",
        "split_line",
    ],
    "drain.inputs": [
        "KIND_LOGPLEX_ERROR",
        "KIND_MALFORMED_LINE",
        "KIND_UNTAGGED",
        "LOGPLEX_MEDIA_TYPE",
        "FrameDecoder",
        "FrameOutcome",
        "decode_body",
        "dump_body",
        "dump_jsonl",
        "frame_decoder",
        "iter_outcomes",
    ],
    "drain.pgwire": ["TimestamptzEncoder", "decode_timestamptz", "encode_timestamptz"],
    "drain.rollups": [
        "Clock",
        "ClockConfig",
        "RollupSpec",
        "RunKind",
        "RunResult",
        "load_rollups",
        "parse_rollup",
        "rollup_status",
        "run_window",
        "window_for_tick",
    ],
    "drain.store": [
        "EmbeddedPostgres",
        "MaintenanceReport",
        "RetentionPolicy",
        "Writer",
        "WriterConfig",
        "WriterStats",
        "connect_kwargs",
        "create_pool",
        "default_data_dir",
        "maintain",
        "migrate",
        "redact_url",
    ],
    "drain.web": ["WebConfig", "create_app"],
}


def modules(folder: Path) -> Iterator[Path]:
    """Every .py file under ``folder``."""
    yield from sorted(folder.rglob("*.py"))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, *, runtime_only: bool = False) -> set[str]:
    """The modules ``path`` imports (``from x import y`` gives ``x`` and ``x.y``). With
    ``runtime_only``, imports under ``if TYPE_CHECKING:`` are left out."""
    tree = ast.parse(path.read_text(), str(path))
    skipped: set[int] = set()
    if runtime_only:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                skipped.update(id(child) for child in ast.walk(node))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _matches(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


@pytest.mark.parametrize("package", ["inputs", "decode", "pgwire"])
def test_the_parsing_packages_do_no_io(package: str) -> None:
    for path in modules(DRAIN / package):
        bad = sorted(name for name in imports(path) for banned in IMPURE if _matches(name, banned))
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"
        assert "environ" not in path.read_text(), path


def test_the_records_and_errors_import_nothing_of_drain() -> None:
    """What every stage shares depends on no stage."""
    for path in (DRAIN / "records.py", DRAIN / "errors.py"):
        assert not [name for name in imports(path) if _matches(name, "drain")], path


def test_no_import_cycle_between_drains_modules() -> None:
    """Every import a module runs, at import time or in a function (TYPE_CHECKING blocks
    aside), of one drain module by another: the graph has no cycle."""
    names = {module_name(path): path for path in modules(DRAIN)}
    graph: dict[str, set[str]] = {}
    for name, path in names.items():
        targets = set()
        for imported in imports(path, runtime_only=True):
            while imported and imported not in names:
                imported = imported.rpartition(".")[0]
            # a package's __init__ re-exports its modules: importing the package is not
            # an edge back to the module that imports a sibling
            if imported and imported != name and not name.startswith(imported + "."):
                targets.add(imported)
        graph[name] = targets
    cycle = _find_cycle(graph)
    assert cycle is None, " -> ".join(cycle or [])


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, set())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)) is not None:
            return found
    return None


@pytest.mark.parametrize("package", sorted(PUBLIC))
def test_each_package_pins_its_public_names(package: str) -> None:
    module = importlib.import_module(package)
    assert sorted(module.__all__) == sorted(PUBLIC[package])
    for name in module.__all__:
        assert getattr(module, name) is not None, (package, name)


def test_every_module_declares_what_it_exports() -> None:
    for path in modules(DRAIN):
        if path.name in ("__init__.py", "__main__.py"):
            continue
        module = importlib.import_module(module_name(path))
        exported = getattr(module, "__all__", None)
        assert exported is not None, f"{module.__name__} has no __all__"
        missing = [name for name in exported if not hasattr(module, name)]
        assert not missing, (module.__name__, missing)


def test_bench_imports_nothing_from_tests() -> None:
    for path in modules(ROOT / "bench"):
        bad = sorted(name for name in imports(path) if _matches(name, "tests"))
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_test_modules_import_only_the_support_package_of_tests() -> None:
    """Shared fixtures live in tests/support (and testkit/); a test module never imports
    another test module."""
    for path in modules(ROOT / "tests"):
        bad = sorted(
            name
            for name in imports(path)
            if _matches(name, "tests") and not _matches(name, "tests.support")
        )
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_the_master_process_does_not_import_the_web_stack() -> None:
    """drain.web.master supervises uvicorn's workers and stays small: no FastAPI, no
    pydantic, no asyncpg at import time."""
    heavy = {"fastapi", "pydantic", "asyncpg", "drain.settings", "drain.web.app"}
    path = DRAIN / "web" / "master.py"
    found = {name for name in imports(path, runtime_only=True) if name in heavy}
    assert not found, found
    init = DRAIN / "web" / "__init__.py"
    assert not {n for n in imports(init, runtime_only=True) if n in heavy}


def test_every_package_is_in_the_wheel() -> None:
    """pyproject.toml lists the packages by hand: a package missing there is missing from
    every non-editable install (the Heroku build, the Docker image)."""
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in DRAIN.rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert found - listed == set()
