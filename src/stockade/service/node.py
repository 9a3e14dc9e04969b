"""`Service`: the long-lived state of one node (sandbox, engine, storage, audit, limits, telemetry) and
the steps of the request pipeline that need it, in order: shedding and admission (with admission.py),
authentication, rate limit, quota, then the record of an answered execution (telemetry now, the signed
audit record and usage once the response is written). The routes (routes/) call these steps; the
request's translation is in wire.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.requests import HTTPConnection

from stockade.engine import Engine, ExecutionResult, Plan
from stockade.runtimes.registry import Registry
from stockade.sandbox import Sandbox
from stockade.service.admission import Place, Places
from stockade.service.audit import AuditLog, execution_data
from stockade.service.config import ServiceConfig
from stockade.service.errors import ApiError
from stockade.service.quota import QuotaHold, QuotaHolds
from stockade.service.ratelimit import RateLimiter
from stockade.service.store import AuthContext, ConflictError, QuotaState, Store, Tenant
from stockade.service.telemetry import Metrics, RecentFailures
from stockade.service.workspaces import WorkspaceLimits, WorkspaceStore

log = logging.getLogger("stockade.service")


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


def _workspace_limits(cfg: ServiceConfig) -> WorkspaceLimits:
    return WorkspaceLimits(
        cfg.workspace_max_bytes, cfg.workspace_max_files, cfg.workspaces_per_tenant, cfg.workspace_idle_seconds
    )


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
        self.workspaces: WorkspaceStore | None = None  # under the data dir, made at start
        self.audit: AuditLog | None = None
        self.places = Places(self.sandbox.slots_total + config.queue_size)
        self.draining = False
        self.audit_ok = True  # false from a failed audit write until one succeeds (readiness)
        self._writing: set[asyncio.Future[None]] = set()  # audit writes of answered executions, until done
        self.started_at = time.time()
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
        self.workspaces = WorkspaceStore(cfg.workspaces_dir, _workspace_limits(cfg))
        if not self.store.has_any_keys():
            if not cfg.loopback:
                raise StartupRefused(
                    f"refusing to serve on {cfg.host} without API keys: create one with `stockade keys create`"
                )
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
    @property
    def open_mode(self) -> bool:
        """No key is needed: we listen on loopback and no key exists. It ends with the first key."""
        return self.config.loopback and self.store is not None and not self.store.has_any_keys()

    def authenticate(self, request: HTTPConnection) -> Caller:
        """The caller of a request or a WebSocket (routes/stream.py), from its Authorization header."""
        assert self.store is not None
        header = request.headers.get("authorization", "").strip()
        scheme, _, token = header.partition(" ")
        token = token.strip()
        # An empty bearer is what `Bearer $STOCKADE_API_KEY` sends with the variable unset: no key, which
        # open mode accepts. Any other header is checked as a key.
        if header and not (scheme.lower() == "bearer" and not token and self.open_mode):
            if scheme.lower() != "bearer" or not token:
                raise ApiError("UNAUTHENTICATED", "use `Authorization: Bearer <api key>`")
            ctx: AuthContext | None = self.store.authenticate(token)
            if ctx is None:
                raise ApiError("UNAUTHENTICATED", "unknown, revoked or disabled API key")
            return Caller(ctx.tenant, ctx.key_id)
        if self.open_mode:
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

    async def rate_limit(self, caller: Caller) -> dict[str, str]:
        """Count the request against its tenant's rate; the X-RateLimit-* headers of its answer
        (docs/tenants.md), or ApiError RATE_LIMITED carrying them."""
        decision = await self.limiter.hit(caller.tenant.id, caller.tenant.rate_per_minute)
        headers = {"X-RateLimit-Limit": str(decision.limit), "X-RateLimit-Remaining": str(decision.remaining)}
        if not decision.allowed:
            self.reject("rate_limited")
            raise ApiError(
                "RATE_LIMITED",
                f"more than {caller.tenant.rate_per_minute} requests per minute",
                retry_after=decision.retry_after_s,
                headers=headers,
            )
        return headers

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
        self,
        caller: Caller,
        plan: Plan,
        result: ExecutionResult,
        execution_id: str,
        out: dict[str, Any],
        audit_extra: dict[str, Any] | None = None,
    ) -> AuditWrite:
        """Telemetry (one log line, metrics) now; returns the write of the signed audit record and the
        quota usage, for write_audit() once the response is written. `audit_extra` goes into the
        record's data (judge mode: the judgement and test an execution belongs to)."""
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
                    **(audit_extra or {}),
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
