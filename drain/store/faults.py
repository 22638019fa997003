"""Who is to blame for an exception raised while writing to PostgreSQL, and what to do.

=====================  ==========================================  =======================
class                  examples                                    what the writer does
=====================  ==========================================  =======================
``UNAVAILABLE``        OSError, TimeoutError, 08xxx, 53xxx,        every request of the
                       57xxx (57P01 admin shutdown, 57P03 cannot   group gets
                       connect now, 57014 canceled), 58xxx,        DatabaseUnavailable
                       55P03 lock timeout, 25006 read-only,        (web: 503; Logplex
                       closed connection, InternalClientError      retries, ledger dedups)
``RETRY``              40001 serialization, 40P01 deadlock          retry the group, up to
                                                                   ``max_retries`` times,
                                                                   then DatabaseUnavailable
``MISSING_PARTITION``  23514 "no partition of relation found"      forget the partition
                                                                   cache, retry the group
``DATA``               class 22 (jsonb/numeric/encoding), 54000,   redo the group with one
                       asyncpg.DataError, UnicodeEncodeError       savepoint per batch,
                                                                   bisect the bad batch,
                                                                   quarantine refused rows
                                                                   REJECTED_BY_DATABASE
``UNEXPECTED``         anything else (42P01 not migrated, bugs)    logged; every request of
                                                                   the group gets that
                                                                   exception
=====================  ==========================================  =======================

SQLSTATEs from PostgreSQL's "Appendix A. PostgreSQL Error Codes".
"""

from __future__ import annotations

import enum

import asyncpg

__all__ = ["ErrorClass", "classify_error", "describe"]


class ErrorClass(enum.Enum):
    """What the writer does about an exception raised while writing a group."""

    UNAVAILABLE = "unavailable"
    RETRY = "retry"
    MISSING_PARTITION = "missing_partition"
    DATA = "data"
    UNEXPECTED = "unexpected"


_UNAVAILABLE_SQLSTATE_CLASSES = frozenset({"08", "53", "57", "58"})
_UNAVAILABLE_SQLSTATES = frozenset({"55P03", "25006"})
_RETRY_SQLSTATES = frozenset({"40001", "40P01"})


def classify_error(exc: BaseException) -> ErrorClass:
    """Sort an exception from a write attempt into an :class:`ErrorClass` (table above)."""
    if isinstance(exc, asyncpg.PostgresError):
        code = str(exc.sqlstate or "")
        if code in _RETRY_SQLSTATES:
            return ErrorClass.RETRY
        if code[:2] in _UNAVAILABLE_SQLSTATE_CLASSES or code in _UNAVAILABLE_SQLSTATES:
            return ErrorClass.UNAVAILABLE
        if code[:2] == "22" or code == "54000":
            return ErrorClass.DATA
        if code == "23514" and "no partition" in str(exc):
            return ErrorClass.MISSING_PARTITION
        return ErrorClass.UNEXPECTED
    # asyncpg.DataError: the client could not encode a value (subclass of InterfaceError).
    if isinstance(exc, asyncpg.DataError | UnicodeEncodeError):
        return ErrorClass.DATA
    if isinstance(exc, asyncpg.exceptions.ConnectionDoesNotExistError | OSError | TimeoutError):
        return ErrorClass.UNAVAILABLE
    if isinstance(exc, asyncpg.InterfaceError) and "closed" in str(exc):
        return ErrorClass.UNAVAILABLE
    # "cannot switch to state ...; another operation is in progress": a connection left
    # half-way by a server going away (seen during pg_ctl stop -m fast under load).
    if isinstance(exc, asyncpg.InternalClientError):
        return ErrorClass.UNAVAILABLE
    return ErrorClass.UNEXPECTED


def describe(exc: BaseException) -> str:
    """``"SQLSTATE Class: message"`` (or ``"Class: message"``) for logs and ``/health``."""
    code = getattr(exc, "sqlstate", None)
    text = f"{type(exc).__name__}: {exc}"
    return f"{code} {text}" if code else text
