"""The journal of admitted executions, so that none the service accepted goes unrecorded (docs/audit.md).

A run is written here when it is admitted, before any of its code runs: who, what, when. Its stage is
updated as it reaches one (compile, run). Its audit record deletes the row in the same transaction
(`forget`), so a run has exactly one record. A run that ends without a result (the drain's deadline, a
failure) is recorded by `interrupt`. Whatever is still here at the next start was cut short by the end
of the process (kill -9, a crash, power loss): the start records each as interrupted, with how far it got.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

from stockade.engine import Engine, Plan
from stockade.runtimes.registry import Registry
from stockade.sandbox import CallerRuns, Sandbox
from stockade.service.audit import AuditLog, format_time, sha256_hex
from stockade.service.db import Connection
from stockade.service.storage import WRITE_ERRORS
from stockade.service.store import Store
from stockade.service.telemetry import Metrics

log = logging.getLogger("stockade.service")

Stage = Literal["queued", "compile", "run"]  # journaled, waiting for its slot; then in a box of that stage
# Why a run ended without a result, as its record says.
Reason = Literal["restart", "drain_timeout", "shutdown", "client_gone", "internal_error"]
STAGES: Final = ("queued", "compile", "run")
KILL_WAIT_S: Final = 10.0  # past the drain's deadline, killed runs get this long to end


@dataclass(frozen=True)
class Pending:
    """One journaled run: its id (the execution id of its record), when it was admitted, who asked for
    it, what it runs (digests and limits, as its record holds them) and the last stage it reached."""

    id: str
    admitted_at: str
    tenant: str | None
    key_id: str | None
    data: dict[str, Any]
    stage: str


def run_data(*, language: str, version: str, code: bytes, stdin: bytes, limits: dict[str, Any]) -> dict[str, Any]:
    """What the journal keeps of a run: digests, never payloads (the audit record's rule)."""
    return {
        "language": language,
        "version": version,
        "code_sha256": sha256_hex(code),
        "stdin_sha256": sha256_hex(stdin),
        "limits": limits,
    }


def interrupted_data(entry: Pending, reason: str, **extra: Any) -> dict[str, Any]:
    """`data` of an interrupted run's record: what it ran, `status`/`verdict` "interrupted", why
    (`reason`), when it was admitted and how far it got (`stage`)."""
    return {
        **entry.data,
        "execution_id": entry.id,
        "status": "interrupted",
        "verdict": "interrupted",
        "reason": reason,
        "stage": entry.stage,
        "admitted_at": entry.admitted_at,
        **extra,
    }


class Journal:
    """The runs_pending table of the store (store.py's migration 2), closed into the audit log."""

    def __init__(self, store: Store, audit: AuditLog, node: str = "") -> None:
        self.store = store
        self.audit = audit
        self.node = node  # its runs only: nodes sharing one database each close their own at start

    def admit(self, entry: Pending) -> None:
        """Journal a run before it starts; raises one of storage.WRITE_ERRORS if the write fails."""
        data = json.dumps(entry.data)
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT INTO runs_pending (id, admitted_at, tenant, key_id, data, stage, node)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (entry.id, entry.admitted_at, entry.tenant, entry.key_id, data, entry.stage, self.node),
            )

    def stage(self, run_id: str, stage: Stage) -> None:
        with self.store.transaction() as conn:
            conn.execute("UPDATE runs_pending SET stage = ? WHERE id = ?", (stage, run_id))

    @staticmethod
    def forget(conn: Connection, run_id: str) -> None:
        """Inside the transaction of the run's audit record: the run is recorded, no longer pending."""
        conn.execute("DELETE FROM runs_pending WHERE id = ?", (run_id,))

    def pending(self) -> list[Pending]:
        rows = self.store.connection().execute(
            "SELECT id, admitted_at, tenant, key_id, data, stage FROM runs_pending WHERE node = ?"
            " ORDER BY admitted_at, id",
            (self.node,),
        )
        return [
            Pending(r["id"], r["admitted_at"], r["tenant"], r["key_id"], json.loads(r["data"]), r["stage"])
            for r in rows
        ]

    def interrupt(
        self, entry: Pending, reason: Reason, also: Callable[[Connection], object] | None = None, **extra: Any
    ) -> dict[str, Any]:
        """Record `entry` as interrupted (signed, chained), removing it from the journal in the same
        transaction. Its usage is not counted: its caller got no result."""

        def close(conn: Connection) -> None:
            self.forget(conn, entry.id)
            if also is not None:
                also(conn)

        return self.audit.append(
            "execution", entry.tenant, entry.key_id, interrupted_data(entry, reason, **extra), also=close
        )

    def close_all(self, reason: Reason = "restart") -> list[Pending]:
        """At start: record every run this node's previous process left unfinished; returns them."""
        left = self.pending()
        for entry in left:
            self.interrupt(entry, reason)
        return left


