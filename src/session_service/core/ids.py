"""Session ids and tokens: both canonical UUIDs version 4, the only kind the service issues.

A session has a public id (it names the session in logs, the audit trail, storage keys
and service routes; knowing it grants nothing) and a secret token (the browser's bearer
credential, sent in `X-Session-ID`). The token has 122 random bits from the OS, is shown
only in the answer that issues it, and is kept at rest as its SHA-256 digest alone.

Accepted: the 36-character hyphenated form, any letter case (RFC 9562 makes hex digits
case-insensitive on input); stored and answered in lower case. Rejected: braces, `urn:uuid:`,
missing hyphens, surrounding or inner whitespace, other versions and the non-RFC variants.
"""

from __future__ import annotations

import hashlib
import re
import uuid

_UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def parse_uuid4(raw: str | None) -> uuid.UUID | None:
    """The UUIDv4 in `raw`, or None when it is missing or not in the accepted form."""
    if raw is None or len(raw) != 36:
        return None
    lowered = raw.lower()
    if _UUID4.fullmatch(lowered) is None:
        return None
    return uuid.UUID(lowered)


parse_session_id = parse_uuid4
parse_token = parse_uuid4


def new_session_id() -> uuid.UUID:
    """A fresh public id."""
    return uuid.uuid4()


def new_token() -> uuid.UUID:
    """A fresh secret token: 122 random bits from the OS CSPRNG (`uuid4` reads `os.urandom`)."""
    return uuid.uuid4()


# A run of this many equal hex digits marks a made-up value (`00000000-0000-4000-8000-...`).
WEAK_RUN = 8
_WEAK = re.compile(rf"([0-9a-f])\1{{{WEAK_RUN - 1},}}")


def is_weak(value: uuid.UUID) -> bool:
    """Whether a proposed value has a run of `WEAK_RUN` or more equal hex digits."""
    return _WEAK.search(value.hex) is not None


def token_digest(token: uuid.UUID) -> str:
    """The SHA-256 hex digest of a token: all the database keeps of it."""
    return hashlib.sha256(str(token).encode()).hexdigest()
