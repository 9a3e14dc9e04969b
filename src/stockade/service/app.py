"""The HTTP service. Request pipeline, in order, each step observable in metrics and logs:
authentication -> rate limit -> quota -> validation -> admission -> sandboxed execution -> result ->
telemetry and audit.
"""

import asyncio
import base64
import binascii
import contextlib
import dataclasses
import gc
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import stockade
from stockade.engine import Engine, EngineError, ExecutionRequest, ExecutionResult, Plan, SourceFile, StageLimits
from stockade.runtimes.registry import Registry
from stockade.sandbox import Sandbox
from stockade.service.admission import Place, Places
from stockade.service.api import ErrorOut, ExecuteIn, ExecuteOut, LimitsIn, RuntimesOut
from stockade.service.audit import AuditLog, execution_data
from stockade.service.config import ServiceConfig
from stockade.service.errors import ApiError
from stockade.service.quota import QuotaHold, QuotaHolds
from stockade.service.ratelimit import RateLimiter
from stockade.service.store import AuthContext, ConflictError, QuotaState, Store, Tenant
from stockade.service.telemetry import Metrics, RecentFailures
from stockade.service.wire import response_body

log = logging.getLogger("stockade.service")
SETTLE_WAIT_S = 5.0  # diagnostics wait at most this for answered executions to be recorded and their boxes replaced

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (400, 401, 403, 404, 413, 422, 429, 500, 503)
}


