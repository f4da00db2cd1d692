"""The outbound-address policy: may the server connect to this host, on a user's behalf?

Every connection the server makes for a user (pulled sources on every hop today; webhooks and other
fetches later) asks `OutboundPolicy.resolve(host, port)`: the name is resolved, EVERY address it
resolves to is checked, and the caller connects to the returned, checked address (never resolving
the name a second time, so a DNS answer that changes between check and connect cannot redirect it).

Refused by default (CONTRACT-level safety, lifted only as described below):
loopback, link-local (incl. the cloud metadata addresses 169.254.169.254 and fd00:ec2::254),
unspecified, multicast, broadcast and reserved ranges, the same addresses written in IPv4-mapped,
IPv4-compatible or NAT64 form, and the server's own listening address and port.
Private LAN ranges (10/8, 172.16/12, 192.168/16, fc00::/7 ...) are allowed: cameras on the LAN are a
reason to self-host.

- `allow` (when given): only addresses inside one of these networks are allowed. A built-in
  refusal is lifted only by an allow entry that lies inside the refused range (`127.0.0.0/8` or
  `127.0.0.1/32` allows loopback; `0.0.0.0/0` does not): allowing "everything" never allows the
  metadata address by accident.
- `deny`: always refused, on top of the built-in ranges; wins over `allow`.
- `hosts` (when given): the host name as written must also be one of these (compared before any
  lookup, so a refused name is never resolved).
- the server's own endpoints are always refused.

This module does no I/O except the resolver it is given (blocking `socket.getaddrinfo` by default:
call it from a thread, or pass addresses you resolved asynchronously to `check_addresses`).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from livesight.core.errors import OutboundRefused as OutboundRefused  # re-exported: callers import it with the policy

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]

_REFUSED: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", "unspecified"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local (cloud metadata)"),
    ("100.100.100.200/32", "cloud metadata"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved or broadcast"),
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("fe80::/10", "link-local"),
    ("fd00:ec2::254/128", "cloud metadata"),
    ("ff00::/8", "multicast"),
)
REFUSED_BY_DEFAULT: tuple[tuple[Network, str], ...] = tuple((ipaddress.ip_network(net), why) for net, why in _REFUSED)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_V4_COMPAT = ipaddress.ip_network("::/96")


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """CIDRs (or bare addresses, as /32 or /128); ValueError naming the bad entry."""
    networks: list[Network] = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=True))
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a CIDR network ({exc})") from None
    return tuple(networks)


def _embedded_v4(address: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped ::ffff:a.b.c.d, compatible, NAT64)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64 or (address in _V4_COMPAT and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True)
class OutboundPolicy:
    allow: tuple[Network, ...] | None = None
    deny: tuple[Network, ...] = ()
    hosts: frozenset[str] | None = None
    own_endpoints: tuple[tuple[str, int], ...] = ()
    """(host, port) the server listens on; an unspecified host (0.0.0.0, ::) means every address."""
    resolver: Resolver = field(default=_system_resolver, compare=False, repr=False)

    @classmethod
    def build(
        cls,
        *,
        allow: Iterable[str] | None = None,
        deny: Iterable[str] = (),
        hosts: Iterable[str] | None = None,
        own_endpoints: Iterable[tuple[str, int]] = (),
        resolver: Resolver | None = None,
    ) -> OutboundPolicy:
        return cls(
            allow=parse_networks(allow) if allow is not None else None,
            deny=parse_networks(deny),
            hosts=frozenset(h.lower().rstrip(".") for h in hosts) if hosts is not None else None,
            own_endpoints=tuple((h, p) for h, p in own_endpoints if p),
            resolver=resolver or _system_resolver,
        )

    @classmethod
    def anywhere(cls) -> OutboundPolicy:
        """Refuses nothing: only for a destination the operator configured (e.g. `livekit_url`), never
        for a caller's URL."""
        return cls.build(allow=[*(str(net) for net, _ in REFUSED_BY_DEFAULT), "0.0.0.0/0", "::/0"])

    def check_host(self, host: str) -> None:
        """The host name as written, before any lookup (the `hosts` narrowing)."""
        name = host.lower().rstrip(".").strip("[]")
        if not name:
            raise OutboundRefused("the URL has no host")
        if self.hosts is not None and name not in self.hosts:
            raise OutboundRefused(f"host {name!r} is not in the allowed host names ({', '.join(sorted(self.hosts))})")

    def check_address(self, ip: str, port: int) -> None:
        """OutboundRefused with the reason when this address and port may not be connected to."""
        try:
            address = ipaddress.ip_address(ip.split("%", 1)[0])
        except ValueError:
            raise OutboundRefused(f"{ip!r} is not an IP address") from None
        candidates: list[Address] = [address]
        embedded = _embedded_v4(address)
        if embedded is not None:
            candidates.append(embedded)
        for own_host, own_port in self.own_endpoints:
            if port == own_port and self._is_own(own_host, candidates):
                raise OutboundRefused(f"{ip} port {port} is this server's own listening address")
        for candidate in candidates:
            for net in self.deny:
                if candidate.version == net.version and candidate in net:
                    raise OutboundRefused(f"{ip} is in the denied network {net}")
            for net, why in REFUSED_BY_DEFAULT:
                if candidate.version == net.version and candidate in net and not self._lifted(candidate, net):
                    raise OutboundRefused(f"{ip} is a {why} address ({net}), refused unless explicitly allowed")
        if self.allow is not None and not any(
            c.version == n.version and c in n for c in candidates for n in self.allow
        ):
            raise OutboundRefused(f"{ip} is not in the allowed networks ({', '.join(map(str, self.allow))})")

    def check_addresses(self, host: str, port: int, addresses: Sequence[str]) -> str:
        """The address to connect to, once every address `host` resolved to passed the policy."""
        if not addresses:
            raise OutboundRefused(f"{host!r} resolved to no address")
        for ip in addresses:
            try:
                self.check_address(ip, port)
            except OutboundRefused as exc:
                raise OutboundRefused(f"{host!r} resolves to a refused address: {exc.message}") from None
        return addresses[0]

    def resolve(self, host: str, port: int) -> str:
        """Check the name, resolve it, check every address; the checked address to connect to.

        Blocking (the resolver); OutboundRefused when refused, OSError when the name does not resolve."""
        self.check_host(host)
        name = host.strip("[]")
        return self.check_addresses(host, port, self.resolver(name, port))

    def _lifted(self, address: Address, refused: Network) -> bool:
        return self.allow is not None and any(
            address.version == n.version and address in n and n.subnet_of(refused)  # type: ignore[arg-type]
            for n in self.allow
        )

    @staticmethod
    def _is_own(own_host: str, candidates: Sequence[Address]) -> bool:
        try:
            own = ipaddress.ip_address(own_host.strip("[]"))
        except ValueError:  # a name: compare with what it means for the usual "localhost"
            return own_host.lower() == "localhost" and any(c.is_loopback for c in candidates)
        return own.is_unspecified or own in candidates
