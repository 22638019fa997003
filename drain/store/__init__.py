"""The store: PostgreSQL, from a decoded batch to committed rows, and the tables' lifecycle.

- :mod:`drain.store.database`: DATABASE_URL to asyncpg (TLS modes, unix sockets), the pool;
- :mod:`drain.store.writer`: the group-commit writer (ledger + COPY in one transaction);
- :mod:`drain.store.faults`: who is to blame for a database error, and what to do;
- :mod:`drain.store.tables`: the registry of data tables, and how a row becomes a COPY record;
- :mod:`drain.store.platform`: the client-hash key, and recent platform errors (/health);
- :mod:`drain.store.partitions`: daily partitions: names, creation on demand, listing;
- :mod:`drain.store.lifecycle`: partitions ahead, retention, pruning;
- :mod:`drain.store.migrate`: the SQL migrations of ``sql/migrations``;
- :mod:`drain.store.budget`: how many connections each web worker may open;
- :mod:`drain.store.embedded`: the embedded PostgreSQL of a laptop (no DATABASE_URL).
"""

from drain.store.database import connect_kwargs, create_pool, redact_url
from drain.store.embedded import EmbeddedPostgres, default_data_dir
from drain.store.lifecycle import MaintenanceReport, RetentionPolicy, maintain
from drain.store.migrate import migrate
from drain.store.writer import Writer, WriterConfig, WriterStats

__all__ = [
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
]
