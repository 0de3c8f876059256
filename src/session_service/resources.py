"""The process's resources, built once: `open_resources(settings, clock) -> Resources`.

The app's lifespan yields them as lifespan state, routes reach them through `ResourcesDep`
(`http/deps.py`), the CLI opens them directly. Every field is typed, so mypy checks each
injection. Background jobs (sealing, scheduled cleanup) are started separately by
`run_background_jobs`, so a CLI command gets the resources without the jobs.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from functools import partial

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from session_service.audit.query import AuditQuery
from session_service.audit.refusals import RefusalAggregator
from session_service.audit.sealing import AuditSealer
from session_service.audit.service import AuditService, recent_actions
from session_service.cleanup.job import CleanupJob
from session_service.cleanup.runner import CleanupRunner
from session_service.conversations.feed import MessageFeed
from session_service.conversations.follow import MessageStream
from session_service.conversations.service import ConversationService
from session_service.conversations.sources import FeedSource, feed_source
from session_service.core import lifecycle
from session_service.core.clock import Clock
from session_service.core.db import make_engine, make_sessionmaker
from session_service.core.ids import new_session_id
from session_service.core.settings import Settings
from session_service.core.tasks import stop_task
from session_service.deletions.service import DeletionQueue
from session_service.files.completion import UploadChecker
from session_service.files.service import FileService
from session_service.idempotency.service import IdempotencyService
from session_service.notify.factory import build_notifier
from session_service.notify.notifier import AlertNotifier
from session_service.observability.metrics import Metrics
from session_service.privacy.erasure import SessionEraser
from session_service.privacy.export import SessionExporter
from session_service.privacy.journal import ErasureJournal
from session_service.ratelimit.limiter import RateLimiter
from session_service.sessions.repository import SessionLookup
from session_service.sessions.service import SessionService, SessionValidator
from session_service.storage.base import ObjectStore
from session_service.storage.factory import open_store
from session_service.storage.tokens import load_signing_keys

# How long shutdown waits for a cleanup run in progress before cancelling it (each of its
# batches is one transaction, so a cancelled run rolls back only the batch in flight).
CLEANUP_SHUTDOWN_GRACE = 30.0


@dataclass(frozen=True, slots=True)
class Resources:
    """Everything a request or job of this process uses; built once, shared, immutable."""

    settings: Settings
    clock: Clock
    metrics: Metrics
    engine: AsyncEngine
    probe_engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    store: ObjectStore
    signing_keys: list[str]
    audit: AuditService
    refusals: RefusalAggregator
    sealer: AuditSealer
    seal_wake: asyncio.Event
    audit_query: AuditQuery
    validator: SessionValidator
    sessions: SessionService
    deletions: DeletionQueue
    files: FileService
    conversations: ConversationService
    idempotency: IdempotencyService
    feed: MessageFeed
    live_source: FeedSource
    streams: MessageStream
    eraser: SessionEraser
    exporter: SessionExporter
    limiter: RateLimiter | None
    notifier: AlertNotifier
    cleanup: CleanupRunner


@asynccontextmanager
async def open_resources(
    settings: Settings,
    clock: Clock,
    *,
    metrics: Metrics | None = None,
    new_id: Callable[[], uuid.UUID] = new_session_id,
) -> AsyncIterator[Resources]:
    """Open the engine, the store, the limiter and the notifier; close them on exit."""
    metrics = metrics or Metrics()
    async with AsyncExitStack() as stack:
        engine = make_engine(settings)
        stack.push_async_callback(engine.dispose)
        # Readiness has a connection of its own: a busy request pool is not an outage.
        probe_engine = make_engine(settings, pool_size=1)
        stack.push_async_callback(probe_engine.dispose)
        maker = make_sessionmaker(engine)
        seal_wake = asyncio.Event()
        audit = AuditService(
            clock=clock,
            client_detail=settings.audit_client_detail,
            on_commit=seal_wake.set,
            on_event=metrics.observe_event,
        )
        keys = await asyncio.to_thread(
            load_signing_keys,
            [key.get_secret_value() for key in settings.storage.signing_keys],
            settings.storage.signing_key_file,
        )
        refusals = RefusalAggregator(
            maker=maker,
            audit=audit,
            clock=clock,
            max_keys=settings.audit_refusal_keys,
            on_refusal=metrics.refusal,
        )
        store = await stack.enter_async_context(
            open_store(settings, clock=clock, signing_keys=keys)
        )
        limiter = await stack.enter_async_context(open_rate_limiter(settings, metrics))
        notifier = await stack.enter_async_context(
            build_notifier(
                settings,
                clock=clock,
                recent_actions=partial(recent_actions, maker),
                on_sent=metrics.alert,
            )
        )
        deletions = DeletionQueue(
            store=store, maker=maker, clock=clock, slot_ttl=settings.storage.upload_url_ttl
        )
        sessions = SessionService(
            audit=audit,
            deletions=deletions,
            settings=settings,
            clock=clock,
            new_id=new_id,
            observe=metrics.validation,
        )
        checker = UploadChecker(
            store=store, deletions=deletions, audit=audit, maker=maker, clock=clock
        )
        files = FileService(
            store=store,
            checker=checker,
            deletions=deletions,
            audit=audit,
            settings=settings,
            clock=clock,
        )
        feed = MessageFeed(
            max_streams=settings.live.max_streams,
            max_per_session=settings.live.max_streams_per_session,
        )
        metrics.live_streams.set_function(lambda: feed.open_streams)
        metrics.live_listener_up.set_function(lambda: 1.0 if feed.listening else 0.0)
        conversations = ConversationService(
            files=files, audit=audit, feed=feed, settings=settings, clock=clock
        )
        journal = ErasureJournal(store)
        yield Resources(
            settings=settings,
            clock=clock,
            metrics=metrics,
            engine=engine,
            probe_engine=probe_engine,
            sessionmaker=maker,
            store=store,
            signing_keys=keys,
            audit=audit,
            refusals=refusals,
            sealer=AuditSealer(maker, clock=clock, min_age=settings.audit_seal_min_age),
            seal_wake=seal_wake,
            audit_query=AuditQuery(audit=audit, signing_keys=keys),
            validator=SessionValidator(
                lookup=SessionLookup(engine),
                maker=maker,
                audit=audit,
                refusals=refusals,
                settings=settings,
                clock=clock,
                observe=metrics.validation,
            ),
            sessions=sessions,
            deletions=deletions,
            files=files,
            conversations=conversations,
            idempotency=IdempotencyService(clock=clock, ttl=settings.idempotency_key_ttl),
            feed=feed,
            live_source=feed_source(settings, feed, maker),
            streams=MessageStream(
                maker=maker,
                feed=feed,
                sessions=sessions,
                heartbeat=settings.live.heartbeat_interval,
                on_sent=metrics.live_sent,
            ),
            eraser=SessionEraser(
                sessions=sessions,
                files=files,
                conversations=conversations,
                deletions=deletions,
                audit=audit,
                journal=journal,
                clock=clock,
            ),
            exporter=SessionExporter(
                sessions=sessions,
                files=files,
                conversations=conversations,
                audit=audit,
                maker=maker,
                clock=clock,
            ),
            limiter=limiter,
            notifier=notifier,
            cleanup=CleanupRunner(
                engine=engine,
                job=CleanupJob(
                    maker=maker,
                    store=store,
                    audit=audit,
                    journal=journal,
                    settings=settings,
                    on_deleted=metrics.cleanup_deleted,
                ),
                clock=clock,
                notifier=notifier,
                alert_threshold=settings.cleanup.alert_threshold,
            ),
        )


@asynccontextmanager
async def open_rate_limiter(
    settings: Settings, metrics: Metrics
) -> AsyncIterator[RateLimiter | None]:
    """The process's rate limiter (None when limits are off), its Redis state in metrics."""
    if not settings.rate_limits.enabled:
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


