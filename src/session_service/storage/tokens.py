"""Signed, expiring tokens for the local backend's upload and download URLs.

itsdangerous signs the payload (HMAC-SHA1 over a derived key, with a salt per purpose so
an upload token is never a download token); the expiry travels inside the signed payload
and is checked against the service's clock. Several keys verify, the first signs: add a
new key in front, wait out the URL lifetime, then drop the old one.
"""

from __future__ import annotations

import os
import secrets
from datetime import datetime
from pathlib import Path
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer

from session_service.core.clock import Clock


class TokenInvalid(Exception):
    """The token is forged, altered, for another purpose, or malformed."""


class TokenExpired(Exception):
    """The token was genuine but its time is up."""


class TokenSigner:
    """Signs and verifies payloads for one purpose (`salt`)."""

    def __init__(self, keys: list[str], *, salt: str, clock: Clock) -> None:
        if not keys:
            raise ValueError("at least one signing key is needed")
        # itsdangerous signs with the last key of the list and verifies with all of them.
        self._serializer = URLSafeSerializer(list(reversed(keys)), salt=salt)
        self._clock = clock

    def sign(self, payload: dict[str, Any], *, expires_at: datetime) -> str:
        """A URL-safe token carrying `payload` until `expires_at`."""
        return str(self._serializer.dumps({**payload, "exp": int(expires_at.timestamp())}))

    def verify(self, token: str) -> dict[str, Any]:
        """The payload of a genuine, unexpired token."""
        try:
            payload = self._serializer.loads(token)
        except BadSignature as error:
            raise TokenInvalid from error
        if not isinstance(payload, dict) or not isinstance(payload.get("exp"), int):
            raise TokenInvalid
        if payload["exp"] < self._clock().timestamp():
            raise TokenExpired
        return payload


def load_signing_keys(configured: list[str], key_file: Path) -> list[str]:
    """The configured keys, or the per-install key file (created on first start).

    Blocking file I/O: call it at start-up, off the event loop.
    """
    if configured:
        return configured
    try:
        return [key_file.read_text().strip()]
    except FileNotFoundError:
        pass
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    try:
        descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first
        return [key_file.read_text().strip()]
    with os.fdopen(descriptor, "w") as handle:
        handle.write(key + "\n")
    return [key]
