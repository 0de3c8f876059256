"""The settings decide which channels exist; a half-configured email channel is reported."""

from __future__ import annotations

import json

import structlog

from session_service.core.settings import Settings
from session_service.notify.factory import build_notifier
from tests.conftest import FakeClock
from tests.notify.conftest import (
    ADMIN,
    WEBHOOK_SECRET,
    Outcomes,
    SmtpSink,
    WebhookReceiver,
    settle,
)
from tests.notify.test_smtp import create_alert


class TestBuildNotifier:
    async def test_both_channels_from_settings_deliver(
        self,
        smtp_server: SmtpSink,
        webhook_server: WebhookReceiver,
        clock: FakeClock,
        outcomes: Outcomes,
    ) -> None:
        settings = Settings(
            smtp_host="127.0.0.1",
            smtp_port=smtp_server.port,
            smtp_security="none",
            alert_email_to=[ADMIN],
            alert_webhook_url=webhook_server.url,
            alert_webhook_secret=WEBHOOK_SECRET,
        )
        async with build_notifier(settings, clock=clock, on_sent=outcomes) as notifier:
            assert notifier.channel_names == ("smtp", "webhook")
            assert notifier.notify(create_alert())
            await settle(notifier)

        assert sorted(outcomes) == [("smtp", True), ("webhook", True)]
        assert smtp_server.envelopes[0].rcpt_tos == [ADMIN]
        assert json.loads(webhook_server.requests[0].body)["key"] == create_alert().key

    async def test_nothing_configured_means_disabled(self, clock: FakeClock) -> None:
        async with build_notifier(Settings(), clock=clock) as notifier:
            assert not notifier.enabled
            assert not notifier.notify(create_alert())

    async def test_recipients_without_a_server_are_warned_about(self, clock: FakeClock) -> None:
        with structlog.testing.capture_logs() as logs:
            notifier = build_notifier(Settings(alert_email_to=[ADMIN]), clock=clock)
        await notifier.aclose()

        assert notifier.channel_names == ()
        [warning] = logs
        assert warning["event"] == "alert_email_disabled"
        assert warning["log_level"] == "warning"
        assert "SMTP_HOST" in warning["reason"]
