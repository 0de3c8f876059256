"""Rate limits at the HTTP edge: the dependencies that enforce them and the 429 answer."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.params import Depends as DependsParam

from session_service.audit.events import EventType
from session_service.http.deps import resources_of
from session_service.http.rejections import record_rejection
from session_service.ratelimit.limiter import CallKind, RateLimited


async def enforce(request: Request, kind: CallKind) -> None:
    """Count this call against its client's budget; audit and raise `RateLimited` if spent."""
    resources = resources_of(request)
    limiter = resources.limiter
    if limiter is None:
        return
    client = request.client
    try:
        await limiter.check(kind, client.host if client else None)
    except RateLimited as refusal:
        resources.metrics.rate_limited(kind)
        await record_rejection(
            request,
            EventType.REQUEST_RATE_LIMITED,
            code=kind.value,
            session_id=None,  # refused before any token is checked: attributed to nobody
            details={"kind": kind.value, "limit": str(refusal.rule.limit)},
        )
        raise


def rate_limit(kind: CallKind) -> DependsParam:
    """A route dependency (list it first: it runs before any database work)."""

    async def check(request: Request) -> None:
        await enforce(request, kind)

    check.__name__ = f"rate_limit_{kind.value}"
    marker: DependsParam = Depends(check)
    return marker


# One dependency for every route that takes X-Session-ID: FastAPI caches it per request,
# so a route that reaches it twice (its session and its own list) counts the call once.
HOLDER_LIMIT = rate_limit(CallKind.HOLDER)
HolderLimited = Annotated[None, HOLDER_LIMIT]
