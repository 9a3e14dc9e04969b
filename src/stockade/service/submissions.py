"""Asynchronous submissions of one node: their records (a SQLite file under the data dir) and the runner
that executes the queued ones. Used by POST /v1/submissions (routes/submissions.py) and Judge0's
wait=false and batches (routes/judge0.py), each with a store of its own and its own record `Form`.

A record is readable by its id, only by its tenant, for `keep_seconds` and among the newest `keep_rows`.
What survives a restart: every finished record (within those bounds). What does not: a queued or
running submission; its plan and quota hold lived in memory, so at start it is marked failed ("the node
restarted ...") rather than run later under a key that may since be revoked.

The runner is a few tasks (one per sandbox slot) taking queued submissions in order. Each takes an
execution place like any request (admission.Places; it waits while all are taken), runs through
Service.admitted and Engine.run, and is recorded and audited by Service.record and write_audit, then its
quota hold is released: the same path as POST /v1/execute, without an HTTP request around it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from stockade.engine import ExecutionResult, Plan
from stockade.service.errors import ApiError
from stockade.service.quota import QuotaHold

if TYPE_CHECKING:
    from stockade.service.admission import Place
    from stockade.service.node import Caller, Service

log = logging.getLogger("stockade.service")

PLACE_POLL_S = 0.01  # a queued submission looks for a free place this often while all are taken
PRUNE_EVERY = 100  # records written between two prunes
State = Literal["queued", "running", "finished"]
Record = dict[str, Any]


class SubmissionStore:
    """Records by (tenant, id), as JSON, with their state; no order but creation time."""

    def __init__(self, path: Path, *, keep_seconds: int, keep_rows: int) -> None:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.keep_seconds = keep_seconds
        self.keep_rows = keep_rows
        self._writes = 0
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        path.chmod(0o600)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS records (id TEXT PRIMARY KEY, tenant TEXT NOT NULL,"
            " created REAL NOT NULL, state TEXT NOT NULL, record TEXT NOT NULL)"
        )
        self.db.execute("CREATE INDEX IF NOT EXISTS records_created ON records (created)")
        self.db.execute("CREATE INDEX IF NOT EXISTS records_tenant ON records (tenant, created)")
        self._adopt_judge0_table()

    def _adopt_judge0_table(self) -> None:
        """judge0.db before this module kept `submissions (token, tenant, created, status, record)`, Judge0
        status ids (1 and 2: not finished): its rows move into `records` once."""
        if self.db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'submissions'").fetchone():
            with contextlib.closing(self.db.cursor()) as cur:
                cur.execute("BEGIN IMMEDIATE")
                cur.execute(
                    "INSERT OR IGNORE INTO records SELECT token, tenant, created,"
                    " CASE WHEN status IN (1, 2) THEN 'queued' ELSE 'finished' END, record FROM submissions"
                )
                cur.execute("DROP TABLE submissions")
                cur.execute("COMMIT")

    def close(self) -> None:
        self.db.close()

    def put(self, tenant: str, key: str, state: State, record: Record) -> None:
        self.db.execute(
            "INSERT INTO records (id, tenant, created, state, record) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET state = excluded.state, record = excluded.record",
            (key, tenant, time.time(), state, json.dumps(record)),
        )
        self._writes += 1
        if self._writes % PRUNE_EVERY == 0:
            self.prune()

    def get(self, tenant: str, key: str) -> Record | None:
        row = self.db.execute("SELECT record FROM records WHERE id = ? AND tenant = ?", (key, tenant)).fetchone()
        return json.loads(row[0]) if row else None

    def get_many(self, tenant: str, keys: Iterable[str]) -> dict[str, Record]:
        wanted = list(dict.fromkeys(keys))
        marks = ",".join("?" * len(wanted))
        rows = self.db.execute(
            f"SELECT id, record FROM records WHERE tenant = ? AND id IN ({marks})", (tenant, *wanted)
        ).fetchall()
        return {key: json.loads(record) for key, record in rows}

    def page(self, tenant: str, offset: int, limit: int) -> tuple[list[Record], int]:
        """A tenant's records, newest first, from `offset`; and how many it has."""
        rows = self.db.execute(
            "SELECT record FROM records WHERE tenant = ? ORDER BY created DESC, id LIMIT ? OFFSET ?",
            (tenant, limit, offset),
        ).fetchall()
        total = self.db.execute("SELECT count(*) FROM records WHERE tenant = ?", (tenant,)).fetchone()[0]
        return [json.loads(r[0]) for r in rows], int(total)

    def delete(self, tenant: str, key: str) -> None:
        self.db.execute("DELETE FROM records WHERE id = ? AND tenant = ?", (key, tenant))

    def prune(self) -> None:
        self.db.execute("DELETE FROM records WHERE created < ?", (time.time() - self.keep_seconds,))
        self.db.execute(
            "DELETE FROM records WHERE id NOT IN (SELECT id FROM records ORDER BY created DESC LIMIT ?)",
            (self.keep_rows,),
        )

    def fail_unfinished(self, failed: Callable[[Record, str], Record], message: str) -> int:
        """At start: what was queued or running when the node stopped will not run (module doc)."""
        rows = self.db.execute("SELECT id, tenant, record FROM records WHERE state != 'finished'").fetchall()
        for key, tenant, record in rows:
            self.put(tenant, key, "finished", failed(json.loads(record), message))
        return len(rows)


