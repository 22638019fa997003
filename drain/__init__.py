"""drain: a Heroku log drain.

Logplex POSTs batches of octet-counted syslog frames (``application/logplex-1``); drain
decodes them, pulls out ``@[tag] {json}`` application events, and stores each exactly once
in time-partitioned PostgreSQL tables. One sub-package per stage of "bytes in -> rows
committed" (docs/architecture.md):

- :mod:`drain.inputs`: a request body (one module per wire format) -> rows and a ledger;
- :mod:`drain.decode`: the decode rules (framing, syslog, the ``@[tag]`` convention, loss);
- :mod:`drain.store`: PostgreSQL: the group-commit writer, partitions, migrations;
- :mod:`drain.web`: the HTTP service: ingest, health, metrics, the processes;
- :mod:`drain.rollups`: scheduled SQL into summary tables;
- :mod:`drain.cli`: the ``drain`` command.

Shared by all: :mod:`drain.records` (what flows between the stages), :mod:`drain.errors`
(every exception), :mod:`drain.settings` (every setting and default), :mod:`drain.logs`.
"""

__version__ = "0.1.0"

from drain import speedups as _speedups

if _speedups.pure_python_requested():
    _speedups.use_pure_python()
