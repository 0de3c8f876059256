"""Every route of the service; the API is versioned under /api/v1.

Routers are included flat (not nested): each nesting level adds matching work per request.
"""

from __future__ import annotations

from fastapi import FastAPI

from session_service.api import API_PREFIX, health
from session_service.audit import routes as audit_routes
from session_service.files import routes as file_routes
from session_service.sessions import routes as session_routes
from session_service.storage import routes as storage_routes


def include_routes(app: FastAPI) -> None:
    """Mount every domain's router on the app."""
    # Routes match in order: the hottest route first.
    session_routes.add_direct_routes(app)
    app.include_router(health.router)
    app.include_router(session_routes.router, prefix=API_PREFIX)
    app.include_router(session_routes.service_router, prefix=API_PREFIX)
    app.include_router(file_routes.router, prefix=API_PREFIX)
    app.include_router(storage_routes.router, prefix=API_PREFIX)
    app.include_router(audit_routes.admin_router, prefix=API_PREFIX)
