"""A run's network through the API: each tenant's allowlist bounds what its runs may ask for, the answer and
the audit record say what the proxy did, and nothing of one tenant's policy reaches another's runs.

The one reachable destination is a web server in a network namespace made here (tests/netns.py).
"""

from __future__ import annotations

import json
import sqlite3
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from stockade.service.store import Store
from tests.netns import HTTP_PORT, NAME, WebNamespace
from tests.service.live import LiveServer, live_server
from tests.service.test_mcp import http_session, text_of

AUDIT_DEADLINE_S = 60.0
FETCH = textwrap.dedent(
    """
    import sys, urllib.error, urllib.request
    for url in sys.argv[1:]:
        try:
            with urllib.request.urlopen(url, timeout=20) as r:
                print(r.status, r.read().decode().strip())
        except urllib.error.HTTPError as e:
            print(e.code, e.read().decode().strip())
        except Exception as e:
            print("error", type(e).__name__)
    """
)


@pytest.fixture(scope="module")
def web() -> Iterator[WebNamespace]:
    with WebNamespace() as w:
        yield w


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, web: WebNamespace) -> Iterator[LiveServer]:
    data_dir = tmp_path_factory.mktemp("egress") / "data"
    data_dir.mkdir(mode=0o700)
    with Store(data_dir / "stockade.db") as st:
        st.create_tenant("net", "net", rate_per_minute=10_000, network_allow=[NAME, web.network])
        st.create_tenant("dry", "dry", rate_per_minute=10_000)
        st.create_tenant("loose", "loose", rate_per_minute=10_000, network_allow=["127.0.0.0/8"])
    pin = ["--egress-pin", f"{NAME}={web.address}"]
    with live_server("egress", uid_base=68100, data_dir=data_dir, slots=2, extra=pin) as s:
        yield s


def client(server: LiveServer, tenant: str) -> httpx.Client:
    with Store(server.data_dir / "stockade.db") as st:
        token = st.create_key(tenant, "test")[1]
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=90)


def run(c: httpx.Client, urls: list[str], allow: list[str] | None) -> httpx.Response:
    body: dict[str, Any] = {"language": "python", "code": FETCH, "args": urls}
    if allow is not None:
        body["network"] = {"allow": allow}
    return c.post("/v1/execute", json=body)


def audit_data(server: LiveServer, execution_id: str) -> dict[str, Any]:
    """The execution's audit record data, once written (it is written after the answer)."""
    deadline = time.monotonic() + AUDIT_DEADLINE_S
    while True:
        with sqlite3.connect(server.data_dir / "stockade.db") as db:
            for (body,) in db.execute("SELECT body FROM audit_log"):
                data = json.loads(body).get("data", {})
                if data.get("execution_id") == execution_id:
                    return dict(data)
        assert time.monotonic() < deadline, f"no audit record for {execution_id}"
        time.sleep(0.1)


def test_a_tenants_run_reaches_what_its_allowlist_allows(server: LiveServer, web: WebNamespace) -> None:
    with client(server, "net") as c:
        reply = run(c, [f"http://{NAME}:{HTTP_PORT}/hi", f"http://other.test:{HTTP_PORT}/"], [NAME, web.network])
        assert reply.status_code == 200, reply.text
        body = reply.json()
        metrics = c.get("/metrics").text
    assert body["status"] == "ok"
    lines = body["stdout"].splitlines()
    assert lines[0] == "200 hello from web.test /hi"
    assert lines[1].startswith("403 stockade egress:") and "not in the allowlist" in lines[1]
    network = body["network"]
    assert (network["connections"], network["refused"]) == (1, 1) and network["bytes_in"] > 0
    assert audit_data(server, body["execution_id"])["network"] == network
    assert 'stockade_egress_connections_total{outcome="allowed"}' in metrics


def test_a_request_beyond_the_tenants_allowlist_is_refused(server: LiveServer, web: WebNamespace) -> None:
    with client(server, "net") as c:
        reply = run(c, [], ["other.test"])
        wider = run(c, [], ["10.0.0.0/8"])
        bad = run(c, [], ["not a name"])
    assert reply.status_code == 403 and reply.json()["error"] == "NETWORK_FORBIDDEN"
    assert "other.test" in reply.json()["message"]
    assert wider.status_code == 403 and wider.json()["error"] == "NETWORK_FORBIDDEN"
    assert bad.status_code == 400 and bad.json()["error"] == "INVALID_REQUEST"


def test_one_tenants_policy_never_applies_to_another(server: LiveServer, web: WebNamespace) -> None:
    with client(server, "dry") as c:
        refused = run(c, [], [NAME])
        reply = run(c, [f"http://{NAME}:{HTTP_PORT}/", f"http://{web.address}:{HTTP_PORT}/"], None)
    assert refused.status_code == 403 and refused.json()["error"] == "NETWORK_FORBIDDEN"
    assert "its allowlist: none" in refused.json()["message"]
    assert reply.json()["stdout"].splitlines() == ["error URLError", "error URLError"]  # no proxy, no route
    assert reply.json()["network"] is None
    with client(server, "net") as c:  # and the allowed tenant's run without `network` has none either
        assert run(c, [f"http://{NAME}:{HTTP_PORT}/"], None).json()["stdout"] == "error URLError\n"


def test_the_service_itself_is_unreachable_even_when_allowed(server: LiveServer) -> None:
    with client(server, "loose") as c:
        reply = run(c, [f"{server.url}/healthz"], ["127.0.0.0/8"])
    line = reply.json()["stdout"].strip()
    assert line.startswith("403 ") and "an address of this host" in line
    assert reply.json()["network"]["connections"] == 0


def test_judge0s_enable_network_means_the_tenants_allowlist(server: LiveServer, web: WebNamespace) -> None:
    body = {"source_code": FETCH, "language_id": 71, "enable_network": True}
    with client(server, "net") as c:
        urls = f"http://{NAME}:{HTTP_PORT}/j0 http://other.test:{HTTP_PORT}/"
        reply = c.post("/judge0/submissions", params={"wait": "true"}, json={**body, "command_line_arguments": urls})
    assert reply.status_code == 201, reply.text
    lines = reply.json()["stdout"].splitlines()
    assert lines[0] == "200 hello from web.test /j0" and lines[1].startswith("403 stockade egress:")
    with client(server, "dry") as c:
        refused = c.post("/judge0/submissions", params={"wait": "true"}, json=body)
    assert refused.status_code == 422 and "enable_network" in refused.json()


async def test_an_agents_run_code_tool_takes_the_same_allowlist(server: LiveServer, web: WebNamespace) -> None:
    code = FETCH + "\nsys.argv[1:] = []\n"
    args = {"language": "python", "code": code.replace("sys.argv[1:]", f"['http://{NAME}:{HTTP_PORT}/mcp']", 1)}
    with Store(server.data_dir / "stockade.db") as st:
        net, dry = st.create_key("net", "mcp")[1], st.create_key("dry", "mcp")[1]
    async with http_session(server, net) as session:
        allowed = await session.call_tool("run_code", {**args, "network": [NAME, web.network]})
        without = await session.call_tool("run_code", args)
    assert "200 hello from web.test /mcp" in text_of(allowed) and not allowed.is_error
    assert "error URLError" in text_of(without)
    async with http_session(server, dry) as session:
        refused = await session.call_tool("run_code", {**args, "network": [NAME]})
    assert refused.is_error and "NETWORK_FORBIDDEN" in text_of(refused)