@asynccontextmanager
async def run_background_jobs(resources: Resources) -> AsyncIterator[None]:
    """The sealer, the cleanup schedule, admins' cleanup runs, the refusal summaries and
    what feeds the live streams; stopped cleanly on exit. Live streams end when the server
    stops accepting (before it waits for the answers in flight), and at the latest here."""
    settings = resources.settings
    async with AsyncExitStack() as stack:
        stack.callback(resources.feed.close)
        stack.callback(lifecycle.on_stop(resources.feed.close))
        live = asyncio.create_task(resources.live_source.run())
        stack.push_async_callback(_stop, live)
        stack.push_async_callback(resources.cleanup.finish_started, CLEANUP_SHUTDOWN_GRACE)
        summaries = asyncio.create_task(resources.refusals.run())
        stack.push_async_callback(_summarise_last, summaries, resources.refusals)
        if settings.audit_seal_interval:
            sealing = asyncio.create_task(
                resources.sealer.run(
                    interval=settings.audit_seal_interval, wake=resources.seal_wake
                )
            )
            stack.push_async_callback(_stop, sealing)
        if settings.cleanup.enabled and settings.cleanup.interval:
            stop = asyncio.Event()
            cleanup = asyncio.create_task(
                resources.cleanup.run_forever(interval=settings.cleanup.interval, stop=stop)
            )
            stack.push_async_callback(_finish, cleanup, stop, CLEANUP_SHUTDOWN_GRACE)
        yield


async def _stop(task: asyncio.Task[None]) -> None:
    """Cancel a background job and wait until it has stopped (its transaction rolled back)."""
    await stop_task(task)


async def _summarise_last(task: asyncio.Task[None], refusals: RefusalAggregator) -> None:
    """Stop the periodic summaries, then write what is still counted."""
    await stop_task(task)
    await refusals.flush(final=True)


async def _finish(task: asyncio.Task[None], stop: asyncio.Event, grace: float) -> None:
    """Let a background job finish what it is doing, then stop; cancel after `grace`."""
    stop.set()
    try:
        await asyncio.wait_for(asyncio.shield(task), grace)
    except TimeoutError:
        await _stop(task)
