"""POST /v1/submissions: executions queued now and read later (docs/api.md, "Submissions").

A submission is the body of POST /v1/execute, or a batch of up to 100 of them under `submissions`. Each
is checked as /v1/execute checks it (wire.to_request, Engine.prepare, the tenant's quota) before any is
queued: a batch is queued whole or refused whole. On one node the queue is submissions.Runner, the
node's one path to Engine.run for queued work (Judge0's asynchronous submissions ride it too); on a
cluster (`--redis-url`) it is cluster.Clustered, whose workers run the jobs through that same Runner
path. A record, once finished, holds the very body POST /v1/execute would have answered.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from stockade.engine import Plan
from stockade.service import webhooks
from stockade.service.cluster import Clustered, queue_of, shared_store, worker_of
from stockade.service.errors import ApiError
from stockade.service.node import Caller, Service
from stockade.service.plans import prepare
from stockade.service.quota import QuotaHold
from stockade.service.routes.compat import BadJson, json_body
from stockade.service.routes.deps import ERROR_RESPONSES, rate_headers, service_of
from stockade.service.submissions import V1_FORM, Job, Record, Runner, SubmissionStore, calling_back, now, shown
from stockade.service.wire import ExecuteIn

BATCH_SIZE = 100
READ_IDS = 100  # ids one GET /v1/submissions?ids= may name


def intake_of(request: Request) -> Runner | Clustered:
    """The node's queue of submissions: its own Runner, or the cluster's (module doc)."""
    intake: Runner | Clustered | None = getattr(request.app.state, "submissions", None)
    assert intake is not None, "the submissions router's lifespan has not run"
    return intake


def _bodies(data: Any) -> tuple[list[tuple[ExecuteIn, str | None]], bool]:
    """The submissions of a request body, validated (RequestValidationError naming the item), each with
    its callback_url, and whether it was a batch."""
    batch = isinstance(data, dict) and "submissions" in data
    items = data["submissions"] if batch else [data]
    if batch and (not isinstance(items, list) or not 1 <= len(items) <= BATCH_SIZE or set(data) != {"submissions"}):
        raise ApiError("INVALID_REQUEST", f"submissions: a list of 1 to {BATCH_SIZE} execution bodies, alone")
    bodies, errors = [], []
    for i, item in enumerate(items):
        where = f"submissions[{i}]." if batch else ""
        callback = item.get("callback_url") if isinstance(item, dict) else None
        if callback is not None and not isinstance(callback, str):
            raise ApiError("INVALID_REQUEST", f"{where}callback_url: a string")
        if isinstance(item, dict):
            item = {k: v for k, v in item.items() if k != "callback_url"}
        try:
            bodies.append((ExecuteIn.model_validate(item), callback))
        except ValidationError as e:
            loc = ("body", "submissions", i) if batch else ("body",)
            errors += [{**err, "loc": (*loc, *err["loc"])} for err in e.errors()]
    if errors:
        raise RequestValidationError(errors)
    for i, (body, _) in enumerate(bodies):
        if body.workspace is not None:  # its lease would be held across a run the request does not wait for
            where = f"submissions[{i}]." if batch else ""
            raise ApiError("INVALID_REQUEST", f"{where}workspace: not on a submission; use POST /v1/execute")
    return bodies, batch


def _record(key: str, plan: Plan, body: ExecuteIn, callback: str | None) -> Record:
    """A new submission's record, queued."""
    return {"id": key, "state": "queued", "language": plan.language.id, "created_at": now(),
            "started_at": None, "finished_at": None, "result": None, "error": None,
            "callback": None if callback is None else {"url": callback, "state": "pending"},
            "_output_encoding": body.output_encoding, "_collect": bool(body.collect)}  # fmt: skip


async def execute_queued(request: Request, who: Caller, body: ExecuteIn, cluster: Clustered) -> dict[str, Any]:
    """POST /v1/execute on a cluster's API node: the body run by a worker (cluster.Clustered.execute),
    under the quota hold the request took."""
    plan = await prepare(service_of(request), who, body, None)
    key = uuid.uuid4().hex
    return await cluster.execute(Job(key, who, plan, request.state.quota_hold, _record(key, plan, body, None), body))


