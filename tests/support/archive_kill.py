"""``python -m tests.support.archive_kill STEP``: ``drain archive`` (drain.cli.archive.run_archive,
with the settings of the environment) that SIGKILLs itself right after it completes STEP
(one of drain.archive.archiver.STEPS) for the first time: the crash tests' subject."""

from __future__ import annotations

import os
import signal
import sys

from drain.archive.archiver import STEPS
from drain.cli.archive import run_archive
from drain.settings import Settings


def main(argv: list[str]) -> int:
    (target,) = argv
    if target not in STEPS:
        raise SystemExit(f"unknown step {target!r}; one of {', '.join(STEPS)}")

    def observe(step: str, detail: str) -> None:
        if step == target:
            print(f"killed after {step} {detail}", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

    return run_archive(Settings.load(), observer=observe)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
