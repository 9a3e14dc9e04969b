"""Paths outside /v1: the /execute alias of /v1/execute (the seed example's path), the probes of an
orchestrator, Prometheus's scrape and the interactive docs."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from stockade.service.cluster import Clustered
from stockade.service.routes.deps import service_of
from stockade.service.routes.v1 import add_execute

router = APIRouter()
add_execute(router, "/execute", documented=False)


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Ready to execute: sandbox, storage, not draining")
async def readyz(request: Request) -> JSONResponse:
    service = service_of(request)
    sb = service.sandbox
    checks = {
        "sandbox": sb.cgroups is not None and len(sb.quarantined) < sb.slots_total,
        "storage": bool(service.store and await asyncio.to_thread(service.store.ping)),
        "audit": await service.audit_ready(),  # probes the storage when it had a problem
        "accepting": not service.draining,
        # The first detection of every toolchain (3-4 s here): until it ends, a language list (GET
        # /v1/runtimes, Judge0's /languages) waits for it, longer than some clients do.
        "toolchains": request.app.state.detection.done(),
    }
    if isinstance(cluster := getattr(request.app.state, "submissions", None), Clustered):
        checks["queue"] = await cluster.ping()  # the cluster's Redis
    ok = all(checks.values())
    return JSONResponse({"status": "ready" if ok else "not_ready", "checks": checks}, status_code=200 if ok else 503)


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    service = service_of(request)
    if isinstance(cluster := getattr(request.app.state, "submissions", None), Clustered):
        await cluster.refresh()
        service.metrics.cluster(cluster.describe())
    for surface, describe in service.queues.items():  # read at the scrape: queues move between two
        queue = describe()
        service.metrics.submissions_queued.labels(surface).set(queue["queued"])
        service.metrics.submission_oldest.labels(surface).set(queue["oldest_queued_s"])
    return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/docs", include_in_schema=False)
async def docs() -> HTMLResponse:
    # Swagger UI's files come with the package (static/swagger, the frontend build), not from a CDN.
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="Stockade API",
        swagger_js_url="/swagger/swagger-ui-bundle.js",
        swagger_css_url="/swagger/swagger-ui.css",
        swagger_favicon_url="/favicon.svg",
    )
