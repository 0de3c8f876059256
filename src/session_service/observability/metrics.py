"""Prometheus metrics: requests per route template, and outcomes from the audit trail.

Each app has a registry of its own (several apps live in one test process). Domain
outcomes (sessions created, uploads) are counted from audit events once they commit, so
a rolled-back change is never counted and the services carry no metrics code.
Validations are counted by the validator, since valid checks are not audited by default.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import Scope

from session_service.audit.events import EventType

PREFIX = "session_service"
UNMATCHED = "unmatched"
# Validate answers in a few ms; uploads slots and exports in tens to hundreds.
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

_SESSION_EVENTS = {EventType.SESSION_CREATED.value: "new", EventType.SESSION_RESET.value: "reset"}
_UPLOAD_EVENTS = {
    EventType.FILE_SLOT_ISSUED.value: "slot_issued",
    EventType.FILE_UPLOADED.value: "uploaded",
    EventType.FILE_REJECTED.value: "rejected",
    EventType.FILE_DELETED.value: "deleted",
}


def route_template(scope: Scope, templates: dict[int, str]) -> str:
    """The full path template of the route that answered, `unmatched` when none did."""
    route = scope.get("route")
    if route is None:
        return UNMATCHED
    template = templates.get(id(route))
    # A route added after start-up (tests) has no entry: its own path is all there is.
    return template if template is not None else getattr(route, "path", UNMATCHED)


class Metrics:
    """The service's metrics and the hooks that feed them."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.requests = Counter(
            f"{PREFIX}_http_requests",
            "HTTP requests by method, route template and status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            f"{PREFIX}_http_request_duration_seconds",
            "Time to answer, by method and route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.sessions_created = Counter(
            f"{PREFIX}_sessions_created",
            "Sessions created: `new` (create) or `reset` (a replacement).",
            ["kind"],
            registry=registry,
        )
        self.validations = Counter(
            f"{PREFIX}_session_validations",
            "Session checks (validate and every holder route) by outcome: valid, malformed, "
            "not_found, expired, reset.",
            ["outcome"],
            registry=registry,
        )
        self.uploads = Counter(
            f"{PREFIX}_uploads",
            "Upload steps by outcome: slot_issued, uploaded, rejected, deleted.",
            ["outcome"],
            registry=registry,
        )
        self.rate_limit_rejections = Counter(
            f"{PREFIX}_rate_limit_rejections",
            "Calls refused with 429, by kind of call.",
            ["kind"],
            registry=registry,
        )
        self.refusals = Counter(
            f"{PREFIX}_refusals",
            "Refused requests (each one, whether audited alone or in a summary), by audit "
            "event type and code.",
            ["event", "code"],
            registry=registry,
        )
        self.rate_limit_shared_storage_up = Gauge(
            f"{PREFIX}_rate_limit_shared_storage_up",
            "1 while Redis counts the limits, 0 while this instance counts alone.",
            registry=registry,
        )
        self.cleanup_deletions = Counter(
            f"{PREFIX}_cleanup_deletions",
            "Deletions by cleanup, by kind of thing deleted.",
            ["kind"],
            registry=registry,
        )
        self.idempotent_replays = Counter(
            f"{PREFIX}_idempotent_replays",
            "Requests answered with the stored first answer of their Idempotency-Key, by "
            "operation (nothing ran again).",
            ["operation"],
            registry=registry,
        )
        self.alerts = Counter(
            f"{PREFIX}_alerts",
            "Admin alerts by channel and result (sent, failed).",
            ["channel", "result"],
            registry=registry,
        )
        self.live_streams = Gauge(
            f"{PREFIX}_live_streams",
            "Live event streams (conversation events) open in this process.",
            registry=registry,
        )
        self.live_events = Counter(
            f"{PREFIX}_live_events_sent",
            "Messages sent as events on live streams.",
            registry=registry,
        )
        self.live_listener_up = Gauge(
            f"{PREFIX}_live_listener_up",
            "1 while this process LISTENs for every instance's new messages on PostgreSQL; "
            "0 while its listener reconnects, or where none runs (polling, SQLite).",
            registry=registry,
        )
        # Full path template by route identity (see api.router.include_routes).
        self.route_templates: dict[int, str] = {}
        # Resolved label children, so the hot path skips prometheus_client's label lookup.
        self._request_children: dict[tuple[str, str, int], Any] = {}
        self._latency_children: dict[tuple[str, str], Any] = {}
        self._validation_children: dict[str, Any] = {}

    def observe_request(self, scope: Scope, status: int, seconds: float) -> None:
        """Count a finished request under its route template (never its raw path)."""
        template = route_template(scope, self.route_templates)
        method: str = scope["method"]
        key = (method, template, status)
        counter = self._request_children.get(key)
        if counter is None:
            counter = self._request_children[key] = self.requests.labels(
                method, template, str(status)
            )
        counter.inc()
        latency_key = (method, template)
        histogram = self._latency_children.get(latency_key)
        if histogram is None:
            histogram = self._latency_children[latency_key] = self.latency.labels(method, template)
        histogram.observe(seconds)

    def observe_event(self, event_type: str, details: Mapping[str, Any]) -> None:
        """Audit hook, called once an event has committed."""
        if (kind := _SESSION_EVENTS.get(event_type)) is not None:
            self.sessions_created.labels(kind).inc()
        elif (outcome := _UPLOAD_EVENTS.get(event_type)) is not None:
            self.uploads.labels(outcome).inc()

    def validation(self, outcome: str) -> None:
        """A session check finished: `valid` or the reason it failed."""
        counter = self._validation_children.get(outcome)
        if counter is None:
            counter = self._validation_children[outcome] = self.validations.labels(outcome)
        counter.inc()

    def rate_limited(self, kind: str) -> None:
        """A call was refused with 429."""
        self.rate_limit_rejections.labels(kind).inc()

    def refusal(self, event: str, code: str) -> None:
        """A request was refused (401, 403, 422, 429)."""
        self.refusals.labels(event, code).inc()

    def cleanup_deleted(self, kind: str, count: int) -> None:
        """Cleanup committed `count` deletions of `kind`."""
        self.cleanup_deletions.labels(kind).inc(count)

    def idempotent_replay(self, operation: str) -> None:
        """A retry was answered with its key's stored answer."""
        self.idempotent_replays.labels(operation).inc()

    def alert(self, channel: str, ok: bool) -> None:
        """The notifier tried a channel."""
        self.alerts.labels(channel, "sent" if ok else "failed").inc()

    def live_sent(self, count: int) -> None:
        """A live stream sent `count` messages."""
        self.live_events.inc(count)

    def render(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)
