"""Every error `code` the service answers, and its status: the set clients switch on.

The error table (docs/errors.md) documents each (tests keep the two equal); the OpenAPI document's
`Problem.code` is this enumeration, so generated clients type it. A new code goes here,
in that table and in the browser module's messages.
"""

from __future__ import annotations

from enum import StrEnum


class ProblemCode(StrEnum):
    """A problem's stable `code`."""

    VALIDATION_ERROR = "validation_error"
    MALFORMED_JSON = "malformed_json"
    MALFORMED_REQUEST = "malformed_request"
    IDEMPOTENCY_KEY_INVALID = "idempotency_key_invalid"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    IDEMPOTENCY_KEY_IN_USE = "idempotency_key_in_use"
    SESSION_INVALID = "session_invalid"
    TOKEN_REPLACED = "token_replaced"  # noqa: S105 (a code, no secret)
    SESSION_EXISTS = "session_exists"
    CLIENT_TOKENS_DISABLED = "client_tokens_disabled"
    WEAK_CLIENT_TOKEN = "weak_client_token"  # noqa: S105 (a code, no secret)
    UNSUPPORTED_CONTENT_TYPE = "unsupported_content_type"
    FILE_TOO_LARGE = "file_too_large"
    UPLOAD_REJECTED = "upload_rejected"
    FILE_LIMIT_REACHED = "file_limit_reached"
    QUOTA_EXCEEDED = "quota_exceeded"
    UPLOAD_MISSING = "upload_missing"
    FILE_NOT_UPLOADED = "file_not_uploaded"
    FILE_NOT_FOUND = "file_not_found"
    INVALID_HOST = "invalid_host"
    UPLOAD_FORM_INVALID = "upload_form_invalid"
    UPLOAD_EMPTY = "upload_empty"
    UPLOAD_TOKEN_INVALID = "upload_token_invalid"  # noqa: S105 (a code, no secret)
    UPLOAD_EXPIRED = "upload_expired"
    UPLOAD_POLICY_VIOLATION = "upload_policy_violation"
    UPLOAD_TOO_LARGE = "upload_too_large"
    UPLOAD_ALREADY_USED = "upload_already_used"
    DOWNLOAD_REFUSED = "download_refused"
    STORAGE_UNAVAILABLE = "storage_unavailable"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    AUTH_NOT_CONFIGURED = "auth_not_configured"
    SESSION_NOT_FOUND = "session_not_found"
    SESSION_ACTIVE = "session_active"
    SESSION_COMPLETED = "session_completed"
    SESSION_RESET = "session_reset"
    SESSION_EXPIRED = "session_expired"
    INVALID_CURSOR = "invalid_cursor"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    HEADERS_TOO_LARGE = "headers_too_large"
    TOO_MANY_HEADERS = "too_many_headers"
    REQUEST_TIMEOUT = "request_timeout"
    CONVERSATION_NOT_FOUND = "conversation_not_found"
    MESSAGE_TOO_LONG = "message_too_long"
    ATTACHMENT_NOT_UPLOADED = "attachment_not_uploaded"
    CONVERSATION_LIMIT_REACHED = "conversation_limit_reached"
    SESSION_INACTIVE = "session_inactive"
    STREAM_LIMIT_REACHED = "stream_limit_reached"
    LIVE_UPDATES_UNAVAILABLE = "live_updates_unavailable"
    CLEANUP_RUNNING = "cleanup_running"
    CLEANUP_RUN_NOT_FOUND = "cleanup_run_not_found"
    RATE_LIMITED = "rate_limited"
    CORS_REJECTED = "cors_rejected"
    INTERNAL_ERROR = "internal_error"
    SESSION_ID_EXHAUSTED = "session_id_exhausted"
    DATABASE_UNAVAILABLE = "database_unavailable"
    NOT_READY = "not_ready"
    SERVER_BUSY = "server_busy"


