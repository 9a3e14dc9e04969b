"""A cluster on one machine for the tests: `stockade serve` API nodes and `stockade worker` processes on one
private PostgreSQL and one private Redis (tests/cluster/servers.py), each node with its own data dir, run dir,
uid range and cgroup, as tests/service/live.py gives a single node."""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests import residue
from tests.cluster.servers import PostgresServer, RedisServer
from tests.service.live import STOCKADE, LiveServer, live_server, processes_of

START_TIMEOUT_S = 60.0


@dataclass
class Cluster:
    """Where a test's cluster keeps its state: the store, the queue, the key every node signs with."""

    root: Path
    database_url: str
    redis_url: str
    redis: RedisServer | None = None  # the fault tests stop and start them
    postgres: PostgresServer | None = None

    @property
    def keys_dir(self) -> Path:
        return self.root / "keys"  # the data dir the operator commands and the signing key come from

    def data_dir(self, name: str) -> Path:
        """A node's data dir, with the cluster's one audit signing key (docs/cluster.md)."""
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        for key in [*self.keys_dir.glob("audit-signing-key.pem*"), *self.keys_dir.glob("webhook-key")]:
            shutil.copy2(key, path / key.name)
        return path

    def api(
        self,
        name: str,
        uid_base: int,
        *,
        embedded_worker: bool = False,
        slots: int = 1,
        tenant_queue: int = 1000,
        webhook_allow: str = "",
    ) -> Any:
        extra = ["--database-url", self.database_url, "--redis-url", self.redis_url, "--node-id", name,
                 "--tenant-queue", str(tenant_queue)]  # fmt: skip
        extra += ["--webhook-allow", webhook_allow] if webhook_allow else []
        extra += ["--embedded-worker"] if embedded_worker else []
        return live_server(name, uid_base=uid_base, data_dir=self.data_dir(name), slots=slots, extra=extra)

    def worker(self, name: str, uid_base: int, *, slots: int = 1) -> Worker:
        return Worker.start(self, name, uid_base, slots)


@dataclass
class Worker:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    uid_base: int
    slots: int

    @classmethod
    def start(cls, cluster: Cluster, name: str, uid_base: int, slots: int, webhook_allow: str = "") -> Worker:
        data_dir = cluster.data_dir(name)
        run_dir, cgroup = Path(f"/run/stockade-t-{name}"), f"stockade-t-{name}"
        log_path = data_dir.with_name(name + ".worker.log")
        offset = log_path.stat().st_size if log_path.exists() else 0  # a restart appends to its log
        argv = [
            STOCKADE, "worker", "--data-dir", str(data_dir), "--database-url", cluster.database_url,
            "--redis-url", cluster.redis_url, "--node-id", name, "--slots", str(slots),
            "--run-dir", str(run_dir), "--uid-base", str(uid_base), "--cgroup-name", cgroup, "--drain-seconds", "15",
            *(["--webhook-allow", webhook_allow] if webhook_allow else []),
        ]  # fmt: skip
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        residue.track(run_dir, cgroup, pid=proc.pid)
        worker = cls(name, proc, log_path, uid_base, slots)
        worker.wait_taking(offset)
        return worker

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_taking(self, offset: int) -> None:
        """Until the worker says (in its log past `offset`) that it takes jobs: it has joined the group."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while "taking jobs" not in self.log()[offset:]:
            assert self.proc.poll() is None, f"worker {self.name} exited {self.proc.returncode}:\n{self.log()[-4000:]}"
            assert time.monotonic() < deadline, f"worker {self.name} not taking jobs:\n{self.log()[-4000:]}"
            time.sleep(0.05)

    @property
    def uids(self) -> range:
        return range(self.uid_base, self.uid_base + self.slots)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(60)

    def box_processes(self) -> list[str]:
        return processes_of(self.uids)


@contextlib.contextmanager
def running(worker: Worker) -> Iterator[Worker]:
    """The worker, stopped with SIGTERM at the end (it must exit 0)."""
    try:
        yield worker
    finally:
        if worker.proc.poll() is None:
            rc = worker.stop()
            assert rc == 0, f"worker {worker.name} exited {rc}:\n{worker.log()[-4000:]}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def submit(node: LiveServer, token: str, bodies: list[dict[str, Any]]) -> list[str]:
    r = httpx.post(f"{node.url}/v1/submissions", json={"submissions": bodies}, headers=bearer(token), timeout=60)
    assert r.status_code == 202, r.text
    return [s["id"] for s in r.json()["submissions"]]


def read(node: LiveServer, token: str, ids: list[str]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for i in range(0, len(ids), 100):
        r = httpx.get(f"{node.url}/v1/submissions", params={"ids": ",".join(ids[i : i + 100])},
                      headers=bearer(token), timeout=60)  # fmt: skip
        assert r.status_code == 200, r.text
        found += r.json()["submissions"]
    return found


def wait_finished(node: LiveServer, token: str, ids: list[str], deadline_s: float = 300) -> list[dict[str, Any]]:
    """The records of `ids` once every one is finished (polled, against a generous deadline)."""
    end = time.monotonic() + deadline_s
    while True:
        records = read(node, token, ids)
        if all(r.get("state") == "finished" for r in records):
            return records
        left = [r["id"] for r in records if r.get("state") != "finished"]
        assert time.monotonic() < end, f"{len(left)} not finished after {deadline_s} s: {left[:5]}"
        time.sleep(0.2)
