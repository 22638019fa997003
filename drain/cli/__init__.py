"""The ``drain`` command line: one module per command group, :mod:`drain.cli.common` for
what they share (the database, a pool, logs). ``python -m drain`` runs :func:`main`."""

from drain.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
