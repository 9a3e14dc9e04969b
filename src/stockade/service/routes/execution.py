"""One execution of an ExecuteIn body: the steps of POST /v1/execute, shared with the MCP tools (mcp.py).

`execute` runs on a place already claimed and a caller already through authentication, rate limit and
quota (v1.execute: Admission and deps.caller; MCP: `execute_for`, which takes those steps itself): the
body's translation (wire.to_request), the workspace's lease and files when it names one, Engine.prepare,
the admitted run (Service.admitted), the write-back of what the run left in the workspace, the answer,
and Service.record. The lease is held from before the files are read until after the write-back, so
two executions on one workspace never interleave: the second is refused with WORKSPACE_BUSY.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractContextManager, asynccontextmanager
from typing import Any

from stockade.engine import ExecutionResult
from stockade.engine.engine import Compiled
from stockade.sandbox import LiveIO
from stockade.service.admission import Place
from stockade.service.node import AuditWrite, Caller, Service
from stockade.service.plans import prepare
from stockade.service.wire import ExecuteIn, files_body, response_body
from stockade.service.workspaces import Lease, WorkspaceStore, WriteBack


def workspaces_of(service: Service) -> WorkspaceStore:
    assert service.workspaces is not None, "the service has not started"
    return service.workspaces


@asynccontextmanager
async def leased(service: Service, who: Caller, ws_id: str | None) -> AsyncIterator[Lease | None]:
    """The workspace held for this request (None without one), its blocking file I/O off the loop."""
    if ws_id is None:
        yield None
        return
    holder: AbstractContextManager[Lease] = workspaces_of(service).lease(who.tenant.id, ws_id)
    lease = await asyncio.to_thread(holder.__enter__)
    try:
        yield lease
    finally:
        # On the loop, not awaited: a cancelled request (its client gone) must still drop the lease.
        holder.__exit__(None, None, None)


async def write_back(lease: Lease | None, result: ExecutionResult) -> WriteBack | None:
    """What the run left in the workspace, written back; not when the program did not run (a compile
    failure) or its box failed: then the workspace is as it was."""
    if lease is None:
        return None
    if result.outputs is None or result.outputs.box is None:
        return WriteBack(saved=False)
    return await asyncio.to_thread(lease.replace, result.outputs.box, result.outputs.box_skipped)


async def execute(
    service: Service,
    who: Caller,
    body: ExecuteIn,
    place: Place,
    *,
    live: LiveIO | None = None,
    audit: Mapping[str, Any] | None = None,
    on_compiled: Compiled | None = None,
) -> tuple[dict[str, Any], AuditWrite]:
    """The answer of one execution and its audit write (for Service.write_audit, after the answer).
    With `live`, the run stage's stdio is live (routes/stream.py); `audit` adds fields to the record,
    read when it is made (after the run); `on_compiled`: Engine.run's."""
    execution_id = uuid.uuid4().hex
    async with leased(service, who, body.workspace) as lease:
        plan = await prepare(service, who, body, lease)
        async with service.admitted(place):
            result = await service.engine.run(plan, live=live, on_compiled=on_compiled)
        waited = sum(b.queue_ms for b in (result.compile, result.run) if b is not None)
        service.metrics.queue_wait.observe(waited / 1000)
        saved = await write_back(lease, result)
    out = response_body(execution_id, result, body.output_encoding)
    extra: dict[str, Any] = dict(audit or {})
    if body.collect:
        out.update(files_body(result.outputs))
        extra["files_out"] = len(out["files"])
    if saved is not None:
        out["workspace"] = {"id": body.workspace, **saved.as_dict()}
        extra.update(workspace=body.workspace, workspace_saved=saved.saved)
    return out, service.record(who, plan, result, execution_id, out, extra or None)


async def execute_for(service: Service, who: Caller, body: ExecuteIn) -> dict[str, Any]:
    """The whole pipeline for an authenticated caller outside the execute route (the MCP tools): rate
    limit, a claimed place (or OVERLOADED at once), the quota hold, `execute`, then the audit record
    before the answer goes (no middleware writes it after)."""
    await service.rate_limit(who)
    place = service.claim()
    place.who = who
    hold = None
    try:
        hold = service.check_quota(who)
        out, write = await execute(service, who, body, place)
        await service.write_audit(write)
        return out
    finally:
        place.release()
        if hold is not None:
            hold.release()
