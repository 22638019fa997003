"""Heroku's own loss reports: how many lines were dropped upstream, and since when (pure).

Logplex and log-shuttle tell a drain when they could not deliver lines to it. The drain
cannot get those lines back, but the user must learn that events were lost before they
reached it. Three signals exist in the wild:

=========  ===============================================================================
source     what arrives
=========  ===============================================================================
``L10``    Logplex (APP-NAME ``heroku``, PROCID ``logplex``), when its output buffer for the
           drain overflowed, in two wordings (Heroku Dev Center, "Logging: Error codes";
           heroku/logplex issue #105; a user's report of 2020)::

               Error L10 (output buffer overflow): 1 messages dropped since
                   2014-11-07T23:29:45+00:00.
               Error L10 (output buffer overflow): drain 'd.cfcd3264-…' dropped 1 messages
                   since 2020-06-12T14:40:59.280571+00:00.

           (each one line; cut here to fit)

``L13``    log-shuttle (PROCID ``log-shuttle``), after it gave up on a batch::

               Error L13: 1 messages lost since 2026-11-30T22:43:00.082055+00:00

``header`` log-shuttle's request header ``Logplex-Lost-Count: N`` on the next batch it
           delivers; the same loss as its L13 line, so the two are not added up.
=========  ===============================================================================

This module says which lines are loss reports (:func:`is_loss_line`: the Logplex decoder
counts them as the not-event kind ``logplex_error`` and keeps their reports in its ledger)
and reads the numbers out of them. Nothing here does I/O: the lines and the header arrive as
arguments.

Per batch, the messages lost are the sum of its L10 reports plus the larger of its L13
reports' sum and the ``Logplex-Lost-Count`` header (see :func:`batch_loss`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from drain.decode.syslog import parse_timestamp
from drain.records import LostReport

__all__ = [
    "SOURCE_HEADER",
    "SOURCE_L10",
    "SOURCE_L13",
    "BatchLoss",
    "batch_loss",
    "is_loss_line",
    "parse_lost_count_header",
    "parse_lost_line",
]

SOURCE_L10 = "L10"
SOURCE_L13 = "L13"
SOURCE_HEADER = "header"

#: counts longer than this many digits are not believed (a corrupted line)
_MAX_DIGITS = 15

#: the ``since`` token: read by parse_timestamp, so a garbled time still leaves the count
_TS = rb"(?P<since>[^\s]{1,64})"
_L10 = re.compile(
    rb"Error L10 \(output buffer overflow\): "
    rb"(?:drain '(?P<drain>[^'\s]{1,200})' dropped (?P<n1>\d{1,15}) messages"
    rb"|(?P<n2>\d{1,15}) messages dropped)"
    rb" since " + _TS
)
_L13 = re.compile(rb"Error L13: (?P<n1>\d{1,15}) messages lost since " + _TS)


@dataclass(frozen=True, slots=True)
class BatchLoss:
    """What one batch says about upstream loss.

    Fields:
        lost: messages lost in total for this batch (see the module docstring).
        reports: every report read, in body order, the header's last.
    """

    lost: int
    reports: tuple[LostReport, ...]

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
    return parse_timestamp(raw.removesuffix(b"."))  # L10 ends its sentence with a "."


def parse_lost_line(msg: bytes) -> LostReport | None:
    """Read a Logplex L10 or log-shuttle L13 MSG (the syslog line's MSG part, bytes).

    Returns:
        a :class:`LostReport` with source ``"L10"`` or ``"L13"``, or None when ``msg`` is
        neither wording (nothing raised: this reads untrusted input).

    Example::

        >>> parse_lost_line(b"Error L13: 3 messages lost since 2026-11-30T22:43:00Z").lost
        3
    """
    match = _L10.match(msg)
    if match is not None:
        count = match.group("n1") or match.group("n2")
        drain = match.group("drain")
        return LostReport(
            SOURCE_L10,
            int(count),
            _since(match.group("since")),
            drain.decode("ascii", "replace") if drain else None,
        )
    match = _L13.match(msg)
    if match is not None:
        return LostReport(SOURCE_L13, int(match.group("n1")), _since(match.group("since")))
    return None


def parse_lost_count_header(value: str | None) -> int | None:
    """The ``Logplex-Lost-Count`` header as a count, or None when absent or not a
    non-negative integer of at most 15 digits (ignored, never an error)."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit() and len(text) <= _MAX_DIGITS:
        return int(text)
    return None


def is_loss_line(app_name: bytes, proc_id: bytes, msg: bytes) -> bool:
    """True for Logplex's own ``Error L10`` lines (APP-NAME ``heroku``, PROCID ``logplex``)
    and log-shuttle's ``Error L13`` lines (PROCID ``log-shuttle``): the header fields as
    bytes, MSG without its line end."""
    if app_name == b"heroku" and proc_id == b"logplex":
        return msg.startswith(b"Error L10")
    return proc_id == b"log-shuttle" and msg.startswith(b"Error L13")


def batch_loss(reports: Iterable[LostReport], lost_count_header: str | None) -> BatchLoss:
    """Add up the loss reports of one batch.

    Args:
        reports: the reports read from the batch's lines (``Ledger.loss_reports``).
        lost_count_header: the request's ``Logplex-Lost-Count`` header, or None.

    Returns:
        a :class:`BatchLoss`: L10 counts add up; L13 lines and the header describe the same
        loss (log-shuttle sends both), so the larger of the two counts.
    """
    found = list(reports)
    l10 = sum(r.lost for r in found if r.source == SOURCE_L10)
    l13 = sum(r.lost for r in found if r.source == SOURCE_L13)
    header = parse_lost_count_header(lost_count_header)
    if header:
        found.append(LostReport(SOURCE_HEADER, header, None))
    return BatchLoss(l10 + max(l13, header or 0), tuple(found))
