"""The service's exception tree: standard library only, so any layer may raise it.

Services raise `ServiceError` subclasses; the HTTP edge (`http/problems.py`) turns them into
RFC 9457 problem+json with a stable `code` the frontend switches on. Third-party errors are
translated into these where the third party is called (the database in `core/db.py`, each
storage backend in its own module).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True)
class RefusalRecord:
    """The audit event a refusal leaves once the request's own work has been rolled back.

    `code` is what refusals of this event type are counted by (e.g. the reason).
    """

    event_type: str
    session_id: uuid.UUID | None = None
    details: dict[str, Any] = field(default_factory=dict)
    code: str | None = None


class ResponseInterrupted(Exception):
    """A streamed response failed after it started: the connection is cut, never ended cleanly.

    Raised instead of the cause so the client sees a failed download rather than a short
    body that looks whole; the edge logs it as a warning, not as an unhandled error.
    """


class RequestAborted(Exception):
    """The client went away before its request body was read: nobody waits for an answer.

    Not a failure of the service (a cancelled upload, a closed tab): the edge counts it as
    status 499, the convention for "client closed request", and neither answers nor alerts.
    """


class ServiceError(Exception):
    """Base of every error the service answers on purpose."""

    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    title: ClassVar[str] = "Internal error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        record: RefusalRecord | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})
        # Audited by the edge in a transaction of its own, after the request's rolled back.
        self.record = record


class InvalidInput(ServiceError):
    """The request was well-formed JSON but broke a rule of the service."""

    status_code = 422
    code = "validation_error"
    title = "Invalid input"


class MalformedJson(ServiceError):
    """The body is not JSON at all (syntax, encoding, nesting), unlike `InvalidInput`."""

    status_code = 400
    code = "malformed_json"
    title = "Malformed JSON"


class MalformedRequest(ServiceError):
    """The HTTP request itself could not be parsed (a control character in a header, say).

    Answered by the server before the app sees the request (`serving.py`).
    """

    status_code = 400
    code = "malformed_request"
    title = "Malformed request"


class Conflict(ServiceError):
    """The request clashes with the current state of a resource."""

    status_code = 409
    code = "conflict"
    title = "Conflict"


RETRY_AFTER_SECONDS = 2
"""What a 503 for a dependency that is busy or away asks clients to wait."""


class DatabaseUnavailable(ServiceError):
    """The database could not be reached, or had no connection to spare; retry shortly.

    Answered with `Retry-After`, so clients (and the browser module) back off instead of
    hammering a database that is out of connection slots.
    """

    status_code = 503
    code = "database_unavailable"
    title = "Database unavailable"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


class StorageUnavailable(ServiceError):
    """The object store could not be reached or refused the call.

    `reason` names the cause in a word an operator can act on (`NoSuchBucket`,
    `AccessDenied`, `InvalidAccessKeyId`, `timeout`, ...); readiness reports it. It never
    carries endpoints, keys or signed material.
    """

    status_code = 503
    code = "storage_unavailable"
    title = "Storage unavailable"

    def __init__(self, detail: str | None = None, *, reason: str | None = None) -> None:
        super().__init__(detail, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
        self.reason = reason


class NotReady(ServiceError):
    """A dependency the service needs is not reachable."""

    status_code = 503
    code = "not_ready"
    title = "Not ready"
