"""Session id format: canonical UUID version 4, the only kind the service issues.

Accepted: the 36-character hyphenated form, any letter case (RFC 9562 makes hex digits
case-insensitive on input); stored and answered in lower case. Rejected: braces, `urn:uuid:`,
missing hyphens, surrounding or inner whitespace, other versions and the non-RFC variants.
"""

from __future__ import annotations

import hashlib
import re
import uuid

_UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def parse_session_id(raw: str | None) -> uuid.UUID | None:
    """The UUIDv4 in `raw`, or None when it is missing or not in the accepted form."""
    if raw is None or len(raw) != 36:
        return None
    lowered = raw.lower()
    if _UUID4.fullmatch(lowered) is None:
        return None
    return uuid.UUID(lowered)


def new_session_id() -> uuid.UUID:
    """A fresh id with 122 random bits from the OS CSPRNG."""
    return uuid.uuid4()


# A run of this many equal hex digits marks a made-up value (`00000000-0000-4000-8000-...`).
WEAK_RUN = 8
_WEAK = re.compile(rf"([0-9a-f])\1{{{WEAK_RUN - 1},}}")


def is_weak(value: uuid.UUID) -> bool:
    """Whether a proposed value has a run of `WEAK_RUN` or more equal hex digits."""
    return _WEAK.search(value.hex) is not None


def bearer_digest(value: uuid.UUID) -> str:
    """The SHA-256 hex digest of a bearer value, which is all a tombstone keeps of it."""
    return hashlib.sha256(str(value).encode()).hexdigest()
