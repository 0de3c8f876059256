"""Session errors, each with its stable code."""

from __future__ import annotations

from enum import StrEnum

from session_service.core.errors import Conflict, InvalidInput, RefusalRecord, ServiceError


class InvalidReason(StrEnum):
    """Why a session token is not usable; every one tells the frontend to reset.

    `rotated`: the token was replaced by the one the details answer carried (another tab
    may hold it). `upgraded`: a bearer id from before tokens and ids were apart.
    """

    MALFORMED = "malformed"
    NOT_FOUND = "not_found"
    EXPIRED = "expired"
    RESET = "reset"
    ROTATED = "rotated"
    UPGRADED = "upgraded"


class SessionInvalid(ServiceError):
    """The caller's session token is missing, unknown, expired, replaced or superseded."""

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
    """A client proposed a token that is, or once was, a session's."""

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


class TokenReplaced(Conflict):
    """The token was replaced while this request waited for its session (a racing tab)."""

    code = "token_replaced"
    title = "Session token replaced meanwhile"


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
