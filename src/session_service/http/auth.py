"""API keys of the `service` and `admin` roles, sent as `Authorization: Bearer <key>`.

Every presented key is compared with every configured key of both roles in constant time
(`hmac.compare_digest`, no early exit), so timing reveals neither which key nor how much of
it matched. A role with no keys configured answers 503: privileged routes are never open.
Keys are never logged.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from enum import StrEnum
from typing import Annotated

from fastapi import Depends, Request, params
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

from session_service.audit.events import EventType
from session_service.core.errors import ServiceError
from session_service.http.deps import resources_of
from session_service.http.rejections import record_rejection

_bearer = HTTPBearer(auto_error=False, description="A `service` or `admin` API key.")


class Role(StrEnum):
    """Who may call privileged routes."""

    SERVICE = "service"
    ADMIN = "admin"


class Unauthorized(ServiceError):
    """No API key, or not one of ours."""

    status_code = 401
    code = "unauthorized"
    title = "Unauthorized"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(ServiceError):
    """A valid key of another role."""

    status_code = 403
    code = "forbidden"
    title = "Forbidden"


class AuthNotConfigured(ServiceError):
    """The role has no keys configured, so its routes are closed."""

    status_code = 503
    code = "auth_not_configured"
    title = "API keys not configured"


def _matches(presented: bytes, keys: Sequence[SecretStr]) -> bool:
    found = False
    for key in keys:
        found |= hmac.compare_digest(presented, key.get_secret_value().encode())
    return found


def authorise(
    presented: str | None,
    role: Role,
    *,
    service: Sequence[SecretStr],
    admin: Sequence[SecretStr],
) -> None:
    """Raise unless `presented` is a key of `role`."""
    keys = {Role.SERVICE: service, Role.ADMIN: admin}
    if not keys[role]:
        raise AuthNotConfigured(
            f"No {role} API keys are configured ({role.upper()}_API_KEYS); this route is closed."
        )
    if not presented:
        raise Unauthorized("Send an API key as `Authorization: Bearer <key>`.")
    candidate = presented.encode()
    # Both roles are always compared, whatever matches, for constant work per request.
    is_service, is_admin = _matches(candidate, service), _matches(candidate, admin)
    if (role is Role.SERVICE and is_service) or (role is Role.ADMIN and is_admin):
        return
    if is_service or is_admin:
        raise Forbidden(f"This route needs a {role} key.")
    raise Unauthorized("The API key is not valid.")


def _requires(role: Role) -> params.Depends:
    async def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> None:
        settings = resources_of(request).settings
        try:
            authorise(
                credentials.credentials if credentials else None,
                role,
                service=settings.service_api_keys,
                admin=settings.admin_api_keys,
            )
        except (Unauthorized, Forbidden) as denied:
            reason = "missing" if credentials is None else denied.code
            await record_rejection(
                request,
                EventType.AUTH_DENIED,
                code=f"{role.value}:{reason}",
                session_id=None,
                details={"role": role.value, "reason": reason},
            )
            raise

    dependency.__name__ = f"require_{role}_key"
    marker: params.Depends = Depends(dependency)
    return marker


ServiceKey = _requires(Role.SERVICE)
AdminKey = _requires(Role.ADMIN)
