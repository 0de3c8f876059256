"""The OpenAPI document as generated clients need it: named operations, typed errors, headers.

FastAPI derives a document from the routes; what it cannot know is added here, in one
pass over that document, so the routes stay plain:

- every operation gets a stable `operationId` (`<tag>-<name>`) and a summary from
  `OPERATIONS`, the index of the API: a route missing from it fails at start-up;
- every error answer is `application/problem+json` with the `Problem` schema (FastAPI
  would declare `application/json`, and its `HTTPValidationError` for 422);
- the headers the service sends are declared where it sends them: `X-Request-ID` on
  every answer, `Retry-After` and the `X-RateLimit-*` family on 429, `Retry-After` on 503,
  `WWW-Authenticate` on a key-protected 401, `Location` on a created session;
- `X-Session-ID` is required, as a string, wherever a missing one is a 401;
- an operation that takes `Idempotency-Key` declares the key's form, `Idempotent-Replayed`
  on its successful answers and the key's refusals among its error answers;
- an optional request body is `required: false` with its schema, not a union with null;
- tags carry descriptions, and `servers` names `PUBLIC_BASE_URL` when it is set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from session_service.http.problem_json import PROBLEM_MEDIA_TYPE

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
SESSION_ID_HEADER = "X-Session-ID"
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
# What each error status also means on an operation that takes `Idempotency-Key`.
IDEMPOTENCY_REFUSALS = {
    "400": "An `Idempotency-Key` that is not 1 to 255 visible ASCII characters "
    "(`idempotency_key_invalid`).",
    "409": "A retry while the first request with its `Idempotency-Key` is still being "
    "processed (`idempotency_key_in_use`).",
    "422": "An `Idempotency-Key` used before for a different request (`idempotency_key_reused`).",
}


@dataclass(frozen=True, slots=True)
class Operation:
    """An operation's stable id and its one-line summary."""

    id: str
    summary: str


