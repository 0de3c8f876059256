"""AUDIT_CLIENT_DETAIL: audit events keep the caller's network by default, not the address."""

from __future__ import annotations

import httpx
import pytest

from session_service.audit.service import client_network
from session_service.core.settings import Settings
from tests.helpers import Running, audit_events, session_row

BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"}


@pytest.mark.parametrize(
    ("address", "network"),
    [
        ("203.0.113.77", "203.0.113.0/24"),
        ("2001:db8:abcd:12:34::1", "2001:db8:abcd::/48"),
        ("::ffff:198.51.100.9", "198.51.100.0/24"),
        ("not an address", None),
        (None, None),
    ],
)
def test_the_network_of_an_address(address: str | None, network: str | None) -> None:
    assert client_network(address) == network


def test_the_default_is_network() -> None:
    assert Settings().audit_client_detail == "network"


async def _created_event(client: httpx.AsyncClient, app: Running) -> dict[str, object]:
    response = await client.post("/api/v1/sessions", headers=BROWSER)
    assert response.status_code == 201
    [event] = await audit_events(app)
    row = await session_row(app, response.json()["id"])
    assert row is not None
    # The session row keeps the caller in full, for abuse handling, until it is gone.
    assert row["client_ip"] == "127.0.0.1"
    assert row["user_agent"] == BROWSER["User-Agent"]
    return event


class TestEvents:
    async def test_network_by_default(self, client: httpx.AsyncClient, app: Running) -> None:
        event = await _created_event(client, app)
        assert event["client_ip"] == "127.0.0.0/24"
        assert event["user_agent"] is None

    @pytest.mark.parametrize("settings_overrides", [{"audit_client_detail": "full"}])
    async def test_full(self, client: httpx.AsyncClient, app: Running) -> None:
        event = await _created_event(client, app)
        assert event["client_ip"] == "127.0.0.1"
        assert event["user_agent"] == BROWSER["User-Agent"]

    @pytest.mark.parametrize("settings_overrides", [{"audit_client_detail": "none"}])
    async def test_none(self, client: httpx.AsyncClient, app: Running) -> None:
        event = await _created_event(client, app)
        assert event["client_ip"] is None
        assert event["user_agent"] is None


def test_an_unknown_choice_is_refused() -> None:
    with pytest.raises(ValueError, match="audit_client_detail"):
        Settings(audit_client_detail="verbose")
