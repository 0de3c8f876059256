"""Session errors, each with its stable code."""

from __future__ import annotations

from enum import StrEnum

from session_service.core.errors import Conflict, InvalidInput, RefusalRecord, ServiceError


class InvalidReason(StrEnum):
    """Why a session id is not usable; every one tells the frontend to reset."""

    MALFORMED = "malformed"
    NOT_FOUND = "not_found"
    EXPIRED = "expired"
    RESET = "reset"


class SessionInvalid(ServiceError):
    """The caller's session id is missing, unknown, expired or superseded."""

    status_code = 401
    code = "session_invalid"
    title = "Session invalid"

    def __init__(self, reason: InvalidReason, *, record: RefusalRecord | None = None) -> None:
        super().__init__(
            f"The session is not valid ({reason}); start a new one with a reset.",
            extra={"reason": reason.value, "action": "reset"},
            record=record,
        )
        self.reason = reason


class SessionExists(Conflict):
    """A client proposed an id that is already taken."""

    code = "session_exists"
    title = "Session already exists"


class ClientTokensDisabled(InvalidInput):
    """The client proposed its own session value, which this service does not accept."""

    code = "client_tokens_disabled"
    title = "Client-proposed sessions are disabled"


class WeakClientToken(InvalidInput):
    """The proposed value has a long run of one digit: a made-up value, not a random one."""

    code = "weak_client_token"
    title = "Proposed session value is not random"


class SessionIdExhausted(ServiceError):
    """Every freshly generated id collided; practically impossible with 122 random bits."""

    code = "session_id_exhausted"
    title = "Could not allocate a session id"


class SessionNotFound(ServiceError):
    """No session with this id (a service lookup)."""

    status_code = 404
    code = "session_not_found"
    title = "Session not found"


class WrongSessionStatus(Conflict):
    """The change is not allowed from the session's current status.

    The code names that status (`session_active`, `session_completed`, `session_reset`,
    `session_expired`), so the caller can switch on it.
    """

    title = "Not allowed in the session's current status"

    def __init__(self, status: str, detail: str) -> None:
        super().__init__(detail, extra={"session_status": status})
        self.code = f"session_{status}"  # type: ignore[misc]
