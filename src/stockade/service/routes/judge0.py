"""Judge0 CE's API (docs/compat.md) under a prefix (default /judge0), over the one engine path.

A synchronous submission (wait=true) runs like POST /v1/execute (routes/compat.py's steps). Others are
queued and run by submissions.Runner through the same steps, and read back by token. Refusals
and validation errors come in Judge0's shapes: 422 `{field: [message]}`, otherwise `{"error": message}`.
Judge0's `X-Auth-Token` (or `X-Auth-User`) header carries one of our API keys.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from stockade.engine import ExecutionResult, Plan
from stockade.runtimes.model import Language
from stockade.service import plans, webhooks
from stockade.service.compat import judge0 as j0
from stockade.service.compat import judge0_records as records
from stockade.service.errors import ApiError
from stockade.service.node import Caller, Service
from stockade.service.routes import compat
from stockade.service.routes.deps import caller
from stockade.service.submissions import Form, Job, QueueFull, Runner, SubmissionStore
from stockade.service.wire import NetworkIn

BATCH_SIZE = 20  # Judge0's MAX_SUBMISSION_BATCH_SIZE
DEFAULT_PER_PAGE, MAX_PER_PAGE = 20, 100  # GET /submissions: Judge0's page size, and our cap
HOMEPAGE = "https://github.com/stockade/stockade/blob/main/docs/compat.md"
# Which submission field a refusal of ours is about.
LANGUAGE_CODES = ("UNKNOWN_LANGUAGE", "TOOLCHAIN_MISSING", "VERSION_UNAVAILABLE", "FORBIDDEN")
FIELD_OF_CODE = dict.fromkeys(LANGUAGE_CODES, "language_id")
FIELD_OF_LIMIT = {
    "cpu_ms": "cpu_time_limit", "wall_ms": "wall_time_limit", "memory_mb": "memory_limit",
    "processes": "max_processes_and_or_threads", "file_size_kb": "max_file_size",
}  # fmt: skip
# Our refusals of a submission's content (FORBIDDEN: a language the tenant may not use): Judge0's 422.
VALIDATION = {"INVALID_REQUEST", "LIMIT_OUT_OF_RANGE", *LANGUAGE_CODES}
TOKEN = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def refusal(e: ApiError) -> Response:
    """Admission's refusals (overloaded, draining) in Judge0's words."""
    message = f"queue is full: {e.message}" if e.code == "OVERLOADED" else e.message
    headers = {"Retry-After": str(e.retry_after)} if e.retry_after is not None else None
    return JSONResponse({"error": message}, status_code=e.status, headers=headers)


def field_errors(e: ApiError) -> dict[str, list[str]]:
    name = FIELD_OF_CODE.get(e.code) or next((j for ours, j in FIELD_OF_LIMIT.items() if ours in e.message), "base")
    return {name: [e.message]}


def wording(request: Request, exc: Exception) -> Response | None:
    if isinstance(exc, j0.Invalid):
        return compat.answer(exc.errors, 422, request)
    if isinstance(exc, (j0.BadRequest, records.Unconvertible)):
        return compat.answer({"error": str(exc)}, 400, request)
    if isinstance(exc, QueueFull):
        return JSONResponse({"error": "queue is full"}, status_code=503, headers={"Retry-After": "1"})
    if isinstance(exc, compat.BadJson):
        return compat.answer({"error": "the body is not valid JSON"}, 400, request)
    if isinstance(exc, ApiError):
        headers = compat.error_headers(request, exc)
        if exc.code in VALIDATION:
            return JSONResponse(field_errors(exc), status_code=422, headers=headers)
        return JSONResponse({"error": exc.message}, status_code=exc.status, headers=headers)
    return None


def auth_headers(request: Request) -> None:
    """Judge0's auth header as our Bearer key (when no Authorization header is sent)."""
    token = request.headers.get("x-auth-token") or request.headers.get("x-auth-user")
    if token and "authorization" not in request.headers:
        request.scope["headers"] = [*request.scope["headers"], (b"authorization", f"Bearer {token}".encode("latin-1"))]
        request.__dict__.pop("_headers", None)  # Request caches its headers


def _finished(record: dict[str, Any], result: ExecutionResult, _: str) -> tuple[dict[str, Any], dict[str, Any]]:
    wall = sum(b.wall_time_ms for b in (result.compile, result.run) if b is not None)
    return records.finish(record, result), {"wall_time_ms": wall}


# A Judge0 record through the runner: Processing when its run starts, then the status of its result.
FORM = Form(
    started=records.started,
    finished=_finished,
    failed=records.failed,
)


