"""Every route of the service, versioned under /api/v1."""

from __future__ import annotations

from fastapi import APIRouter

from session_service.api import API_PREFIX, health
from session_service.sessions import routes as session_routes

api_router = APIRouter(prefix=API_PREFIX)
api_router.include_router(session_routes.router)

root_router = APIRouter()
root_router.include_router(health.router)
root_router.include_router(api_router)
