"""What the first bytes of each allowed content type must be.

Completion reads only these bytes (a ranged read) and compares; adding a type is one line.
"""

from __future__ import annotations

SIGNATURES: dict[str, bytes] = {
    "application/pdf": b"%PDF-",
    "image/png": b"\x89PNG\r\n\x1a\n",
    "image/jpeg": b"\xff\xd8\xff",
}

LONGEST_SIGNATURE = max(len(signature) for signature in SIGNATURES.values())


def matches(content_type: str, first_bytes: bytes) -> bool:
    """Whether `first_bytes` start with the signature of `content_type`."""
    signature = SIGNATURES.get(content_type)
    return signature is not None and first_bytes.startswith(signature)
