"""Example values for the OpenAPI document: one realistic visitor, their file, their trail.

Each schema shows one of these (`model_config = examples(...)`); tests validate every
example against its own model, so an example cannot drift from what the API answers.
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict

SESSION_ID = "3f1c2b9e-8a47-4d2e-9b6a-0c5d7e8f9a1b"
TOKEN = "9b2e4c1d-7f3a-4e8b-a6d5-1c2b3a4f5e6d"  # noqa: S105 (an example, valid nowhere)
FILE_ID = "5d6e7f80-1a2b-4c3d-8e9f-0a1b2c3d4e5f"
AT = "2026-01-15T09:30:00Z"
LATER = "2026-01-15T09:31:12Z"
EXPIRES = "2026-01-16T09:31:12Z"

SESSION: dict[str, Any] = {
    "id": SESSION_ID,
    "status": "active",
    "created_at": AT,
    "updated_at": LATER,
    "last_seen_at": LATER,
    "expires_at": EXPIRES,
    "completed_at": None,
    "consent_user_data": False,
    "consent_given_at": None,
    "previous_session_id": None,
}
DETAILS: dict[str, Any] = {
    **SESSION,
    "status": "pending_verification",
    "consent_user_data": True,
    "consent_given_at": LATER,
    "name": "Ada Lovelace",
    "email": "ada@example.com",
}
EXPORTED_SESSION: dict[str, Any] = {
    **DETAILS,
    "client_ip": "203.0.113.7",
    "user_agent": "Mozilla/5.0",
}
FILE: dict[str, Any] = {
    "id": FILE_ID,
    "name": "Quarterly report.pdf",
    "content_type": "application/pdf",
    "size": 48213,
    "stored_size": 48213,
    "status": "uploaded",
    "rejection_reason": None,
    "created_at": AT,
    "uploaded_at": LATER,
}
AUDIT_EVENT: dict[str, Any] = {
    "id": 1042,
    "occurred_at": AT,
    "type": "session.created",
    "session_id": SESSION_ID,
    "request_id": "4f0c9a4be0d84e5c9a2f3b1d6c7e8f90",
    "client_ip": "203.0.113.0/24",
    "user_agent": "Mozilla/5.0",
    "outcome": "success",
    "details": {"token_source": "server"},
}
DELETED: dict[str, Any] = {"count": 0, "items": [], "truncated": False}
CLEANUP_REPORT: dict[str, Any] = {
    "dry_run": False,
    "started_at": AT,
    "finished_at": LATER,
    "step": None,
    "seconds": 1.4,
    "expired_sessions": {"count": 2, "items": [SESSION_ID, FILE_ID], "truncated": False},
    "abandoned_uploads": DELETED,
    "session_objects": DELETED,
    "stale_quarantine": DELETED,
    "queued_deletions": {"count": 1, "items": [f"uploads/{SESSION_ID}/"], "truncated": False},
    "orphaned_objects": DELETED,
    "full_sweep": {"ran": False, "forced": False, "previous_at": AT, "next_due_at": LATER},
    "audit_events": DELETED,
    "erasure_journal": DELETED,
    "idempotency_keys": DELETED,
    "errors": [],
    "deletions": 3,
}


def examples(
    *values: dict[str, Any], from_attributes: bool = False, validate_by_name: bool = False
) -> ConfigDict:
    """A model config whose JSON schema shows `values` as its examples."""
    return ConfigDict(
        json_schema_extra={"examples": list(values)},
        from_attributes=from_attributes,
        validate_by_name=validate_by_name,
    )
