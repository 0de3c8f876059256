"""A read-only copy of a session row, as the validate hot path sees it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from session_service.sessions.models import SessionStatus


@dataclass(frozen=True, slots=True)
class SessionSnapshot:
    """A session as of its last validation; cheap to build, never written back."""

    id: uuid.UUID
    status: SessionStatus
    created_at: datetime
    updated_at: datetime
    last_seen_at: datetime
    expires_at: datetime | None
    completed_at: datetime | None
    name: str | None
    email: str | None
    consent_user_data: bool
    consent_given_at: datetime | None
    client_ip: str | None
    user_agent: str | None
    previous_session_id: uuid.UUID | None
    storage_id: uuid.UUID
    # The digest of the live token (None once there is none); never the token itself.
    token_digest: str | None
