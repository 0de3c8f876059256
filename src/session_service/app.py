"""Application factory: the lifespan that opens the resources, the middleware stack, the routes."""

from __future__ import annotations

import gc
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.types import Scope

from session_service import __version__
from session_service.api.router import include_routes
from session_service.core.clock import Clock, utc_now
from session_service.core.ids import new_session_id
from session_service.core.settings import (
    ConfigurationRefused,
    Settings,
    get_settings,
    production_problems,
)
from session_service.http import API_PREFIX
from session_service.http.alerts import request_alert
from session_service.http.deps import RESOURCES, resources_in
from session_service.http.middleware.bodylimit import BodyLimitMiddleware
from session_service.http.middleware.clientip import ClientAddressMiddleware, TrustedProxies
from session_service.http.middleware.context import RequestContextMiddleware
from session_service.http.middleware.cors import ProblemCORSMiddleware
from session_service.http.middleware.nostore import NoStoreMiddleware
from session_service.http.openapi import build_document
from session_service.http.problems import install_error_handlers
from session_service.idempotency.deps import install_replay_handler
from session_service.observability.logging import configure_logging
from session_service.observability.metrics import Metrics
from session_service.resources import open_resources, run_background_jobs
from session_service.storage.local import DOWNLOAD_PATH, UPLOAD_PATH

# Holder and service session routes: `/api/v1/session...` and `/api/v1/sessions...`.
SESSION_ROUTES = f"{API_PREFIX}/session"

DESCRIPTION = """
Persistent anonymous sessions for a chatbot web app.

The browser holds its session id as a bearer secret and sends it in the `X-Session-ID`
header, never in a URL. Every error is `application/problem+json` with a stable `code`
and the `request_id` that is also returned in `X-Request-ID`.
"""


def tune_gc(gen0_threshold: int) -> None:
    """Keep the collector off the request path.

    Objects alive after start-up (modules, routes, pydantic schemas) are frozen out of
    collection, and young-generation passes run less often: measured on validate, the
    default settings cost about 15% of the CPU per request.
    """
    gc.collect()
    gc.freeze()
    if gen0_threshold:
        _, gen1, gen2 = gc.get_threshold()
        gc.set_threshold(gen0_threshold, gen1, gen2)


class SessionServiceApp(FastAPI):
    """FastAPI with the service's OpenAPI document (`http/openapi.py`), built once."""

    def __init__(self, *, public_base_url: str | None, **options: Any) -> None:
        super().__init__(**options)
        self.public_base_url = public_base_url

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            self.openapi_schema = build_document(self, public_base_url=self.public_base_url)
        return self.openapi_schema


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock = utc_now,
    new_id: Callable[[], uuid.UUID] = new_session_id,
) -> FastAPI:
    """Build the ASGI app; its lifespan opens the resources and yields them as state."""
    settings = settings or get_settings()
    refused = production_problems(settings, workers=settings.workers)
    if refused:
        raise ConfigurationRefused(refused)
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        opened = open_resources(settings, clock, metrics=metrics, new_id=new_id)
        async with opened as resources, run_background_jobs(resources):
            tune_gc(settings.gc_gen0_threshold)
            yield {RESOURCES: resources}

    app = SessionServiceApp(
        public_base_url=settings.storage.public_base_url,
        title="session-service",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # Swagger UI and ReDoc are served from the service's own files (web/docs.py).
        docs_url=None,
        redoc_url=None,
        # The service does not use OpenTelemetry: skip its per-request provider checks.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )

    def alert_admin(scope: Scope, exc: Exception) -> None:
        resources = resources_in(scope)
        if resources is not None and resources.notifier.enabled:
            resources.notifier.notify(
                request_alert(scope, exc, now=clock(), templates=metrics.route_templates)
            )

    install_error_handlers(app)
    install_replay_handler(app)
    metrics.route_templates = include_routes(app, settings)
    # Added last runs first: client address, request context, CORS, body cap, no-store,
    # routes.
    app.add_middleware(NoStoreMiddleware, prefixes=(SESSION_ROUTES,))
    app.add_middleware(
        BodyLimitMiddleware, max_bytes=settings.max_body_bytes, exempt=frozenset({UPLOAD_PATH})
    )
    if settings.cors_origins:
        app.add_middleware(
            ProblemCORSMiddleware, origins=settings.cors_origins, max_age=settings.cors_max_age
        )
    app.add_middleware(
        RequestContextMiddleware,
        access_log=settings.access_log,
        secret_paths=(DOWNLOAD_PATH,),
        on_response=metrics.observe_request if settings.metrics_enabled else None,
        on_error=alert_admin,
    )
    if settings.trusted_proxies:
        app.add_middleware(
            ClientAddressMiddleware, proxies=TrustedProxies(settings.trusted_proxies)
        )
    return app


def create_app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory`: settings from the environment, logging configured."""
    settings = get_settings()
    configure_logging(settings)
    return create_app(settings)
