"""Who is asking: the request facts that audit events record, free of HTTP types."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Request id, client address and user agent of the caller (or of a job)."""

    request_id: str | None
    client_ip: str | None
    user_agent: str | None


def job_context(name: str) -> RequestContext:
    """The context of work that no HTTP request started (CLI, scheduled jobs)."""
    return RequestContext(request_id=f"job:{name}", client_ip=None, user_agent=None)
