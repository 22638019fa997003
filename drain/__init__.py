"""drain: a Heroku log drain.

Logplex POSTs batches of octet-counted syslog frames (``application/logplex-1``);
drain parses them, pulls out ``@[tag] {json}`` application events, and stores
each event exactly once in the time-partitioned PostgreSQL table ``raw_events``.
"""

__version__ = "0.1.0"
