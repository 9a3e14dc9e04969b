"""POST /v1/submissions: executions queued now and read later (docs/api.md, "Submissions").

A submission is the body of POST /v1/execute, or a batch of up to 100 of them under `submissions`. Each
is checked as /v1/execute checks it (wire.to_request, Engine.prepare, the tenant's quota) before any is
queued: a batch is queued whole or refused whole. The queue is submissions.Runner, the node's one path
to Engine.run for queued work (Judge0's asynchronous submissions ride it too); its record, once
finished, holds the very body POST /v1/execute would have answered.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from stockade.engine import ExecutionResult
from stockade.service import webhooks
from stockade.service.errors import ApiError
from stockade.service.node import Caller, Service
from stockade.service.quota import QuotaHold
from stockade.service.routes.compat import BadJson, json_body
from stockade.service.routes.deps import ERROR_RESPONSES, rate_headers, service_of
from stockade.service.routes.execution import prepare
from stockade.service.submissions import Form, Job, QueueFull, Record, Runner, SubmissionStore
from stockade.service.wire import ExecuteIn, files_body, response_body

BATCH_SIZE = 100
READ_IDS = 100  # ids one GET /v1/submissions?ids= may name


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _finished(record: Record, result: ExecutionResult, execution_id: str) -> tuple[Record, dict[str, Any]]:
    out = response_body(execution_id, result, record["_output_encoding"])
    if record["_collect"]:
        out.update(files_body(result.outputs))
    return {**record, "state": "finished", "finished_at": _now(), "result": out}, out


def _failed(record: Record, message: str) -> Record:
    code = "INTERNAL_ERROR" if message.startswith("internal error") else "INTERRUPTED"
    return {**record, "state": "finished", "finished_at": _now(), "error": {"error": code, "message": message}}


FORM = Form(
    started=lambda record: {**record, "state": "running", "started_at": _now()},
    finished=_finished,
    failed=_failed,
)


def _shown(record: Record) -> Record:
    return {k: v for k, v in record.items() if not k.startswith("_")}


def _runner(request: Request) -> Runner:
    runner: Runner | None = getattr(request.app.state, "submissions", None)
    assert runner is not None, "the submissions router's lifespan has not run"
    return runner


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
            record = {"id": key, "state": "queued", "language": plan.language.id, "created_at": _now(),
                      "started_at": None, "finished_at": None, "result": None, "error": None,
                      "callback": None if callback is None else {"url": callback, "state": "pending"},
                      "_output_encoding": body.output_encoding, "_collect": bool(body.collect)}  # fmt: skip
            jobs.append(Job(key, who, plan, holds[-1], record))
    except BaseException:
        for hold in holds:
            hold.release()
        raise
    return jobs


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The node's submission store and runner, for the app's life; what a restart interrupted is failed."""
    service: Service = app.state.service
    cfg = service.config
    store = SubmissionStore(
        cfg.submissions_db_path, keep_seconds=cfg.submission_keep_seconds, keep_rows=cfg.submission_keep_rows
    )
    store.fail_unfinished(_failed, "the node restarted before this submission finished")
    deliveries = webhooks.configured(cfg)

    def call_back(job: Job) -> None:
        """Its record POSTed to its callback_url; what happened saved into the record's `callback`."""
        if (callback := job.record.get("callback")) is None:
            return
        tenant = job.caller.tenant.id

        def saved(outcome: dict[str, Any]) -> None:
            store.put(tenant, job.key, "finished", {**job.record, "callback": outcome})

        deliveries.send(callback["url"], tenant, _shown(job.record), saved)

    runner = Runner(service, store, FORM, cfg.submission_queue_size, "submissions", on_final=call_back)
    runner.start()
    app.state.submissions, app.state.webhooks = runner, deliveries
    service.queues["submissions"] = runner.describe  # /v1/diagnostics and /metrics
    try:
        yield
    finally:
        await runner.stop(cfg.drain_seconds)
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
    runner = _runner(request)
    jobs = await _jobs(service, who, bodies, batch, request.app.state.webhooks.policy)
    try:
        runner.submit(jobs)
    except QueueFull:
        for job in jobs:
            job.hold.release()
        service.reject("overloaded")
        raise ApiError("OVERLOADED", "the submission queue is full", retry_after=1) from None
    queued = [{"id": job.key, "state": "queued"} for job in jobs]
    body: Any = {"submissions": queued} if batch else queued[0]
    return JSONResponse(body, status_code=202, headers=rate_headers(request))


@router.get("/submissions/{submission_id}", responses=ERROR_RESPONSES, summary="A submission and its result")
async def read(
    request: Request, submission_id: str, wait_ms: Annotated[int, Query(ge=0, le=600_000)] = 0
) -> JSONResponse:
    """Its state (queued, running, finished) and, once finished, the result POST /v1/execute would have
    answered (or `error`); `wait_ms` waits that long (at most the node's limit) for it to finish."""
    service = service_of(request)
    who = service.authenticate(request)
    request.state.rate_headers = await service.rate_limit(who)
    runner = _runner(request)
    record = runner.store.get(who.tenant.id, submission_id)
    if record is not None and record["state"] != "finished" and wait_ms:
        await runner.finished(submission_id, min(wait_ms, service.config.submission_max_wait_ms) / 1000)
        record = runner.store.get(who.tenant.id, submission_id)
    if record is None:
        raise ApiError("SUBMISSION_NOT_FOUND", f"no submission {submission_id!r}")
    return JSONResponse(_shown(record), headers=rate_headers(request))


@router.get("/submissions", responses=ERROR_RESPONSES, summary="Several submissions by id")
async def read_many(request: Request, ids: Annotated[str, Query(max_length=READ_IDS * 40)]) -> JSONResponse:
    service = service_of(request)
    who = service.authenticate(request)
    request.state.rate_headers = await service.rate_limit(who)
    wanted = [i for i in ids.split(",") if i]
    if not 1 <= len(wanted) <= READ_IDS:
        raise ApiError("INVALID_REQUEST", f"ids: 1 to {READ_IDS} submission ids, comma-separated")
    found = _runner(request).store.get_many(who.tenant.id, wanted)
    listed = [_shown(found[i]) if i in found else {"id": i, "error": "SUBMISSION_NOT_FOUND"} for i in wanted]
    return JSONResponse({"submissions": listed}, headers=rate_headers(request))
