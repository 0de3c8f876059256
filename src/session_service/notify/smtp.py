"""Alert emails over SMTP (aiosmtplib): one connection per message, plain text.

Alerts are rare (deduplicated per error and window), so a connection per message costs
nothing and leaves no idle session for the server to drop. The summary reaches the
Subject header only as one sanitised line: a CR/LF in an error message must not add
headers or recipients.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Final, Literal

import aiosmtplib
import structlog
from pydantic import SecretStr

from session_service.notify.alert import Delivery, as_utc, iso_utc, one_line, truncate

log = structlog.get_logger(__name__)

SmtpSecurity = Literal["starttls", "tls", "none"]

SUBJECT_MAX: Final = 120
SUBJECT_PREFIX: Final = "[session-service]"


def subject(delivery: Delivery) -> str:
    """`[session-service] <summary>` on one line, at most `SUBJECT_MAX` characters."""
    return truncate(f"{SUBJECT_PREFIX} {one_line(delivery.alert.summary)}", SUBJECT_MAX)


def body(delivery: Delivery) -> str:
    """The plain-text body: what happened, when, how often, and where to find the log."""
    alert = delivery.alert
    occurrences = f"{delivery.occurrences}"
    if delivery.previous_at is not None:
        occurrences += f" since the previous alert at {iso_utc(delivery.previous_at)}"
    lines = [
        one_line(alert.summary),
        "",
        f"Time: {iso_utc(alert.occurred_at)}",
        f"Source: {alert.source}",
        f"Instance: {delivery.instance or '-'}",
        f"Request id: {alert.request_id or '-'}",
        f"Session id: {alert.session_id or '-'}",
        f"Occurrences: {occurrences}",
        f"Recent actions: {delivery.recent_actions or '-'}",
        f"Error key: {alert.key}",
    ]
    if alert.details:
        lines += ["", "Details:"]
        lines += [
            f"  {name}: {json.dumps(value, default=str, ensure_ascii=False)}"
            for name, value in alert.details.items()
        ]
    lines += ["", "The request id finds the full log of the failing request."]
    return "\n".join(lines) + "\n"


class SmtpChannel:
    """Emails each alert to the admin addresses."""

    name: str = "smtp"

    def __init__(
        self,
        *,
        hostname: str,
        port: int,
        sender: str,
        recipients: Sequence[str],
        security: SmtpSecurity = "starttls",
        username: str | None = None,
        password: SecretStr | None = None,
        timeout: float = 10.0,
    ) -> None:
        if not recipients:
            raise ValueError("an SMTP channel needs at least one recipient")
        self._hostname = hostname
        self._port = port
        self._sender = sender
        self._recipients = list(recipients)
        self._security = security
        self._username = username
        self._password = password
        self._timeout = timeout

    def message(self, delivery: Delivery) -> EmailMessage:
        """The email for one delivery."""
        message = EmailMessage()
        message["Subject"] = subject(delivery)
        message["From"] = self._sender
        message["To"] = ", ".join(self._recipients)
        message["Date"] = format_datetime(as_utc(delivery.alert.occurred_at))
        # An explicit domain: make_msgid would otherwise resolve our FQDN, a blocking call.
        domain = parseaddr(self._sender)[1].rpartition("@")[2]
        message["Message-ID"] = make_msgid(domain=domain or "localhost")
        message.set_content(body(delivery))
        return message

    async def send(self, delivery: Delivery) -> None:
        """Send the email; aiosmtplib's errors propagate (the notifier logs their type)."""
        refused, _ = await aiosmtplib.send(
            self.message(delivery),
            sender=self._sender,
            recipients=self._recipients,
            hostname=self._hostname,
            port=self._port,
            username=self._username,
            password=self._password.get_secret_value() if self._password else None,
            use_tls=self._security == "tls",
            # True makes STARTTLS required; None would silently fall back to plain text.
            start_tls=self._security == "starttls",
            timeout=self._timeout,
        )
        if refused:  # some recipients took it; all refusing raises SMTPRecipientsRefused
            log.warning("alert_recipients_refused", channel=self.name, refused=len(refused))

    async def aclose(self) -> None:
        """Nothing to release: each message uses its own connection."""
