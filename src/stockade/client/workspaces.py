"""Workspaces in the SDK (docs/agents.md): `client.workspaces` (sync) and `async_client.workspaces`.

Each method is a flow of the clients' sans-IO core (sdk.py): the same retries of throttling answers and
the same errors (a busy workspace is a StockadeError with code WORKSPACE_BUSY, and `retry_after`).
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from stockade.client.errors import UnexpectedResponse, json_object

if TYPE_CHECKING:
    import httpx

    from stockade.client.sdk import AsyncClient, Client


@dataclass(frozen=True)
class Entry:
    path: str
    size: int
    executable: bool


@dataclass(frozen=True)
class WorkspaceInfo:
    """A workspace: its id, use, size; `entries` when it was fetched with `get`."""

    id: str
    created_at: float
    used_at: float
    expires_at: float
    files: int
    bytes: int
    busy: bool
    entries: tuple[Entry, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


def _info(data: Mapping[str, Any]) -> WorkspaceInfo:
    listed = data.get("entries") or ()
    try:
        return WorkspaceInfo(
            id=str(data["id"]),
            created_at=float(data["created_at"]),
            used_at=float(data["used_at"]),
            expires_at=float(data["expires_at"]),
            files=int(data["files"]),
            bytes=int(data["bytes"]),
            busy=bool(data["busy"]),
            entries=tuple(Entry(str(e["path"]), int(e["size"]), bool(e["executable"])) for e in listed),
            raw=dict(data),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise UnexpectedResponse(UnexpectedResponse.CODE, f"malformed workspace ({exc!r}): {data!r:.300}") from exc


def _file_path(ws_id: str, path: str) -> str:
    return f"/v1/workspaces/{quote(ws_id, safe='')}/files/{quote(path, safe='/')}"


Flow = Generator[Any, "httpx.Response | None", Any]


class _Flows:
    """The call flows of the workspace methods, shared by the sync and async fronts."""

    def __init__(self, client: Client | AsyncClient) -> None:
        from stockade.client.sdk import _Call

        self._c, self._Call = client, _Call

    def call(self, method: str, path: str, *, content: bytes | None = None) -> Flow:
        return self._c._call_flow(self._Call(method, path, content=content))

    def create(self) -> Flow:
        return _info(json_object((yield from self.call("POST", "/v1/workspaces"))))

    def list(self) -> Flow:
        data = json_object((yield from self.call("GET", "/v1/workspaces")))
        return [_info(w) for w in data.get("workspaces", [])]

    def get(self, ws_id: str) -> Flow:
        return _info(json_object((yield from self.call("GET", f"/v1/workspaces/{quote(ws_id, safe='')}"))))

    def delete(self, ws_id: str) -> Flow:
        yield from self.call("DELETE", f"/v1/workspaces/{quote(ws_id, safe='')}")

    def put(self, ws_id: str, path: str, content: bytes | str) -> Flow:
        data = content.encode() if isinstance(content, str) else bytes(content)
        return _info(json_object((yield from self.call("PUT", _file_path(ws_id, path), content=data))))

    def read(self, ws_id: str, path: str) -> Flow:
        response = yield from self.call("GET", _file_path(ws_id, path))
        return response.content

    def remove(self, ws_id: str, path: str) -> Flow:
        yield from self.call("DELETE", _file_path(ws_id, path))


class Workspaces:
    """`client.workspaces`: create, list, get, delete a workspace; put, read, remove its files."""

    def __init__(self, client: Client) -> None:
        self._client, self._flows = client, _Flows(client)

    def create(self) -> WorkspaceInfo:
        return self._client._run(self._flows.create())  # type: ignore[no-any-return]

    def list(self) -> list[WorkspaceInfo]:
        return self._client._run(self._flows.list())

    def get(self, ws_id: str) -> WorkspaceInfo:
        """The workspace with `entries`, every file's path, size and mode."""
        return self._client._run(self._flows.get(ws_id))  # type: ignore[no-any-return]

    def delete(self, ws_id: str) -> None:
        self._client._run(self._flows.delete(ws_id))

    def put(self, ws_id: str, path: str, content: bytes | str) -> WorkspaceInfo:
        return self._client._run(self._flows.put(ws_id, path, content))  # type: ignore[no-any-return]

    def read(self, ws_id: str, path: str) -> bytes:
        return self._client._run(self._flows.read(ws_id, path))  # type: ignore[no-any-return]

    def remove(self, ws_id: str, path: str) -> None:
        self._client._run(self._flows.remove(ws_id, path))


class AsyncWorkspaces:
    """`async_client.workspaces`: the methods of Workspaces, awaited."""

    def __init__(self, client: AsyncClient) -> None:
        self._client, self._flows = client, _Flows(client)

    async def create(self) -> WorkspaceInfo:
        return await self._client._run(self._flows.create())

    async def list(self) -> list[WorkspaceInfo]:
        return await self._client._run(self._flows.list())

    async def get(self, ws_id: str) -> WorkspaceInfo:
        return await self._client._run(self._flows.get(ws_id))

    async def delete(self, ws_id: str) -> None:
        await self._client._run(self._flows.delete(ws_id))

    async def put(self, ws_id: str, path: str, content: bytes | str) -> WorkspaceInfo:
        return await self._client._run(self._flows.put(ws_id, path, content))

    async def read(self, ws_id: str, path: str) -> bytes:
        return await self._client._run(self._flows.read(ws_id, path))

    async def remove(self, ws_id: str, path: str) -> None:
        await self._client._run(self._flows.remove(ws_id, path))
