"""What the fault tests share: requests held in threads, waiting on a server's real state, the audit
trail read back through the CLI, and the figures each test reports (docs/benchmarks.md, "Faults")."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.service.live import LiveServer, cli

HELLO = {"language": "python", "code": "print('hello')"}
REPORT_ENV = "STOCKADE_FAULTS_REPORT"


def sleeper(seconds: float) -> dict[str, Any]:
    """A run that takes `seconds` of wall time (and no CPU), with room under its wall limit."""
    code = f"import time\ntime.sleep({seconds})\nprint('slept')"
    return {"language": "python", "code": code, "limits": {"wall_ms": int(seconds * 1000) + 30_000}}


@dataclass
class Call:
    """One request sent from its own thread: its response, or the transport error it ended in."""

    body: dict[str, Any]
    thread: threading.Thread = field(init=False)
    response: httpx.Response | None = None
    error: BaseException | None = None

    def join(self, timeout: float = 120) -> Call:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the request never ended"
        return self


def post(url: str, body: dict[str, Any], path: str = "/v1/execute") -> Call:
    call = Call(body)

    def go() -> None:
        try:
            call.response = httpx.post(f"{url}{path}", json=body, timeout=180)
        except httpx.HTTPError as e:
            call.error = e

    call.thread = threading.Thread(target=go, daemon=True)
    call.thread.start()
    return call


def wait_until(what: str, check: Callable[[], bool], timeout: float = 60) -> None:
    """Poll a real condition of the server (never a fixed sleep standing in for one)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for: {what}")


def slots(server: LiveServer) -> dict[str, Any]:
    """/v1/diagnostics' slots of an open-mode server (no key needed)."""
    r = httpx.get(f"{server.url}/v1/diagnostics", timeout=30)
    assert r.status_code == 200, r.text
    return dict(r.json()["slots"])


def records(data_dir: Path) -> list[dict[str, Any]]:
    """The audit trail of `data_dir`, exported by the CLI."""
    out = cli("audit", "export", data_dir=data_dir).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def verify(data_dir: Path, *args: str) -> dict[str, Any]:
    """`stockade audit verify` must pass; its report."""
    proc = cli("audit", "verify", *args, data_dir=data_dir, check=False)
    assert proc.returncode == 0, f"audit verify failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return dict(json.loads(proc.stdout))


def executions(data_dir: Path) -> list[dict[str, Any]]:
    return [r for r in records(data_dir) if r["kind"] == "execution"]


def report(name: str, figures: dict[str, Any]) -> None:
    """Print a test's figures (pytest -s) and add them to $STOCKADE_FAULTS_REPORT (a JSON file) if set."""
    print(f"\nfaults/{name}: {json.dumps(figures, sort_keys=True)}")
    path = os.environ.get(REPORT_ENV)
    if path:
        p = Path(path)
        data = json.loads(p.read_text()) if p.exists() else {}
        data[name] = figures
        p.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
