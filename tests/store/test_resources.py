"""The shipped SQL is found from an installed drain and from a source tree that shadows it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from drain.resources import sql_dir

ROOT = Path(__file__).parent.parent.parent


def test_installed_package_has_migrations_and_rollups() -> None:
    assert any(p.name.startswith("0001_") for p in sql_dir("migrations").iterdir())
    assert any(p.name == "payment_history.sql" for p in sql_dir("rollups").iterdir())


def test_a_source_tree_first_on_sys_path_reads_sql_beside_the_package() -> None:
    # -S: no site-packages, so no installed or editable drain.sql; the checkout is on
    # sys.path first, as when `python -m ...` runs from the repository root.
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "from drain.resources import sql_dir; "
        "print(sorted(p.name for p in sql_dir('migrations').iterdir())[0])"
    )
    result = subprocess.run(
        [sys.executable, "-S", "-c", code, str(ROOT)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("0001_")
