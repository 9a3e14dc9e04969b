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
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from stockade.engine import ExecutionResult, Plan
from stockade.service.db import SERVER_GONE, Pool, is_url, open_database
from stockade.service.errors import ApiError
from stockade.service.quota import QuotaHold
from stockade.service.wire import ExecuteIn, files_body, response_body

if TYPE_CHECKING:
    from stockade.service.admission import Place
    from stockade.service.node import Caller, Service
    from stockade.service.webhooks import Deliveries

log = logging.getLogger("stockade.service")

PLACE_POLL_S = 0.01  # a queued submission looks for a free place this often while all are taken
PRUNE_EVERY = 100  # records written between two prunes
State = Literal["queued", "running", "finished"]
Record = dict[str, Any]


class SubmissionStore:
    """Records by (tenant, id), as JSON, with their state; no order but creation time. In a SQLite file of
    the node's, or in a table of the cluster's PostgreSQL database (`location` a URL), shared by its nodes."""

    def __init__(self, location: Path | str, *, table: str = "records", keep_seconds: int, keep_rows: int) -> None:
        if not is_url(location):
            Path(location).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.keep_seconds = keep_seconds
        self.keep_rows = keep_rows
        self.table = table  # one of a few fixed names, never a caller's
        self._writes = 0
        self.pool = Pool(open_database(location))
        db = self.pool.connection()
        if not is_url(location):
            Path(location).chmod(0o600)
        db.execute(
            self.pool.db.ddl(
                f"CREATE TABLE IF NOT EXISTS {table} (id TEXT PRIMARY KEY, tenant TEXT NOT NULL,"
                " created REAL NOT NULL, state TEXT NOT NULL, record TEXT NOT NULL)"
            )
        )
        db.execute(f"CREATE INDEX IF NOT EXISTS {table}_created ON {table} (created)")
        db.execute(f"CREATE INDEX IF NOT EXISTS {table}_tenant ON {table} (tenant, created)")
        if not is_url(location):
            self._adopt_judge0_table()

    def _adopt_judge0_table(self) -> None:
        """judge0.db before this module kept `submissions (token, tenant, created, status, record)`, Judge0
        status ids (1 and 2: not finished): its rows move into `records` once."""
        db = self.pool.connection()
        if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'submissions'").fetchone():
            with self.pool.transaction() as cur:
                cur.execute(
                    f"INSERT OR IGNORE INTO {self.table} SELECT token, tenant, created,"
                    " CASE WHEN status IN (1, 2) THEN 'queued' ELSE 'finished' END, record FROM submissions"
                )
                cur.execute("DROP TABLE submissions")

    def close(self) -> None:
        self.pool.close()

    def _execute(self, sql: str, parameters: tuple[Any, ...] = ()) -> Any:
        return self.pool.connection().execute(sql, parameters)

    def put(self, tenant: str, key: str, state: State, record: Record) -> None:
        self._execute(
            f"INSERT INTO {self.table} (id, tenant, created, state, record) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET state = excluded.state, record = excluded.record",
            (key, tenant, time.time(), state, json.dumps(record)),
        )
        self._writes += 1
        if self._writes % PRUNE_EVERY == 0:
            self.prune()

    def finish(self, tenant: str, key: str, record: Record) -> bool:
        """Record the final state unless it already is final: a job delivered twice (its worker presumed
        dead) keeps the first result. Whether this call recorded it."""
        cur = self._execute(
            f"UPDATE {self.table} SET state = 'finished', record = ?"
            " WHERE id = ? AND tenant = ? AND state != 'finished'",
            (json.dumps(record), key, tenant),
        )
        return bool(cur.rowcount)

    def get(self, tenant: str, key: str) -> Record | None:
        row = self._execute(f"SELECT record FROM {self.table} WHERE id = ? AND tenant = ?", (key, tenant)).fetchone()
        return json.loads(row[0]) if row else None

    def get_many(self, tenant: str, keys: Iterable[str]) -> dict[str, Record]:
        wanted = list(dict.fromkeys(keys))
        marks = ",".join("?" * len(wanted))
        rows = self._execute(
            f"SELECT id, record FROM {self.table} WHERE tenant = ? AND id IN ({marks})", (tenant, *wanted)
        ).fetchall()
        return {key: json.loads(record) for key, record in rows}

    def page(self, tenant: str, offset: int, limit: int) -> tuple[list[Record], int]:
        """A tenant's records, newest first, from `offset`; and how many it has."""
        rows = self._execute(
            f"SELECT record FROM {self.table} WHERE tenant = ? ORDER BY created DESC, id LIMIT ? OFFSET ?",
            (tenant, limit, offset),
        ).fetchall()
        total = self._execute(f"SELECT count(*) FROM {self.table} WHERE tenant = ?", (tenant,)).fetchone()[0]
        return [json.loads(r[0]) for r in rows], int(total)

    def delete(self, tenant: str, key: str) -> None:
        self._execute(f"DELETE FROM {self.table} WHERE id = ? AND tenant = ?", (key, tenant))

    def prune(self) -> None:
        self._execute(f"DELETE FROM {self.table} WHERE created < ?", (time.time() - self.keep_seconds,))
        self._execute(
            f"DELETE FROM {self.table} WHERE id NOT IN (SELECT id FROM {self.table} ORDER BY created DESC LIMIT ?)",
            (self.keep_rows,),
        )

    def unfinished(self) -> list[tuple[str, str, Record]]:
        """(tenant, id, record) of every submission not finished yet."""
        rows = self._execute(f"SELECT tenant, id, record FROM {self.table} WHERE state != 'finished'").fetchall()
        return [(tenant, key, json.loads(record)) for tenant, key, record in rows]

    def fail_unfinished(self, failed: Callable[[Record, str, str | None], Record], message: str) -> int:
        """At an embedded node's start: what was queued or running when it stopped will not run (module doc)."""
        left = self.unfinished()
        for tenant, key, record in left:
            self.put(tenant, key, "finished", failed(record, message, None))
        return len(left)


