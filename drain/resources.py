"""Where the SQL that ships with drain is read from.

The repository keeps the SQL at its top level (``sql/migrations``, ``sql/rollups``) and the
package maps it to ``drain.sql`` (pyproject ``package-dir``), so an installed drain reads it
from the package. A process that imports drain from a source tree instead (``python -m
drain`` run from the repository root puts the root first on ``sys.path``) finds no
``drain.sql`` package there; it reads ``../sql`` beside the ``drain`` folder.
"""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

__all__ = ["sql_dir"]


def sql_dir(name: str) -> Traversable:
    """The folder of shipped SQL files called ``name`` (``"migrations"`` or ``"rollups"``).

    Raises:
        FileNotFoundError: neither the installed package nor the source tree has it.
    """
    try:
        root: Traversable = files("drain.sql")
    except ModuleNotFoundError:
        root = Path(__file__).resolve().parent.parent / "sql"
    folder = root.joinpath(name)
    if not folder.is_dir():
        raise FileNotFoundError(f"no SQL folder {name!r} in {root}")
    return folder
