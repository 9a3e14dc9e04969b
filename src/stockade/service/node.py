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
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.requests import HTTPConnection

from stockade.engine import ExecutionResult, Plan
from stockade.runtimes.registry import Registry
from stockade.sandbox import Sandbox
from stockade.service.admission import Place, Places
from stockade.service.audit import AuditLog, execution_data, key_fingerprint, public_key_path
from stockade.service.config import ServiceConfig
from stockade.service.errors import ApiError
from stockade.service.journal import Journal, NotJournaled, RunEnded, Runs, StagedEngine
from stockade.service.quota import QuotaHold, QuotaHolds, SharedHolds
from stockade.service.ratelimit import RateLimiter, RateUnavailable
from stockade.service.storage import PROBE_EVERY_S, WRITE_ERRORS, StorageGuard, free_space_problem
from stockade.service.store import AuthContext, ConflictError, QuotaState, Store, Tenant
from stockade.service.telemetry import Metrics, RecentFailures
from stockade.service.workspaces import WorkspaceLimits, WorkspaceStore

log = logging.getLogger("stockade.service")
RECORD_WAIT_S = 10.0  # at shutdown, records still being written get this long


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
        self.metrics = Metrics()
        # Every admitted run is journaled before its first box, and recorded exactly once (journal.py).
        self.runs = Runs(self.sandbox, self.metrics, self.write_later)
        self.engine = StagedEngine(self.sandbox, self.registry, self.runs)
        self.storage = StorageGuard(config.data_dir)  # refuses runs it could not record (storage.py)
        self._unwritten: list[Callable[[], None]] = []  # records whose write failed, retried by the probe
        self._recovery: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self.failures = RecentFailures()
        # The submission queues of this node's surfaces (submissions.Runner.describe), by surface.
        self.queues: dict[str, Callable[[], dict[str, Any]]] = {}
        self.limiter = RateLimiter(config.redis_url)  # shared by a cluster's API nodes
        self.quota_holds: QuotaHolds | SharedHolds | None = None  # made with the store, at start
        self.store: Store | None = None
        self.workspaces: WorkspaceStore | None = None  # under the data dir, made at start
        self.audit: AuditLog | None = None
        self.places = Places(self.sandbox.slots_total + config.queue_size)
        self.draining = False
        self._writing: set[asyncio.Future[None]] = set()  # audit writes of answered executions, until done
        self.started_at = time.time()
        self.started = False

    @property
    def recording(self) -> int:
        """Answered executions whose audit record is still being written."""
        return len(self._writing)

    @property
    def audit_ok(self) -> bool:
        """Records can be written (readiness): false from a failed write or too little space until a
        probe of the storage succeeds (storage.py)."""
        return self.storage.problem is None

    @property
    def in_flight(self) -> int:
        """Admitted executions, running or waiting for a slot."""
        return self.places.admitted

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        cfg = self.config
        try:
            cfg.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            if problem := free_space_problem(cfg.data_dir):
                raise StartupRefused(f"cannot record executions: {problem}; free some space")
            new_key = not cfg.audit_key_path.exists()
            self.store = Store(cfg.store_location)
            self.audit = AuditLog(self.store, cfg.audit_key_path)
            self.runs.journal = Journal(self.store, self.audit, cfg.node_id)
            left = self.runs.journal.close_all("restart")
            # Nodes sharing the store share the quota holds too.
            shared = cfg.database_url is not None
            self.quota_holds = SharedHolds(self.store, cfg.node_id) if shared else QuotaHolds(self.store)
            self.workspaces = WorkspaceStore(cfg.workspaces_dir, _workspace_limits(cfg))
        except WRITE_ERRORS as e:
            raise StartupRefused(f"cannot use the data dir {cfg.data_dir}: {type(e).__name__}: {e}") from None
        self._announce_key(new_key)
        if left:
            self.metrics.interrupted.labels("restart").inc(len(left))
            log.warning(
                "recorded %d executions the previous process left unfinished as interrupted",
                len(left),
                extra={"fields": {"interrupted": [{"execution_id": p.id, "stage": p.stage} for p in left]}},
            )
        if not self.store.has_any_keys():
            if not cfg.loopback:
                raise StartupRefused(
                    f"refusing to serve on {cfg.host} without API keys: create one with `stockade keys create`"
                )
            log.warning("no API keys configured: open mode on loopback %s:%d", cfg.host, cfg.port)
        self.sandbox.start()  # fails closed: SandboxUnavailable names the cause
        self.started = True

    def _announce_key(self, new: bool) -> None:
        """The audit public key's fingerprint, each start; the key itself at the first, to be copied off
        the host and pinned (`stockade audit verify --public-key`, docs/audit.md)."""
        assert self.audit is not None
        fingerprint = key_fingerprint(self.audit.public_key)
        pub = public_key_path(self.config.audit_key_path)
        log.info("audit public key %s (%s)", fingerprint, pub, extra={"fields": {"audit_key": fingerprint}})
        if new:
            print(
                f"stockade: new audit signing key, public key {fingerprint}: copy {pub} off this host and verify "
                f"with `stockade audit verify --public-key COPY`\n{pub.read_text()}",
                file=sys.stderr,
                flush=True,
            )

    def begin_drain(self) -> None:
        """SIGTERM: readiness and admission turn 503 now; admitted runs without a slot will not start."""
        self.draining = True
        self.runs.begin_drain(self.config.drain_seconds)

    async def drain(self, force: Callable[[], bool] = lambda: False) -> None:
        """begin_drain, then until every run has ended or the deadline (`--drain-seconds`, or `force()`):
        past it the runs still going are killed and answered INTERRUPTED. Then their records."""
        self.begin_drain()
        await self.runs.drain(lambda: self.places.claimed > 0, force)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.written(), RECORD_WAIT_S)

    async def stop(self) -> None:
        await self.drain()
        if self._unwritten:  # a last try; else their journal entries are recorded at the next start
            await asyncio.to_thread(self.storage.probe, self._probe_write)
            if self._unwritten:
                left = len(self._unwritten)
                log.error("%d audit records not written: recorded as interrupted at the next start", left)
        if self._recovery is not None:
            self._recovery.cancel()
        self.runs.close()
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
        try:
            decision = await self.limiter.hit(caller.tenant.id, caller.tenant.rate_per_minute)
        except RateUnavailable as e:
            self.reject("queue_unavailable")
            error_id = self.internal_failure("the shared rate limit is unreachable:", e)
            raise ApiError("QUEUE_UNAVAILABLE", "the cluster's Redis cannot be reached", retry_after=1,
                           error_id=error_id) from None  # fmt: skip
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
        assert self.quota_holds is not None
        q, hold = self.quota_holds.take(caller.tenant)
        self._saturation(q)
        if hold is None:
            self.reject("quota_exceeded")
            wait = max(1, int((q.resets_at - datetime.now(UTC)).total_seconds()))
            raise ApiError("QUOTA_EXCEEDED", f"daily {q.exceeded_by} quota used up", retry_after=wait)
        return hold

    def adopt_hold(self, hold_id: str | None) -> QuotaHold:
        """The shared quota hold of a job an API node queued (worker.py); none to release without one."""
        if hold_id is None or not isinstance(self.quota_holds, SharedHolds):
            return QuotaHold(lambda: None)
        return self.quota_holds.adopt(hold_id)

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
        """Refuse at once when every execution place is taken, we are draining, or the run could not be
        recorded. Run first, before any work (auth, quota, parsing), so an overloaded node spends almost
        nothing on a refusal."""
        if self.draining:
            raise self._draining()
        if self.places.full:
            raise self._overloaded()
        self.accepting()

    def accepting(self) -> None:
        """Refuse work that would run later (a queued submission) when we are draining or its run could
        not be recorded; a full set of places is no refusal for it: it waits in its queue."""
        if self.draining:
            raise self._draining()
        if problem := self.storage.check():
            raise self._storage_unavailable(problem)

    def _draining(self) -> ApiError:
        self.reject("draining")
        # Connection: close, so that a keep-alive client reconnects (to another node) rather than reuse this one.
        return ApiError("OVERLOADED", "the service is shutting down", retry_after=5, headers={"Connection": "close"})

    def _interrupted(self) -> ApiError:
        self.reject("interrupted")
        return ApiError(
            "INTERRUPTED",
            f"the service shut down before this run finished: it was stopped at the end of the "
            f"{self.config.drain_seconds:g} s drain and recorded as interrupted",
            retry_after=5,
            headers={"Connection": "close"},
        )

    def store_gone(self, exc: BaseException) -> ApiError:
        """A request found the store's database server unreachable: logged with an id, and the node
        refuses runs (and is not ready) until a probe of the store succeeds."""
        error_id = self.internal_failure("the store's database is unreachable:", exc)
        self.storage.failed(exc)
        return self._storage_unavailable(f"the database is unreachable, error {error_id}")

    def _storage_unavailable(self, problem: str) -> ApiError:
        self.reject("storage_unavailable")
        self.watch_storage()
        why = f"nothing was run: its record could not be written ({problem})"
        return ApiError("STORAGE_UNAVAILABLE", why, retry_after=5)

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
        """The request's claimed place turns into an admitted run, held until the run ends. The run is
        journaled before its first box (journal.py); one that ends without a result is recorded as
        interrupted and answered with a typed 503 (OVERLOADED: it never started; INTERRUPTED: the
        drain's deadline stopped it); one that cannot be journaled does not start (STORAGE_UNAVAILABLE)."""
        if self.draining:  # the drain began while this request was validated
            raise self._draining()
        if problem := self.storage.check():
            raise self._storage_unavailable(problem)
        who = place.who
        place.admit()
        self.metrics.in_flight.set(self.in_flight)
        try:
            async with self.runs.tracked(who.tenant.id if who else None, who.key_id if who else None):
                yield
        except RunEnded as e:
            raise (self._draining() if e.reason == "shutdown" else self._interrupted()) from None
        except NotJournaled as e:
            self.storage.failed(e)
            raise self._storage_unavailable(str(e)) from None
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
        self.metrics.count_network(result.run.network if result.run else None)
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

        entry = self.runs.take()  # its journal entry, forgotten in the record's transaction

        def charge(conn: Any) -> None:
            self._saturation(Store.count_usage(conn, caller.tenant.id, cpu_ms))
            if entry is not None:
                Journal.forget(conn, entry.id)

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
                    limits=plan.limits,
                    verdict=result.status.value,
                    timings={"cpu_ms": cpu_ms, "wall_ms": out["wall_time_ms"]},
                    execution_id=execution_id,
                    **({"network": result.run.network.to_json()} if result.run and result.run.network else {}),
                    **(audit_extra or {}),
                ),
                also=charge,
            )

        write = AuditWrite(persist, asyncio.get_running_loop().create_future())
        self._writing.add(write.done)
        return write

    async def write_audit(self, write: AuditWrite) -> None:
        """A record()'s write, in a worker thread. No client waits for it, so a failure is logged with an
        id and counted; it fails readiness and admission (storage.py) until a probe of the storage has
        succeeded and written it (its run stays journaled meanwhile)."""
        try:
            await asyncio.to_thread(write.persist)
        except Exception as exc:
            self.internal_failure("audit record not written:", exc)
            self.storage.failed(exc)
            self._unwritten.append(write.persist)
            self.failures.add("audit")
            self.metrics.audit_failures.inc()
            self.watch_storage()
        finally:
            write.done.set_result(None)
            self._writing.discard(write.done)

    def write_later(self, persist: Callable[[], None]) -> None:
        """A record to write now in the background (an interrupted run's), awaited by written()."""
        write = AuditWrite(persist, asyncio.get_running_loop().create_future())
        self._writing.add(write.done)
        task = asyncio.get_running_loop().create_task(self.write_audit(write))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _probe_write(self) -> None:
        """The storage probe's write: one row, then the records that failed, oldest first."""
        assert self.store is not None
        self.store.probe_write()
        while self._unwritten:
            self._unwritten[0]()
            self._unwritten.pop(0)

    def watch_storage(self) -> None:
        """While storage cannot take records, probe it every PROBE_EVERY_S until it can (no request
        needed: a load balancer that follows /readyz sends none)."""
        if self._recovery is None or self._recovery.done():
            self._recovery = asyncio.get_running_loop().create_task(self._recover())

    async def _recover(self) -> None:
        while self.storage.problem is not None:
            await asyncio.sleep(PROBE_EVERY_S)
            if await asyncio.to_thread(self.storage.probe, self._probe_write):
                log.info("storage takes records again: executions are admitted")

    async def audit_ready(self) -> bool:
        """Readiness of the records: probes the storage now if it had a problem."""
        if self.storage.check() is not None:
            await asyncio.to_thread(self.storage.probe, self._probe_write)
        return self.storage.problem is None

    async def written(self) -> None:
        """Wait until every execution answered so far has had its audit record and usage written (or
        failed); not for later ones, which a busy node always has."""
        if self._writing:
            await asyncio.wait(list(self._writing))
