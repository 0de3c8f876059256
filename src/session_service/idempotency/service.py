"""Idempotency rules: the key's form, its scope, the crypto, and what a stored answer decides.

A request sent with an `Idempotency-Key` claims the key in its own unit of work, before it
does anything: a placeholder row, found by the digest of the key's scope, is inserted and
filled with the sealed answer just before the request commits. A failure rolls the
placeholder back with everything else, so only successful answers are ever kept, and a
retry of a failed request runs again. A retry of a successful one finds the row and gets
the stored answer back, if it is the same request; another request under the same key is
refused (`IdempotencyKeyReused`).

The scope is the operation, the `X-Session-ID` header exactly as presented (or its
absence) and the key. The database keeps the SHA-256 digest of it (`lookup`) and, for the
answer, AES-256-GCM ciphertext under a key derived with HKDF-SHA256 from the idempotency key
and the presented token: whoever reads the table learns neither, and cannot open an answer
(create's and reset's carry a new session token) without the client's own key and token.
No SQL and no HTTP types here.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy.ext.asyncio import AsyncSession

from session_service.core.clock import Clock
from session_service.idempotency.errors import (
    IdempotencyKeyInUse,
    IdempotencyKeyInvalid,
    IdempotencyKeyReused,
)
from session_service.idempotency.repository import IdempotencyRepository, StoredKey

MAX_KEY_LENGTH = 255
# A claim that finds a row gone again (erased, expired and replaced) tries again, this often.
MAX_CLAIMS = 3
NONCE_BYTES = 12
_LOOKUP_CONTEXT = b"session-service idempotency lookup v1"
_KEYS_CONTEXT = b"session-service idempotency keys v1"


def parse_key(values: Sequence[str]) -> str:
    """The one `Idempotency-Key` sent: 1 to 255 visible ASCII characters (`!` to `~`).

    Taken as it is: a Structured Field string's quotes, if a client sends them, are part of
    the key, as they are on every retry of the same call.
    """
    if len(values) != 1:
        raise IdempotencyKeyInvalid("Send one Idempotency-Key header, not several.")
    key = values[0]
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not all("!" <= char <= "~" for char in key):
        raise IdempotencyKeyInvalid(
            f"An Idempotency-Key is 1 to {MAX_KEY_LENGTH} visible ASCII characters "
            "(a fresh UUID per call, reused by its retries)."
        )
    return key


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    """A successful answer as it was sent: status, JSON body, `Location` if any."""

    status: int
    body: bytes
    location: str | None = None


@dataclass(frozen=True, slots=True)
class Claim:
    """A key this request holds: its placeholder is in the request's unit of work."""

    lookup: str
    request_digest: str
    answer_key: bytes


@dataclass(frozen=True, slots=True)
class _Secrets:
    lookup: str
    answer_key: bytes
    request_key: bytes


def _framed(value: bytes | None) -> bytes:
    """A value that cannot run into the next one: absent, or its length and its bytes."""
    if value is None:
        return b"\x00"
    return b"\x01" + len(value).to_bytes(4, "big") + value


def _secrets(operation: str, credential: str | None, key: str) -> _Secrets:
    """The scope's lookup digest and the keys derived from the client's key and token.

    Header values arrive decoded as Latin-1, which gives back their bytes exactly.
    """
    token = None if credential is None else credential.encode("latin-1")
    material = _framed(key.encode("ascii")) + _framed(token)
    context = _framed(operation.encode())
    lookup = hashlib.sha256(_LOOKUP_CONTEXT + context + material).hexdigest()
    derived = HKDF(algorithm=SHA256(), length=64, salt=None, info=_KEYS_CONTEXT + context).derive(
        material
    )
    return _Secrets(lookup=lookup, answer_key=derived[:32], request_key=derived[32:])


def _request_digest(secrets: _Secrets, *, method: str, path: str, body: bytes) -> str:
    """Which request this is: keyed, so the table holds no digest of a body anyone can test."""
    message = _framed(method.encode()) + _framed(path.encode()) + _framed(body)
    return hmac.new(secrets.request_key, message, hashlib.sha256).hexdigest()


def _seal(claim: Claim, answer: StoredAnswer) -> bytes:
    """The answer as AES-256-GCM ciphertext, bound to its row (the lookup is associated data)."""
    plain = json.dumps(
        {"status": answer.status, "location": answer.location, "body": answer.body.decode()},
        separators=(",", ":"),
    ).encode()
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(claim.answer_key).encrypt(nonce, plain, claim.lookup.encode())


def _open(secrets: _Secrets, sealed: bytes) -> StoredAnswer:
    nonce, ciphertext = sealed[:NONCE_BYTES], sealed[NONCE_BYTES:]
    plain = AESGCM(secrets.answer_key).decrypt(nonce, ciphertext, secrets.lookup.encode())
    data = json.loads(plain)
    body: str = data["body"]
    return StoredAnswer(status=data["status"], body=body.encode(), location=data["location"])


class IdempotencyService:
    """Claims keys and keeps their first answers; one per process."""

    def __init__(self, *, clock: Clock, ttl: timedelta) -> None:
        self.clock = clock
        self.ttl = ttl

    async def claim(
        self,
        key: str,
        *,
        operation: str,
        credential: str | None,
        method: str,
        path: str,
        body: bytes,
        db: AsyncSession,
    ) -> Claim | StoredAnswer:
        """Claim `key` for this request, or get the stored first answer of the same request.

        On PostgreSQL a claim racing another of the same scope waits for it (the unique
        lookup) and then finds its answer; on SQLite write transactions run one at a time.
        An expired row is replaced, not replayed. A different request under the key is
        `IdempotencyKeyReused`; a row still without its answer, `IdempotencyKeyInUse`.
        """
        secrets = _secrets(operation, credential, key)
        digest = _request_digest(secrets, method=method, path=path, body=body)
        repository = IdempotencyRepository(db)
        now = self.clock()
        for _ in range(MAX_CLAIMS):
            stored = await repository.find(secrets.lookup)
            if stored is not None and stored.expires_at > now:
                return self._decide(stored, secrets, digest)
            if stored is not None:
                await repository.forget_expired(secrets.lookup, now=now)
            if await repository.claim(
                secrets.lookup, request_digest=digest, now=now, expires_at=now + self.ttl
            ):
                return Claim(
                    lookup=secrets.lookup, request_digest=digest, answer_key=secrets.answer_key
                )
        raise IdempotencyKeyInUse(_IN_USE)

    async def keep(
        self, claim: Claim, answer: StoredAnswer, *, session_id: uuid.UUID, db: AsyncSession
    ) -> None:
        """Store the successful answer of the claimed key, sealed, as the session's."""
        if not 200 <= answer.status < 300:
            raise ValueError("only successful answers are kept")
        await IdempotencyRepository(db).fill(
            claim.lookup, session_id=session_id, answer=_seal(claim, answer)
        )

    def _decide(self, stored: StoredKey, secrets: _Secrets, digest: str) -> StoredAnswer:
        if not hmac.compare_digest(stored.request_digest, digest):
            raise IdempotencyKeyReused(
                "This Idempotency-Key was already used for a different request; send a new "
                "key with each new request."
            )
        if stored.answer is None:
            raise IdempotencyKeyInUse(_IN_USE)
        return _open(secrets, stored.answer)


_IN_USE = "A request with this Idempotency-Key is still being processed; retry shortly."
