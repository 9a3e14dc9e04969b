"""The MCP server through the official SDK's own client: over streamable HTTP at /mcp of a real
`stockade serve` (bearer keys as for the API), and over stdio (`stockade mcp`, one tenant)."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import mcp.types as t
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from stockade.service.store import Store
from tests import residue
from tests.service.live import STOCKADE, LiveServer, live_server

TOOLS = {"run_code", "list_languages", "workspace_create", "workspace_files", "workspace_read", "workspace_write",
         "workspace_delete_file", "workspace_delete"}  # fmt: skip
PLOT = "open('plot.png', 'wb').write(b'\\x89PNG\\r\\n\\x1a\\n' + b'fake image')\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data_dir = tmp_path_factory.mktemp("mcp") / "data"
    data_dir.mkdir(mode=0o700)
    with Store(data_dir / "stockade.db") as st:
        st.create_tenant("admin", "admin", rate_per_minute=1000)
        st.create_key("admin", "test")
    with live_server("mcp-http", uid_base=69500, data_dir=data_dir) as s:
        yield s


def key_of(server: LiveServer, **opts: Any) -> str:
    tenant = f"mcp-{uuid.uuid4().hex[:6]}"
    with Store(server.data_dir / "stockade.db") as st:
        st.create_tenant(tenant, tenant, **{"rate_per_minute": 1000, **opts})
        return st.create_key(tenant, "test")[1]


@asynccontextmanager
async def http_session(server: LiveServer, key: str | None) -> AsyncIterator[ClientSession]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(120)) as http,
        streamable_http_client(f"{server.url}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def text_of(result: t.CallToolResult) -> str:
    return "\n".join(b.text for b in result.content if isinstance(b, t.TextContent))


async def call(session: ClientSession, tool: str, **args: Any) -> t.CallToolResult:
    return await session.call_tool(tool, args)


async def round_trips(session: ClientSession) -> None:
    """What every transport must do: list tools, run Python, C with a compile error, a timeout, and read
    back a file the program wrote (collected as an image, and kept in a workspace)."""
    tools = {tool.name for tool in (await session.list_tools()).tools}
    assert tools == TOOLS
    langs = await call(session, "list_languages")
    assert not langs.is_error and "python:" in text_of(langs)

    ok = await call(session, "run_code", language="python", code="print(6 * 7)")
    assert not ok.is_error, text_of(ok)
    assert ok.structured_content is not None and ok.structured_content["status"] == "ok"
    assert ok.structured_content["stdout"] == "42\n" and "42" in text_of(ok)

    bad_c = await call(session, "run_code", language="c", code="int main(void) { return missing; }\n")
    assert not bad_c.is_error
    assert bad_c.structured_content is not None and bad_c.structured_content["status"] == "compile_error"
    assert "missing" in text_of(bad_c) and "compiler output" in text_of(bad_c)

    slow = await call(session, "run_code", language="python", code="while True: pass",
                      limits={"cpu_ms": 300, "wall_ms": 5000})  # fmt: skip
    assert slow.structured_content is not None and slow.structured_content["status"] == "timeout"
    assert "timeout" in text_of(slow)

    drawn = await call(session, "run_code", language="python", code=PLOT, collect=["*.png"])
    images = [b for b in drawn.content if isinstance(b, t.ImageContent)]
    assert len(images) == 1 and images[0].mime_type == "image/png", drawn.content
    assert base64.b64decode(images[0].data).startswith(b"\x89PNG")

    created = await call(session, "workspace_create")
    ws = created.structured_content["id"] if created.structured_content else None
    assert ws and not created.is_error, text_of(created)
    wrote = await call(session, "run_code", language="python", workspace=ws,
                       code="open('answer.txt', 'w').write('forty-two')\n")  # fmt: skip
    assert wrote.structured_content is not None and wrote.structured_content["workspace"]["saved"] is True
    listing = await call(session, "workspace_files", workspace=ws)
    assert listing.structured_content is not None
    assert [f["path"] for f in listing.structured_content["files"]] == ["answer.txt"]
    back = await call(session, "workspace_read", workspace=ws, path="answer.txt")
    (block,) = back.content
    assert isinstance(block, t.EmbeddedResource) and isinstance(block.resource, t.TextResourceContents)
    assert block.resource.text == "forty-two"
    await call(session, "workspace_write", workspace=ws, path="in.txt", content="from the agent")
    echo = await call(session, "run_code", language="python", workspace=ws, code="print(open('in.txt').read())")
    assert echo.structured_content is not None and echo.structured_content["stdout"] == "from the agent\n"
    assert not (await call(session, "workspace_delete", workspace=ws)).is_error
    gone = await call(session, "workspace_read", workspace=ws, path="answer.txt")
    assert gone.is_error and text_of(gone).startswith("WORKSPACE_NOT_FOUND")


async def test_http_transport_round_trips(server: LiveServer) -> None:
    async with http_session(server, key_of(server)) as session:
        await round_trips(session)


async def test_http_transport_takes_the_api_keys_and_tenant_limits(server: LiveServer) -> None:
    r = httpx2.post(f"{server.url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, timeout=30)
    assert r.status_code == 401 and r.json()["error"] == "UNAUTHENTICATED"
    r = httpx2.post(f"{server.url}/mcp", headers={"Authorization": "Bearer sk_0000000000000000_nope"}, json={})
    assert r.status_code == 401
    # The tenant's languages and quota hold as for the HTTP API.
    async with http_session(server, key_of(server, allowed_languages=["c"], executions_per_day=1)) as session:
        denied = await call(session, "run_code", language="python", code="print(1)")
        assert denied.is_error and text_of(denied).startswith("FORBIDDEN"), text_of(denied)
        assert not (await call(session, "run_code", language="c", code="int main(void){return 0;}")).is_error
        over = await call(session, "run_code", language="c", code="int main(void){return 0;}")
        assert over.is_error and text_of(over).startswith("QUOTA_EXCEEDED"), text_of(over)


async def test_stdio_transport_round_trips(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    run_dir, cgroup = Path("/run/stockade-t-mcp-stdio"), "stockade-t-mcp-stdio"
    residue.track(run_dir, cgroup)
    argv = f"mcp --data-dir {data_dir} --slots 2 --run-dir {run_dir} --uid-base 69600 --cgroup-name {cgroup}"
    params = StdioServerParameters(command=STOCKADE, args=argv.split())
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        await round_trips(session)
    # Every execution was recorded as the stdio tenant's, in the data dir.
    with Store(data_dir / "stockade.db") as st:
        assert st.check_quota("local").executions_used == 6  # the six run_code calls
