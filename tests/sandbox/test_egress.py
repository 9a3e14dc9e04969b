"""A box with an egress policy, end to end: its proxy lets through what the policy allows and nothing else.

The only destination is a web server in a network namespace made here (tests/netns.py); the refused ones
(loopback, metadata, private ranges) are refused at the proxy's check, before any packet is sent.
"""

from __future__ import annotations

import asyncio
import json
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from stockade.sandbox import BoxSpec, InputFile, Limits, Sandbox, SandboxConfig, Status
from stockade.sandbox.netpolicy import NetworkPolicy
from tests.netns import HTTP_PORT, HTTPS_PORT, NAME, WebNamespace

PY = "/usr/bin/python3"
LIMITS = Limits(cpu_ms=5000, wall_ms=30000, memory_mb=128, processes=16)

CLIENT = textwrap.dedent(
    """
    import json, socket, ssl, sys, urllib.error, urllib.request
    ctx = ssl.create_default_context(cafile="ca.pem")
    def get(url):
        try:
            with urllib.request.urlopen(url, timeout=20, context=ctx) as r:
                return [r.status, r.read().decode()[:60]]
        except urllib.error.HTTPError as e:
            return [e.code, e.read().decode()]
        except Exception as e:
            return ["error", type(e).__name__ + ": " + str(e)]
    print(json.dumps([get(u) for u in sys.argv[1:]]))
    """
)


@pytest.fixture(scope="module")
def web() -> Iterator[WebNamespace]:
    with WebNamespace() as w:
        yield w


