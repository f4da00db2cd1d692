"""The outbound-address policy: safe defaults, every resolved address checked, CIDR settings."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from livesight.core.outbound import OutboundPolicy, OutboundRefused
from livesight.settings import ConfigError, load_settings

REFUSED_BY_DEFAULT = [
    "127.0.0.1",
    "127.8.9.10",
    "::1",
    "169.254.169.254",
    "169.254.1.1",
    "fd00:ec2::254",
    "fe80::1",
    "0.0.0.0",
    "::",
    "224.0.0.251",
    "ff02::1",
    "255.255.255.255",
    "240.0.0.1",
    "::ffff:127.0.0.1",
    "::ffff:169.254.169.254",
    "64:ff9b::a9fe:a9fe",  # NAT64 form of 169.254.169.254
    "::127.0.0.1",  # IPv4-compatible form
]
ALLOWED_BY_DEFAULT = ["10.0.0.5", "172.16.3.4", "192.168.1.20", "100.64.1.1", "fc00::1", "fd12:3456::1", "8.8.8.8"]


@pytest.mark.parametrize("ip", REFUSED_BY_DEFAULT)
def test_default_refuses_loopback_link_local_metadata_and_mapped_forms(ip: str) -> None:
    with pytest.raises(OutboundRefused):
        OutboundPolicy().check_address(ip, 80)


@pytest.mark.parametrize("ip", ALLOWED_BY_DEFAULT)
def test_default_allows_lan_and_public_addresses(ip: str) -> None:
    OutboundPolicy().check_address(ip, 554)


def test_the_servers_own_listening_address_and_port_are_refused() -> None:
    own = OutboundPolicy.build(own_endpoints=[("192.168.1.5", 7880)])
    with pytest.raises(OutboundRefused, match="own listening"):
        own.check_address("192.168.1.5", 7880)
    own.check_address("192.168.1.5", 554)
    own.check_address("192.168.1.6", 7880)
    anywhere = OutboundPolicy.build(own_endpoints=[("0.0.0.0", 7880)], allow=["127.0.0.1/32", "0.0.0.0/0"])
    for ip in ("192.168.1.9", "127.0.0.1"):
        with pytest.raises(OutboundRefused, match="own listening"):
            anywhere.check_address(ip, 7880)


def test_allow_list_narrows_and_lifts_a_default_refusal_only_from_inside_it() -> None:
    policy = OutboundPolicy.build(allow=["127.0.0.1/32", "10.1.0.0/16", "0.0.0.0/0"])
    policy.check_address("127.0.0.1", 80)  # explicitly allowed loopback address
    policy.check_address("::ffff:127.0.0.1", 80)
    policy.check_address("8.8.8.8", 80)
    for ip in ("127.0.0.2", "169.254.169.254", "::1"):  # 0.0.0.0/0 lifts nothing
        with pytest.raises(OutboundRefused):
            policy.check_address(ip, 80)
    narrow = OutboundPolicy.build(allow=["10.1.0.0/16"])
    narrow.check_address("10.1.2.3", 80)
    with pytest.raises(OutboundRefused, match="not in the allowed networks"):
        narrow.check_address("192.168.1.1", 80)


def test_deny_list_wins_over_allow() -> None:
    policy = OutboundPolicy.build(allow=["10.0.0.0/8"], deny=["10.9.0.0/16"])
    policy.check_address("10.8.0.1", 80)
    with pytest.raises(OutboundRefused, match="denied network"):
        policy.check_address("10.9.0.1", 80)
    with pytest.raises(OutboundRefused, match="denied network"):
        OutboundPolicy.build(deny=["203.0.113.0/24"]).check_address("::ffff:203.0.113.7", 80)


def fixed(addresses: Sequence[str]) -> OutboundPolicy:
    return OutboundPolicy.build(resolver=lambda host, port: list(addresses))


def test_every_resolved_address_is_checked_and_the_checked_one_returned() -> None:
    assert fixed(["192.168.1.7", "10.0.0.3"]).resolve("cam.lan", 554) == "192.168.1.7"
    with pytest.raises(OutboundRefused, match=r"169\.254\.169\.254"):
        fixed(["192.168.1.7", "169.254.169.254"]).resolve("cam.lan", 554)
    with pytest.raises(OutboundRefused, match="no address"):
        fixed([]).resolve("cam.lan", 554)


def test_host_names_are_narrowed_before_any_lookup() -> None:
    looked_up: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        looked_up.append(host)
        return ["192.168.1.7"]

    policy = OutboundPolicy.build(hosts=["cam.lan"], resolver=resolver)
    assert policy.resolve("CAM.lan.", 554) == "192.168.1.7"
    with pytest.raises(OutboundRefused, match="allowed host names"):
        policy.resolve("metadata.google.internal", 80)
    assert looked_up == ["CAM.lan."]


def test_settings_validate_the_cidr_lists_and_build_the_policy(tmp_path: object) -> None:
    with pytest.raises(ConfigError, match="outbound_allow_cidrs"):
        load_settings(None, outbound_allow_cidrs=["10.0.0.0/33"])
    with pytest.raises(ConfigError, match="outbound_deny_cidrs"):
        load_settings(None, outbound_deny_cidrs=["10.0.0.1/8"])  # host bits set: a typo, not a network
    settings = load_settings(None, host="192.168.1.5", port=7880, outbound_deny_cidrs=["192.168.9.0/24"])
    policy = settings.outbound_policy()
    with pytest.raises(OutboundRefused):
        policy.check_address("192.168.9.1", 554)
    with pytest.raises(OutboundRefused, match="own listening"):
        policy.check_address("192.168.1.5", 7880)
    policy.check_address("192.168.1.6", 554)