@dataclass
class Judge0:
    """One node's Judge0 surface: its submission store and runner, from the router's lifespan."""

    service: Service
    store: SubmissionStore | None = None
    runner: Runner | None = None
    deliveries: webhooks.Deliveries | None = None
    languages: dict[int, Language] = field(default_factory=dict)

    def call_back(self, tenant: str, record: dict[str, Any]) -> None:
        """As Judge0 does: a finished submission with a callback_url is PUT there, base64 encoded, its
        default fields (through webhooks.py: checked, signed, retried)."""
        if record.get("callback_url") and self.deliveries is not None:
            self.deliveries.send(record["callback_url"], tenant, records.render(record, j0.DEFAULT_FIELDS, True), _kept)

    def language(self, language_id: int | None) -> Language:
        if language_id is None:
            raise j0.Invalid("language_id", "can't be blank")
        lang = self.languages.get(language_id)
        if lang is None:
            raise j0.Invalid("language_id", f"language with id {language_id} doesn't exist")
        return lang

    async def translate(
        self, who: Caller, item: Any, encoded: bool
    ) -> tuple[j0.SubmissionIn, Language, j0.Translated, Plan]:
        """One submission: validated, translated and prepared (the engine's checks), or Invalid/ApiError."""
        body = j0.parse_submission(item)
        lang = self.language(body.language_id)
        translated = j0.to_execute_in(body, lang, encoded, self.service.engine.policy)
        if body.enable_network:  # the tenant's egress allowlist, never an open network (docs/network.md)
            if not who.tenant.network_allow:
                raise j0.Invalid("enable_network", "enabling network is not allowed for this tenant")
            network = NetworkIn(allow=list(who.tenant.network_allow))
            translated = replace(translated, request=translated.request.model_copy(update={"network": network}))
        plan = await plans.prepare(self.service, who, translated.request)
        if body.callback_url is not None and self.deliveries is not None:
            try:
                await webhooks.check(body.callback_url, self.deliveries.policy.allow)
            except webhooks.Refused as e:
                raise j0.Invalid("callback_url", str(e)) from None
        return body, lang, translated, plan


def _kept(outcome: dict[str, Any]) -> None:
    """Judge0's records have no place for a callback's outcome: a failed one is logged (webhooks.py)."""


def build(service: Service, prefix: str) -> APIRouter:
    """The Judge0 router under `prefix`; its lifespan opens the submission store and starts the runner."""
    surface = Judge0(service, languages=dict(service.registry.by_judge0_id))
    cfg = service.config

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        keep = {"keep_seconds": cfg.judge0_keep_seconds, "keep_rows": cfg.judge0_keep_rows}
        store = SubmissionStore(cfg.judge0_db_path, table="records", **keep)
        store.fail_unfinished(records.failed, "the node restarted before this submission finished")
        surface.deliveries = app.state.judge0_webhooks = webhooks.configured(cfg, method="PUT")
        runner = Runner(service, store, FORM, cfg.judge0_queue_size, "judge0",
                        on_final=lambda tenant, _key, record: surface.call_back(tenant, record))  # fmt: skip
        runner.start()
        surface.store, surface.runner = store, runner
        service.queues["judge0"] = runner.describe
        try:
            yield
        finally:
            await runner.stop(cfg.drain_seconds)
            await surface.deliveries.stop(cfg.drain_seconds)
            store.close()

    route_class = compat.worded_route(wording, auth_headers)
    router = APIRouter(prefix=prefix, lifespan=lifespan, route_class=route_class, include_in_schema=False)
    add_submission_routes(router, surface)
    add_reading_routes(router, surface)
    add_language_routes(router, surface)
    add_info_routes(router, surface)
    return router


def _store(surface: Judge0) -> SubmissionStore:
    assert surface.store is not None, "the Judge0 router's lifespan has not run"
    return surface.store