def now() -> str:
    return format_time(datetime.now(UTC))


# -- the runs of a node, in memory -------------------------------------------------------------

_CURRENT: contextvars.ContextVar[Run | None] = contextvars.ContextVar("stockade_run", default=None)


class RunEnded(Exception):
    """A run ended without a result; it is recorded as interrupted for `reason`."""

    def __init__(self, reason: Reason) -> None:
        super().__init__(reason)
        self.reason: Reason = reason


class NotJournaled(Exception):
    """The run's journal entry could not be written: it must not start (storage.py)."""


@dataclass(eq=False)
class Run:
    """One admitted run, from Service.admitted until its record. `entry` is written when it reaches its
    first stage, just before its first box is asked for."""

    tenant: str | None
    key_id: str | None
    task: asyncio.Task[Any]
    caller_runs: CallerRuns
    entry: Pending | None = None
    stage: Stage = "queued"
    next_stage: Stage = "queued"  # the stage its next slot is for
    journaling: bool = False  # its entry is being written
    refused: bool = False  # the drain refused it before it took a slot
    expired: bool = False  # the drain's deadline passed while it ran

    @property
    def started(self) -> bool:
        return self.caller_runs.started


def _plan_data(plan: Plan) -> dict[str, Any]:
    req = plan.request
    return run_data(
        language=plan.language.id,
        version=plan.toolchain.version or "",
        code=b"".join(f.name.encode() + b"\0" + f.content for f in plan.files),
        stdin=req.stdin,
        limits=plan.limits,
    )


