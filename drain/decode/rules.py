"""What the decoder does with Heroku's own lines: which typed tables are on, how the
client's address is kept, and which lines are excluded before storage (pure).

Built from the settings (:meth:`drain.settings.Settings.line_rules`, which holds every
default: DRAIN_ROUTER_REQUESTS, DRAIN_PLATFORM_METRICS, DRAIN_PLATFORM_EVENTS,
DRAIN_ROUTER_FWD, DRAIN_CLIENT_HASH_KEY, DRAIN_EXCLUDE_LINES); nothing here has one.

Exclusion rules are written ``KIND.FIELD=GLOB``, comma-separated, e.g.
``router.path=/health*,router.path=/assets/*,metrics.source=run.*``. A line of that kind
whose field matches the glob (:mod:`fnmatch` syntax, case-sensitive, against the whole
value; ``*`` also crosses ``/``) is counted as the not-event kind ``excluded`` and stored
nowhere. The fields (:data:`EXCLUDABLE`):

- ``router``: ``path`` (with its query string), ``host``, ``method``, ``status``, ``dyno``,
  ``code``, ``protocol``;
- ``metrics`` (runtime and add-on metrics lines): ``source``, ``process`` (PROCID),
  ``dyno``, ``addon``;
- ``platform``: ``dyno`` (PROCID), ``code``, ``kind``.

A glob cannot hold a comma.
"""

from __future__ import annotations

import enum
import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = [
    "EXCLUDABLE",
    "ClientMode",
    "Exclusions",
    "LineRules",
    "parse_exclusions",
]

#: the fields each kind of line can be excluded by
EXCLUDABLE: dict[str, tuple[str, ...]] = {
    "router": ("path", "host", "method", "status", "dyno", "code", "protocol"),
    "metrics": ("source", "process", "dyno", "addon"),
    "platform": ("dyno", "code", "kind"),
}

#: kind -> field -> the compiled globs of that field (one pattern, the globs OR'ed)
Exclusions = Mapping[str, Mapping[str, re.Pattern[str]]]


class ClientMode(enum.StrEnum):
    """How a router line's client address (``fwd``) is kept (DRAIN_ROUTER_FWD)."""

    #: a keyed BLAKE2b hash in ``client_hash``, the address nowhere (the default)
    HASH = "hash"
    #: the hash, and the address as logged in ``fwd``
    RAW = "raw"
    #: neither (page views then have no distinct-client count)
    NONE = "none"


def parse_exclusions(text: str | None) -> dict[str, dict[str, re.Pattern[str]]]:
    """Compile DRAIN_EXCLUDE_LINES (see the module docstring); None or blank: no rule.

    Raises:
        ValueError: a rule is not ``KIND.FIELD=GLOB`` with a kind and field of
            :data:`EXCLUDABLE` and a non-empty glob; the message names the rule.
    """
    globs: dict[str, dict[str, list[str]]] = {}
    for rule in (part.strip() for part in (text or "").split(",")):
        if not rule:
            continue
        target, sep, glob = rule.partition("=")
        kind, dot, name = target.strip().partition(".")
        glob = glob.strip()
        if not sep or not dot or not glob or name not in EXCLUDABLE.get(kind, ()):
            fields = "; ".join(f"{k}: {', '.join(v)}" for k, v in EXCLUDABLE.items())
            raise ValueError(
                f"{rule!r} is not KIND.FIELD=GLOB, e.g. router.path=/health* (fields: {fields})"
            )
        globs.setdefault(kind, {}).setdefault(name, []).append(glob)
    return {
        kind: {
            name: re.compile("|".join(fnmatch.translate(glob) for glob in patterns))
            for name, patterns in by_field.items()
        }
        for kind, by_field in globs.items()
    }


@dataclass(frozen=True, slots=True)
class LineRules:
    """What the decoder makes of Heroku's own lines (see the module docstring).

    Attributes:
        router: router lines go to ``router_requests`` (DRAIN_ROUTER_REQUESTS); off: they
            are counted ``untagged``, as before drain read them.
        metrics: runtime and add-on metrics lines go to ``platform_metrics``
            (DRAIN_PLATFORM_METRICS); off: ``untagged``.
        platform: platform errors and state changes, and the router's error lines, go to
            ``platform_events`` (DRAIN_PLATFORM_EVENTS); off: ``untagged``, and the loss
            lines (L10 ... L15) the not-event kind ``logplex_error``.
        client: how the client address of router lines is kept (DRAIN_ROUTER_FWD).
        client_key: the BLAKE2b key of ``client_hash`` (1-64 bytes; DRAIN_CLIENT_HASH_KEY,
            else the key drain keeps in its database); unused with :attr:`ClientMode.NONE`.
        exclude: the compiled exclusion rules (:func:`parse_exclusions`).

    Raises:
        ValueError: ``client_key`` is empty (unless ``client`` is NONE) or over 64 bytes.
    """

    router: bool
    metrics: bool
    platform: bool
    client: ClientMode
    client_key: bytes = field(repr=False)
    exclude: Exclusions

    def __post_init__(self) -> None:
        if len(self.client_key) > 64 or (
            not self.client_key and self.client is not ClientMode.NONE
        ):
            raise ValueError("LineRules.client_key must be 1-64 bytes (BLAKE2b's key)")