class BodyLimit:
    """Refuse bodies over the cap before they are read into memory in full: by Content-Length when it is
    given, else by reading at most the cap (then the buffered body is replayed to the app)."""

    def __init__(self, app: ASGIApp, max_bytes: int, on_reject: Callable[[], None] = lambda: None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.on_reject = on_reject

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def too_large() -> None:  # built only when needed: every request passes here
            self.on_reject()
            await ApiError("PAYLOAD_TOO_LARGE", f"request body exceeds {self.max_bytes} bytes").response()(
                scope, receive, send
            )

        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            if not length.isdigit() or int(length) > self.max_bytes:
                await too_large()
                return
            await self.app(scope, receive, send)
            return
        buffered: list[Message] = []
        seen = 0
        while True:
            message = await receive()
            buffered.append(message)
            if message["type"] != "http.request":
                break
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                await too_large()
                return
            if not message.get("more_body", False):
                break

        await self.app(scope, replaying(buffered, receive), send)


def replaying(buffered: list[Message], receive: Receive) -> Receive:
    """`receive` for the app after a middleware has read these messages itself."""

    async def replay() -> Message:
        return buffered.pop(0) if buffered else await receive()

    return replay


class StartupRefused(RuntimeError):
    """The configuration would be unsafe (e.g. open to the network without API keys)."""


@dataclass(frozen=True)
class AuditWrite:
    """An answered execution's audit record and usage, to be written; `done` once they are (or failed)."""

    persist: Callable[[], None]
    done: asyncio.Future[None]


@dataclass
class Caller:
    tenant: Tenant
    key_id: str | None


class Service:
    """Long-lived state of one node: sandbox, engine, storage, audit, limits and telemetry."""

    def __init__(self, config: ServiceConfig, registry: Registry | None = None) -> None:
        self.config = config
        self.registry = registry or Registry.default()
        # Every box binds every language's toolchain paths, so the box built ahead fits any run.
        shared = tuple(sorted({*config.sandbox.shared_ro_paths, *self.registry.ro_paths}))
        self.sandbox = Sandbox(dataclasses.replace(config.sandbox, shared_ro_paths=shared))
        self.engine = Engine(self.sandbox, self.registry)
        self.metrics = Metrics()
        self.failures = RecentFailures()
        self.limiter = RateLimiter()
        self.quota_holds = QuotaHolds()
        self.store: Store | None = None
        self.audit: AuditLog | None = None
        self.places = Places(self.sandbox.slots_total + config.queue_size)
        self.draining = False
        self.audit_ok = True  # false from a failed audit write until one succeeds (readiness)
        self._writing: set[asyncio.Future[None]] = set()  # audit writes of answered executions, until done
        self.started_at = time.time()
        self.open_mode = False
        self.started = False

    @property
    def recording(self) -> int:
        """Answered executions whose audit record is still being written."""
        return len(self._writing)

    @property
    def in_flight(self) -> int:
        """Admitted executions, running or waiting for a slot."""
        return self.places.admitted

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        cfg = self.config
        cfg.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.store = Store(cfg.db_path)
        self.audit = AuditLog(self.store, cfg.audit_key_path)
        if not self.store.has_any_keys():
            if not cfg.loopback:
                raise StartupRefused(
                    f"refusing to serve on {cfg.host} without API keys: create one with `stockade keys create`"
                )
            self.open_mode = True
            log.warning("no API keys configured: open mode on loopback %s:%d", cfg.host, cfg.port)
        self.sandbox.start()  # fails closed: SandboxUnavailable names the cause
        self.started = True

    async def stop(self) -> None:
        self.draining = True
        deadline = time.monotonic() + self.config.drain_seconds
        while (self.in_flight or self.recording) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        killed = self.sandbox.kill_all()
        if killed:
            log.warning("shutdown deadline passed: killed %d running boxes", killed)
        self.sandbox.close()
        if self.store is not None:
            self.store.close()

    # -- pipeline steps --------------------------------------------------------------------
    def authenticate(self, request: Request) -> Caller:
        assert self.store is not None
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if header:
            if scheme.lower() != "bearer" or not token:
                raise ApiError("UNAUTHENTICATED", "use `Authorization: Bearer <api key>`")
            ctx: AuthContext | None = self.store.authenticate(token.strip())
            if ctx is None:
                raise ApiError("UNAUTHENTICATED", "unknown, revoked or disabled API key")
            return Caller(ctx.tenant, ctx.key_id)
        # Open mode holds only while no key exists and we listen on loopback; it ends with the first key.
        if self.config.loopback and not self.store.has_any_keys():
            return Caller(self._open_tenant(), None)
        raise ApiError("UNAUTHENTICATED", "an API key is required: `Authorization: Bearer <api key>`")

    def _open_tenant(self) -> Tenant:
        assert self.store is not None
        name = self.config.open_tenant
        try:
            return self.store.get_tenant(name)
        except LookupError:
            with contextlib.suppress(ConflictError):  # another request created it first
                self.store.create_tenant(name, "open local mode", rate_per_minute=self.config.open_rate_per_minute)
            return self.store.get_tenant(name)

    async def rate_limit(self, caller: Caller) -> None:
        decision = await self.limiter.hit(caller.tenant.id, caller.tenant.rate_per_minute)
        if not decision.allowed:
            self.reject("rate_limited")
            raise ApiError(
                "RATE_LIMITED",
                f"more than {caller.tenant.rate_per_minute} requests per minute",
                retry_after=decision.retry_after_s,
            )

    def check_quota(self, caller: Caller) -> QuotaHold:
        """The check and the hold it returns (quota.py) are one step: no await between them."""
        assert self.store is not None
        tenant_id = caller.tenant.id
        q = self.store.check_quota(tenant_id, pending=self.quota_holds.held(tenant_id))
        self._saturation(q)
        if q.exceeded:
            self.reject("quota_exceeded")
            wait = max(1, int((q.resets_at - datetime.now(UTC)).total_seconds()))
            raise ApiError("QUOTA_EXCEEDED", f"daily {q.exceeded_by} quota used up", retry_after=wait)
        return self.quota_holds.hold(tenant_id)

    def _saturation(self, q: QuotaState) -> None:
        if q.executions_limit:
            self.metrics.quota_saturation.labels(q.tenant_id, "executions").set(q.executions_used / q.executions_limit)
        if q.cpu_seconds_limit:
            self.metrics.quota_saturation.labels(q.tenant_id, "cpu_seconds").set(
                q.cpu_seconds_used / q.cpu_seconds_limit
            )

    def reject(self, reason: str) -> None:
        self.metrics.rejections.labels(reason).inc()

    def internal_failure(self, what: str, exc: BaseException) -> str:
        """Log an internal failure with its traceback under a new id (the one a caller may quote)."""
        error_id = uuid.uuid4().hex[:12]
        log.error("%s %s", what, error_id, exc_info=exc, extra={"fields": {"error_id": error_id}})
        return error_id

    def to_request(self, body: ExecuteIn, tenant: Tenant) -> ExecutionRequest:
        if not tenant.allows_language(body.language) and not any(
            tenant.allows_language(n) for n in self._names(body.language)
        ):
            raise ApiError("FORBIDDEN", f"tenant {tenant.id!r} may not use {body.language!r}")
        try:
            if body.code is not None:
                files = [SourceFile("", body.code.encode())]
            else:
                files = [
                    SourceFile(f.name, decode(f.content, f.encoding, f"file {f.name!r}")) for f in body.files or []
                ]
            stdin = decode(body.stdin, body.stdin_encoding, "stdin")
        except UnicodeEncodeError:
            raise ApiError("INVALID_REQUEST", "text fields must be valid Unicode (no lone surrogates)") from None
        return ExecutionRequest(
            language=body.language,
            version=body.version,
            files=files,
            entry=body.entry,
            stdin=stdin,
            args=list(body.args),
            limits=self._limits(body.limits, tenant, "run"),
            compile_limits=self._limits(body.compile_limits, tenant, "compile"),
        )

    def _names(self, language: str) -> tuple[str, ...]:
        try:
            return self.registry.get(language).names
        except LookupError:
            return ()

    def _limits(self, given: LimitsIn | None, tenant: Tenant, stage: str) -> StageLimits:
        """Requested values above the tenant's maxima are refused; defaults above them are lowered."""
        policy = self.engine.policy.run if stage == "run" else self.engine.policy.compile
        requested = given.model_dump() if given else {}
        out: dict[str, int | None] = {}
        for name in StageLimits.names():
            cap = getattr(tenant.max_limits, name)
            value = requested.get(name)
            if value is not None and cap is not None and value > cap:
                raise ApiError("LIMIT_OUT_OF_RANGE", f"{stage} limit {name}={value} exceeds the tenant maximum {cap}")
            default = getattr(policy.default, name)
            out[name] = value if value is not None else (min(default, cap) if cap is not None else None)
        return StageLimits(**out)

    def shed(self) -> None:
        """Refuse at once when every execution place is taken or we are draining. Run first, before any
        work (auth, quota, parsing), so an overloaded node spends almost nothing on a refusal."""
        if self.draining:
            raise self._draining()
        if self.places.full:
            raise self._overloaded()

    def _draining(self) -> ApiError:
        self.reject("draining")
        return ApiError("OVERLOADED", "the service is shutting down", retry_after=5)

    def _overloaded(self) -> ApiError:
        self.reject("overloaded")
        return ApiError("OVERLOADED", f"all {self.places.capacity} execution places are taken", retry_after=1)

    def claim(self) -> Place:
        """A place for a received request (see admission.py), or ApiError OVERLOADED."""
        self.shed()
        place = self.places.claim()
        if place is None:
            raise self._overloaded()
        return place

    @contextlib.asynccontextmanager
    async def admitted(self, place: Place) -> AsyncIterator[None]:
        """The request's claimed place turns into an admitted run, held until the run ends."""
        if self.draining:  # the drain began while this request was validated
            raise self._draining()
        place.admit()
        self.metrics.in_flight.set(self.in_flight)
        try:
            yield
        finally:
            place.release()
            self.metrics.in_flight.set(self.in_flight)

    def record(
        self, caller: Caller, plan: Plan, result: ExecutionResult, execution_id: str, out: dict[str, Any]
    ) -> AuditWrite:
        """Telemetry (one log line, metrics) now; returns the write of the signed audit record and the
        quota usage, for write_audit() once the response is written."""
        lang = plan.language.id
        self.metrics.executions.labels(lang, result.status.value).inc()
        for stage, box in (("compile", result.compile), ("run", result.run)):
            if box is not None:
                self.metrics.stage_seconds.labels(stage, lang).observe(box.wall_time_ms / 1000)
        if result.status.value == "internal_error":
            self.metrics.sandbox_failures.inc()
            self.failures.add("sandbox")
        cpu_ms = sum(b.cpu_time_ms for b in (result.compile, result.run) if b is not None)
        req = plan.request
        final = result.final
        log.info(
            "execution",
            extra={
                "fields": {
                    "execution_id": execution_id,
                    "tenant": caller.tenant.id,
                    "key_id": caller.key_id,
                    "language": lang,
                    "version": result.version,
                    "verdict": result.status.value,
                    "compile_ms": result.compile.wall_time_ms if result.compile else None,
                    "run_ms": result.run.wall_time_ms if result.run else None,
                    "cpu_ms": cpu_ms,
                    "memory_kb": final.peak_memory_kb if final else 0,
                    "code_bytes": sum(len(f.content) for f in plan.files),
                    "stdin_bytes": len(req.stdin),
                    "stdout_bytes": len(final.stdout) if final else 0,
                    "stderr_bytes": len(final.stderr) if final else 0,
                }
            },
        )

        def persist() -> None:
            assert self.store is not None and self.audit is not None
            code = b"".join(f.name.encode() + b"\0" + f.content for f in plan.files)
            self.audit.append(
                "execution",
                caller.tenant.id,
                caller.key_id,
                execution_data(
                    language=lang,
                    version=result.version or "",
                    code=code,
                    stdin=req.stdin,
                    stdout=final.stdout if final else b"",
                    stderr=final.stderr if final else b"",
                    limits={"run": req.limits.as_dict(), "compile": req.compile_limits.as_dict()},
                    verdict=result.status.value,
                    timings={"cpu_ms": cpu_ms, "wall_ms": out["wall_time_ms"]},
                    execution_id=execution_id,
                ),
                also=lambda conn: self._saturation(Store.count_usage(conn, caller.tenant.id, cpu_ms)),
            )

        write = AuditWrite(persist, asyncio.get_running_loop().create_future())
        self._writing.add(write.done)
        return write

    async def write_audit(self, write: AuditWrite) -> None:
        """A record()'s write, in a worker thread. No client waits for it, so a failure is logged with an
        id, counted, and fails readiness until a write succeeds."""
        try:
            await asyncio.to_thread(write.persist)
        except Exception as exc:
            self.internal_failure("audit record not written:", exc)
            self.audit_ok = False
            self.failures.add("audit")
            self.metrics.audit_failures.inc()
        else:
            self.audit_ok = True
        finally:
            write.done.set_result(None)
            self._writing.discard(write.done)

    async def written(self) -> None:
        """Wait until every execution answered so far has had its audit record and usage written (or
        failed); not for later ones, which a busy node always has."""
        if self._writing:
            await asyncio.wait(list(self._writing))


EXECUTE_PATHS = ("/v1/execute", "/execute")


class Admission:
    """Claim an execution place for each received POST /execute before the app sees it (admission.py says
    why). Refusals are plain ASGI sends, so a full node answers a burst without doing any of the work of
    the pipeline. The place is given back, if the run has not done so, before the response starts: a
    client's next request must find it free. A request whose client leaves before its run has taken a
    slot is dropped. An execution's audit record is written here, once the app has answered or failed."""

    def __init__(self, app: ASGIApp, service: Service) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in EXECUTE_PATHS:
            await self.app(scope, receive, send)
            return
        try:
            self.service.shed()  # nothing read yet: a full node refuses before the body
            buffered = [await receive()]  # the whole body first: a slow sender holds no place
            while buffered[-1]["type"] == "http.request" and buffered[-1].get("more_body", False):
                buffered.append(await receive())
            if buffered[-1]["type"] == "http.disconnect":
                return
            place = self.service.claim()
        except ApiError as e:
            await e.response()(scope, receive, send)
            return

        scope.setdefault("state", {})["place"] = place
        try:
            await self._admitted(scope, buffered, receive, send, place)
        finally:
            # The run's boxes went to a builder thread for teardown as _admitted ended: this runs meanwhile.
            if write := scope["state"].get("audit_write"):
                await self.service.write_audit(write)
            if hold := scope["state"].get("quota_hold"):
                hold.release()

    async def _admitted(
        self, scope: Scope, buffered: list[Message], receive: Receive, send: Send, place: Place
    ) -> None:
        responding = False

        async def send_releasing(message: Message) -> None:
            nonlocal responding
            if message["type"] == "http.response.start":
                responding = True
                place.release()
            await send(message)

        # Yield once: of a burst read in one loop turn, the requests refused above are all answered in
        # it, before the admitted ones parse, authenticate and validate.
        await asyncio.sleep(0)
        # The run's boxes are torn down once the response is written (one write into the transport's
        # buffer, however slowly the client reads), not while.
        with self.service.sandbox.recycling_deferred() as runs:
            request = asyncio.current_task()
            assert request is not None

            async def drop_if_the_client_leaves() -> bool:
                """A client gone before its run took a slot (a queued request, typically): drop the
                request, so the slot goes to one that is still awaited. A started run ends as usual,
                recorded and audited."""
                # The body is read: what comes next is the client leaving, or the response's end.
                if (await receive())["type"] == "http.disconnect" and not (responding or runs.started):
                    return request.cancel()
                return False

            watcher = asyncio.create_task(drop_if_the_client_leaves())
            try:
                await self.app(scope, replaying(buffered, receive), send_releasing)
            except asyncio.CancelledError:
                if not (watcher.done() and watcher.result()):  # cancelled for another reason (shutdown)
                    raise
                request.uncancel()
                self.service.reject("client_gone")
                log.info("request dropped: its client left before its run started")
            finally:
                watcher.cancel()
                place.release()


def decode(text: str, encoding: str, what: str) -> bytes:
    if encoding == "utf8":
        return text.encode()
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError("INVALID_REQUEST", f"{what} is not valid base64") from None


def freeze_startup_heap() -> None:
    """Leave what start-up built (FastAPI, pydantic, the registry and its detections: most of the
    heap) out of every later full garbage collection: each one walked all of it, stopping the event
    loop for 40–90 ms under load, where a refusal should take a few (docs/benchmarks.md)."""
    gc.collect()
    gc.freeze()


def create_app(config: ServiceConfig | None = None, *, service: Service | None = None) -> FastAPI:
    service = service or Service(config or ServiceConfig())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not service.started:  # `stockade serve` starts it first, to refuse with a plain message
            await asyncio.to_thread(service.start)
        detection = asyncio.create_task(service.registry.detect_all())
        detection.add_done_callback(lambda _: freeze_startup_heap())
        try:
            yield
        finally:
            detection.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await detection
            await service.registry.cancel_probes()
            await service.stop()

    app = FastAPI(
        title="Stockade",
        version=stockade.__version__,
        description="Self-hosted, polyglot, secure code execution. See docs/api.md.",
        lifespan=lifespan,
    )
    app.state.service = service
    app.add_middleware(Admission, service=service)
    app.add_middleware(  # outermost: an oversized body is refused whatever the load
        BodyLimit, max_bytes=service.config.max_body_bytes, on_reject=lambda: service.reject("payload_too_large")
    )

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> Response:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        service.reject("invalid_request")
        if request.method == "POST" and "json" not in request.headers.get("content-type", ""):
            return ApiError("INVALID_REQUEST", "send a JSON body with `Content-Type: application/json`").response()
        parts = []
        for e in exc.errors()[:5]:
            loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body")
            parts.append(f"{loc or 'body'}: {e.get('msg', 'invalid')}")
        return ApiError("INVALID_REQUEST", "; ".join(parts) or "invalid request").response()

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "INVALID_REQUEST")
        body = {"status": "failed", "error": code, "message": str(exc.detail)}
        return JSONResponse(body, status_code=exc.status_code if code != "INVALID_REQUEST" else 400)

    @app.exception_handler(Exception)
    async def internal(_: Request, exc: Exception) -> Response:
        error_id = service.internal_failure("internal error", exc)
        service.failures.add(type(exc).__name__)
        return ApiError("INTERNAL_ERROR", "internal error; quote this id to the operator", error_id=error_id).response()

    async def caller(request: Request) -> Caller:
        """authentication -> rate limit -> quota, before the body is even validated. (Admission has
        claimed an execution place already, or refused the request.) On the event loop: SQLite reads
        in WAL mode never wait for a writer, and the hop to a worker thread cost more than they do."""
        c = service.authenticate(request)
        await service.rate_limit(c)
        # Held until the request ends (Admission): after its usage is written, if it runs.
        request.state.quota_hold = service.check_quota(c)
        return c

    def admin(request: Request) -> Caller:
        c = service.authenticate(request)
        if c.key_id is not None and c.tenant.id not in service.config.admin_tenants:
            raise ApiError("FORBIDDEN", "an admin key is required")
        return c

    async def execute(request: Request, body: ExecuteIn, who: Annotated[Caller, Depends(caller)]) -> JSONResponse:
        execution_id = uuid.uuid4().hex
        try:
            plan = await service.engine.prepare(service.to_request(body, who.tenant))
        except EngineError as e:
            service.reject(e.code.lower())
            raise ApiError(e.code, e.message) from None
        except ApiError as e:
            service.reject(e.code.lower())
            raise
        async with service.admitted(request.state.place):
            result = await service.engine.run(plan)
        waited = sum(b.queue_ms for b in (result.compile, result.run) if b is not None)
        service.metrics.queue_wait.observe(waited / 1000)
        out = response_body(execution_id, result, body.output_encoding)
        # Admission writes the audit record once the response is written, so the client does not wait for
        # it, and also if the response cannot be: every run is recorded. Until then the request holds its
        # quota execution.
        request.state.audit_write = service.record(who, plan, result, execution_id, out)
        return JSONResponse(out)

    async def method_not_allowed() -> Response:
        return JSONResponse(
            {"status": "failed", "error": "METHOD_NOT_ALLOWED", "message": "use POST"},
            status_code=405,
            headers={"Allow": "POST"},
        )

    for path in EXECUTE_PATHS:
        # Explicit, or the playground mounted at / would answer other methods with 404.
        app.api_route(path, methods=["GET", "PUT", "PATCH", "DELETE"], include_in_schema=False)(method_not_allowed)
        app.post(
            path,
            response_model=ExecuteOut,
            responses=ERROR_RESPONSES,
            summary="Run a program",
            include_in_schema=path == "/v1/execute",
        )(execute)

    @app.get("/v1/runtimes", response_model=RuntimesOut, summary="Languages, versions and limits")
    async def runtimes() -> dict[str, Any]:
        found = await service.registry.detect_all()
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
                }
                for lang in service.registry.languages
            ],
            "limits": {
                "run": {"default": policy.run.default.as_dict(), "maximum": policy.run.maximum.as_dict()},
                "compile": {"default": policy.compile.default.as_dict(), "maximum": policy.compile.maximum.as_dict()},
            },
        }

    @app.get("/healthz", summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="Ready to execute: sandbox, storage, not draining")
    async def readyz() -> JSONResponse:
        checks = {
            "sandbox": service.sandbox.cgroups is not None
            and len(service.sandbox.quarantined) < service.sandbox.slots_total,
            "storage": bool(service.store and await asyncio.to_thread(service.store.ping)),
            "audit": service.audit_ok,
            "accepting": not service.draining,
        }
        ok = all(checks.values())
        return JSONResponse(
            {"status": "ready" if ok else "not_ready", "checks": checks}, status_code=200 if ok else 503
        )

    @app.get("/v1/diagnostics", summary="Operator view (admin key)", responses=ERROR_RESPONSES)
    async def diagnostics(_: Annotated[Caller, Depends(admin)]) -> dict[str, Any]:
        sb = service.sandbox

        # Executions just answered have their audit records written, and their boxes torn down and
        # replaced, within milliseconds: report that state.
        async def settled() -> None:
            await service.written()
            await sb.recycled()

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(settled(), SETTLE_WAIT_S)
        return {
            "build": {"version": stockade.__version__, "started_at": service.started_at},
            "host": {
                "cgroup": sb.cgroups.describe() if sb.cgroups else None,
                "seccomp": True,
                "bubblewrap": service.config.sandbox.bwrap,
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
            "open_mode": service.open_mode,
            "draining": service.draining,
            "recent_failures": service.failures.summary(),
        }

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    static = resources.files("stockade.service") / "static"
    app.mount("/", StaticFiles(directory=str(static), html=True), name="playground")
    return app
