"""PostgreSQL's binary wire formats that drain encodes itself (pure: no I/O).

- :mod:`drain.pgwire.timestamptz`: ``timestamptz`` (the codec of the store's pool
  connections, :func:`drain.store.database.use_drain_codecs`).

A package of its own, outside :mod:`drain.store`, so that it is compiled with the decode path
(drain.speedups) without mypyc having to analyse the store's I/O modules.
"""

from drain.pgwire.timestamptz import TimestamptzEncoder, decode_timestamptz, encode_timestamptz

__all__ = ["TimestamptzEncoder", "decode_timestamptz", "encode_timestamptz"]
