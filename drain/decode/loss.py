"""Heroku's own loss reports: how many lines were dropped upstream, and since when (pure).

Logplex and log-shuttle tell a drain when they could not deliver lines to it. The drain
cannot get those lines back, but the user must learn that the senders believe lines were
lost. Heroku Dev Center ("Heroku Error Codes") names six logging errors; the signals, as
they arrive:

=============================  ================================================================
source                         what arrives
=============================  ================================================================
``L10`` drain buffer overflow  Logplex (APP-NAME ``heroku``, PROCID ``logplex``), when its
                               buffer for this drain overflowed, in two wordings (Dev Center;
                               heroku/logplex ``logplex_syslog_utils.erl`` and issue #105)::

                                 Error L10 (output buffer overflow): 1 messages dropped since
                                     2014-11-07T23:29:45+00:00.
                                 Error L10 (output buffer overflow): drain 'd.cfcd3264-…'
                                     dropped 1 messages since 2020-06-12T14:40:59.280571+00:00.

``L11`` tail buffer overflow   Logplex, to a ``heroku logs --tail`` session that fell behind
                               (heroku/logplex ``logplex_api.erl``)::

                                 Error L11 (Tail buffer overflow) -> This tail session dropped
                                     1 messages since 2021-01-01T00:00:00Z.

``L12`` local buffer overflow  log-shuttle (PROCID ``log-shuttle``, any APP-NAME), when lines
                               came faster than it could send them and it dropped some
                               (heroku/log-shuttle ``logplex_formatter.go``)::

                                 Error L12: 7100 messages dropped since 2026-11-30T22:43:00Z

``L13`` local delivery error   log-shuttle, after it gave up on a batch::

                                 Error L13: 1 messages lost since 2026-11-30T22:43:00.082055+00:00

``L14`` certificate            Logplex, when a TLS syslog drain's certificate does not
validation error               validate (``Error L14 (certificate validation): error="…"
                               uri="…"``): no count
``L15`` tail buffer            a ``heroku logs`` request found the tail buffer unavailable: no
temporarily unavailable        count
``Logplex-Drop-Count``         log-shuttle's request header on the next batch it delivers: the
                               same loss as its L12 line
``Logplex-Lost-Count``         the same for its L13 line
=============================  ================================================================

(each line one line; cut here to fit). This module says which lines are loss reports
(:func:`is_loss_line`) and reads the numbers out of them. Nothing here does I/O: the lines
and the headers arrive as arguments.

Per batch (:func:`batch_loss`), the messages the senders report lost before they reached
this drain are the sum of its L10 reports, plus the larger of its L12 reports' sum and
``Logplex-Drop-Count``, plus the larger of its L13 reports' sum and ``Logplex-Lost-Count``
(log-shuttle sends a line and a header for one loss). L11 and L15 concern ``heroku logs``
sessions and L14 another (syslog) drain: they are read and kept, but they are not a loss
of this drain's lines.

A count is what the sender believes. log-shuttle counts a batch as lost when its POST
failed or timed out, also when the drain did store it but answered too late; its retries of
such a batch reach the drain as duplicates (drain.web.health words the warning so).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from drain.decode.syslog import parse_timestamp
from drain.records import LostReport

__all__ = [
    "DROPPED_CODES",
    "LOSS_CODES",
    "SOURCE_DROP_HEADER",
    "SOURCE_L10",
    "SOURCE_L11",
    "SOURCE_L12",
    "SOURCE_L13",
    "SOURCE_L14",
    "SOURCE_L15",
    "SOURCE_LOST_HEADER",
    "BatchLoss",
    "batch_loss",
    "is_loss_line",
    "parse_count_header",
    "parse_lost_count_header",
    "parse_lost_line",
]

SOURCE_L10: Final = "L10"
SOURCE_L11: Final = "L11"
SOURCE_L12: Final = "L12"
SOURCE_L13: Final = "L13"
SOURCE_L14: Final = "L14"
SOURCE_L15: Final = "L15"
SOURCE_DROP_HEADER: Final = "Logplex-Drop-Count"
SOURCE_LOST_HEADER: Final = "Logplex-Lost-Count"

#: the codes whose counts are lines of this drain lost before they reached it
DROPPED_CODES: Final = (SOURCE_L10, SOURCE_L12, SOURCE_L13)
#: every logging error code (Heroku Dev Center, "Heroku Error Codes")
LOSS_CODES: Final = (SOURCE_L10, SOURCE_L11, SOURCE_L12, SOURCE_L13, SOURCE_L14, SOURCE_L15)

#: counts longer than this many digits are not believed (a corrupted line)
_MAX_DIGITS: Final = 15

#: ``Error L10`` ... ``Error L15`` at the start of MSG
_CODE: Final = re.compile(rb"Error (L1[0-5])(?![0-9])")
#: the count and the start of its period, in every wording of the module docstring; the
#: ``since`` token is read by parse_timestamp, so a garbled time still leaves the count
_COUNT: Final = re.compile(
    rb"(?:drain '(?P<drain>[^'\s]{1,200})' dropped (?P<n1>\d{1,15}) messages"
    rb"|dropped (?P<n2>\d{1,15}) messages"
    rb"|(?<![\d])(?P<n3>\d{1,15}) messages (?:dropped|lost))"
    rb" since (?P<since>[^\s]{1,64})"
)
#: the codes that carry no count: the line alone is the report
_UNCOUNTED: Final = frozenset({SOURCE_L14, SOURCE_L15})


@dataclass(frozen=True, slots=True)
class BatchLoss:
    """What one batch says about upstream loss.

    Fields:
        lost: messages the senders report lost before they reached this drain, in total for
            this batch (see the module docstring).
        by_code: ``lost`` by code: ``L10``, ``L12`` (its lines or Logplex-Drop-Count),
            ``L13`` (its lines or Logplex-Lost-Count); only the codes with a loss.
        reports: every report read, in body order, the headers' last (L11, L14 and L15
            included, which count in neither).
    """

    lost: int
    reports: tuple[LostReport, ...]
    by_code: dict[str, int]

    @property
    def latest(self) -> LostReport | None:
        """The report with the latest ``since`` (the last one when none has a time)."""
        if not self.reports:
            return None
        timed = [r for r in self.reports if r.since is not None]
        if not timed:
            return self.reports[-1]
        return max(timed, key=lambda r: r.since or datetime.min.replace(tzinfo=UTC))


def _since(raw: bytes) -> datetime | None:
    """The report's ``since`` time in UTC, by the TIMESTAMP rule of drain.decode.syslog (None
    when it does not parse or leaves datetime's range; never raises)."""
    return parse_timestamp(raw.removesuffix(b"."))  # Logplex ends its sentence with a "."


