"""Build the notifier the settings describe: email and/or webhook, or none at all."""

from __future__ import annotations

import structlog

from session_service.core.clock import Clock
from session_service.core.settings import Settings
from session_service.notify.base import AlertChannel
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
    """The process's one notifier; call `start()` (or enter it) on the running loop."""
    channels: list[AlertChannel] = []
    if settings.smtp_host and settings.alert_email_to:
        channels.append(
            SmtpChannel(
                hostname=settings.smtp_host,
                port=settings.smtp_port,
                sender=settings.alert_email_from,
                recipients=settings.alert_email_to,
                security=settings.smtp_security,
                username=settings.smtp_username,
                password=settings.smtp_password,
                timeout=settings.smtp_timeout,
            )
        )
    elif settings.alert_email_to:
        log.warning("alert_email_disabled", reason="ALERT_EMAIL_TO is set but SMTP_HOST is not")
    elif settings.smtp_host:
        log.warning("alert_email_disabled", reason="SMTP_HOST is set but ALERT_EMAIL_TO is not")
    if settings.alert_webhook_url:
        channels.append(
            WebhookChannel(
                settings.alert_webhook_url,
                secret=settings.alert_webhook_secret,
                timeout=settings.alert_webhook_timeout,
            )
        )
    return AlertNotifier(
        channels,
        window=settings.alert_window,
        clock=clock,
        recent_actions=recent_actions,
        on_sent=on_sent,
    )
