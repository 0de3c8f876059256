"""Limits count IPv6 clients per network (RATE_LIMIT_IPV6_PREFIX), zone ids ignored."""

from __future__ import annotations

import pytest

from session_service.ratelimit.limiter import client_key
from tests.protection.conftest import ClientFactory

CREATE = "/api/v1/sessions"


@pytest.fixture
def settings_overrides(limits_on: dict[str, object]) -> dict[str, object]:
    return {**limits_on, "rate_limit_create": "10/minute"}


async def create_from(client_from: ClientFactory, address: str) -> int:
    async with client_from(address) as http:
        return (await http.post(CREATE)).status_code


class TestIPv6Networks:
    async def test_one_slash_64_is_limited_like_one_address(
        self, client_from: ClientFactory
    ) -> None:
        statuses = [await create_from(client_from, f"2001:db8:1:2::{n:x}") for n in range(1, 16)]
        assert statuses == [201] * 10 + [429] * 5
        # Another /64 (of the same /48) has a budget of its own.
        assert await create_from(client_from, "2001:db8:1:3::1") == 201

    async def test_zone_ids_are_ignored(self, client_from: ClientFactory) -> None:
        zones = [f"fe80::1%eth{n}" for n in range(11)]
        statuses = [await create_from(client_from, address) for address in zones]
        assert statuses == [201] * 10 + [429]


class TestIPv4Addresses:
    async def test_each_address_has_its_own_budget(self, client_from: ClientFactory) -> None:
        statuses = [await create_from(client_from, "192.0.2.1") for _ in range(11)]
        assert statuses == [201] * 10 + [429]
        assert await create_from(client_from, "192.0.2.2") == 201
        # The same client reached over IPv6 as an IPv4-mapped address is the same client.
        assert await create_from(client_from, "::ffff:192.0.2.1") == 429


class TestPrefix:
    @pytest.fixture
    def settings_overrides(self, limit_storage: str) -> dict[str, object]:
        return {
            "rate_limit_enabled": True,
            "rate_limit_storage_uri": limit_storage,
            "rate_limit_create": "10/minute",
            "rate_limit_ipv6_prefix": 128,
        }

    async def test_per_address_still_ignores_zone_ids(self, client_from: ClientFactory) -> None:
        statuses = [await create_from(client_from, f"fe80::1%eth{n}") for n in range(11)]
        assert statuses == [201] * 10 + [429]
        # With /128, a neighbour in the same /64 counts alone.
        assert await create_from(client_from, "fe80::2") == 201


@pytest.mark.parametrize(
    ("address", "prefix", "key"),
    [
        ("2001:db8:1:2:aaaa::1", 64, "2001:db8:1:2::/64"),
        ("2001:db8:1:2:aaaa::1", 56, "2001:db8:1::/56"),
        ("fe80::1%eth0", 128, "fe80::1/128"),
        ("::ffff:203.0.113.9", 64, "203.0.113.9"),
        ("203.0.113.9", 64, "203.0.113.9"),
        (None, 64, "unknown"),
        ("testclient", 64, "testclient"),
    ],
)
def test_client_key(address: str | None, prefix: int, key: str) -> None:
    assert client_key(address, prefix) == key
