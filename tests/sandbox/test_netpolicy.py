"""The egress allowlist as data: what parses, what it allows before and after resolution, and when one
policy lies within another (a request's within its tenant's)."""

from __future__ import annotations

import errno
import ipaddress
import socket

import pytest

from stockade.sandbox import netpolicy
from stockade.sandbox.netpolicy import NetworkPolicy, forbidden_reason, host_address


def test_entries_parse_into_names_and_networks() -> None:
    p = NetworkPolicy.parse(["PyPI.org", "api.example.com:443", "*.pythonhosted.org", "203.0.113.0/24", "2001:db8::1"])
    assert [str(n) for n in p.names] == ["pypi.org", "api.example.com:443", "*.pythonhosted.org"]
    assert [str(n) for n in p.networks] == ["203.0.113.0/24", "2001:db8::1/128"]


@pytest.mark.parametrize(
    "entry", ["", "not a name", "example.com:0", "example.com:99999", "example.com:http", "10.0.0.1/8", "-x.com", "*"]
)
def test_a_bad_entry_is_named(entry: str) -> None:
    with pytest.raises(ValueError, match=r"entry|port|network|name"):
        NetworkPolicy.parse([entry])


def test_too_many_entries_are_refused() -> None:
    with pytest.raises(ValueError, match="at most"):
        NetworkPolicy.parse([f"h{i}.example.com" for i in range(65)])


def test_names_ports_and_wildcards_match_as_written() -> None:
    p = NetworkPolicy.parse(["api.example.com:443", "*.pythonhosted.org", "pypi.org"])
    assert p.refusal("api.example.com", 443) is None
    assert p.refusal("api.example.com", 80) is not None  # the port is part of the entry
    assert p.refusal("files.pythonhosted.org", 443) is None
    assert p.refusal("pythonhosted.org", 443) is not None  # a wildcard is for names under it only
    assert p.refusal("evilpythonhosted.org", 443) is not None
    assert p.refusal("PyPI.org.", 443) is None
    assert p.refusal("pypi.org.evil.com", 443) is not None


def test_a_literal_address_needs_a_network_entry() -> None:
    p = NetworkPolicy.parse(["example.com", "203.0.113.0/24"])
    assert p.refusal("203.0.113.9", 80) is None
    assert p.refusal("198.51.100.1", 80) is not None
    assert p.refusal("[::1]", 80) is not None


def test_every_resolved_address_must_be_public_or_inside_a_network_entry() -> None:
    p = NetworkPolicy.parse(["example.com", "192.168.7.0/24"])
    assert p.address_refusal("example.com", ["93.184.215.14"]) is None
    assert p.address_refusal("example.com", ["192.168.7.3"]) is None  # explicitly allowed network
    for bad, kind in [
        ("127.0.0.1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("10.1.2.3", "private"),
        ("::ffff:127.0.0.1", "loopback"),
        ("0.0.0.0", "unspecified"),
    ]:
        reason = p.address_refusal("example.com", ["93.184.215.14", bad])  # one bad address is enough
        assert reason is not None and kind in reason
    assert p.address_refusal("example.com", []) == "example.com does not resolve"


def test_the_hosts_own_addresses_are_known(monkeypatch: pytest.MonkeyPatch) -> None:
    assert host_address("127.0.0.1")
    assert not host_address("192.0.2.1")  # TEST-NET-1, never assigned here

    def exhausted(*_: object) -> None:
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(socket, "socket", exhausted)
    assert host_address("192.0.2.1")  # a check that cannot be made refuses


def test_a_public_address_of_this_host_is_refused_unless_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    public = ipaddress.ip_address("93.184.215.14")
    assert forbidden_reason(public, []) is None
    monkeypatch.setattr(netpolicy, "host_address", lambda address: address == str(public))
    assert forbidden_reason(public, []) == f"{public} is an address of this host"  # webhooks' rule too
    assert forbidden_reason(public, [ipaddress.ip_network("93.184.215.0/24")]) is None  # the operator's say


def test_a_request_must_lie_within_its_tenants_allowlist() -> None:
    tenant = NetworkPolicy.parse(["*.example.com", "pypi.org:443", "10.0.0.0/8"])
    inside = NetworkPolicy.parse(["a.example.com", "*.b.example.com", "pypi.org:443", "10.1.0.0/16"])
    assert inside.outside(tenant) == []
    outside = NetworkPolicy.parse(["example.com", "pypi.org", "pypi.org:80", "0.0.0.0/0", "10.0.0.0/7", "::/0"])
    assert outside.outside(tenant) == ["example.com", "pypi.org", "pypi.org:80", "0.0.0.0/0", "10.0.0.0/7", "::/0"]
    assert NetworkPolicy.parse(["x.com"]).outside(NetworkPolicy()) == ["x.com"]
