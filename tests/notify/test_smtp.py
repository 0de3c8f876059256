"""Alert emails reach a real SMTP server with every field the admin needs, and nothing more."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import structlog
from aiosmtpd.smtp import AuthResult, LoginPassword
from pydantic import SecretStr

from session_service.notify.alert import Alert
from session_service.notify.notifier import AlertNotifier
from tests.conftest import T0
from tests.notify.conftest import (
    ADMIN,
    SENDER,
    Outcomes,
    SmtpSink,
    running_smtp,
    settle,
    smtp_channel,
)
from tests.processes import free_port

MakeNotifier = Callable[..., AlertNotifier]


def create_alert(**fields: object) -> Alert:
    values: dict[str, object] = {
        "key": "request:RuntimeError:POST /api/v1/sessions",
        "summary": "RuntimeError: database went away",
        "occurred_at": T0,
        "source": "request",
        "request_id": "req-7f3a",
        "session_id": "sess-42",
        "details": {"method": "POST", "route": "/api/v1/sessions"},
    }
    return Alert(**{**values, **fields})  # type: ignore[arg-type]


class TestSmtpDelivery:
    async def test_the_email_carries_time_session_summary_actions_and_request_id(
        self, smtp_server: SmtpSink, make_notifier: MakeNotifier, outcomes: Outcomes
    ) -> None:
        async def recent_actions(session_id: str) -> str:
            return f"{session_id}: opened, uploaded a.pdf, " + "x" * 300

        notifier = make_notifier(
            smtp_channel(smtp_server), recent_actions=recent_actions, instance="api-1:8000"
        )
        assert notifier.notify(create_alert())
        await settle(notifier)

        assert outcomes == [("smtp", True)]
        [envelope] = smtp_server.envelopes
        assert envelope.mail_from == SENDER
        assert envelope.rcpt_tos == [ADMIN]
        [message] = smtp_server.messages()
        assert message["Subject"] == "[session-service] RuntimeError: database went away"
        assert message["From"] == SENDER
        assert message["To"] == ADMIN
        lines: list[str] = message.get_content().splitlines()
        assert "Time: 2026-01-15T09:30:00+00:00" in lines
        assert "Source: request" in lines
        assert "Instance: api-1:8000" in lines
        assert "Request id: req-7f3a" in lines
        assert "Session id: sess-42" in lines
        assert "Occurrences: 1" in lines
        assert '  route: "/api/v1/sessions"' in lines
        [actions_line] = [line for line in lines if line.startswith("Recent actions:")]
        actions = actions_line.removeprefix("Recent actions: ")
        assert actions.startswith("sess-42: opened, uploaded a.pdf, xxx")
        assert len(actions) == 200

    async def test_a_newline_in_the_summary_adds_no_header_or_recipient(
        self, smtp_server: SmtpSink, make_notifier: MakeNotifier
    ) -> None:
        notifier = make_notifier(smtp_channel(smtp_server))
        summary = "disk full\r\nBcc: attacker@evil.example\r\n\r\nforged body"
        assert notifier.notify(create_alert(summary=summary))
        await settle(notifier)

        [envelope] = smtp_server.envelopes
        assert envelope.rcpt_tos == [ADMIN]
        [message] = smtp_server.messages()
        assert message["Bcc"] is None
        assert set(message.keys()) == {
            "Subject",
            "From",
            "To",
            "Date",
            "Message-ID",
            "Content-Type",
            "Content-Transfer-Encoding",
            "MIME-Version",
        }
        assert message["Subject"] == (
            "[session-service] disk full Bcc: attacker@evil.example forged body"
        )

    async def test_a_long_summary_makes_a_short_subject(
        self, smtp_server: SmtpSink, make_notifier: MakeNotifier
    ) -> None:
        notifier = make_notifier(smtp_channel(smtp_server))
        notifier.notify(create_alert(summary="ValueError: " + "v" * 500))
        await settle(notifier)

        [message] = smtp_server.messages()
        assert len(message["Subject"]) == 120
        assert message["Subject"].endswith("v…")

    async def test_a_sender_with_a_display_name(
        self, smtp_server: SmtpSink, make_notifier: MakeNotifier
    ) -> None:
        sender = f"Session Service <{SENDER}>"
        notifier = make_notifier(smtp_channel(smtp_server, sender=sender))
        notifier.notify(create_alert())
        await settle(notifier)

        [envelope] = smtp_server.envelopes
        assert envelope.mail_from == SENDER
        [message] = smtp_server.messages()
        assert message["From"] == sender
        assert message["Message-ID"].endswith("@service.example>")

    @pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
    async def test_login_uses_the_configured_credentials(
        self, make_notifier: MakeNotifier, outcomes: Outcomes
    ) -> None:
        logins: list[tuple[bytes, bytes]] = []

        def authenticator(
            server: object, session: object, envelope: object, mechanism: str, data: object
        ) -> AuthResult:
            assert isinstance(data, LoginPassword)
            logins.append((data.login, data.password))
            return AuthResult(success=data.password == b"s3cret")

        with running_smtp(
            authenticator=authenticator, auth_required=True, auth_require_tls=False
        ) as sink:
            channel = smtp_channel(sink, username="alerts", password=SecretStr("s3cret"))
            notifier = make_notifier(channel)
            notifier.notify(create_alert())
            await settle(notifier)

        assert logins == [(b"alerts", b"s3cret")]
        assert outcomes == [("smtp", True)]
        assert len(sink.envelopes) == 1


class TestSmtpFailures:
    async def test_a_server_that_is_down_is_reported_not_raised(
        self, make_notifier: MakeNotifier, outcomes: Outcomes
    ) -> None:
        down = SmtpSink()
        down.port = free_port()  # nothing listens there
        notifier = make_notifier(smtp_channel(down))
        with structlog.testing.capture_logs() as logs:
            assert notifier.notify(create_alert())
            await settle(notifier)

        assert outcomes == [("smtp", False)]
        [failed] = [entry for entry in logs if entry["event"] == "alert_failed"]
        assert failed["channel"] == "smtp"
        assert failed["error"] == "SMTPConnectError"
        assert failed["log_level"] == "warning"

    async def test_starttls_is_required_not_skipped(
        self, smtp_server: SmtpSink, make_notifier: MakeNotifier, outcomes: Outcomes
    ) -> None:
        notifier = make_notifier(smtp_channel(smtp_server, security="starttls"))
        notifier.notify(create_alert())
        await settle(notifier)

        assert outcomes == [("smtp", False)]
        assert smtp_server.envelopes == []  # never sent in plain text instead