OPERATIONS: dict[tuple[str, str], Operation] = {
    # The browser's session.
    ("POST", "/api/v1/sessions"): Operation("sessions-create", "Start a session"),
    ("POST", "/api/v1/session/validate"): Operation("sessions-validate", "Check a session token"),
    ("POST", "/api/v1/session/reset"): Operation("sessions-reset", "Replace a lost or bad session"),
    ("GET", "/api/v1/session"): Operation("sessions-get", "Read the caller's session"),
    ("PUT", "/api/v1/session/details"): Operation(
        "sessions-submit-details", "Give details and consent"
    ),
    ("GET", "/api/v1/session/export"): Operation("sessions-export", "Export the caller's data"),
    ("DELETE", "/api/v1/session"): Operation("sessions-erase", "Erase the caller's session"),
    # The browser's files.
    ("POST", "/api/v1/session/uploads"): Operation("files-create-upload", "Ask for an upload slot"),
    ("POST", "/api/v1/session/files/{file_id}/complete"): Operation(
        "files-complete", "Check and complete an upload"
    ),
    ("GET", "/api/v1/session/files"): Operation("files-list", "List the session's files"),
    ("DELETE", "/api/v1/session/files/{file_id}"): Operation("files-delete", "Delete a file"),
    ("GET", "/api/v1/session/files/{file_id}/download"): Operation(
        "files-download", "Get a download URL"
    ),
    # The browser's conversations.
    ("POST", "/api/v1/session/conversations"): Operation(
        "conversations-create", "Start a conversation"
    ),
    ("GET", "/api/v1/session/conversations"): Operation(
        "conversations-list", "List the session's conversations"
    ),
    ("PATCH", "/api/v1/session/conversations/{conversation_id}"): Operation(
        "conversations-rename", "Rename a conversation"
    ),
    ("DELETE", "/api/v1/session/conversations/{conversation_id}"): Operation(
        "conversations-delete", "Delete a conversation"
    ),
    ("POST", "/api/v1/session/conversations/{conversation_id}/messages"): Operation(
        "conversations-send-message", "Send a message"
    ),
    ("GET", "/api/v1/session/conversations/{conversation_id}/messages"): Operation(
        "conversations-list-messages", "Read a page of messages"
    ),
    ("GET", "/api/v1/session/conversations/{conversation_id}/events"): Operation(
        "conversations-stream-messages", "Follow new messages live (Server-Sent Events)"
    ),
    # Other services (service key).
    ("GET", "/api/v1/sessions/{session_id}/conversations"): Operation(
        "service-list-conversations", "List a session's conversations"
    ),
    ("DELETE", "/api/v1/sessions/{session_id}/conversations/{conversation_id}"): Operation(
        "service-delete-conversation", "Delete a conversation"
    ),
    ("GET", "/api/v1/sessions/{session_id}/conversations/{conversation_id}/messages"): Operation(
        "service-list-messages", "Read a conversation's messages"
    ),
    ("POST", "/api/v1/sessions/{session_id}/conversations/{conversation_id}/messages"): Operation(
        "service-add-message", "Add a message of any role"
    ),
    ("GET", "/api/v1/sessions/{session_id}"): Operation("service-get-session", "Read a session"),
    ("POST", "/api/v1/sessions/{session_id}/complete"): Operation(
        "service-complete-session", "Complete a session after email verification"
    ),
    ("DELETE", "/api/v1/sessions/{session_id}"): Operation(
        "service-erase-session", "Erase a session"
    ),
    # Operators (admin key).
    ("GET", "/api/v1/admin/audit-events"): Operation(
        "admin-list-audit-events", "Query the audit trail"
    ),
    ("GET", "/api/v1/admin/audit/verify"): Operation(
        "admin-verify-audit-chain", "Verify the audit hash chain"
    ),
    ("POST", "/api/v1/admin/cleanup"): Operation("admin-start-cleanup", "Start a cleanup run"),
    ("GET", "/api/v1/admin/cleanup/{run_id}"): Operation(
        "admin-get-cleanup-run", "Follow a cleanup run"
    ),
    # Probes.
    ("GET", "/healthz"): Operation("operations-liveness", "Liveness probe"),
    ("GET", "/readyz"): Operation("operations-readiness", "Readiness probe"),
    ("GET", "/metrics"): Operation("operations-metrics", "Prometheus metrics"),
}

TAGS: list[dict[str, Any]] = [
    {
        "name": "sessions",
        "description": "The visitor's session, called by the browser with its token in "
        "`X-Session-ID`: start, check, replace, details and consent, export, erasure.",
    },
    {
        "name": "files",
        "description": "Uploads tied to the session: a slot, a direct upload to storage, a "
        "completion that checks the stored object; listing, download URLs, deletion.",
    },
    {
        "name": "conversations",
        "description": "The session's conversation history: conversations, the visitor's "
        "messages (role `user`, idempotent by `client_message_id`), pages of history, and a "
        "live stream of new messages (Server-Sent Events).",
    },
    {
        "name": "service",
        "description": "For other services (a service API key): read, complete and erase a "
        "session named by its public id; the agent backend reads a conversation, adds "
        "its replies and deletes a conversation.",
    },
    {
        "name": "admin",
        "description": "For operators (an admin API key): the audit trail, its hash chain, "
        "cleanup runs.",
    },
    {"name": "operations", "description": "Probes and metrics for the platform."},
]

_STRING = {"schema": {"type": "string"}}
_INTEGER = {"schema": {"type": "integer"}}
HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-ID": {
        "description": "The request's id, also in every log line and in `request_id`.",
        **_STRING,
    },
    "Retry-After": {"description": "Seconds to wait before trying again.", **_INTEGER},
    "X-RateLimit-Limit": {"description": "Calls allowed in the window.", **_INTEGER},
    "X-RateLimit-Remaining": {"description": "Calls left in the window.", **_INTEGER},
    "X-RateLimit-Reset": {"description": "When the window resets (epoch seconds).", **_INTEGER},
    "WWW-Authenticate": {"description": "`Bearer`: the route takes an API key.", **_STRING},
    "Location": {"description": "The caller's session resource.", **_STRING},
    REPLAYED_HEADER: {
        "description": "`true` on the stored first answer replayed to a retry with the same "
        "`Idempotency-Key` (nothing ran again); absent on a first answer.",
        "schema": {"type": "string", "enum": ["true"]},
    },
}
"""Response headers, declared once under `components/headers`."""


