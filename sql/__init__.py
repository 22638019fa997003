"""SQL shipped with drain: ``migrations/`` (applied in order by ``drain migrate``)."""