def add_submission_routes(router: APIRouter, surface: Judge0) -> None:
    """Creating submissions, one or a batch."""
    service = surface.service

    @router.post("/submissions")
    async def create(request: Request) -> Response:
        q = request.query_params
        encoded, wait = j0.flag(q.get("base64_encoded")), j0.flag(q.get("wait"))
        fields = j0.requested_fields(q.get("fields"))
        who = await caller(request)
        body, _, translated, plan = await surface.translate(who, await compat.json_body(request), encoded)
        token = str(uuid.uuid4())
        record = records.new_record(token, body, plan, translated, service.engine.policy)
        if not wait:
            assert surface.runner is not None
            hold, request.state.quota_hold = request.state.quota_hold, None  # the runner's now
            try:
                surface.runner.submit([Job(token, who, plan, hold, record)])
            except QueueFull:
                request.state.quota_hold = hold
                raise
            return compat.answer({"token": token}, 201, request)
        result = await compat.run(request, plan)
        record = records.finish(record, result)
        _store(surface).put(who.tenant.id, token, "finished", record)
        surface.call_back(who.tenant.id, record)
        compat.record(request, who, plan, result, uuid.uuid4().hex)
        try:
            return compat.answer(records.render(record, fields, encoded), 201, request)
        except records.Unconvertible as e:
            return compat.answer({"token": token, "error": str(e)}, 201, request)

    @router.post("/submissions/batch")
    async def batch_create(request: Request) -> Response:
        encoded = j0.flag(request.query_params.get("base64_encoded"))
        who = await caller(request)
        data = await compat.json_body(request)
        items = data.get("submissions") if isinstance(data, dict) else None
        if not isinstance(items, list) or not items:
            raise j0.BadRequest("there should be at least one submission in a batch")
        if len(items) > BATCH_SIZE:
            raise j0.BadRequest(f"number of submissions in a batch should be less than or equal to {BATCH_SIZE}")
        answers: list[dict[str, Any]] = []
        jobs: list[Job] = []
        first, request.state.quota_hold = request.state.quota_hold, None  # the jobs' now, or released here
        try:
            for item in items:
                try:
                    body, _, translated, plan = await surface.translate(who, item, encoded)
                except j0.Invalid as e:
                    answers.append(e.errors)
                    continue
                except ApiError as e:
                    if e.code not in VALIDATION:
                        raise
                    answers.append(field_errors(e))
                    continue
                hold = service.check_quota(who) if jobs else first  # QUOTA_EXCEEDED refuses the whole batch
                token = str(uuid.uuid4())
                record = records.new_record(token, body, plan, translated, service.engine.policy)
                jobs.append(Job(token, who, plan, hold, record))
                answers.append({"token": token})
            if jobs:
                assert surface.runner is not None
                surface.runner.submit(jobs)
        except BaseException:
            for job in jobs:
                job.hold.release()
            first.release()
            raise
        if not jobs:
            first.release()
        return compat.answer(answers, 201 if jobs else 422, request)


