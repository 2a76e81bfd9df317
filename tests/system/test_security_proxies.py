"""X-Forwarded-For counts only from the reverse proxies the node was configured with."""

from __future__ import annotations

import aiohttp
import pytest

from federation.proxies import client_address, parse_networks
from federation.settings import SettingsError, load_settings
from tests.support.nodes import NodeFactory

LOCAL = parse_networks("127.0.0.1/32,::1/128")


def test_forwarded_for_is_believed_only_from_a_trusted_proxy() -> None:
    forwarded = {"X-Forwarded-For": "192.0.2.77, 198.51.100.1"}
    # No proxy configured (the default): every peer is itself, loopback included
    assert client_address("127.0.0.1", forwarded, ()) == "127.0.0.1"
    assert client_address("10.0.0.5", forwarded, ()) == "10.0.0.5"
    # A configured proxy: the rightmost hop it appended is the client
    assert client_address("127.0.0.1", forwarded, LOCAL) == "198.51.100.1"
    assert client_address("::ffff:127.0.0.1", forwarded, LOCAL) == "198.51.100.1"
    # Hops that are themselves trusted proxies are skipped
    chained = {"X-Forwarded-For": "203.0.113.9, 127.0.0.1"}
    assert client_address("127.0.0.1", chained, LOCAL) == "203.0.113.9"
    # A peer outside the list is itself, whatever it claims
    assert client_address("93.184.216.34", forwarded, LOCAL) == "93.184.216.34"
    assert client_address("127.0.0.1", {}, LOCAL) == "127.0.0.1"


def test_the_setting_comes_from_a_flag_or_the_environment() -> None:
    assert load_settings({}, {}).trusted_networks == ()
    env = {"COOPFED_TRUSTED_PROXIES": "127.0.0.1/32, 172.28.0.0/24"}
    assert [str(n) for n in load_settings({}, env).trusted_networks] == [
        "127.0.0.1/32",
        "172.28.0.0/24",
    ]
    flags = {"trusted_proxies": "::1"}
    assert [str(n) for n in load_settings(flags, env).trusted_networks] == ["::1/128"]
    with pytest.raises(SettingsError, match="trusted_proxies"):
        load_settings({}, {"COOPFED_TRUSTED_PROXIES": "not-a-network"})


async def _register(http: aiohttp.ClientSession, base: str, forwarded: str) -> int:
    async with http.post(
        f"{base}/api/v1/apps",
        data={"client_name": "x", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob"},
        headers={"X-Forwarded-For": forwarded},
    ) as resp:
        return resp.status


async def test_rotating_forwarded_for_does_not_escape_the_registration_limit(
    nodes: NodeFactory, http: aiohttp.ClientSession
) -> None:
    # Given a node with no trusted proxy, reached from loopback
    node = await nodes("direct")
    # When one client registers 31 apps, each claiming another X-Forwarded-For
    statuses = [await _register(http, node.base_url, f"198.51.100.{i}") for i in range(31)]
    # Then the limiter (burst 30 per client) still counts them as one client
    assert statuses[:30] == [200] * 30 and statuses[30] == 429


async def test_behind_a_trusted_proxy_each_forwarded_client_counts_apart(
    nodes: NodeFactory, http: aiohttp.ClientSession
) -> None:
    # Given a node told that loopback is its reverse proxy
    node = await nodes("proxied", trusted_proxies="127.0.0.1/32")
    # When 31 different clients register through it, then none is limited
    statuses = [await _register(http, node.base_url, f"198.51.100.{i}") for i in range(31)]
    assert statuses == [200] * 31
    # And one client registering 31 times through it is
    again = [await _register(http, node.base_url, "203.0.113.5") for _ in range(31)]
    assert again[30] == 429


def test_the_deploy_kit_trusts_exactly_its_own_proxy() -> None:
    import ipaddress
    from pathlib import Path

    import yaml

    deploy = Path(__file__).resolve().parents[2] / "deploy"
    compose = yaml.safe_load((deploy / "compose.yaml").read_text())
    trusted = parse_networks(compose["services"]["node"]["environment"]["COOPFED_TRUSTED_PROXIES"])
    caddy = compose["services"]["caddy"]["networks"]["default"]["ipv4_address"]
    assert [str(n) for n in trusted] == [f"{caddy}/32"]
    subnet = compose["networks"]["default"]["ipam"]["config"][0]["subnet"]
    assert ipaddress.ip_address(caddy) in ipaddress.ip_network(subnet)
    systemd = (deploy / "coopfed.env.example").read_text()
    assert "\nCOOPFED_TRUSTED_PROXIES=127.0.0.1/32,::1/128\n" in systemd