class Runs:
    """The node's admitted runs: each journaled before its first box, recorded once (by Service.record,
    or here as interrupted), and the drain's work on them (refuse those not started, stop the rest at
    the deadline). `write` schedules a record's write (Service.write_later)."""

    def __init__(self, sandbox: Sandbox, metrics: Metrics, write: Callable[[Callable[[], None]], None]) -> None:
        self.sandbox = sandbox
        self.metrics = metrics
        self.write = write
        self.journal: Journal | None = None  # from Service.start
        self.active: dict[int, Run] = {}
        self.deadline: float | None = None  # the drain's, once it began
        self.expired = False  # the drain's deadline has passed: no stage may begin
        self._stages = ThreadPoolExecutor(1, thread_name_prefix="stockade-journal")  # in order, unawaited

    @contextlib.asynccontextmanager
    async def tracked(self, tenant: str | None, key_id: str | None) -> AsyncIterator[Run]:
        """The body is one admitted run. Raises RunEnded when it ends without a result."""
        task = asyncio.current_task()
        assert task is not None
        own = self.sandbox.caller_runs()  # Admission's block; a submission opens its own
        with contextlib.nullcontext(own) if own is not None else self.sandbox.recycling_deferred() as caller_runs:
            run = Run(tenant, key_id, task, caller_runs)
            self.active[id(run)] = run
            _CURRENT.set(run)  # left set on success: Service.record takes it
            try:
                yield run
            except asyncio.CancelledError:
                if not run.refused:
                    self.interrupt(run, "shutdown" if self.deadline is not None else "client_gone")
                    raise
                task.uncancel()
                self.interrupt(run, "shutdown")
                raise RunEnded("shutdown") from None
            except RunEnded as e:
                self.interrupt(run, e.reason)
                raise
            except NotJournaled:
                _CURRENT.set(None)
                raise
            except Exception:
                self.interrupt(run, "internal_error")
                raise
            finally:
                self.active.pop(id(run), None)
            if run.expired:
                self.interrupt(run, "drain_timeout")
                raise RunEnded("drain_timeout")

    async def reached(self, plan: Plan, stage: Stage) -> None:
        """The current run enters `stage` (and will ask for its slot): journaled first if this is its
        first stage, before any box."""
        run = _CURRENT.get()
        if run is None or self.journal is None:
            return
        if self.expired:
            raise RunEnded("drain_timeout")
        run.next_stage = stage
        if run.entry is None:
            entry = Pending(uuid.uuid4().hex, now(), run.tenant, run.key_id, {}, "queued")
            journal = self.journal

            def admit() -> Pending:
                journaled = dataclasses.replace(entry, data=_plan_data(plan))
                journal.admit(journaled)
                return journaled

            run.journaling = True  # not cancelled meanwhile: the row would outlive the await
            try:
                run.entry = await asyncio.to_thread(admit)
            except WRITE_ERRORS as e:
                raise NotJournaled(f"{type(e).__name__}: {e}") from e
            finally:
                run.journaling = False
            run.caller_runs.on_start = lambda: self._started(run)
        if self.deadline is not None and not run.started:  # the drain began: it will not start
            raise RunEnded("shutdown")

    def _started(self, run: Run) -> None:
        """The run took a slot for its next stage (called in Pool.acquire: must not raise)."""
        if run.entry is not None and run.stage != run.next_stage:
            run.stage = run.next_stage
            with contextlib.suppress(RuntimeError):  # the executor is shut down: the node is stopping
                self._stages.submit(self._write_stage, run.entry.id, run.stage)

    def _write_stage(self, run_id: str, stage: Stage) -> None:
        assert self.journal is not None
        try:
            self.journal.stage(run_id, stage)
        except WRITE_ERRORS as e:  # how far it got is lost, not the record
            log.warning("journal: stage of run %s not written: %s", run_id, e)

    def take(self) -> Pending | None:
        """For the record of the run that just ended in this context: its entry (the record forgets it)."""
        run = _CURRENT.get()
        _CURRENT.set(None)
        return run.entry if run is not None else None

    def interrupt(self, run: Run, reason: Reason) -> None:
        """Record `run` as interrupted (if it was journaled), counted and logged."""
        _CURRENT.set(None)
        if run.entry is None or self.journal is None:
            return
        entry = dataclasses.replace(run.entry, stage=run.stage)
        self.metrics.interrupted.labels(reason).inc()
        log.warning(
            "execution interrupted",
            extra={
                "fields": {"execution_id": entry.id, "tenant": entry.tenant, "reason": reason, "stage": entry.stage}
            },
        )
        journal = self.journal

        def persist() -> None:
            journal.interrupt(entry, reason)

        self.write(persist)

    # -- the drain ------------------------------------------------------------------------------
    def begin_drain(self, seconds: float) -> None:
        """SIGTERM: the runs that have not taken a slot will not start (their callers get a 503)."""
        if self.deadline is None:
            self.deadline = time.monotonic() + seconds
            self._refuse_waiting()

    def _refuse_waiting(self) -> None:
        for run in self.active.values():
            if not (run.started or run.refused or run.journaling):
                run.refused = True
                run.task.cancel()

    async def drain(self, busy: Callable[[], bool], force: Callable[[], bool]) -> None:
        """Until every run has ended, `busy()` is false, or the deadline (or `force()`): then the runs
        still going are killed and end as interrupted (drain_timeout)."""
        assert self.deadline is not None
        while (self.active or busy()) and time.monotonic() < self.deadline and not force():
            await asyncio.sleep(0.05)
        if not self.active:
            return
        self.expired = True
        interrupted, killed = len(self.active), 0
        stop_by = time.monotonic() + KILL_WAIT_S
        while self.active and time.monotonic() < stop_by:
            for run in self.active.values():
                run.expired = True
            self._refuse_waiting()
            killed = max(killed, self.sandbox.kill_all())
            await asyncio.sleep(0.05)
        log.warning("drain deadline passed: %d runs interrupted (%d boxes killed)", interrupted, killed)

    def close(self) -> None:
        self._stages.shutdown(wait=True)


class StagedEngine(Engine):
    """The engine, telling Runs which stage each admitted run enters, before the stage asks for a box."""

    def __init__(self, sandbox: Sandbox, registry: Registry, runs: Runs) -> None:
        super().__init__(sandbox, registry)
        self._runs = runs

    async def compile_stage(self, plan: Plan) -> Any:
        if plan.language.compile is not None:
            await self._runs.reached(plan, "compile")
        return await super().compile_stage(plan)

    async def run_stage(self, plan: Plan, artifact: Any, **kwargs: Any) -> Any:
        await self._runs.reached(plan, "run")
        return await super().run_stage(plan, artifact, **kwargs)