def _headers(*names: str) -> dict[str, Any]:
    return {name: {"$ref": f"#/components/headers/{name}"} for name in names}


def build_document(app: FastAPI, *, public_base_url: str | None) -> dict[str, Any]:
    """The app's OpenAPI document, completed as the module docstring says."""
    document = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        tags=TAGS,
        servers=[{"url": public_base_url}] if public_base_url else None,
    )
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            meta = OPERATIONS[(method.upper(), path)]
            operation["operationId"] = meta.id
            operation["summary"] = meta.summary
            _complete_responses(operation)
            _require_session_header(operation)
            _declare_idempotency(operation)
            _optional_body_without_null(operation)
    components = document.setdefault("components", {})
    components["headers"] = HEADERS
    for unused in ("HTTPValidationError", "ValidationError"):
        components.get("schemas", {}).pop(unused, None)
    return document


def _complete_responses(operation: dict[str, Any]) -> None:
    responses = operation["responses"]
    default_422 = responses.get("422", {}).get("content", {}).get("application/json", {})
    if default_422.get("schema") == {"$ref": "#/components/schemas/HTTPValidationError"}:
        # FastAPI's own, added to any route with a parameter: the routes declare theirs.
        del responses["422"]
    secured = bool(operation.get("security"))
    for status, response in responses.items():
        code = int(status)
        names = ["X-Request-ID"]
        if code >= 400:
            response["content"] = {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_REF}}
        if code in (429, 503):
            names.append("Retry-After")
        if code == 429:
            names += ["X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"]
        if code == 401 and secured:
            names.append("WWW-Authenticate")
        if code == 201 and operation["operationId"] in ("sessions-create", "sessions-reset"):
            names.append("Location")
        response["headers"] = _headers(*names)


def _declare_idempotency(operation: dict[str, Any]) -> None:
    """The key's form, `Idempotent-Replayed` on success, its refusals among the errors."""
    parameters = operation.get("parameters", [])
    keys = [p for p in parameters if p["in"] == "header" and p["name"] == IDEMPOTENCY_KEY_HEADER]
    if not keys:
        return
    keys[0]["schema"] = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"}
    for status, response in operation["responses"].items():
        if status.startswith("2"):
            response["headers"].update(_headers(REPLAYED_HEADER))
        elif status in IDEMPOTENCY_REFUSALS:
            response["description"] += " " + IDEMPOTENCY_REFUSALS[status]


def _optional_body_without_null(operation: dict[str, Any]) -> None:
    """An optional body is `required: false`, not `anyOf [X, null]`, which generators turn
    into a union the caller must fill (openapi-python-client sent nothing without one)."""
    body = operation.get("requestBody")
    if body is None or body.get("required"):
        return
    for media in body.get("content", {}).values():
        choices = media.get("schema", {}).get("anyOf")
        if choices is None:
            continue
        kept = [choice for choice in choices if choice != {"type": "null"}]
        if len(kept) == 1:
            media["schema"] = kept[0]
    body["required"] = False


def _require_session_header(operation: dict[str, Any]) -> None:
    """One type everywhere (a string); required wherever a missing token is a 401. Other
    optional headers are their type without `null`: a header is absent or text, never null
    (fuzzers sent the text `null`)."""
    for parameter in operation.get("parameters", []):
        if parameter["in"] != "header":
            continue
        if parameter["name"] == SESSION_ID_HEADER:
            parameter["required"] = "401" in operation["responses"]
            parameter["schema"] = {"type": "string"}
            continue
        schema = parameter.get("schema", {})
        kept = [choice for choice in schema.get("anyOf", ()) if choice != {"type": "null"}]
        if len(kept) == 1 and len(schema["anyOf"]) == 2:
            del schema["anyOf"]
            schema.update(kept[0])