STATUS: dict[ProblemCode, int] = {
    ProblemCode.VALIDATION_ERROR: 422,
    ProblemCode.MALFORMED_JSON: 400,
    ProblemCode.MALFORMED_REQUEST: 400,
    ProblemCode.IDEMPOTENCY_KEY_INVALID: 400,
    ProblemCode.IDEMPOTENCY_KEY_REUSED: 422,
    ProblemCode.IDEMPOTENCY_KEY_IN_USE: 409,
    ProblemCode.SESSION_INVALID: 401,
    ProblemCode.TOKEN_REPLACED: 409,
    ProblemCode.SESSION_EXISTS: 409,
    ProblemCode.CLIENT_TOKENS_DISABLED: 422,
    ProblemCode.WEAK_CLIENT_TOKEN: 422,
    ProblemCode.UNSUPPORTED_CONTENT_TYPE: 422,
    ProblemCode.FILE_TOO_LARGE: 422,
    ProblemCode.UPLOAD_REJECTED: 422,
    ProblemCode.FILE_LIMIT_REACHED: 409,
    ProblemCode.QUOTA_EXCEEDED: 409,
    ProblemCode.UPLOAD_MISSING: 409,
    ProblemCode.FILE_NOT_UPLOADED: 409,
    ProblemCode.FILE_NOT_FOUND: 404,
    ProblemCode.INVALID_HOST: 400,
    ProblemCode.UPLOAD_FORM_INVALID: 400,
    ProblemCode.UPLOAD_EMPTY: 400,
    ProblemCode.UPLOAD_TOKEN_INVALID: 403,
    ProblemCode.UPLOAD_EXPIRED: 403,
    ProblemCode.UPLOAD_POLICY_VIOLATION: 403,
    ProblemCode.UPLOAD_TOO_LARGE: 413,
    ProblemCode.UPLOAD_ALREADY_USED: 409,
    ProblemCode.DOWNLOAD_REFUSED: 403,
    ProblemCode.STORAGE_UNAVAILABLE: 503,
    ProblemCode.UNAUTHORIZED: 401,
    ProblemCode.FORBIDDEN: 403,
    ProblemCode.AUTH_NOT_CONFIGURED: 503,
    ProblemCode.SESSION_NOT_FOUND: 404,
    ProblemCode.SESSION_ACTIVE: 409,
    ProblemCode.SESSION_COMPLETED: 409,
    ProblemCode.SESSION_RESET: 409,
    ProblemCode.SESSION_EXPIRED: 409,
    ProblemCode.INVALID_CURSOR: 422,
    ProblemCode.NOT_FOUND: 404,
    ProblemCode.METHOD_NOT_ALLOWED: 405,
    ProblemCode.PAYLOAD_TOO_LARGE: 413,
    ProblemCode.HEADERS_TOO_LARGE: 431,
    ProblemCode.TOO_MANY_HEADERS: 431,
    ProblemCode.REQUEST_TIMEOUT: 408,
    ProblemCode.CONVERSATION_NOT_FOUND: 404,
    ProblemCode.MESSAGE_TOO_LONG: 422,
    ProblemCode.ATTACHMENT_NOT_UPLOADED: 422,
    ProblemCode.CONVERSATION_LIMIT_REACHED: 409,
    ProblemCode.SESSION_INACTIVE: 409,
    ProblemCode.STREAM_LIMIT_REACHED: 409,
    ProblemCode.LIVE_UPDATES_UNAVAILABLE: 503,
    ProblemCode.CLEANUP_RUNNING: 409,
    ProblemCode.CLEANUP_RUN_NOT_FOUND: 404,
    ProblemCode.RATE_LIMITED: 429,
    ProblemCode.CORS_REJECTED: 400,
    ProblemCode.INTERNAL_ERROR: 500,
    ProblemCode.SESSION_ID_EXHAUSTED: 500,
    ProblemCode.DATABASE_UNAVAILABLE: 503,
    ProblemCode.NOT_READY: 503,
    ProblemCode.SERVER_BUSY: 503,
}
"""The status each code is answered with."""
