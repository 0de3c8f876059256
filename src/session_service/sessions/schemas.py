"""Request and response bodies of the session API."""

from __future__ import annotations

import unicodedata
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, EmailStr, Field

from session_service.core.bodies import RequestBody
from session_service.core.ids import parse_session_id
from session_service.http.examples import DETAILS, FILE_ID, SESSION, TOKEN, examples
from session_service.sessions.errors import InvalidReason
from session_service.sessions.models import SessionStatus

RESET_NOTICE = "Your session has been reset due to a technical issue. Please start again."


def _uuid4(value: object) -> uuid.UUID:
    if isinstance(value, uuid.UUID) and value.version == 4:
        return value
    parsed = parse_session_id(value) if isinstance(value, str) else None
    if parsed is None:
        raise ValueError(
            "must be a UUID version 4 in the form xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx"
        )
    return parsed


SessionId = Annotated[uuid.UUID, BeforeValidator(_uuid4)]


class SessionCreate(RequestBody):
    """Optional body of a create: older frontends propose their own token."""

    # No body at all is the usual call; `id` only where ALLOW_CLIENT_TOKENS is on.
    model_config = examples({})

    id: SessionId | None = Field(
        default=None,
        description=(
            "A token (UUIDv4) proposed by the client; refused with `client_tokens_disabled` "
            "unless ALLOW_CLIENT_TOKENS is on. It stops working when details are given."
        ),
    )


class ResetReason(StrEnum):
    """Why the frontend asks for a new session."""

    MISSING = "missing"
    MALFORMED = "malformed"
    NOT_FOUND = "not_found"
    EXPIRED = "expired"
    RESET = "reset"
    ROTATED = "rotated"
    UPGRADED = "upgraded"
    TAMPERED = "tampered"
    USER_REQUESTED = "user_requested"


class ResetRequest(RequestBody):
    """Body of a reset; the old token, if any, travels in `X-Session-ID`."""

    model_config = examples({"reason": "expired"})

    reason: ResetReason = Field(strict=False)  # a JSON string names the member


ISSUED_HELP = (
    "The session token: the secret the browser sends in `X-Session-ID`. It appears only in "
    "the answer that issues it (create, reset, details); keep it like a password."
)


class SessionRead(BaseModel):
    """A session as its holder sees it."""

    model_config = examples(SESSION, from_attributes=True)

    id: uuid.UUID = Field(
        description="The public session id: names the session (support, storage); grants nothing."
    )
    status: SessionStatus
    created_at: datetime
    updated_at: datetime
    last_seen_at: datetime
    expires_at: datetime | None
    completed_at: datetime | None
    consent_user_data: bool
    consent_given_at: datetime | None
    previous_session_id: uuid.UUID | None


class SessionIssued(SessionRead):
    """A new session with its token (the create answer)."""

    model_config = examples({**SESSION, "token": TOKEN}, from_attributes=True)

    token: uuid.UUID = Field(description=ISSUED_HELP)


class SessionDetailsRead(SessionRead):
    """The holder's own session including the personal details they gave."""

    model_config = examples(DETAILS, from_attributes=True)

    name: str | None
    email: str | None


class DetailsAccepted(SessionDetailsRead):
    """The session with its details, and the new token that replaced the one sent."""

    model_config = examples({**DETAILS, "token": TOKEN}, from_attributes=True)

    token: uuid.UUID = Field(
        description=ISSUED_HELP + " The token sent with this request no longer works."
    )


class ValidationOk(BaseModel):
    """The token is valid; its session's idle expiry has been extended."""

    model_config = examples({"valid": True, "session": SESSION})

    valid: Literal[True] = True
    session: SessionRead


class ValidationFailed(BaseModel):
    """The token is not usable: the frontend must reset."""

    model_config = examples({"valid": False, "reason": "expired", "action": "reset"})

    valid: Literal[False] = False
    reason: InvalidReason
    action: Literal["reset"] = "reset"


class ResetRead(BaseModel):
    """The new session (with its token) and the notice to show the visitor."""

    model_config = examples(
        {"session": {**SESSION, "previous_session_id": FILE_ID, "token": TOKEN}}
    )

    session: SessionIssued
    notice: str = RESET_NOTICE


def _a_display_name(value: str) -> str:
    """Runs after the type check: only a string reaches it."""
    name = value.strip()
    if not 1 <= len(name) <= 100:
        raise ValueError("must be 1 to 100 characters after trimming")
    if any(unicodedata.category(char).startswith("C") for char in name):
        raise ValueError("must not contain control or invisible formatting characters")
    return name


def _exactly_true(value: object) -> object:
    """`Literal[True]` alone also takes 1 and 1.0 (they equal True): consent is `true` only."""
    if value is not True:
        raise ValueError("must be true")
    return value


class DetailsUpdate(RequestBody):
    """The visitor's details, stored only with explicit consent."""

    model_config = examples(
        {"name": "Ada Lovelace", "email": "ada@example.com", "consent_user_data": True}
    )

    name: Annotated[str, AfterValidator(_a_display_name)] = Field(
        description="1 to 100 characters after trimming, no control characters."
    )
    email: EmailStr = Field(max_length=254)
    consent_user_data: Annotated[Literal[True], BeforeValidator(_exactly_true)] = Field(
        description="Must be true: nothing personal is stored without consent."
    )


class SessionServiceRead(SessionDetailsRead):
    """A session as another service (email verification) sees it."""

    model_config = examples(DETAILS, from_attributes=True)


class ErasureRead(BaseModel):
    """Answered (202) when the data is erased but stored files could not be reached yet."""

    model_config = examples(
        {"erased": True, "files": 2, "objects_deleted": 0, "storage": "unreachable"}
    )

    erased: Literal[True] = True
    files: int
    objects_deleted: int
    storage: Literal["unreachable"] = "unreachable"
    detail: str = (
        "The session and its personal data are erased. Its stored files could not be "
        "reached; they are queued for deletion and cleanup removes them."
    )
