"""Alert webhooks: the JSON document, its HMAC signature, failures, and no leaked URL token."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
from collections.abc import Callable

from session_service.notify.notifier import AlertNotifier
from tests.conftest import T0
from tests.notify.conftest import (
    WEBHOOK_SECRET,
    WEBHOOK_TOKEN,
    Outcomes,
    SmtpSink,
    WebhookReceiver,
    settle,
    smtp_channel,
    webhook_channel,
)
from tests.notify.test_smtp import create_alert
from tests.processes import free_port

MakeNotifier = Callable[..., AlertNotifier]


class TestWebhookDelivery:
    async def test_the_post_carries_every_field_as_json(
        self, webhook_server: WebhookReceiver, make_notifier: MakeNotifier, outcomes: Outcomes
    ) -> None:
        async def recent_actions(session_id: str) -> str:
            return "a" * 250

        notifier = make_notifier(
            webhook_channel(webhook_server), recent_actions=recent_actions, instance="api-1:8000"
        )
        assert notifier.notify(create_alert())
        await settle(notifier)

        assert outcomes == [("webhook", True)]
        [request] = webhook_server.requests
        assert request.method == "POST"
        assert request.target == f"/hooks/alerts?token={WEBHOOK_TOKEN}"
        assert request.headers["content-type"] == "application/json"
        assert json.loads(request.body) == {
            "time": T0.isoformat(),
            "source": "request",
            "instance": "api-1:8000",
            "summary": "RuntimeError: database went away",
            "key": "request:RuntimeError:POST /api/v1/sessions",
            "request_id": "req-7f3a",
            "session_id": "sess-42",
            "occurrences": 1,
            "since": None,
            "recent_actions": "a" * 199 + "…",
            "details": {"method": "POST", "route": "/api/v1/sessions"},
        }

    async def test_the_signature_is_the_hmac_of_the_exact_body(
        self, webhook_server: WebhookReceiver, make_notifier: MakeNotifier
    ) -> None:
        notifier = make_notifier(webhook_channel(webhook_server))
        notifier.notify(create_alert(summary="Ünïcode stays intact"))
        await settle(notifier)

        [request] = webhook_server.requests
        expected = hmac.new(WEBHOOK_SECRET.encode(), request.body, hashlib.sha256).hexdigest()
        assert request.headers["x-signature-256"] == f"sha256={expected}"
        assert json.loads(request.body)["summary"] == "Ünïcode stays intact"

    async def test_without_a_secret_there_is_no_signature(
        self, webhook_server: WebhookReceiver, make_notifier: MakeNotifier
    ) -> None:
        notifier = make_notifier(webhook_channel(webhook_server, secret=None))
        notifier.notify(create_alert())
        await settle(notifier)

        [request] = webhook_server.requests
        assert "x-signature-256" not in request.headers

    async def test_neither_the_url_token_nor_the_secret_is_logged(
        self,
        webhook_server: WebhookReceiver,
        make_notifier: MakeNotifier,
        json_log: io.StringIO,
    ) -> None:
        webhook_server.status = 500
        notifier = make_notifier(webhook_channel(webhook_server))
        notifier.notify(create_alert(key="first"))
        await settle(notifier)
        webhook_server.status = 200
        notifier.notify(create_alert(key="second"))
        await settle(notifier)

        logged = json_log.getvalue()
        assert "alert_failed" in logged
        assert "alert_sent" in logged
        assert "/hooks/alerts?[redacted]" in logged  # httpx's request line, minus its query
        assert WEBHOOK_TOKEN not in logged
        assert WEBHOOK_SECRET not in logged


class TestWebhookFailures:
    async def test_a_500_does_not_stop_the_email(
        self,
        webhook_server: WebhookReceiver,
        smtp_server: SmtpSink,
        make_notifier: MakeNotifier,
        outcomes: Outcomes,
    ) -> None:
        webhook_server.status = 500
        notifier = make_notifier(webhook_channel(webhook_server), smtp_channel(smtp_server))
        assert notifier.notify(create_alert())
        await settle(notifier)

        assert sorted(outcomes) == [("smtp", True), ("webhook", False)]
        assert len(webhook_server.requests) == 1
        assert len(smtp_server.envelopes) == 1

    async def test_a_refused_connection_is_reported(
        self, make_notifier: MakeNotifier, outcomes: Outcomes
    ) -> None:
        down = WebhookReceiver()
        down.port = free_port()  # nothing listens there
        notifier = make_notifier(webhook_channel(down))
        assert notifier.notify(create_alert())
        await settle(notifier)

        assert outcomes == [("webhook", False)]
