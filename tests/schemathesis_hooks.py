"""Schemathesis hooks (`SCHEMATHESIS_HOOKS=tests.schemathesis_hooks`): real credentials.

Admin routes get the admin key, service routes the service key, browser routes the token
of a session created for them (a fresh one whenever an answer is 401: erasures, resets
and rotations end tokens on purpose). Without these almost every generated case would
stop at `401` and test nothing behind it.
"""

from __future__ import annotations

import os
from typing import Any

import httpx
import schemathesis
from schemathesis import Case as AnyCase
from schemathesis.auths import AuthContext

Credential = tuple[str, str]
Case = AnyCase[Any]


def _kind(case: Case, ctx: AuthContext) -> str:
    path = ctx.operation.path
    if path.startswith("/api/v1/admin/"):
        return "admin"
    if path.startswith("/api/v1/sessions/"):
        return "service"
    return "holder"


@schemathesis.auth(refresh_interval=5, cache_by_key=_kind)
class Credentials:
    """The credential each kind of route takes."""

    def get(self, case: Case, ctx: AuthContext) -> Credential | None:
        kind = _kind(case, ctx)
        if kind == "admin":
            return "Authorization", f"Bearer {os.environ['ST_ADMIN_KEY']}"
        if kind == "service":
            return "Authorization", f"Bearer {os.environ['ST_SERVICE_KEY']}"
        created = httpx.post(f"{os.environ['ST_BASE_URL']}/api/v1/sessions", timeout=10)
        if created.status_code != 201:  # rate limited: the cases go without a token
            return None
        return "X-Session-ID", str(created.json()["token"])

    def set(self, case: Case, data: Credential, ctx: AuthContext) -> None:
        name, value = data
        case.headers[name] = value
