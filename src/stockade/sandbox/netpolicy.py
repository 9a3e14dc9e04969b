"""Egress policy of a box: which destinations its proxy may connect to (docs/network.md).

A policy is an allowlist of entries: a host name (`api.example.com`), a name with a port
(`api.example.com:443`), a suffix wildcard (`*.pythonhosted.org`), or an address or network
(`203.0.113.0/24`, `2001:db8::1`). Everything else is refused. A name is allowed only if every address it
resolves to is public or inside a network entry of the same policy, so a name cannot smuggle the host's
loopback, the private network or a metadata service in (DNS rebinding); a literal address is allowed only
inside a network entry. The host's own addresses (the service's) are refused whatever the entries
say. The same address rule guards the service's webhooks.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]

MAX_ENTRIES = 64
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_NAME_RE = re.compile(rf"^(\*\.)?{_LABEL}(\.{_LABEL})*$")


async def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (system resolver), deduplicated in its order."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def host_address(address: str) -> bool:
    """Whether `address` is one of this host's own, where the service and whatever else it runs listen:
    binding to it succeeds. Only "not an address here" (EADDRNOTAVAIL) says no: any other failure
    (descriptors exhausted) counts as yes, so the check fails closed. (With ip_nonlocal_bind set every
    bind succeeds, and every address is refused.)"""
    try:
        with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((address, 0))
    except OSError as e:
        return e.errno != errno.EADDRNOTAVAIL
    return True


def forbidden_reason(address: Address, allow: Sequence[Network]) -> str | None:
    """Why `address` may not be reached (None: it may): every address that is not global, and every
    address of this host (a public one too: the service listens there), is refused unless an allowed
    network holds it."""
    if any(address in net for net in allow):
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    checked = mapped or address
    for kind in ("unspecified", "loopback", "link_local", "multicast", "private", "reserved"):
        if getattr(checked, f"is_{kind}"):
            return f"{address} is a {kind.replace('_', '-')} address"
    if not checked.is_global:
        return f"{address} is not a public address"
    if host_address(str(address)):
        return f"{address} is an address of this host"
    return None


@dataclass(frozen=True)
class NameRule:
    host: str  # lower case; "*.example.com" matches every name under example.com, not itself
    port: int | None = None  # None: any port

    def matches(self, host: str, port: int) -> bool:
        if self.port is not None and port != self.port:
            return False
        if self.host.startswith("*."):
            return host.endswith(self.host[1:])
        return host == self.host

    def covers(self, other: NameRule) -> bool:
        """Whether every destination `other` allows, this allows too."""
        if self.port is not None and self.port != other.port:
            return False
        if self.host.startswith("*."):
            return other.host.lstrip("*").endswith(self.host[1:])
        return self.host == other.host

    def __str__(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"


def literal_address(text: str) -> Address | None:
    """`text` as an address ("[::1]" too), or None for a name."""
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


def _entry(raw: str) -> NameRule | Network:
    text = raw.strip().lower()
    if not text:
        raise ValueError("an empty entry")
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError as e:
        if "/" in text or literal_address(text):
            raise ValueError(f"{raw!r}: not a network ({e})") from None
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = text, ""
    port: int | None = None
    if sep:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"{raw!r}: the port must be a number from 1 to 65535")
        port = int(port_text)
    if len(host) > 253 or not _NAME_RE.match(host):
        raise ValueError(f"{raw!r}: not a host name, name:port, *.suffix or network")
    return NameRule(host, port)


@dataclass(frozen=True)
class NetworkPolicy:
    names: tuple[NameRule, ...] = ()
    networks: tuple[Network, ...] = ()
    max_connections: int = 32  # per box, allowed ones
    max_bytes: int = 64 << 20  # per box, both directions together

    @classmethod
    def parse(cls, entries: Sequence[str], **caps: int) -> NetworkPolicy:
        """The policy of these allowlist entries; ValueError names the first bad one."""
        if len(entries) > MAX_ENTRIES:
            raise ValueError(f"at most {MAX_ENTRIES} entries")
        names: list[NameRule] = []
        networks: list[Network] = []
        for raw in entries:
            parsed = _entry(raw)
            (names if isinstance(parsed, NameRule) else networks).append(parsed)  # type: ignore[arg-type]
        return cls(tuple(dict.fromkeys(names)), tuple(dict.fromkeys(networks)), **caps)

    def outside(self, ceiling: NetworkPolicy) -> list[str]:
        """The entries of this policy that `ceiling` (a tenant's) does not cover."""
        out = [str(name) for name in self.names if not any(rule.covers(name) for rule in ceiling.names)]
        for net in self.networks:
            if not any(net.version == c.version and net.subnet_of(c) for c in ceiling.networks):  # type: ignore[arg-type]
                out.append(str(net))
        return out

    def refusal(self, host: str, port: int) -> str | None:
        """Why `host:port` is refused before it is resolved (None: it may be resolved and checked)."""
        if not 0 < port < 65536:
            return f"port {port} is not a port"
        literal = literal_address(host)
        if literal is not None:
            if any(literal in net for net in self.networks):
                return None
            return f"{literal} is not in the allowlist"
        if not any(rule.matches(host.lower().rstrip("."), port) for rule in self.names):
            return f"{host}:{port} is not in the allowlist"
        return None

    def address_refusal(self, host: str, addresses: Sequence[str]) -> str | None:
        """Why the resolved addresses of an allowed name are refused: any of them (so whichever the
        connection would take cannot matter) is not public and not in a network entry."""
        if not addresses:
            return f"{host} does not resolve"
        for each in addresses:
            if reason := forbidden_reason(ipaddress.ip_address(each), self.networks):
                return f"{host}: {reason}"
            if host_address(each):  # inside a network entry too: never the service's own host
                return f"{host}: {each} is an address of this host"
        return None


@dataclass
class NetworkUsage:
    """What a box's proxy let through and refused; part of the result record."""

    connections: int = 0
    refused: int = 0
    bytes_out: int = 0  # box -> destinations
    bytes_in: int = 0
    capped: bool = False  # a connection was cut at the byte cap
    refusals: list[str] = field(default_factory=list)  # the first few reasons, for the user

    MAX_REASONS = 5

    def refuse(self, reason: str) -> None:
        self.refused += 1
        if len(self.refusals) < self.MAX_REASONS and reason not in self.refusals:
            self.refusals.append(reason)

    def to_json(self) -> dict[str, object]:
        return asdict(self)
