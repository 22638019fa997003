"""Build hook: compile the decode path with mypyc when a C compiler is present.

Everything else about the package is declared in pyproject.toml. The modules compiled are
``drain.speedups.COMPILED``; where the compiler, or mypyc's type check, fails the build
warns and the package installs as pure Python (the same source files). ``DRAIN_MYPYC=0``
skips the compilation.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


def _load_speedups() -> ModuleType:
    """drain/speedups.py by file path: the package itself is not importable yet."""
    spec = importlib.util.spec_from_file_location("drain.speedups", ROOT / "drain" / "speedups.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


class OptionalBuildExt(build_ext):
    """build_ext that falls back to pure Python when an extension does not compile."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any compiler failure means "pure Python"
            self._fallback(exc)

    def build_extension(self, ext: Any) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            self._fallback(exc)

    @staticmethod
    def _fallback(exc: BaseException) -> None:
        warnings.warn(
            f"drain: compiling the decode path failed ({exc}); installing pure Python",
            stacklevel=1,
        )


def _ext_modules() -> list[Any]:
    speedups = _load_speedups()
    if os.environ.get(speedups.BUILD_ENV, "1").strip() == "0":
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        warnings.warn("drain: mypyc is not installed; installing pure Python", stacklevel=1)
        return []
    paths = [str(Path(*name.split(".")).with_suffix(".py")) for name in speedups.COMPILED]
    try:
        return list(mypycify(paths, opt_level="3", group_name=speedups.NATIVE_GROUP))
    except SystemExit as exc:  # mypyc's type check failed: it exits
        warnings.warn(f"drain: mypyc refused the decode path ({exc}); pure Python", stacklevel=1)
        return []


setup(ext_modules=_ext_modules(), cmdclass={"build_ext": OptionalBuildExt})
