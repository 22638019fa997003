"""The bounds applied while decoding a body, whatever its wire format (pure).

Built from the settings (:meth:`drain.settings.Settings.decode_limits`), which hold every
default; nothing here has one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["DecodeLimits"]


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """Bounds applied while decoding a body.

    Attributes:
        max_frame_bytes: a Logplex frame whose MSG-LEN is above this many bytes is
            quarantined FRAME_TOO_LONG (skipped by its count, not parsed)
            (DRAIN_MAX_FRAME_BYTES).
        max_quarantine_raw_bytes: bytes of ``raw`` kept per quarantine row
            (DRAIN_MAX_QUARANTINE_RAW_BYTES).
        accept_past_s: seconds before receipt an event's time may be; older events are
            quarantined OUT_OF_WINDOW (DRAIN_ACCEPT_PAST_S).
        accept_future_s: seconds after receipt an event's time may be (DRAIN_ACCEPT_FUTURE_S).
        max_frames: more frames than this in one body raise
            :class:`~drain.errors.TooManyFrames` (DRAIN_MAX_FRAMES_PER_BODY); None: no bound
            (``drain parse`` on a file).
    """

    max_frame_bytes: int
    max_quarantine_raw_bytes: int
    accept_past_s: float
    accept_future_s: float
    max_frames: int | None

    def window(self, now: datetime) -> tuple[datetime, datetime]:
        """The acceptance window ``(earliest, latest)`` around the receipt time ``now``
        (tz-aware), both inclusive.

        Raises:
            ValueError: ``now`` is naive.
        """
        if now.tzinfo is None:
            raise ValueError("now must be a tz-aware datetime")
        return (
            now - timedelta(seconds=self.accept_past_s),
            now + timedelta(seconds=self.accept_future_s),
        )
