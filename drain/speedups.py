"""Which modules of the decode path are compiled with mypyc, and how to run them uncompiled.

The decode path (the modules named in :data:`COMPILED`) is pure, strictly typed Python.
``pip install .`` compiles it with mypyc into C extensions when a C compiler is present
(``setup.py``); the same source files ship beside the extensions and are what runs where no
compiler exists, or when :data:`PURE_PYTHON_ENV` is set to ``1`` at start-up. Both paths
are tested (docs/development.md, "The compiled decode path").

This module is imported by ``setup.py`` by file path, before the package is importable: it
imports nothing from drain and nothing outside the standard library.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

__all__ = [
    "BUILD_ENV",
    "COMPILED",
    "NATIVE_GROUP",
    "PURE_PYTHON_ENV",
    "extension_path",
    "is_compiled",
    "pure_python_requested",
    "source_path",
    "stale",
    "status",
    "summary",
    "use_pure_python",
]
#: The modules mypyc compiles, in one group (they call each other natively). The rule for
#: choosing: pure (no I/O, no asyncio) and on the per-line path of a request body: the
#: decoders, and the encoding of their rows' timestamps for COPY.
COMPILED: tuple[str, ...] = (
    "drain.decode.events",
    "drain.decode.framing",
    "drain.decode.limits",
    "drain.decode.lines",
    "drain.decode.logfmt",
    "drain.decode.loss",
    "drain.decode.metrics",
    "drain.decode.platform",
    "drain.decode.router",
    "drain.decode.rules",
    "drain.decode.scan",
    "drain.decode.syslog",
    "drain.inputs.logplex",
    "drain.pgwire.timestamptz",
)

#: The shared library that holds the compiled group (``drain/decode/_native__mypyc*.so``).
NATIVE_GROUP = "drain.decode._native"

#: Set to ``1`` (before drain is imported) to run the source files of :data:`COMPILED`
#: even where their extensions are built.
PURE_PYTHON_ENV = "DRAIN_PURE_PYTHON"

#: Set to ``0`` at build time (``pip install``) to skip the compilation (setup.py).
BUILD_ENV = "DRAIN_MYPYC"

_PACKAGE_DIR = Path(__file__).resolve().parent


def source_path(module: str) -> Path:
    """The ``.py`` file of ``module`` (a dotted name under ``drain``) in this installation."""
    parts = module.split(".")
    if parts[0] != "drain":
        raise ValueError(f"not a drain module: {module!r}")
    return _PACKAGE_DIR.joinpath(*parts[1:]).with_suffix(".py")


def extension_path(module: str) -> Path | None:
    """The built extension of ``module`` beside its source, or ``None`` when there is none."""
    source = source_path(module)
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = source.with_name(source.stem + suffix)
        if candidate.exists():
            return candidate
    return None


def is_compiled(module: ModuleType) -> bool:
    """Whether an imported module is running as a compiled extension (not its ``.py``)."""
    origin = getattr(module, "__file__", None) or ""
    return any(origin.endswith(suffix) for suffix in importlib.machinery.EXTENSION_SUFFIXES)


def stale(modules: Sequence[str] = COMPILED) -> list[str]:
    """The modules whose source is newer than its extension, in a git checkout only.

    An editable install (``pip install -e .``) builds the extensions beside the sources; a
    source edited afterwards is not what would run. Outside a checkout (an installed wheel)
    the files come together and nothing is reported. Returns module names, in ``modules``
    order; a module with no extension is not stale (it runs its source).
    """
    if not (_PACKAGE_DIR.parent / ".git").exists():
        return []
    out = []
    for module in modules:
        ext = extension_path(module)
        if ext is not None and source_path(module).stat().st_mtime > ext.stat().st_mtime:
            out.append(module)
    return out


class _SourceFinder(importlib.abc.MetaPathFinder):
    """Finds the ``.py`` source of each compiled module, ahead of its extension."""

    def __init__(self, modules: Sequence[str]) -> None:
        self._modules = frozenset(modules)

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self._modules:
            return None
        source = str(source_path(fullname))
        loader = importlib.machinery.SourceFileLoader(fullname, source)
        return importlib.util.spec_from_file_location(fullname, source, loader=loader)


def use_pure_python(modules: Sequence[str] = COMPILED) -> bool:
    """Make later imports of ``modules`` load their ``.py`` sources; idempotent.

    Must run before any of them is imported (``drain/__init__.py`` calls it when
    :data:`PURE_PYTHON_ENV` is ``1``). Returns False when the finder was already installed.
    Raises RuntimeError when one of them is already imported compiled.
    """
    if any(isinstance(f, _SourceFinder) for f in sys.meta_path):
        return False
    loaded = [m for m in modules if m in sys.modules and is_compiled(sys.modules[m])]
    if loaded:
        raise RuntimeError(f"already imported compiled: {', '.join(loaded)}")
    sys.meta_path.insert(0, _SourceFinder(modules))
    return True


def pure_python_requested(environ: dict[str, str] | None = None) -> bool:
    """Whether :data:`PURE_PYTHON_ENV` asks for the sources (``1``, ``true`` or ``yes``)."""
    value = (os.environ if environ is None else environ).get(PURE_PYTHON_ENV, "")
    return value.strip().lower() in {"1", "true", "yes"}


def status(modules: Sequence[str] = COMPILED) -> dict[str, str]:
    """``{module: "compiled" | "source"}`` for each of ``modules``, importing them."""
    out = {}
    for name in modules:
        module = importlib.import_module(name)
        out[name] = "compiled" if is_compiled(module) else "source"
    return out


def summary(modules: Sequence[str] = COMPILED) -> str:
    """One line for logs and reports, e.g. ``compiled (mypyc): 13 of 13 modules``."""
    states = status(modules)
    compiled = sum(1 for s in states.values() if s == "compiled")
    if compiled == len(states):
        return f"compiled (mypyc): {compiled} of {len(states)} modules"
    if compiled == 0:
        why = f"{PURE_PYTHON_ENV}=1" if pure_python_requested() else "no extensions built"
        return f"pure Python ({why}): 0 of {len(states)} modules compiled"
    return f"mixed: {compiled} of {len(states)} modules compiled"
