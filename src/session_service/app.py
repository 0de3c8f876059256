"""Application factory: lifespan resources, error handlers and the middleware stack."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI
from starlette.types import Scope

from session_service import __version__
from session_service.api.router import include_routes
from session_service.audit.sealing import AuditSealer
from session_service.audit.service import AuditService
from session_service.cleanup.runner import CleanupRunner
from session_service.cleanup.service import CleanupService
from session_service.core.clock import Clock, utc_now
from session_service.core.db import make_engine, make_sessionmaker
from session_service.core.errors import install_error_handlers
from session_service.core.ids import new_session_id
from session_service.core.settings import (
    ConfigurationRefused,
    Settings,
    get_settings,
    production_problems,
)
from session_service.http.alerts import request_alert
from session_service.http.middleware.bodylimit import BodyLimitMiddleware
from session_service.http.middleware.clientip import ClientAddressMiddleware, TrustedProxies
from session_service.http.middleware.cors import ProblemCORSMiddleware
from session_service.notify.factory import build_notifier
from session_service.notify.notifier import AlertNotifier
from session_service.observability.logging import RequestContextMiddleware, configure_logging
from session_service.observability.metrics import Metrics
from session_service.ratelimit.limiter import RateLimiter
from session_service.sessions.repository import SessionLookup
from session_service.sessions.service import SessionValidator
from session_service.storage.factory import open_store
from session_service.storage.local import DOWNLOAD_PATH, UPLOAD_PATH
from session_service.storage.tokens import load_signing_keys

DESCRIPTION = """
Persistent anonymous sessions for a chatbot web app.

The browser holds its session id as a bearer secret and sends it in the `X-Session-ID`
header, never in a URL. Every error is `application/problem+json` with a stable `code`
and the `request_id` that is also returned in `X-Request-ID`.
"""


async def _stop(task: asyncio.Task[None]) -> None:
    """Cancel a background job and wait until it has stopped (never mid-transaction)."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


# How long shutdown waits for a cleanup run in progress before cancelling it (each of its
# batches is one transaction, so a cancelled run rolls back only the batch in flight).
CLEANUP_SHUTDOWN_GRACE = 30.0


async def _finish(task: asyncio.Task[None], stop: asyncio.Event, grace: float) -> None:
    """Let a background job finish what it is doing, then stop; cancel after `grace`."""
    stop.set()
    try:
        await asyncio.wait_for(asyncio.shield(task), grace)
    except TimeoutError:
        await _stop(task)


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


@asynccontextmanager
async def open_rate_limiter(
    settings: Settings, metrics: Metrics
) -> AsyncIterator[RateLimiter | None]:
    """The process's rate limiter (None when limits are off), its Redis state in metrics."""
    if not settings.rate_limit_enabled:
        yield None
        return
    limiter = RateLimiter(settings)
    await limiter.start()
    if limiter.shared is not None:
        metrics.rate_limit_shared_storage_up.set_function(
            lambda: 0.0 if limiter.shared_down_since is not None else 1.0
        )
    try:
        yield limiter
    finally:
        await limiter.aclose()


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock = utc_now,
    new_id: Callable[[], uuid.UUID] = new_session_id,
) -> FastAPI:
    """Build the ASGI app; resources (engine, pools) are opened by its lifespan."""
    settings = settings or get_settings()
    refused = production_problems(settings, workers=settings.workers)
    if refused:
        raise ConfigurationRefused(refused)
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as resources:
            engine = make_engine(settings)
            resources.push_async_callback(engine.dispose)
            maker = make_sessionmaker(engine)
            seal_wake = asyncio.Event()
            audit = AuditService(
                maker=maker, clock=clock, on_commit=seal_wake.set, on_event=metrics.observe_event
            )
            sealer = AuditSealer(maker, clock=clock, min_age=settings.audit_seal_min_age)
            if settings.audit_seal_interval:
                task = asyncio.create_task(
                    sealer.run(interval=settings.audit_seal_interval, wake=seal_wake)
                )
                resources.push_async_callback(_stop, task)
            app.state.engine = engine
            app.state.sessionmaker = maker
            app.state.audit = audit
            keys = await asyncio.to_thread(
                load_signing_keys, settings.signing_keys, settings.signing_key_file
            )
            app.state.signing_keys = keys
            app.state.store = await resources.enter_async_context(
                open_store(settings, clock=clock, signing_keys=keys)
            )
            app.state.session_validator = SessionValidator(
                lookup=SessionLookup(engine),
                audit=audit,
                settings=settings,
                clock=clock,
                observe=metrics.validation,
            )
            app.state.rate_limiter = await resources.enter_async_context(
                open_rate_limiter(settings, metrics)
            )
            app.state.notifier = await resources.enter_async_context(
                build_notifier(
                    settings,
                    clock=clock,
                    recent_actions=audit.recent_actions,
                    on_sent=metrics.alert,
                )
            )
            cleanup = CleanupRunner(
                engine=engine,
                service=CleanupService(
                    maker=maker,
                    store=app.state.store,
                    audit=audit,
                    settings=settings,
                    on_deleted=metrics.cleanup_deleted,
                ),
                clock=clock,
                notifier=app.state.notifier,
                alert_threshold=settings.cleanup_alert_threshold,
            )
            app.state.cleanup = cleanup
            if settings.cleanup_enabled and settings.cleanup_interval:
                stop = asyncio.Event()
                job = asyncio.create_task(
                    cleanup.run_forever(interval=settings.cleanup_interval, stop=stop)
                )
                resources.push_async_callback(_finish, job, stop, CLEANUP_SHUTDOWN_GRACE)
            tune_gc(settings.gc_gen0_threshold)
            yield

    app = FastAPI(
        title="session-service",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url="/redoc",
        # The service does not use OpenTelemetry: skip its per-request provider checks.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.clock = clock
    app.state.new_session_id = new_id
    app.state.metrics = metrics
    app.state.rate_limiter = None
    app.state.notifier = None

    def alert_admin(scope: Scope, exc: Exception) -> None:
        notifier: AlertNotifier | None = app.state.notifier
        if notifier is not None and notifier.enabled:
            notifier.notify(
                request_alert(scope, exc, now=clock(), templates=metrics.route_templates)
            )

    install_error_handlers(app)
    metrics.route_templates = include_routes(app, settings)
    # Added last runs first: client address, request context, CORS, body cap, routes.
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