def add_reading_routes(router: APIRouter, surface: Judge0) -> None:
    """Reading and deleting submissions by token."""

    @router.get("/submissions/batch")
    async def batch_show(request: Request) -> Response:
        q = request.query_params
        encoded = j0.flag(q.get("base64_encoded"))
        fields = j0.requested_fields(q.get("fields"))
        who = await compat.identify(request)
        tokens = [t for t in (request.headers.get("tokens") or q.get("tokens") or "").strip().split(",") if t]
        if not tokens:
            raise j0.BadRequest("there should be at least one submission in a batch")
        if len(tokens) > BATCH_SIZE:
            raise j0.BadRequest(f"number of submissions in a batch should be less than or equal to {BATCH_SIZE}")
        found = _store(surface).get_many(who.tenant.id, tokens)
        out = [records.render(found[t], fields, encoded) if t in found else None for t in tokens]
        return compat.answer({"submissions": out}, 200, request)

    @router.get("/submissions")
    async def index(request: Request) -> Response:
        q = request.query_params
        encoded = j0.flag(q.get("base64_encoded"))
        fields = j0.requested_fields(q.get("fields"))
        who = await compat.identify(request)
        page, per_page = _paging(q.get("page"), q.get("per_page"))
        found, total = _store(surface).page(who.tenant.id, (page - 1) * per_page, per_page)
        pages = -(-total // per_page)
        meta = {
            "current_page": page, "next_page": page + 1 if page < pages else None,
            "prev_page": page - 1 if page > 1 else None, "total_pages": pages, "total_count": total,
        }  # fmt: skip
        listed = [records.render(r, fields, encoded) for r in found]
        return compat.answer({"submissions": listed, "meta": meta}, 200, request)

    @router.get("/submissions/{token}")
    async def show(request: Request, token: str) -> Response:
        q = request.query_params
        encoded = j0.flag(q.get("base64_encoded"))
        fields = j0.requested_fields(q.get("fields"))
        who = await compat.identify(request)
        record = _store(surface).get(who.tenant.id, token) if TOKEN.match(token) else None
        if record is None:
            return compat.answer({"error": "submission not found"}, 404, request)
        return compat.answer(records.render(record, fields, encoded), 200, request)

    @router.delete("/submissions/{token}")
    async def destroy(request: Request, token: str) -> Response:
        fields = j0.requested_fields(request.query_params.get("fields"))
        who = await compat.identify(request)
        store = _store(surface)
        record = store.get(who.tenant.id, token) if TOKEN.match(token) else None
        if record is None:
            return compat.answer({"error": "submission not found"}, 404, request)
        if record["status_id"] in (j0.IN_QUEUE, j0.PROCESSING):
            status = f"{record['status_id']} ({j0.STATUSES[record['status_id']]})"
            raise j0.BadRequest(f"submission cannot be deleted because its status is {status}")
        store.delete(who.tenant.id, token)
        return compat.answer(records.render(record, fields, True), 200, request)


def _paging(page: str | None, per_page: str | None) -> tuple[int, int]:
    """Judge0's `page` (from 1) and `per_page` (default 20; at most 100 here), or BadRequest."""
    try:
        numbers = int(page or 1), int(per_page or DEFAULT_PER_PAGE)
    except ValueError:
        raise j0.BadRequest("page and per_page must be whole numbers") from None
    if numbers[0] < 1 or not 1 <= numbers[1] <= MAX_PER_PAGE:
        raise j0.BadRequest(f"page must be at least 1 and per_page from 1 to {MAX_PER_PAGE}")
    return numbers


def add_language_routes(router: APIRouter, surface: Judge0) -> None:
    """The language table, from the languages' judge0_ids."""
    service = surface.service

    async def listed() -> list[tuple[int, Language, str | None, bool]]:
        found = await service.registry.detect_all()
        return [
            (jid, lang, found[lang.id].version, found[lang.id].available)
            for jid, lang in sorted(surface.languages.items())
        ]

    @router.get("/languages")
    async def languages(request: Request) -> Response:
        await compat.identify(request)
        out = [{"id": i, "name": records.language_name(lang, v)} for i, lang, v, ok in await listed() if ok]
        return compat.answer(out, 200, request)

    @router.get("/languages/all")
    async def all_languages(request: Request) -> Response:
        await compat.identify(request)
        rows = await listed()
        out = [{"id": i, "name": records.language_name(lang, v), "is_archived": not ok} for i, lang, v, ok in rows]
        return compat.answer(out, 200, request)

    @router.get("/languages/{language_id}")
    async def language(request: Request, language_id: str) -> Response:
        await compat.identify(request)
        lang = surface.languages.get(int(language_id)) if language_id.isdigit() else None
        if lang is None:
            return compat.answer({"error": f"language with id {language_id} doesn't exist"}, 404, request)
        tc = await service.registry.detect(lang)
        return compat.answer(
            {
                "id": int(language_id),
                "name": records.language_name(lang, tc.version),
                "is_archived": not tc.available,  # no toolchain on this node: refused like an archived one
                "source_file": lang.source_file,
                "compile_cmd": " ".join(lang.compile.command) if lang.compile else None,
                "run_cmd": " ".join(lang.run.command),
            },
            200,
            request,
        )


def add_info_routes(router: APIRouter, surface: Judge0) -> None:
    """Statuses, version, configuration, workers and the auth probes."""
    service = surface.service

    @router.get("/statuses")
    async def statuses(request: Request) -> Response:
        await compat.identify(request)
        return compat.answer([{"id": i, "description": d} for i, d in j0.STATUSES.items()], 200, request)

    @router.get("/about")
    async def about(request: Request) -> Response:
        await compat.identify(request)
        body = {"version": j0.JUDGE0_VERSION, "homepage": HOMEPAGE, "source_code": HOMEPAGE, "maintainer": "Stockade"}
        return compat.answer(body, 200, request)

    @router.get("/version")
    async def version(request: Request) -> Response:
        await compat.identify(request)
        return PlainTextResponse(j0.JUDGE0_VERSION)

    @router.get("/config_info")
    async def config_info(request: Request) -> Response:
        await compat.identify(request)
        cfg = service.config
        body = records.config_info(service.engine.policy, batch_size=BATCH_SIZE, queue_size=cfg.judge0_queue_size,
                              callback_tries=cfg.webhook_attempts, callback_timeout=cfg.webhook_timeout_s,
                              option_languages=list(dict.fromkeys(
                                  lang.name for lang in surface.languages.values()
                                  if lang.compile is not None and lang.compile.options)))  # fmt: skip
        return compat.answer(body, 200, request)

    @router.get("/workers")
    async def workers(request: Request) -> Response:
        await compat.identify(request)
        runner = surface.runner
        assert runner is not None
        total = service.sandbox.slots_total
        busy = min(service.sandbox.slots_in_use, total)
        row = {"queue": "default", "size": runner.waiting, "available": total, "idle": total - busy}
        return compat.answer([{**row, "working": busy, "paused": 0, "failed": 0}], 200, request)

    @router.post("/authenticate")
    async def authenticate(request: Request) -> Response:
        await compat.identify(request)
        return Response(status_code=200)

    @router.post("/authorize")
    async def authorize(request: Request) -> Response:
        await compat.identify(request)
        return Response(status_code=200)
