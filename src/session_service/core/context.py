"""Who is asking: the request facts that audit events record, free of HTTP types."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Request id, client address and user agent of the caller (or of a job)."""

    request_id: str | None
    client_ip: str | None
    user_agent: str | None
