"""`/metrics` in the Prometheus text format, optionally behind the admin key."""

from __future__ import annotations

from fastapi import APIRouter, Response

from session_service.http.auth import AdminKey
from session_service.http.deps import ResourcesDep
from session_service.http.problems import problem_responses
from session_service.observability.metrics import Metrics


async def metrics(resources: ResourcesDep) -> Response:
    """Prometheus metrics of this process: requests, sessions, uploads, limits, alerts."""
    return Response(resources.metrics.render(), media_type=Metrics.content_type)


def metrics_router(*, require_admin: bool) -> APIRouter:
    """The router of `/metrics`; with `require_admin`, only the admin key reads it (and the
    key's answers are declared: 401, 403, and 503 without admin keys; the metrics themselves
    are process memory, nothing that can fail)."""
    router = APIRouter(tags=["operations"], dependencies=[AdminKey] if require_admin else [])
    keyed = problem_responses(401, 403, unexpected=False) if require_admin else {}
    router.add_api_route(
        "/metrics",
        metrics,
        methods=["GET"],
        response_class=Response,
        responses={
            200: {"content": {Metrics.content_type: {}}, "description": "Metrics."},
            **keyed,
        },
    )
    return router
