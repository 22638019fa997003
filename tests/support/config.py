"""Configurations for tests, built from :meth:`Settings.defaults` (the one source of
defaults; the environment of the shell running the tests is not read)."""

from __future__ import annotations

import dataclasses
from typing import Any

from drain.decode.limits import DecodeLimits
from drain.rollups.clock import ClockConfig
from drain.settings import Settings
from drain.store.lifecycle import RetentionPolicy
from drain.store.writer import WriterConfig

DEFAULTS = Settings.defaults()
#: the decoder's default bounds
LIMITS = DEFAULTS.decode_limits()


def decode_limits(**overrides: Any) -> DecodeLimits:
    """The default decode limits with ``overrides``."""
    return dataclasses.replace(LIMITS, **overrides)


def writer_config(**overrides: Any) -> WriterConfig:
    """The default writer configuration (one worker) with ``overrides``."""
    return dataclasses.replace(DEFAULTS.writer_config(), **overrides)


def retention_policy(**overrides: Any) -> RetentionPolicy:
    """The default retention policy with ``overrides``."""
    return dataclasses.replace(DEFAULTS.retention_policy(), **overrides)


def clock_config(**overrides: Any) -> ClockConfig:
    """The default clock configuration with ``overrides``."""
    return dataclasses.replace(DEFAULTS.clock_config(), **overrides)
