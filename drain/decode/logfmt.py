r"""logfmt: the ``key=value key="quoted value"`` lines of Heroku's router and metrics (pure).

Heroku writes its router lines, runtime metrics and add-on metrics in logfmt (Heroku Dev
Center, "HTTP Routing", "Log Runtime Metrics"; the convention of kr/logfmt)::

    at=error code=H12 desc="Request timeout" method=GET path="/" fwd="1.2.3.4, 5.6.7.8"
    source=web.1 dyno=heroku.2808254.d97d0ea7 sample#memory_rss=21.22MB sample#load_avg_1m=2.46

The grammar read here, on bytes::

    LINE  = *( *SP PAIR )
    PAIR  = KEY [ "=" VALUE ]
    KEY   = 1*( any byte but SP, TAB, CR, LF, "=", DQUOTE )
    VALUE = DQUOTE *( any byte but DQUOTE and "\" / "\" any byte ) [ DQUOTE ]
          / *( any byte but SP, TAB, CR, LF, DQUOTE )

A quoted value loses its quotes and its backslash escapes (``\"`` is ``"``, ``\\`` is
``\``); a quote that never closes runs to the end of the line. A key without ``=`` (a
flag) has the value None. Bytes that cannot start a pair (a stray ``=`` or quote) are
skipped. :func:`parse_logfmt` never raises and runs in time linear in the line (one
regular expression of possessive quantifiers, no backtracking; tests/decode/test_logfmt.py
checks both with hypothesis).
"""

from __future__ import annotations

import re
from typing import Final

from drain.decode.scan import contains

__all__ = ["parse_logfmt", "unquote"]

_PAIR: Final = re.compile(
    rb'([^\s="]++)(=("(?:[^"\\]++|\\.)*+"?|[^\s"]*+))?',
    re.DOTALL,
)
_ESCAPE: Final = re.compile(rb"\\(.)", re.DOTALL)


def unquote(value: bytes) -> bytes:
    """A logfmt VALUE as bytes without its quotes and escapes (an unquoted value as is).

    ``"a \\"b\\""`` is ``a "b"``; a value whose closing quote is missing (or escaped) keeps
    everything after its opening quote.
    """
    if value[:1] != b'"':
        return value
    inner = value[1:]
    if len(inner) and inner[-1:] == b'"':
        # closed unless that quote is escaped (an odd run of backslashes before it)
        run = len(inner) - 1 - len(inner[:-1].rstrip(b"\\"))
        if run % 2 == 0:
            inner = inner[:-1]
    return _ESCAPE.sub(rb"\1", inner) if contains(inner, b"\\") else inner


def parse_logfmt(line: bytes) -> list[tuple[bytes, bytes | None]]:
    """The ``(key, value)`` pairs of a logfmt line, in order, values unquoted (see the
    module docstring); a flag's value is None. A key that appears twice is listed twice.

    Never raises, whatever the bytes; linear time.

    Example::

        >>> parse_logfmt(b'at=info desc="Request timeout" ok')
        [(b'at', b'info'), (b'desc', b'Request timeout'), (b'ok', None)]
    """
    return [(key, unquote(value) if eq else None) for key, eq, value in _PAIR.findall(line)]