@dataclass(frozen=True)
class Form:
    """How a surface writes its records: when a run starts, when it has finished (the record, and the
    answer body Service.record logs), and when it could not run."""

    started: Callable[[Record], Record]
    finished: Callable[[Record, ExecutionResult, str], tuple[Record, dict[str, Any]]]
    failed: Callable[[Record, str], Record]


@dataclass
class Job:
    key: str
    caller: Caller
    plan: Plan
    hold: QuotaHold
    record: Record


class QueueFull(Exception):
    pass


class Runner:
    """The tasks that run queued submissions (module doc); `finished(key)` returns once a record is final."""

    def __init__(
        self,
        service: Service,
        store: SubmissionStore,
        form: Form,
        queue_size: int,
        name: str,
        on_final: Callable[[Job], None] | None = None,
    ) -> None:
        self.service = service
        self.store = store
        self.form = form
        self.queue_size = queue_size
        self.name = name
        self.on_final = on_final  # a finished or failed job, once its record is stored (webhooks)
        self.queue: asyncio.Queue[Job] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        self._done: dict[str, asyncio.Event] = {}
        self._since: dict[str, float] = {}  # queued jobs: when each was queued (monotonic)

    @property
    def waiting(self) -> int:
        return self.queue.qsize()

    @property
    def oldest_wait_s(self) -> float:
        """How long the longest-queued submission has waited (0 with none queued)."""
        return time.monotonic() - min(self._since.values()) if self._since else 0.0

    def describe(self) -> dict[str, Any]:
        return {"queued": self.waiting, "queue_size": self.queue_size, "oldest_queued_s": round(self.oldest_wait_s, 3)}

    def submit(self, jobs: list[Job]) -> None:
        """Queue these submissions, all or none: QueueFull when they do not fit."""
        if self.queue.qsize() + len(jobs) > self.queue_size:
            raise QueueFull
        for job in jobs:
            self.store.put(job.caller.tenant.id, job.key, "queued", job.record)
            self._done[job.key] = asyncio.Event()
            self._since[job.key] = time.monotonic()
            self.queue.put_nowait(job)

    async def finished(self, key: str, timeout: float) -> None:
        """Return once the submission `key` of this node's queue is final, or after `timeout` seconds."""
        done = self._done.get(key)
        if done is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), timeout)

    def start(self) -> None:
        n = max(1, self.service.sandbox.slots_total)
        self._workers = [asyncio.create_task(self._work(), name=f"{self.name}-runner-{i}") for i in range(n)]

    async def stop(self, timeout: float) -> None:
        """Let the queue empty (while the node drains, each queued submission fails at once), then stop."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.queue.join(), timeout)
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        while not self.queue.empty():
            job = self.queue.get_nowait()
            self._since.pop(job.key, None)
            self._fail(job, "the node shut down before this submission ran")

    async def _work(self) -> None:
        while True:
            job = await self.queue.get()
            self._since.pop(job.key, None)
            try:
                await self._run(job)
            except Exception as exc:  # a runner must outlive any one submission
                error_id = self.service.internal_failure(f"{self.name} submission failed:", exc)
                self._fail(job, f"internal error {error_id}")
            finally:
                self.queue.task_done()

    async def _place(self) -> Place | None:
        """An execution place, waiting while all are taken; None once the node drains. Through Places
        itself, not Service.claim: a wait is not a refusal, so no rejection is counted."""
        while not self.service.draining:
            place = self.service.places.claim()
            if place is not None:
                return place
            await asyncio.sleep(PLACE_POLL_S)
        return None

    async def _run(self, job: Job) -> None:
        place = await self._place()
        if place is None:
            self._fail(job, "the node shut down before this submission ran")
            return
        place.who = job.caller  # its run's journal entry names who asked
        tenant = job.caller.tenant.id
        job.record = self.form.started(job.record)
        self.store.put(tenant, job.key, "running", job.record)
        try:
            async with self.service.admitted(place):
                result: ExecutionResult = await self.service.engine.run(job.plan)
        except ApiError as e:  # the node began to drain meanwhile
            self._fail(job, e.message)
            return
        finally:
            place.release()
        execution_id = uuid.uuid4().hex
        job.record, out = self.form.finished(job.record, result, execution_id)
        write = self.service.record(job.caller, job.plan, result, execution_id, out)
        self._final(job)
        try:
            await self.service.write_audit(write)
        finally:
            job.hold.release()

    def _fail(self, job: Job, message: str) -> None:
        job.record = self.form.failed(job.record, message)
        self._final(job)
        job.hold.release()

    def _final(self, job: Job) -> None:
        self.store.put(job.caller.tenant.id, job.key, "finished", job.record)
        if (done := self._done.pop(job.key, None)) is not None:
            done.set()
        if self.on_final is not None:
            self.on_final(job)
