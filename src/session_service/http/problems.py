"""OpenAPI descriptions of problem+json answers, so generated clients know their shape."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from session_service.core.errors import PROBLEM_MEDIA_TYPE


class Problem(BaseModel):
    """RFC 9457 problem details with the service's stable `code` and the request id."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    code: str
    request_id: str | None


_DESCRIPTIONS = {
    400: "Malformed request.",
    403: "Refused: a key of another role, or a signature, expiry or policy.",
    401: "Session invalid (`session_invalid`, with `reason`: reset) or no valid API key.",
    404: "Not found.",
    409: "Conflict with the current state.",
    413: "Request body too large.",
    422: "Invalid input.",
    429: "Rate limited (`rate_limited`): `Retry-After` says when to try again.",
    500: "Unexpected error (no internals shown).",
    503: "Database unavailable.",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries for the given statuses plus the 500 and 503 every route may answer."""
    return {
        status: {
            "model": Problem,
            "description": _DESCRIPTIONS[status],
            "content": {PROBLEM_MEDIA_TYPE: {}},
        }
        for status in (*statuses, 500, 503)
    }