async def _jobs(
    service: Service, who: Caller, bodies: list[tuple[ExecuteIn, str | None]], batch: bool, policy: webhooks.Policy
) -> list[Job]:
    """Each body prepared (the engine's checks), its callback checked, its quota held; none if any is
    refused."""
    jobs: list[Job] = []
    holds: list[QuotaHold] = []
    try:
        for i, (body, callback) in enumerate(bodies):
            try:
                plan = await prepare(service, who, body, None)
                if callback is not None:
                    try:
                        await webhooks.check(callback, policy.allow)
                    except webhooks.Refused as e:
                        raise webhooks.refusal(e) from None
            except ApiError as e:
                raise ApiError(e.code, f"submissions[{i}]: {e.message}" if batch else e.message) from None
            holds.append(service.check_quota(who))
            key = uuid.uuid4().hex
            jobs.append(Job(key, who, plan, holds[-1], _record(key, plan, body, callback), body))
    except BaseException:
        for hold in holds:
            hold.release()
        raise
    return jobs


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The node's submission queue, for the app's life (and a worker, if it is one). On one node, what a
    restart interrupted is failed; on a cluster, the queue delivers it again."""
    service: Service = app.state.service
    cfg = service.config
    deliveries = webhooks.configured(cfg)
    worker = None
    intake: Runner | Clustered
    if cfg.redis_url is None:
        store = SubmissionStore(cfg.submissions_db_path, table="records", keep_seconds=cfg.submission_keep_seconds,
                                keep_rows=cfg.submission_keep_rows)  # fmt: skip
        store.fail_unfinished(V1_FORM.failed, "the node restarted before this submission finished")
        intake = Runner(service, store, V1_FORM, cfg.submission_queue_size, "submissions",
                        on_final=calling_back(store, deliveries))  # fmt: skip
        intake.start()
    else:
        store, queue = shared_store(service), queue_of(service)
        intake = Clustered(service, store, queue)
        await intake.start()
        if cfg.embedded_worker:
            worker = worker_of(service, store, queue, calling_back(store, deliveries))
            await worker.start()
    app.state.submissions, app.state.webhooks = intake, deliveries
    service.queues["submissions"] = intake.describe  # /v1/diagnostics and /metrics
    try:
        yield
    finally:
        if worker is not None:
            await worker.stop(cfg.drain_seconds)
        if isinstance(intake, Runner):
            await intake.stop(cfg.drain_seconds)
        else:
            await intake.stop()
            await queue.close()
        await deliveries.stop(cfg.drain_seconds)
        store.close()


router = APIRouter(prefix="/v1", lifespan=lifespan)


@router.post("/submissions", status_code=202, responses=ERROR_RESPONSES, summary="Queue executions")
async def create(request: Request) -> JSONResponse:
    service = service_of(request)
    service.accepting()
    who = service.authenticate(request)
    request.state.rate_headers = await service.rate_limit(who)
    try:
        data = await json_body(request)
    except BadJson as e:
        raise ApiError("INVALID_REQUEST", str(e)) from None
    bodies, batch = _bodies(data)
    jobs = await _jobs(service, who, bodies, batch, request.app.state.webhooks.policy)
    try:
        await intake_of(request).enqueue(jobs)
    except ApiError:
        for job in jobs:
            job.hold.release()
        raise
    queued = [{"id": job.key, "state": "queued"} for job in jobs]
    body: Any = {"submissions": queued} if batch else queued[0]
    return JSONResponse(body, status_code=202, headers=rate_headers(request))


@router.get("/submissions/{submission_id}", responses=ERROR_RESPONSES, summary="A submission and its result")
async def read(
    request: Request,
    submission_id: str,
    wait_ms: Annotated[int, Query(ge=0, le=600_000)] = 0,
    wait: bool = False,
) -> JSONResponse:
    """Its state (queued, running, finished) and, once finished, the result POST /v1/execute would have
    answered (or `error`); `wait_ms` waits that long (at most the node's limit) for it to finish,
    `wait=true` the node's limit."""
    service = service_of(request)
    who = service.authenticate(request)
    request.state.rate_headers = await service.rate_limit(who)
    intake = intake_of(request)
    limit = service.config.submission_max_wait_ms
    wait_s = (limit if wait and not wait_ms else min(wait_ms, limit)) / 1000
    record = await intake.final(submission_id, wait_s, who.tenant.id)
    if record is None:
        raise ApiError("SUBMISSION_NOT_FOUND", f"no submission {submission_id!r}")
    return JSONResponse(shown(record), headers=rate_headers(request))


@router.get("/submissions", responses=ERROR_RESPONSES, summary="Several submissions by id")
async def read_many(request: Request, ids: Annotated[str, Query(max_length=READ_IDS * 40)]) -> JSONResponse:
    service = service_of(request)
    who = service.authenticate(request)
    request.state.rate_headers = await service.rate_limit(who)
    wanted = [i for i in ids.split(",") if i]
    if not 1 <= len(wanted) <= READ_IDS:
        raise ApiError("INVALID_REQUEST", f"ids: 1 to {READ_IDS} submission ids, comma-separated")
    found = intake_of(request).store.get_many(who.tenant.id, wanted)
    listed = [shown(found[i]) if i in found else {"id": i, "error": "SUBMISSION_NOT_FOUND"} for i in wanted]
    return JSONResponse({"submissions": listed}, headers=rate_headers(request))
