"""/v1/workspaces (docs/agents.md): a tenant's files kept across executions, each in a fresh box.

Every route takes authentication and the rate limit (compat.identify: they run nothing, so hold no
quota); a workspace is its tenant's alone, another tenant's id is WORKSPACE_NOT_FOUND. An execution
names one with `workspace` in POST /v1/execute (execution.py). The storage is workspaces.py; its
blocking file I/O runs in worker threads.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from stockade.service.node import Caller
from stockade.service.routes.compat import identify
from stockade.service.routes.deps import ERROR_RESPONSES, rate_headers, service_of
from stockade.service.routes.execution import workspaces_of

router = APIRouter(prefix="/v1/workspaces", tags=["workspaces"])
Who = Annotated[Caller, Depends(identify)]


class WorkspaceInfoOut(BaseModel):
    id: str = Field(examples=["ws_3f2a9c41d07e4b5c8a1f2e3d4c5b6a79"])
    created_at: float = Field(description="Unix time")
    used_at: float = Field(description="Last use (any request on it, or an execution): the idle expiry counts from it")
    expires_at: float = Field(description="When it goes if unused until then")
    files: int
    bytes: int
    busy: bool = Field(description="An execution or a write holds it now")


class EntryOut(BaseModel):
    path: str
    size: int
    executable: bool


class WorkspaceOut(WorkspaceInfoOut):
    entries: list[EntryOut] = Field(description="Every file, sorted by path")


class WorkspacesOut(BaseModel):
    workspaces: list[WorkspaceInfoOut]
    limits: dict[str, float] = Field(description="max_bytes, max_files (each workspace), per_tenant, idle_seconds")


def _json(request: Request, body: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=rate_headers(request))


@router.post("", status_code=201, response_model=WorkspaceInfoOut, responses=ERROR_RESPONSES, summary="New workspace")
async def create(request: Request, who: Who) -> JSONResponse:
    info = await asyncio.to_thread(workspaces_of(service_of(request)).create, who.tenant.id)
    return _json(request, info.as_dict(), 201)


@router.get("", response_model=WorkspacesOut, responses=ERROR_RESPONSES, summary="The tenant's workspaces")
async def listing(request: Request, who: Who) -> JSONResponse:
    store = workspaces_of(service_of(request))
    found = await asyncio.to_thread(store.all, who.tenant.id)
    lim = store.limits
    limits = {"max_bytes": lim.max_bytes, "max_files": lim.max_files, "per_tenant": lim.per_tenant,
              "idle_seconds": lim.idle_seconds}  # fmt: skip
    return _json(request, {"workspaces": [i.as_dict() for i in found], "limits": limits})


@router.get("/{ws_id}", response_model=WorkspaceOut, responses=ERROR_RESPONSES, summary="A workspace and its files")
async def show(request: Request, ws_id: str, who: Who) -> JSONResponse:
    store = workspaces_of(service_of(request))

    def read() -> dict[str, Any]:
        info = store.info(who.tenant.id, ws_id)
        entries = store.entries(who.tenant.id, ws_id)
        return {**info.as_dict(), "entries": [{"path": e.path, "size": e.size, "executable": e.executable}
                                              for e in entries]}  # fmt: skip

    return _json(request, await asyncio.to_thread(read))


@router.delete("/{ws_id}", status_code=204, responses=ERROR_RESPONSES, summary="Delete a workspace")
async def delete(request: Request, ws_id: str, who: Who) -> Response:
    await asyncio.to_thread(workspaces_of(service_of(request)).delete, who.tenant.id, ws_id)
    return Response(status_code=204, headers=rate_headers(request))


@router.put("/{ws_id}/files/{path:path}", response_model=WorkspaceInfoOut, responses=ERROR_RESPONSES,
            summary="Upload a file (the raw body is its content)")  # fmt: skip
async def put_file(request: Request, ws_id: str, path: str, who: Who) -> JSONResponse:
    store = workspaces_of(service_of(request))
    content = await request.body()  # BodyLimit caps it (12 MiB)

    info = await asyncio.to_thread(store.put, who.tenant.id, ws_id, path, content)
    return _json(request, info.as_dict())


@router.get("/{ws_id}/files/{path:path}", responses=ERROR_RESPONSES, summary="Download a file (raw bytes)")
async def get_file(request: Request, ws_id: str, path: str, who: Who) -> Response:
    content = await asyncio.to_thread(workspaces_of(service_of(request)).read, who.tenant.id, ws_id, path)
    return Response(content, media_type="application/octet-stream", headers=rate_headers(request))


@router.delete("/{ws_id}/files/{path:path}", status_code=204, responses=ERROR_RESPONSES, summary="Delete a file")
async def delete_file(request: Request, ws_id: str, path: str, who: Who) -> Response:
    await asyncio.to_thread(workspaces_of(service_of(request)).remove, who.tenant.id, ws_id, path)
    return Response(status_code=204, headers=rate_headers(request))