@pytest.fixture(scope="module")
def host_server() -> Iterator[int]:
    """A server on the host's loopback, standing for the service itself and anything else there."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"host secret\n")

    server = ThreadingHTTPServer(("0.0.0.0", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def sandbox(web: WebNamespace) -> Iterator[Sandbox]:
    pins = {NAME: (web.address,), "rebind.test": ("127.0.0.1",), "metadata.test": ("169.254.169.254",)}
    config = SandboxConfig(
        run_dir=Path("/run/stockade-t-egress"), slots=2, uid_base=68000, cgroup_name="stockade-t-egress",
        egress_pins=pins,
    )  # fmt: skip
    sb = Sandbox(config)
    sb.start()
    yield sb
    sb.close()


def fetch(sb: Sandbox, web: WebNamespace, policy: NetworkPolicy | None, *urls: str) -> tuple[Any, list[Any]]:
    spec = BoxSpec(
        argv=[PY, "-c", CLIENT, *urls],
        files=[InputFile("ca.pem", web.cert.read_bytes())],
        limits=LIMITS,
        network=policy,
    )
    result = asyncio.run(sb.run(spec))
    assert result.status is Status.OK, (result.stderr, result.error)
    return result, json.loads(result.stdout)


def allow(web: WebNamespace, *extra: str, **caps: int) -> NetworkPolicy:
    return NetworkPolicy.parse([NAME, web.network, *extra], **caps)


def test_allowed_name_is_reachable_over_http_and_https(sandbox: Sandbox, web: WebNamespace) -> None:
    result, got = fetch(sandbox, web, allow(web), f"http://{NAME}:{HTTP_PORT}/a", f"https://{NAME}:{HTTPS_PORT}/b")
    assert got == [[200, "hello from web.test /a\n"], [200, "hello from web.test /b\n"]]
    assert result.network is not None
    assert (result.network.connections, result.network.refused) == (2, 0)
    assert result.network.bytes_in > 0 and result.network.bytes_out > 0


def test_a_name_outside_the_allowlist_is_refused(sandbox: Sandbox, web: WebNamespace) -> None:
    result, got = fetch(
        sandbox, web, allow(web), f"http://other.test:{HTTP_PORT}/", f"https://other.test:{HTTPS_PORT}/"
    )
    assert got[0][0] == 403 and "not in the allowlist" in got[0][1]
    assert got[1][0] == "error" and "403" in got[1][1]  # CONNECT refused: the tunnel never opens
    assert result.network is not None
    assert (result.network.connections, result.network.refused) == (0, 2)


def test_a_raw_address_needs_its_network_in_the_allowlist(sandbox: Sandbox, web: WebNamespace) -> None:
    url = f"http://{web.address}:{HTTP_PORT}/raw"
    _, got = fetch(sandbox, web, NetworkPolicy.parse([NAME]), url, f"http://{NAME}:{HTTP_PORT}/")
    assert got[0][0] == 403 and "not in the allowlist" in got[0][1]
    assert got[1][0] == 403 and "private address" in got[1][1]  # the name is allowed, its address is not
    _, got = fetch(sandbox, web, allow(web), url)
    assert got == [[200, "hello from web.test /raw\n"]]


def test_a_name_resolving_to_loopback_or_metadata_is_refused(
    sandbox: Sandbox, web: WebNamespace, host_server: int
) -> None:
    policy = allow(web, "rebind.test", "metadata.test")
    result, got = fetch(
        sandbox, web, policy,
        f"http://rebind.test:{host_server}/", "http://metadata.test/latest/meta-data/",
        f"http://127.0.0.1:{host_server}/", "http://169.254.169.254/latest/meta-data/",
    )  # fmt: skip
    assert [g[0] for g in got] == [403, 403, 403, 403]
    assert "loopback" in got[0][1] and "link-local" in got[1][1]
    assert all("host secret" not in g[1] for g in got)
    assert result.network is not None and result.network.refused == 4


def test_the_hosts_own_addresses_are_refused_inside_an_allowed_network(
    sandbox: Sandbox, web: WebNamespace, host_server: int
) -> None:
    _, got = fetch(sandbox, web, allow(web), f"http://{web.host_address}:{host_server}/")
    assert got[0][0] == 403 and "an address of this host" in got[0][1]


def test_the_box_has_no_dns_no_udp_and_no_route_of_its_own(
    sandbox: Sandbox, web: WebNamespace, host_server: int
) -> None:
    code = f"""
    import errno, socket
    out = []
    try:
        socket.getaddrinfo("{NAME}", 80)
        out.append("resolved")
    except socket.gaierror:
        out.append("no dns")
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.sendto(b"x", ("{web.address}", 53))
        out.append("udp sent")
    except OSError as e:
        out.append(errno.errorcode[e.errno])
    for addr in [("{web.address}", {HTTP_PORT}), ("127.0.0.1", {host_server})]:
        t = socket.socket()
        t.settimeout(10)
        try:
            t.connect(addr)
            out.append("connected")
        except OSError as e:
            out.append(errno.errorcode[e.errno or 0])
    print(out)
    """
    result = asyncio.run(sandbox.run(BoxSpec([PY, "-c", textwrap.dedent(code)], limits=LIMITS, network=allow(web))))
    assert result.status is Status.OK, result.stderr
    # The host's loopback server is not the box's loopback: nothing listens there in the box.
    assert result.stdout.decode().strip() == "['no dns', 'ENETUNREACH', 'ENETUNREACH', 'ECONNREFUSED']"


def test_the_byte_cap_cuts_the_transfer(sandbox: Sandbox, web: WebNamespace) -> None:
    result, got = fetch(sandbox, web, allow(web, max_bytes=100_000), f"http://{NAME}:{HTTP_PORT}/bytes/1000000")
    assert got[0][0] == "error"  # the body ended early
    assert result.network is not None and result.network.capped
    assert result.network.bytes_in + result.network.bytes_out == 100_000


def test_the_connection_cap_refuses_the_next_one(sandbox: Sandbox, web: WebNamespace) -> None:
    urls = [f"http://{NAME}:{HTTP_PORT}/{i}" for i in range(3)]
    result, got = fetch(sandbox, web, allow(web, max_connections=2), *urls)
    assert [g[0] for g in got] == [200, 200, 429]
    assert result.network is not None and (result.network.connections, result.network.refused) == (2, 1)


def test_the_connection_cap_holds_for_requests_at_the_same_time(sandbox: Sandbox, web: WebNamespace) -> None:
    urls = [f"http://{NAME}:{HTTP_PORT}/{i}" for i in range(4)]
    at_once = CLIENT.replace("print(json.dumps([get(u) for u in sys.argv[1:]]))", (
        "import concurrent.futures as cf\n"
        "with cf.ThreadPoolExecutor(4) as pool:\n"
        "    print(json.dumps(list(pool.map(get, sys.argv[1:]))))"))  # fmt: skip
    spec = BoxSpec([PY, "-c", at_once, *urls], files=[InputFile("ca.pem", web.cert.read_bytes())], limits=LIMITS,
                   network=allow(web, max_connections=2))  # fmt: skip
    result = asyncio.run(sandbox.run(spec))
    assert result.status is Status.OK, result.stderr
    assert sorted(g[0] for g in json.loads(result.stdout)) == [200, 200, 429, 429]
    assert result.network is not None and (result.network.connections, result.network.refused) == (2, 2)


def test_without_a_policy_there_is_no_proxy(sandbox: Sandbox, web: WebNamespace) -> None:
    result, got = fetch(sandbox, web, None, f"http://{NAME}:{HTTP_PORT}/", f"http://{web.address}:{HTTP_PORT}/")
    assert [g[0] for g in got] == ["error", "error"]
    assert result.network is None
    env = asyncio.run(sandbox.run(BoxSpec([PY, "-c", "import os; print(sorted(os.environ))"], limits=LIMITS)))
    assert "PROXY" not in env.stdout.decode().upper()


def test_the_proxy_socket_is_gone_after_the_run(sandbox: Sandbox, web: WebNamespace) -> None:
    fetch(sandbox, web, allow(web), f"http://{NAME}:{HTTP_PORT}/")
    sandbox.settle()
    assert not list(Path("/run/stockade-t-egress/boxes").iterdir())
