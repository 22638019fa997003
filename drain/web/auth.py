"""Who may post to the drain: HTTP Basic credentials, a bearer token and the drain-token
allow-list.

Pure functions of header values; the web layer (drain.web.access) turns a refusal into a
response:

- :func:`check_basic` false -> ``401`` with ``WWW-Authenticate: Basic realm="drain"``
  (:data:`WWW_AUTHENTICATE`). Logplex treats every 4xx except 429 as final and drops the
  batch, which is right for a drain configured with the wrong password: retrying cannot help,
  and ``heroku drains`` shows the failures. An OTLP exporter drops it too (OTLP
  specification, "OTLP/HTTP": only 429, 502, 503 and 504 are retried).
- :func:`check_bearer` false -> the same ``401`` (with a ``Bearer`` challenge, RFC 6750 §3):
  the token of ``Authorization: Bearer <token>`` (RFC 6750 §2.1), which a Fir telemetry
  drain sends as one of its ``--headers`` and log-shuttle with ``-bearer-token``.
- :func:`check_drain_token` false -> ``403``. The ``Logplex-Drain-Token`` header (``d.<uuid>``)
  names the Logplex drain that sent the batch; a token not on the DRAIN_TOKENS allow-list is
  someone else's drain pointed at this URL, and its batches should be dropped for good, which
  is what Logplex does on a 403 (only 429 and 5xx are retried).

Comparisons use :func:`hmac.compare_digest` so the time taken does not reveal how much of a
guess was right; the user name and the password are both compared every time.
"""

from __future__ import annotations

import base64
import binascii
import hmac

__all__ = [
    "BEARER_CHALLENGE",
    "WWW_AUTHENTICATE",
    "auth_scheme",
    "check_basic",
    "check_bearer",
    "check_drain_token",
    "parse_basic",
]

#: The challenge sent with every 401 (RFC 7617 §2).
WWW_AUTHENTICATE = 'Basic realm="drain", charset="UTF-8"'
#: The challenge added when a bearer token is configured (RFC 6750 §3).
BEARER_CHALLENGE = 'Bearer realm="drain"'

# Compared against when the header is malformed, so that a refusal costs the same work.
_DUMMY = b"\x00" * 32


def parse_basic(header: str | None) -> tuple[bytes, bytes] | None:
    """Split an ``Authorization: Basic <base64(user:password)>`` header (RFC 7617 §2).

    Returns:
        (user, password) as raw bytes, or None when the header is missing, uses another
        scheme, is not base64, or has no ``:`` after decoding. Never raises.
    """
    if header is None:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic" or not value.strip():
        return None
    try:
        decoded = base64.b64decode(value.strip().encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return None
    user, colon, password = decoded.partition(b":")
    if not colon:
        return None
    return user, password


def check_basic(header: str | None, *, username: str, password: str) -> bool:
    """True when ``header`` carries exactly ``username`` and ``password`` (UTF-8).

    Both parts are compared in constant time, and both are always compared, so a wrong
    user name takes as long to refuse as a wrong password. Malformed headers (bad base64,
    no colon, wrong scheme, bytes that are not UTF-8) are refused after the same work.
    """
    expected_user = username.encode("utf-8")
    expected_password = password.encode("utf-8")
    parsed = parse_basic(header)
    if parsed is None:
        given_user, given_password, well_formed = _DUMMY, _DUMMY, False
    else:
        given_user, given_password = parsed
        well_formed = True
    user_ok = hmac.compare_digest(given_user, expected_user)
    password_ok = hmac.compare_digest(given_password, expected_password)
    return well_formed & user_ok & password_ok


def auth_scheme(header: str | None) -> str:
    """The scheme of an ``Authorization`` header, lower case (RFC 7235 §2.1: schemes are
    case-insensitive); ``""`` when there is none."""
    if header is None:
        return ""
    return header.strip().partition(" ")[0].lower()


def check_bearer(header: str | None, *, token: str) -> bool:
    """True when ``header`` is ``Bearer <token>`` with exactly ``token`` (RFC 6750 §2.1).

    Compared in constant time; a missing or malformed header is refused after the same
    work. Never raises.
    """
    expected = token.encode("utf-8")
    given = _DUMMY
    well_formed = False
    if header is not None:
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            given = value.strip().encode("utf-8", "surrogateescape")
            well_formed = True
    return well_formed & hmac.compare_digest(given, expected)


def check_drain_token(token: str | None, allowed: frozenset[str] | None) -> bool:
    """True when ``allowed`` is None (no allow-list) or ``token`` is one of its members.

    A missing token is refused when an allow-list is set (log-shuttle posting directly
    sends none; leave DRAIN_TOKENS unset for it). Each member is compared in constant time.
    """
    if allowed is None:
        return True
    if token is None:
        return False
    given = token.encode("utf-8", "surrogateescape")
    found = False
    for candidate in allowed:
        found |= hmac.compare_digest(given, candidate.encode("utf-8"))
    return found
