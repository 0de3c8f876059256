"""The problem+json document (RFC 9457) itself: standard library only, for middleware too."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:session-service:problem:"


def problem_body(
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    request_id: str | None,
    extra: Mapping[str, Any] | None = None,
) -> bytes:
    """Serialise one RFC 9457 problem document; extensions never override its members."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_PREFIX + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "request_id": request_id,
    }
    for name, value in (extra or {}).items():
        body.setdefault(name, value)
    return json.dumps(body, separators=(",", ":"), default=str).encode()
