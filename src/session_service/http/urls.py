"""Absolute URLs for what the service hands to browsers."""

from __future__ import annotations

from urllib.parse import urljoin

from fastapi import Request

from session_service.http.deps import resources_of


def absolute_url(request: Request, url: str) -> str:
    """Resolve a relative URL against PUBLIC_BASE_URL, or else this request's base URL.

    S3 URLs are already absolute and pass through unchanged.
    """
    base = resources_of(request).settings.storage.public_base_url
    return urljoin(base or str(request.base_url), url)