def parse_lost_line(msg: bytes) -> LostReport | None:
    """Read a Logplex or log-shuttle ``Error L10`` ... ``Error L15`` MSG (bytes).

    Returns:
        a :class:`LostReport` whose source is the code: for L10 ... L13 when the count and
        its ``since`` are there (any wording of the module docstring), for L14 and L15
        always (``lost`` 0); None when ``msg`` is none of these (nothing raised: this reads
        untrusted input).

    Example::

        >>> parse_lost_line(b"Error L12: 3 messages dropped since 2026-11-30T22:43:00Z").lost
        3
    """
    code_match = _CODE.match(msg)
    if code_match is None:
        return None
    code = code_match.group(1).decode("ascii")
    if code in _UNCOUNTED:
        return LostReport(code, 0, None)
    match = _COUNT.search(msg, code_match.end(), code_match.end() + 400)
    if match is None:
        return None
    count = match.group("n1") or match.group("n2") or match.group("n3")
    drain = match.group("drain")
    return LostReport(
        code,
        int(count),
        _since(match.group("since")),
        drain.decode("ascii", "replace") if drain else None,
    )


def parse_count_header(value: str | None) -> int | None:
    """A ``Logplex-Lost-Count`` or ``Logplex-Drop-Count`` header as a count, or None when
    absent or not a non-negative integer of at most 15 digits (ignored, never an error)."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit() and len(text) <= _MAX_DIGITS:
        return int(text)
    return None


#: the name this rule had when only Logplex-Lost-Count was read
parse_lost_count_header = parse_count_header


def is_loss_line(app_name: bytes, proc_id: bytes, msg: bytes) -> bool:
    """True for the logging errors ``Error L10`` ... ``Error L15`` (the header fields as
    bytes, MSG without its line end) that Logplex writes (APP-NAME ``heroku``, PROCID
    ``logplex``) and that log-shuttle writes (PROCID ``log-shuttle``, any APP-NAME: it
    writes the app's name there)."""
    if proc_id == b"log-shuttle" or (app_name == b"heroku" and proc_id == b"logplex"):
        return _CODE.match(msg) is not None
    return False


def batch_loss(
    reports: Iterable[LostReport],
    lost_count_header: str | None,
    drop_count_header: str | None = None,
) -> BatchLoss:
    """Add up the loss reports of one batch.

    Args:
        reports: the reports read from the batch's lines (``Ledger.loss_reports``).
        lost_count_header: the request's ``Logplex-Lost-Count`` header, or None.
        drop_count_header: the request's ``Logplex-Drop-Count`` header, or None.

    Returns:
        a :class:`BatchLoss`: L10 counts add up; L12 lines and Logplex-Drop-Count describe
        the same loss, as L13 lines and Logplex-Lost-Count do (log-shuttle sends both), so
        the larger of each pair counts; L11, L14 and L15 count in neither.
    """
    found = list(reports)
    sums = {code: sum(r.lost for r in found if r.source == code) for code in DROPPED_CODES}
    for name, value, code in (
        (SOURCE_DROP_HEADER, drop_count_header, SOURCE_L12),
        (SOURCE_LOST_HEADER, lost_count_header, SOURCE_L13),
    ):
        header = parse_count_header(value)
        if header:
            found.append(LostReport(name, header, None))
            sums[code] = max(sums[code], header)
    by_code = {code: n for code, n in sums.items() if n}
    return BatchLoss(sum(by_code.values()), tuple(found), by_code)
