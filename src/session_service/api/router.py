"""Every route of the service; the API is versioned under /api/v1.

Routers are included flat (not nested): each nesting level adds matching work per request.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from session_service.api import health
from session_service.api.metrics import metrics_router
from session_service.audit import routes as audit_routes
from session_service.cleanup import routes as cleanup_routes
from session_service.conversations import routes as conversation_routes
from session_service.core.settings import Settings
from session_service.files import routes as file_routes
from session_service.http import API_PREFIX
from session_service.privacy import routes as privacy_routes
from session_service.sessions import routes as session_routes
from session_service.storage import routes as storage_routes
from session_service.web.docs import docs_router
from session_service.web.routes import include_web


def include_routes(app: FastAPI, settings: Settings) -> dict[int, str]:
    """Mount every domain's router on the app.

    Returns each route's full path template by route identity: the route a request
    matched (`scope["route"]`) is the router's own object, whose `path` lacks the prefix.
    """
    # Routes match in order: the hottest route first.
    session_routes.add_direct_routes(app)
    routers: list[tuple[APIRouter, str]] = [(health.router, "")]
    if settings.metrics_enabled:
        routers.append((metrics_router(require_admin=settings.metrics_admin_only), ""))
    routers += [
        (session_routes.router, API_PREFIX),
        (session_routes.service_router, API_PREFIX),
        (privacy_routes.router, API_PREFIX),
        (privacy_routes.service_router, API_PREFIX),
        (file_routes.router, API_PREFIX),
        (conversation_routes.router, API_PREFIX),
        (conversation_routes.service_router, API_PREFIX),
        (storage_routes.router, API_PREFIX),
        (audit_routes.admin_router, API_PREFIX),
        (cleanup_routes.admin_router, API_PREFIX),
        (include_web(app, settings), ""),
        (docs_router(settings, title=app.title), ""),
    ]
    templates = {id(route): path for route in app.routes if (path := getattr(route, "path", None))}
    for router, prefix in routers:
        app.include_router(router, prefix=prefix)
        templates.update({id(route): prefix + route.path for route in router.routes})  # type: ignore[attr-defined]
    return templates
