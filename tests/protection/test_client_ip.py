"""The client address: X-Forwarded-For only from trusted proxies, walked from the right."""

from __future__ import annotations

import io
import ipaddress

import httpx
import pytest

from session_service.http.middleware.clientip import TrustedProxies, parse_address
from tests.conftest import service_log_lines
from tests.helpers import Running, audit_events
from tests.protection.conftest import ClientFactory

CREATE = "/api/v1/sessions"
PROXY = "10.0.0.5"


def proxies(*networks: str) -> TrustedProxies:
    return TrustedProxies(ipaddress.ip_network(network) for network in networks)


class TestWalk:
    @pytest.mark.parametrize(
        ("peer", "header", "client"),
        [
            # An untrusted peer's header changes nothing, whatever it says.
            ("198.51.100.7", ["1.2.3.4"], "198.51.100.7"),
            ("198.51.100.7", ["not an address"], "198.51.100.7"),
            # One trusted proxy: the address it appended.
            (PROXY, ["1.2.3.4"], "1.2.3.4"),
            # A client's own forged entry sits left of what our proxy appended.
            (PROXY, ["6.6.6.6, 1.2.3.4"], "1.2.3.4"),
            # Two trusted hops are skipped.
            (PROXY, ["1.2.3.4, 10.1.2.3"], "1.2.3.4"),
            # Every hop trusted: the leftmost is as far as the chain goes.
            (PROXY, ["10.9.9.9, 10.1.2.3"], "10.9.9.9"),
            # Several header lines read as one list, in order.
            (PROXY, ["6.6.6.6", "1.2.3.4"], "1.2.3.4"),
            # Malformed entries stop the walk at the last address known to be good.
            (PROXY, ["garbage"], PROXY),
            (PROXY, ["1.2.3.4, , 10.1.2.3"], "10.1.2.3"),
            (PROXY, ["1.2.3.4,10.1.2.3,999.1.1.1"], PROXY),
            (PROXY, [""], PROXY),
            # Ports and IPv6 forms.
            (PROXY, ["1.2.3.4:5678"], "1.2.3.4"),
            (PROXY, ["[2001:db8::1]:443"], "2001:db8::1"),
            (PROXY, ["2001:DB8::2"], "2001:db8::2"),
            (PROXY, ["::ffff:1.2.3.4"], "1.2.3.4"),
            ("::ffff:10.0.0.5", ["1.2.3.4"], "1.2.3.4"),
        ],
    )
    def test_cases(self, peer: str, header: list[str], client: str) -> None:
        assert proxies("10.0.0.0/8").client(peer, header) == client

    def test_single_addresses_and_ipv6_networks(self) -> None:
        trusted = proxies("192.0.2.10/32", "fd00::/8")
        assert trusted.client("192.0.2.10", ["1.2.3.4"]) == "1.2.3.4"
        assert trusted.client("192.0.2.11", ["1.2.3.4"]) == "192.0.2.11"
        assert trusted.client("fd00::1", ["1.2.3.4"]) == "1.2.3.4"

    @pytest.mark.parametrize("text", ["", "a.b.c.d", "1.2.3", "[::1", "1.2.3.4:80:90", "x" * 1000])
    def test_malformed_addresses(self, text: str) -> None:
        assert parse_address(text) is None


# Audit events show which address was resolved: they keep it in full here (the default
# keeps the network only; tests/audit/test_client_detail.py).
FULL_DETAIL = {"audit_client_detail": "full"}


@pytest.fixture
def settings_overrides(limits_on: dict[str, object]) -> dict[str, object]:
    return {**limits_on, **FULL_DETAIL, "trusted_proxies": ["10.0.0.0/8"]}


@pytest.fixture
def limit_storage() -> str:
    return "memory://"


class TestInTheApp:
    async def test_forged_header_from_untrusted_peer_is_ignored(
        self, client_from: ClientFactory, app: Running
    ) -> None:
        async with client_from("198.51.100.7") as http:
            for n in range(4):
                forged = {"X-Forwarded-For": f"203.0.113.{n}"}
                response = await http.post(CREATE, headers=forged)
        # A new forged address per call bought nothing: the peer's budget ran out.
        assert response.status_code == 429
        events = await audit_events(app)
        assert {e["client_ip"] for e in events} == {"198.51.100.7"}

    async def test_clients_behind_a_trusted_proxy_each_have_a_budget(
        self, client_from: ClientFactory, app: Running
    ) -> None:
        async with client_from(PROXY) as proxy:
            for _ in range(3):
                first = await proxy.post(CREATE, headers={"X-Forwarded-For": "203.0.113.1"})
                assert first.status_code == 201
            refused = await proxy.post(CREATE, headers={"X-Forwarded-For": "203.0.113.1"})
            assert refused.status_code == 429
            other = await proxy.post(CREATE, headers={"X-Forwarded-For": "203.0.113.2"})
            assert other.status_code == 201
        created = [e for e in await audit_events(app) if e["type"] == "session.created"]
        assert [e["client_ip"] for e in created] == ["203.0.113.1"] * 3 + ["203.0.113.2"]

    async def test_malformed_header_from_a_trusted_proxy_is_not_an_error(
        self, client_from: ClientFactory, app: Running
    ) -> None:
        async with client_from(PROXY) as proxy:
            response = await proxy.post(CREATE, headers={"X-Forwarded-For": "<script>"})
        assert response.status_code == 201
        assert [e["client_ip"] for e in await audit_events(app)] == [PROXY]


class TestAccessLog:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"trusted_proxies": ["10.0.0.0/8"], "access_log": True}

    async def test_access_log_shows_the_client(
        self, json_log: io.StringIO, client_from: ClientFactory
    ) -> None:
        async with client_from(PROXY) as proxy:
            await proxy.get("/healthz", headers={"X-Forwarded-For": "203.0.113.4"})
        lines = [line for line in service_log_lines(json_log) if line["event"] == "request"]
        assert [line["client"] for line in lines] == ["203.0.113.4"]


class TestSettings:
    def test_networks_with_host_bits_are_refused(self) -> None:
        from pydantic import ValidationError

        from session_service.core.settings import Settings

        with pytest.raises(ValidationError, match="trusted_proxies"):
            Settings(trusted_proxies=["10.0.0.1/8"])

    def test_addresses_are_single_host_networks(self) -> None:
        from session_service.core.settings import Settings

        parsed = Settings(trusted_proxies=["10.0.0.1", "::1"])
        assert [str(n) for n in parsed.trusted_proxies] == ["10.0.0.1/32", "::1/128"]


class TestNoTrustedProxies:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return dict(FULL_DETAIL)

    async def test_the_header_is_never_read(self, app: Running) -> None:
        transport = httpx.ASGITransport(app=app, client=(PROXY, 1))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            await http.post(CREATE, headers={"X-Forwarded-For": "1.2.3.4"})
        assert [e["client_ip"] for e in await audit_events(app)] == [PROXY]
