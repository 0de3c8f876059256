"""Absolute URLs for what the service hands to browsers, built only on a trusted base.

A URL built from the request's `Host` header points wherever the caller says: with
`Host: evil.example` an upload form would send the file there. So the base is
PUBLIC_BASE_URL, or, while that is unset (development), the request's own base URL only
when its host is one of ALLOWED_HOSTS.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urljoin

from fastapi import Depends, Request

from session_service.core.errors import ServiceError
from session_service.http.deps import resources_of


class InvalidHost(ServiceError):
    """The request's Host is not one absolute URLs may be built on (ALLOWED_HOSTS)."""

    status_code = 400
    code = "invalid_host"
    title = "Invalid host"


def host_name(host: str) -> str:
    """A Host value without its port, lower-cased: `[::1]:8000` -> `[::1]`."""
    host = host.strip().lower()
    if host.startswith("["):
        return host.partition("]")[0] + "]"
    name, _, port = host.rpartition(":")
    return name if name and port.isdigit() else host


def host_allowed(host: str, allowed: list[str]) -> bool:
    """Whether `host` is allowed: an entry without a port allows any port."""
    host = host.strip().lower()
    return any(
        host == entry.lower() or (entry == host_name(entry) and host_name(host) == entry.lower())
        for entry in allowed
    )


async def public_base_url(request: Request) -> str:
    """The base absolute URLs are built on: PUBLIC_BASE_URL, else an allowed request's own."""
    storage = resources_of(request).settings.storage
    if storage.public_base_url:
        return storage.public_base_url
    if not host_allowed(request.headers.get("host", ""), storage.allowed_hosts):
        raise InvalidHost(
            "This host is not allowed; use one of ALLOWED_HOSTS or set PUBLIC_BASE_URL."
        )
    return str(request.base_url)


PublicBase = Annotated[str, Depends(public_base_url)]


def absolute_url(base: str, url: str) -> str:
    """Resolve a relative URL against `base`; S3 URLs are already absolute and pass unchanged."""
    return urljoin(base, url)
