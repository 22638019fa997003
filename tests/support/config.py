"""Configurations for tests, built from :meth:`Settings.defaults` (the one source of
defaults; the environment of the shell running the tests is not read)."""

from __future__ import annotations

import dataclasses
from typing import Any

from drain.decode.limits import DecodeLimits
from drain.decode.rules import LineRules
from drain.rollups.clock import ClockConfig
from drain.settings import Settings
from drain.store.lifecycle import RetentionPolicy
from drain.store.writer import WriterConfig

DEFAULTS = Settings.defaults()
#: the decoder's default bounds
LIMITS = DEFAULTS.decode_limits()
#: the key the tests hash client addresses with (the database's is random)
CLIENT_KEY = b"drain-tests-client-hash-key-0001"
#: the default rules for Heroku's own lines (every table on, fwd hashed with CLIENT_KEY)
RULES = DEFAULTS.line_rules(CLIENT_KEY)


def line_rules(**overrides: Any) -> LineRules:
    """The rules of :meth:`Settings.line_rules` for the defaults with these setting
    ``overrides`` (e.g. ``drain_router_requests=False``), hashing with CLIENT_KEY."""
    return Settings.defaults(**overrides).line_rules(CLIENT_KEY)


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
