"""A real `stockade serve` subprocess for service tests, and probes of what it leaves on the host.

Each server gets its own loopback port, data dir, run dir, uid range and cgroup name, so test modules
never share a box resource with each other or with the sandbox, engine and conformance suites.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests import residue

STOCKADE = str(Path(sys.executable).with_name("stockade"))
CGROUP_ROOT = Path("/sys/fs/cgroup")
START_TIMEOUT_S = 60.0


def metric(text: str, name: str, **labels: str) -> float:
    """Sum of the samples `name` with these labels in a Prometheus text exposition (0 when absent)."""
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(*args: str, data_dir: Path, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run `stockade <args> --data-dir <data_dir>`."""
    proc = subprocess.run(
        [STOCKADE, *args, "--data-dir", str(data_dir)], capture_output=True, text=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"stockade {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def cli_json(*args: str, data_dir: Path) -> Any:
    return json.loads(cli(*args, data_dir=data_dir).stdout)


def make_key(data_dir: Path, tenant: str, *, create: bool = True, **tenant_opts: Any) -> str:
    """Create `tenant` (with --option value for each keyword) and an API key for it; returns the key."""
    if create:
        opts: list[str] = []
        for k, v in tenant_opts.items():
            opts += [f"--{k.replace('_', '-')}", str(v)]
        cli("tenants", "create", tenant, *opts, data_dir=data_dir)
    return str(cli_json("keys", "create", tenant, data_dir=data_dir)["api_key"])


def processes_of(uids: range) -> list[str]:
    """`pid [uids]` of every live process whose real, effective, saved or fs uid is in `uids` (zombies
    are dead and excluded: the host's init reaps them)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        state = uid_line = ""
        for line in status.splitlines():
            if line.startswith("State:"):
                state = line.split()[1]
            elif line.startswith("Uid:"):
                uid_line = line
        if state in ("Z", "X") or not uid_line:
            continue
        ids = [int(x) for x in uid_line.split()[1:]]
        if any(i in uids for i in ids):
            found.append(f"{entry} {ids}")
    return found


def cgroup_parents(cgroup_name: str, max_depth: int = 4) -> list[Path]:
    """Every directory named `cgroup_name` under /sys/fs/cgroup/<hierarchy>/ (a few levels deep: on v1
    the memory hierarchy may nest the service below its own session's cgroup)."""
    found: list[Path] = []
    if not CGROUP_ROOT.is_dir():
        return found
    for top, dirs, _files in os.walk(CGROUP_ROOT):
        depth = len(Path(top).relative_to(CGROUP_ROOT).parts)
        if Path(top).name == cgroup_name:
            found.append(Path(top))
            dirs[:] = []
            continue
        if depth >= max_depth:
            dirs[:] = []
        else:
            dirs[:] = [d for d in dirs if not d.startswith("box-")]
    return sorted(found)


@dataclass
class LiveServer:
    name: str
    url: str
    host: str
    port: int
    proc: subprocess.Popen[bytes]
    data_dir: Path
    run_dir: Path
    cgroup_name: str
    uid_base: int
    slots: int
    log_path: Path
    stopped: bool = field(default=False)

    def __str__(self) -> str:
        return self.url

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def uids(self) -> range:
        return range(self.uid_base, self.uid_base + self.slots)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_records(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log().splitlines():
            with contextlib.suppress(ValueError):
                rec = json.loads(line)
                if isinstance(rec, dict):
                    out.append(rec)
        return out

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Send `sig` and wait for the exit; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError(f"server {self.name} did not exit within {timeout}s of signal {sig}") from None
        self.stopped = True
        return rc

    def box_cgroups(self) -> list[Path]:
        return [p for parent in cgroup_parents(self.cgroup_name) for p in parent.iterdir() if p.name.startswith("box-")]

    def box_dirs(self) -> list[Path]:
        boxes = self.run_dir / "boxes"
        return sorted(boxes.iterdir()) if boxes.is_dir() else []

    def ready_boxes(self) -> set[str]:
        """Ids of the boxes a running open-mode server has built ahead (they are meant to exist)."""
        if self.stopped or self.proc.poll() is not None:
            return set()
        r = httpx.get(f"{self.url}/v1/diagnostics", timeout=10)
        assert r.status_code == 200, r.text
        return set(r.json()["slots"]["ready"])

    def leftovers(self) -> dict[str, list[str]]:
        """Whatever of a box survives: processes of the slot uids, box cgroups, box dirs (all empty when
        clean), beside the boxes the server has built ahead for its next runs."""
        ready = self.ready_boxes()

        def ours(text: str) -> bool:
            return any(f"box-{b}" in text or text.endswith(f"/{b}") for b in ready)

        processes = []
        for p in processes_of(self.uids):
            try:
                cgroup = Path(f"/proc/{p.split()[0]}/cgroup").read_text()
            except OSError:
                continue  # gone meanwhile
            if not ours(cgroup):
                processes.append(p)
        return {
            "processes": processes,
            "cgroups": [str(p) for p in self.box_cgroups() if not ours(str(p))],
            "box_dirs": [str(p) for p in self.box_dirs() if not ours(str(p))],
        }


def wait_ready(url: str, proc: subprocess.Popen[bytes], log_path: Path, timeout: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited {proc.returncode} before ready:\n{log_path.read_text()[-4000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    proc.kill()
    proc.wait(10)
    raise AssertionError(f"server not ready within {timeout}s:\n{log_path.read_text()[-4000:]}")


def start_server(
    name: str,
    *,
    uid_base: int,
    data_dir: Path,
    slots: int = 2,
    queue: int = 8,
    host: str = "127.0.0.1",
    port: int | None = None,
    drain_seconds: float = 15.0,
    extra: Sequence[str] = (),
    wait: bool = True,
) -> LiveServer:
    port = port or free_port()
    run_dir = Path(f"/run/stockade-t-{name}")
    cgroup_name = f"stockade-t-{name}"
    log_path = data_dir.with_name(data_dir.name + f".{port}.log")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    argv = [
        STOCKADE, "serve",
        "--host", host, "--port", str(port),
        "--data-dir", str(data_dir),
        "--slots", str(slots), "--queue", str(queue),
        "--run-dir", str(run_dir), "--uid-base", str(uid_base), "--cgroup-name", cgroup_name,
        "--drain-seconds", str(drain_seconds),
        *extra,
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKADE_")}
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    residue.track(run_dir, cgroup_name, pid=proc.pid)  # removed once the server has gone (tests/conftest.py)
    url = f"http://127.0.0.1:{port}"
    server = LiveServer(name, url, host, port, proc, data_dir, run_dir, cgroup_name, uid_base, slots, log_path)
    if wait:
        wait_ready(url, proc, log_path)
    return server


@contextlib.contextmanager
def live_server(name: str, *, uid_base: int, data_dir: Path, **kwargs: Any) -> Iterator[LiveServer]:
    """A ready server; on exit SIGTERM it (unless the test already stopped it) and assert it exited 0."""
    server = start_server(name, uid_base=uid_base, data_dir=data_dir, **kwargs)
    try:
        yield server
    finally:
        if not server.stopped:
            rc = server.stop(signal.SIGTERM)
            # Exit status 0 on SIGTERM is asserted by test_lifecycle; here only that it exited by itself.
            assert rc in (0, -signal.SIGTERM), f"server {name} exited {rc} on SIGTERM:\n{server.log()[-4000:]}"
