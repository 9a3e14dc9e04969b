"""The versioned API (docs/api.md): run a program, list the runtimes, the operator's diagnostics."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

import stockade
from stockade.service.cluster import Clustered
from stockade.service.node import Caller
from stockade.service.routes import execution
from stockade.service.routes.deps import ERROR_RESPONSES, admin, caller, rate_headers, service_of
from stockade.service.routes.submissions import execute_queued
from stockade.service.wire import ExecuteIn, ExecuteOut, RuntimesOut

SETTLE_WAIT_S = 5.0  # diagnostics wait at most this for answered executions to be recorded and their boxes replaced

router = APIRouter(prefix="/v1")


# POST /v1/execute and its alias /execute (a comment, not a docstring: that would go into the schema).
# Admission has claimed the request's place, `caller` authenticated it and took its quota hold.
async def execute(request: Request, body: ExecuteIn, who: Annotated[Caller, Depends(caller)]) -> JSONResponse:
    # The steps (execution.py, shared with the MCP tools): workspace lease, prepare, admitted run,
    # write-back, answer, record. Admission writes the audit record once the response is written, so
    # the client does not wait for it, and also if the response cannot be: every run is recorded.
    # Until then the request holds its quota execution. On a cluster, a worker runs and records it;
    # a workspace's files are on this node, so its runs stay here.
    cluster = getattr(request.app.state, "submissions", None)
    if isinstance(cluster, Clustered) and body.workspace is None:
        out = await execute_queued(request, who, body, cluster)
    else:
        out, request.state.audit_write = await execution.execute(service_of(request), who, body, request.state.place)
    return JSONResponse(out, headers=rate_headers(request))


def add_execute(router: APIRouter, path: str, *, documented: bool) -> None:
    """POST `path` runs a program (another method is answered 405, with `Allow: POST`)."""
    router.post(
        path,
        response_model=ExecuteOut,
        responses=ERROR_RESPONSES,
        summary="Run a program",
        include_in_schema=documented,
    )(execute)


add_execute(router, "/execute", documented=True)


@router.get("/runtimes", response_model=RuntimesOut, summary="Languages, versions and limits")
async def runtimes(request: Request) -> dict[str, Any]:
    service = service_of(request)
    every = await service.registry.detect_all_versions()
    found = {lang_id: toolchains[0] for lang_id, toolchains in every.items()}
    policy = service.engine.policy
    return {
        "runtimes": [
            {
                "language": lang.id,
                "name": lang.name,
                "aliases": list(lang.aliases),
                "extensions": list(lang.extensions),
                "version": found[lang.id].version,
                "available": found[lang.id].available,
                "compiled": lang.compiled,
                "hello": lang.hello,
                "detail": found[lang.id].detail,
                "versions": [
                    {"version": t.version, "available": t.available, "toolchain": t.name, "detail": t.detail}
                    for t in every[lang.id]
                ],
            }
            for lang in service.registry.languages
        ],
        # Languages Stockade knows it lacks, and why (runtimes/missing.toml).
        "missing": [{"language": m.id, "name": m.name, "reason": m.reason} for m in service.registry.missing],
        "limits": {
            "run": {"default": policy.run.default.as_dict(), "maximum": policy.run.maximum.as_dict()},
            "compile": {"default": policy.compile.default.as_dict(), "maximum": policy.compile.maximum.as_dict()},
        },
    }


@router.get("/diagnostics", summary="Operator view (admin key)", responses=ERROR_RESPONSES)
async def diagnostics(request: Request, _: Annotated[Caller, Depends(admin)]) -> dict[str, Any]:
    service = service_of(request)
    sb = service.sandbox

    # Executions just answered have their audit records written, and their boxes torn down and
    # replaced, within milliseconds: report that state.
    async def settled() -> None:
        await service.written()
        await sb.recycled()

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(settled(), SETTLE_WAIT_S)
    if isinstance(cluster := getattr(request.app.state, "submissions", None), Clustered):
        await cluster.refresh()
    return {
        "build": {"version": stockade.__version__, "started_at": service.started_at},
        "host": {
            "cgroup": sb.cgroups.describe() if sb.cgroups else None,
            "seccomp": True,
            "bubblewrap": service.config.sandbox.bwrap,
            # Boxes with a policy reach out only through their own filtering proxy (docs/network.md).
            "egress": {"enforced": True, "mechanism": "proxy", "pinned_names": sorted(sb.config.egress_pins)},
        },
        "slots": {
            "total": sb.slots_total,
            "in_use": sb.slots_in_use,
            "waiting": sb.slots_waiting,
            "quarantined": sorted(sb.quarantined),
            "ready": sorted(sb.ready_box_ids),  # boxes built ahead, waiting for a run
        },
        "admission": {
            "in_flight": service.in_flight,
            "claimed": service.places.claimed,
            "recording": service.recording,
            "queue_size": service.config.queue_size,
        },
        "queues": {name: describe() for name, describe in service.queues.items()},  # queued submissions
        "open_mode": service.open_mode,
        "draining": service.draining,
        "recent_failures": service.failures.summary(),
    }
