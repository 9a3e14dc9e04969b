"""The SDK's workspaces and `collect`, against a fake API (httpx.MockTransport): the requests it sends,
what it makes of the answers, and its errors."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from stockade.client import AsyncClient, Client, CollectedFile, StockadeError

WS = "ws_" + "a" * 32
INFO = {"id": WS, "created_at": 1.0, "used_at": 2.0, "expires_at": 3.0, "files": 1, "bytes": 3, "busy": False}
RESULT = {
    "execution_id": "e" * 32, "status": "ok", "stdout": "", "stderr": "", "output_encoding": "utf8",
    "exit_code": 0, "signal": None, "timeout_kind": None, "time_ms": 1, "wall_time_ms": 2, "memory_kb": 3,
    "compile": None, "runtime": {"language": "python", "version": "3.11.2"},
    "files": [{"path": "plot.png", "content": base64.b64encode(b"\x89PNG").decode(), "size": 4, "executable": False}],
    "files_skipped": [{"path": "link.png", "reason": "not_regular"}],
    "workspace": {"id": WS, "saved": True, "files": 1, "bytes": 3, "skipped": [], "error": None},
}  # fmt: skip


def fake(seen: list[httpx.Request]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        path, method = request.url.raw_path.decode(), request.method
        if path == "/v1/execute":
            return httpx.Response(200, json=RESULT)
        if (method, path) == ("POST", "/v1/workspaces"):
            return httpx.Response(201, json=INFO)
        if (method, path) == ("GET", "/v1/workspaces"):
            return httpx.Response(200, json={"workspaces": [INFO], "limits": {}})
        if (method, path) == ("GET", f"/v1/workspaces/{WS}"):
            return httpx.Response(200, json={**INFO, "entries": [{"path": "a b.txt", "size": 3, "executable": True}]})
        if method == "PUT":
            return httpx.Response(200, json=INFO)
        if method == "GET" and path.startswith(f"/v1/workspaces/{WS}/files/"):
            return httpx.Response(200, content=b"abc")
        if path == f"/v1/workspaces/{WS}/files/busy":
            body = {"status": "failed", "error": "WORKSPACE_BUSY", "message": "in use"}
            return httpx.Response(409, json=body, headers={"Retry-After": "1"})
        return httpx.Response(204)

    return httpx.MockTransport(handle)


def test_collect_and_workspace_go_out_and_come_back() -> None:
    seen: list[httpx.Request] = []
    with Client("http://x", transport=fake(seen)) as c:
        result = c.submit("python", "1", collect=["*.png"], workspace=WS)
    body: dict[str, Any] = json.loads(seen[0].content)
    assert body["collect"] == ["*.png"] and body["workspace"] == WS
    assert result.files == (CollectedFile("plot.png", b"\x89PNG", False),)
    assert result.files_skipped == ({"path": "link.png", "reason": "not_regular"},)
    assert result.workspace is not None and result.workspace["saved"] is True
    with pytest.raises(TypeError):
        Client("http://x").submit("python", "1", collect="*.png")


def test_workspace_methods_sync() -> None:
    seen: list[httpx.Request] = []
    with Client("http://x", transport=fake(seen)) as c:
        assert c.workspaces.create().id == WS
        assert [w.id for w in c.workspaces.list()] == [WS]
        (entry,) = c.workspaces.get(WS).entries
        assert (entry.path, entry.executable) == ("a b.txt", True)
        assert c.workspaces.put(WS, "dir/a b.txt", "abc").bytes == 3
        assert c.workspaces.read(WS, "dir/a b.txt") == b"abc"
        c.workspaces.remove(WS, "dir/a b.txt")
        c.workspaces.delete(WS)
        with pytest.raises(StockadeError) as e:
            c.workspaces.remove(WS, "busy")
    assert e.value.code == "WORKSPACE_BUSY" and e.value.status_code == 409 and e.value.retry_after == 1
    put = next(r for r in seen if r.method == "PUT")
    assert put.url.raw_path == f"/v1/workspaces/{WS}/files/dir/a%20b.txt".encode() and put.content == b"abc"
    assert [(r.method, r.url.path.split("/files/")[0]) for r in seen[-3:-1]] == [
        ("DELETE", f"/v1/workspaces/{WS}"),
        ("DELETE", f"/v1/workspaces/{WS}"),
    ]


async def test_workspace_methods_async() -> None:
    seen: list[httpx.Request] = []
    transport = fake(seen)
    async with AsyncClient("http://x", transport=httpx.MockTransport(transport.handler)) as c:  # type: ignore[arg-type]
        ws = await c.workspaces.create()
        await c.workspaces.put(ws.id, "f.bin", b"\0\1")
        assert await c.workspaces.read(ws.id, "f.bin") == b"abc"
        await c.workspaces.delete(ws.id)
    assert [r.method for r in seen] == ["POST", "PUT", "GET", "DELETE"]
