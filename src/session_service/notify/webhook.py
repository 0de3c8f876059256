"""Alerts as signed JSON POSTs to a webhook, over one httpx client owned by the channel.

The receiver can check `X-Signature-256: sha256=<hex HMAC-SHA256 of the body>` with the
shared secret. Webhook URLs often carry a token in their query string, so neither the
URL nor the secret may reach a log: failures are reported by status or class name, and
httpx's own request log line gets the query of our URL redacted.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Any

import httpx
from pydantic import SecretStr

from session_service.notify.alert import Delivery, iso_utc
from session_service.notify.base import ChannelError

SIGNATURE_HEADER = "X-Signature-256"


class WebhookRejected(ChannelError):
    """The webhook answered with a non-2xx status."""

    def __init__(self, status_code: int) -> None:
        super().__init__(f"webhook answered {status_code}")
        self.status_code = status_code


def payload(delivery: Delivery) -> dict[str, Any]:
    """The JSON document a webhook receives."""
    alert = delivery.alert
    return {
        "time": iso_utc(alert.occurred_at),
        "source": alert.source,
        "instance": delivery.instance,
        "summary": alert.summary,
        "key": alert.key,
        "request_id": alert.request_id,
        "session_id": alert.session_id,
        "occurrences": delivery.occurrences,
        "since": iso_utc(delivery.previous_at) if delivery.previous_at else None,
        "recent_actions": delivery.recent_actions,
        "details": dict(alert.details),
    }


def signature(body: bytes, secret: SecretStr) -> str:
    """The `X-Signature-256` value for `body`."""
    digest = hmac.new(secret.get_secret_value().encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class _RedactQuery(logging.Filter):
    """Strips query and credentials of one URL from httpx's `HTTP Request: POST <url>` lines."""

    def __init__(self, url: httpx.URL) -> None:
        super().__init__()
        self._bare = _bare(url)
        self._safe = f"{self._bare}?[redacted]" if url.query else str(self._bare)

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                self._safe if isinstance(arg, httpx.URL) and _bare(arg) == self._bare else arg
                for arg in record.args
            )
        return True


def _bare(url: httpx.URL) -> httpx.URL:
    return url.copy_with(query=None, fragment=None, username=None, password=None)


class WebhookChannel:
    """POSTs each alert as JSON; any non-2xx answer is a failure."""

    name: str = "webhook"

    def __init__(self, url: str, *, secret: SecretStr | None = None, timeout: float = 5.0) -> None:
        self._url = httpx.URL(url)
        self._secret = secret
        # Redirects are not followed: a 3xx is a misconfigured URL, and following it could
        # resend the signed body somewhere else.
        self._client = httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self._log_filter = _RedactQuery(self._url)
        logging.getLogger("httpx").addFilter(self._log_filter)

    async def send(self, delivery: Delivery) -> None:
        """POST the alert; raise `WebhookRejected` on non-2xx, httpx's errors otherwise."""
        content = json.dumps(payload(delivery), default=str, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json"}
        if self._secret is not None:
            headers[SIGNATURE_HEADER] = signature(content, self._secret)
        response = await self._client.post(self._url, content=content, headers=headers)
        if not response.is_success:
            raise WebhookRejected(response.status_code)

    async def aclose(self) -> None:
        """Close the client's connection pool."""
        logging.getLogger("httpx").removeFilter(self._log_filter)
        await self._client.aclose()
