"""Idempotency errors, each with its stable code."""

from __future__ import annotations

from session_service.core.errors import RETRY_AFTER_SECONDS, Conflict, InvalidInput, ServiceError


class IdempotencyKeyInvalid(ServiceError):
    """The `Idempotency-Key` header is not 1 to 255 visible ASCII characters (or is sent twice)."""

    status_code = 400
    code = "idempotency_key_invalid"
    title = "Invalid Idempotency-Key"


class IdempotencyKeyReused(InvalidInput):
    """The key was used, in the same scope, for a different request (operation, path, body)."""

    code = "idempotency_key_reused"
    title = "Idempotency-Key reused"


class IdempotencyKeyInUse(Conflict):
    """A request with this key is still being processed; its answer is not there yet."""

    code = "idempotency_key_in_use"
    title = "Idempotency-Key in use"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
