"""Build the notifier the settings describe: email and/or webhook, or none at all."""

from __future__ import annotations

import structlog

from session_service.core.clock import Clock
from session_service.core.settings import Settings
from session_service.notify.base import AlertChannel
from session_service.notify.claims import RedisClaims
from session_service.notify.notifier import AlertNotifier, OnSent, RecentActions
from session_service.notify.smtp import SmtpChannel
from session_service.notify.webhook import WebhookChannel

log = structlog.get_logger(__name__)


def build_notifier(
    settings: Settings,
    *,
    clock: Clock,
    recent_actions: RecentActions | None = None,
    on_sent: OnSent | None = None,
) -> AlertNotifier:
    """The process's one notifier; call `start()` (or enter it) on the running loop.

    With a shared Redis (RATE_LIMIT_STORAGE_URI), alerts are deduplicated across every
    instance, not only within this one.
    """
    channels: list[AlertChannel] = []
    if settings.alerts.smtp.host and settings.alerts.email_to:
        channels.append(
            SmtpChannel(
                hostname=settings.alerts.smtp.host,
                port=settings.alerts.smtp.port,
                sender=settings.alerts.email_from,
                recipients=settings.alerts.email_to,
                security=settings.alerts.smtp.security,
                username=settings.alerts.smtp.username,
                password=settings.alerts.smtp.password,
                timeout=settings.alerts.smtp.timeout,
            )
        )
    elif settings.alerts.email_to:
        log.warning("alert_email_disabled", reason="ALERT_EMAIL_TO is set but SMTP_HOST is not")
    elif settings.alerts.smtp.host:
        log.warning("alert_email_disabled", reason="SMTP_HOST is set but ALERT_EMAIL_TO is not")
    if settings.alerts.webhook_url:
        channels.append(
            WebhookChannel(
                settings.alerts.webhook_url,
                secret=settings.alerts.webhook_secret,
                timeout=settings.alerts.webhook_timeout,
            )
        )
    shared = settings.rate_limits.storage_uri
    claims = None
    if channels and not shared.startswith("memory://"):
        claims = RedisClaims(shared, timeout=settings.rate_limits.storage_timeout)
    return AlertNotifier(
        channels,
        window=settings.alerts.window,
        clock=clock,
        recent_actions=recent_actions,
        on_sent=on_sent,
        instance=settings.instance,
        claims=claims,
    )