@dataclass(frozen=True)
class Form:
    """How a surface writes its records: when a run starts, when it has finished (the record, and the
    answer body Service.record logs), and when it could not run (`code`: the error's, if it has one)."""

    started: Callable[[Record], Record]
    finished: Callable[[Record, ExecutionResult, str], tuple[Record, dict[str, Any]]]
    failed: Callable[[Record, str, str | None], Record]


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _finished(record: Record, result: ExecutionResult, execution_id: str) -> tuple[Record, dict[str, Any]]:
    out = response_body(execution_id, result, record["_output_encoding"])
    if record["_collect"]:
        out.update(files_body(result.outputs))
    return {**record, "state": "finished", "finished_at": now(), "result": out}, out


def _failed(record: Record, message: str, code: str | None = None) -> Record:
    code = code or ("INTERNAL_ERROR" if message.startswith("internal error") else "INTERRUPTED")
    return {**record, "state": "finished", "finished_at": now(), "error": {"error": code, "message": message}}


# POST /v1/submissions' records (routes/submissions.py); a cluster's workers write them too (worker.py).
V1_FORM = Form(
    started=lambda record: {**record, "state": "running", "started_at": now()},
    finished=_finished,
    failed=_failed,
)


def shown(record: Record) -> Record:
    """A record as its reader sees it (fields starting with `_` are the node's own)."""
    return {k: v for k, v in record.items() if not k.startswith("_")}


def calling_back(store: SubmissionStore, deliveries: Deliveries) -> Callable[[str, str, Record], None]:
    """A Runner's `on_final` that POSTs a final record to its callback_url (webhooks.py) and saves what
    happened into the record's `callback`."""

    def call_back(tenant: str, key: str, record: Record) -> None:
        if (callback := record.get("callback")) is None:
            return

        def saved(outcome: dict[str, Any]) -> None:
            store.put(tenant, key, "finished", {**record, "callback": outcome})

        deliveries.send(callback["url"], tenant, shown(record), saved)

    return call_back


@dataclass
class Job:
    key: str
    caller: Caller
    plan: Plan
    hold: QuotaHold
    record: Record
    body: ExecuteIn | None = None  # what a cluster's worker plans again (cluster.py)


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
        on_final: Callable[[str, str, Record], None] | None = None,
    ) -> None:
        self.service = service
        self.store = store
        self.form = form
        self.queue_size = queue_size
        self.name = name
        self.on_final = on_final  # (tenant, id, record) of a final record, once stored (webhooks)
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

    async def enqueue(self, jobs: list[Job]) -> None:
        """submit(), as cluster.Clustered.enqueue is called: ApiError OVERLOADED when they do not fit."""
        try:
            self.submit(jobs)
        except QueueFull:
            self.service.reject("overloaded")
            raise ApiError("OVERLOADED", "the submission queue is full", retry_after=1) from None

    async def final(self, key: str, timeout: float, tenant: str) -> Record | None:
        """The record of submission `key` once final, or as it is after `timeout` seconds."""
        await self.finished(key, timeout)
        return self.store.get(tenant, key)

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
            self.fail(job, "the node shut down before this submission ran")

    async def _work(self) -> None:
        while True:
            job = await self.queue.get()
            self._since.pop(job.key, None)
            try:
                await self.execute(job)
            except SERVER_GONE as exc:  # nowhere to record its end: it stays as last stored
                self.service.internal_failure(f"{self.name} submission {job.key}: the store is unreachable:", exc)
            finally:
                self.queue.task_done()

    async def execute(self, job: Job) -> None:
        """Run one submission and record it; any failure ends as its recorded internal error, but for
        the store's server being unreachable (SERVER_GONE), raised: the caller decides (a worker retries)."""
        try:
            await self._run(job)
        except SERVER_GONE:
            raise
        except Exception as exc:  # a runner must outlive any one submission
            error_id = self.service.internal_failure(f"{self.name} submission failed:", exc)
            self.fail(job, f"internal error {error_id}")

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
            self.fail(job, "the node shut down before this submission ran")
            return
        place.who = job.caller  # its run's journal entry names who asked
        tenant = job.caller.tenant.id
        job.record = self.form.started(job.record)
        try:
            self.store.put(tenant, job.key, "running", job.record)
            async with self.service.admitted(place):
                result: ExecutionResult = await self.service.engine.run(job.plan)
        except ApiError as e:  # the node began to drain meanwhile
            self.fail(job, e.message)
            return
        finally:
            place.release()
        execution_id = uuid.uuid4().hex
        job.record, out = self.form.finished(job.record, result, execution_id)
        write = self.service.record(job.caller, job.plan, result, execution_id, out, {"submission": job.key})
        self._final(job)
        try:
            await self.service.write_audit(write)
        finally:
            job.hold.release()

    def fail(self, job: Job, message: str, code: str | None = None) -> None:
        job.record = self.form.failed(job.record, message, code)
        self._final(job)
        job.hold.release()

    def _final(self, job: Job) -> None:
        self.end(job.caller.tenant.id, job.key, job.record)

    def end(self, tenant: str, key: str, record: Record) -> None:
        """Store a submission's final record, once, and tell who waits for it (the webhook too)."""
        # A job run twice (a cluster's worker presumed dead while it was not) keeps its first result.
        if not self.store.finish(tenant, key, record):
            log.warning("submission %s was finished already: this run's result is not kept", key)
            return
        if (done := self._done.pop(key, None)) is not None:
            done.set()
        if self.on_final is not None:
            self.on_final(tenant, key, record)
