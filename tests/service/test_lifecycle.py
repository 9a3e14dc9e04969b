"""Process lifecycle of `stockade serve`: SIGTERM drains, kill -9 is reaped by the next start, and a
non-loopback bind needs API keys."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests import residue
from tests.service.live import LiveServer, live_server, make_key, start_server

HELLO = {"language": "python", "code": "print('hello')"}
NOTHING_LEFT = {"processes": [], "cgroups": [], "box_dirs": []}


def _wait_running(server: LiveServer, timeout: float = 60) -> None:
    """Until a box of the server is running (open mode: diagnostics needs no key)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        d = httpx.get(f"{server.url}/v1/diagnostics", timeout=10).json()
        if d["slots"]["in_use"] >= 1 and server.leftovers()["processes"]:
            return
        time.sleep(0.05)
    raise AssertionError("the program never started running")


def _post_in_thread(url: str, body: dict[str, Any]) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def go() -> None:
        try:
            outcome["response"] = httpx.post(f"{url}/v1/execute", json=body, timeout=120)
        except httpx.HTTPError as e:
            outcome["error"] = e

    t = threading.Thread(target=go, daemon=True)
    t.start()
    return t, outcome


def test_sigterm_drains_in_flight_then_exits_0(tmp_path: Path) -> None:
    with live_server("life-drain", uid_base=66400, data_dir=tmp_path / "data", drain_seconds=20) as server:
        code = "import time\ntime.sleep(2)\nprint('drained')"
        thread, outcome = _post_in_thread(server.url, {"language": "python", "code": code})
        _wait_running(server)
        assert server.box_cgroups() and server.box_dirs()  # the probes see a running box

        server.proc.send_signal(signal.SIGTERM)
        t_term = time.monotonic()
        # New requests during the drain are refused: 503 while the socket is still open, then no connection.
        attempts: list[str] = []
        while server.proc.poll() is None and time.monotonic() - t_term < 1.5:
            try:
                r = httpx.post(f"{server.url}/v1/execute", json=HELLO, timeout=10)
                assert r.status_code == 503, r.text
                assert r.json()["error"] == "OVERLOADED" and "Retry-After" in r.headers
                attempts.append("503")
            except httpx.TransportError as e:
                attempts.append(type(e).__name__)
            time.sleep(0.1)
        assert attempts, "no request was tried during the drain"

        thread.join(60)
        assert "error" not in outcome, outcome
        r = outcome["response"]
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "ok" and r.json()["stdout"] == "drained\n"

        rc = server.stop(signal.SIGTERM, timeout=60)
        assert server.leftovers() == NOTHING_LEFT
        assert rc == 0, f"stockade serve exited {rc} on SIGTERM (want 0):\n{server.log()[-2000:]}"


def test_kill9_mid_run_then_restart_reaps(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    opts: dict[str, Any] = {"uid_base": 66500, "data_dir": data_dir, "slots": 1}
    with live_server("life-kill", **opts) as first:
        code = "import time\ntime.sleep(60)"
        thread, outcome = _post_in_thread(
            first.url, {"language": "python", "code": code, "limits": {"wall_ms": 90_000}}
        )
        _wait_running(first)
        assert first.stop(signal.SIGKILL) == -signal.SIGKILL
        thread.join(30)
        assert "error" in outcome  # the client lost its server
        left = first.leftovers()
        assert left["cgroups"] and left["box_dirs"], left  # the supervisor died; the box did not

    with live_server("life-kill", **opts) as second:
        assert second.leftovers() == NOTHING_LEFT
        assert "reaped" in second.log()
        r = httpx.post(f"{second.url}/v1/execute", json=HELLO, timeout=60)
        assert r.json()["stdout"] == "hello\n"
        assert second.leftovers() == NOTHING_LEFT


def test_non_loopback_bind_needs_keys(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    refused = start_server("life-bind", uid_base=66600, data_dir=data_dir, host="0.0.0.0", wait=False)
    rc = refused.proc.wait(60)
    refused.stopped = True
    assert rc != 0
    log = refused.log()
    assert "API key" in log and "Traceback" not in log, log  # one plain line naming the cause

    key = make_key(data_dir, "acme")
    with live_server("life-bind", uid_base=66600, data_dir=data_dir, host="0.0.0.0") as server:
        r = httpx.post(f"{server.url}/v1/execute", json=HELLO, timeout=60)
        assert r.status_code == 401 and r.json()["error"] == "UNAUTHENTICATED"
        r = httpx.post(f"{server.url}/v1/execute", json=HELLO, headers={"Authorization": f"Bearer {key}"}, timeout=60)
        assert r.status_code == 200 and r.json()["stdout"] == "hello\n"
        d = httpx.get(f"{server.url}/v1/diagnostics", headers={"Authorization": f"Bearer {key}"}, timeout=10)
        assert d.status_code == 403  # acme is no admin tenant


LIFESPAN_SCRIPT = """
import asyncio, sys
from pathlib import Path
from stockade.sandbox import SandboxConfig
from stockade.service.app import Service, create_app
from stockade.service.config import ServiceConfig

async def main() -> None:
    sandbox = SandboxConfig(run_dir=Path("/run/stockade-t-life-span"), slots=1, uid_base=66650,
                            cgroup_name="stockade-t-life-span")
    app = create_app(service=Service(ServiceConfig(data_dir=Path(sys.argv[1]), sandbox=sandbox)))
    async with app.router.lifespan_context(app):
        await asyncio.sleep(0.2)  # toolchain detection has started, and has not finished
    left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    print("LEFT", len(left), sorted({t.get_coro().__qualname__ for t in left}), flush=True)
    for t in left:
        t.cancel()
    if left:
        await asyncio.wait(left, timeout=20)

asyncio.run(main())
"""


def test_lifespan_shutdown_leaves_no_tasks(tmp_path: Path) -> None:
    """After the app's lifespan ends (shutdown), none of its tasks may still run: leftover toolchain probes
    outlive the service and can hang the event loop's teardown. In a subprocess, so a hang stays contained."""
    residue.track(Path("/run/stockade-t-life-span"), "stockade-t-life-span")
    proc = subprocess.run(
        [sys.executable, "-c", LIFESPAN_SCRIPT, str(tmp_path / "data")], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("LEFT"))
    assert line.startswith("LEFT 0 "), f"tasks still running after the lifespan ended: {line}"


FREEZE_SCRIPT = """
import asyncio, gc, sys
from pathlib import Path
from stockade.runtimes.registry import Registry
from stockade.sandbox import SandboxConfig
from stockade.service.app import Service, create_app
from stockade.service.config import ServiceConfig

async def main() -> None:
    sandbox = SandboxConfig(run_dir=Path("/run/stockade-t-life-gc"), slots=1, uid_base=66660,
                            cgroup_name="stockade-t-life-gc")
    service = Service(ServiceConfig(data_dir=Path(sys.argv[1]), sandbox=sandbox),
                      registry=Registry([Registry.default().get("python")]))
    app = create_app(service=service)
    before = gc.get_freeze_count()
    async with app.router.lifespan_context(app):
        await service.registry.detect_all()
        await asyncio.sleep(0.1)  # the detection task's done callbacks run
        print("FROZEN", before, gc.get_freeze_count(), flush=True)

asyncio.run(main())
"""


def test_the_start_up_heap_is_left_out_of_garbage_collection(tmp_path: Path) -> None:
    """Once detection is done, what start-up built is frozen: a full collection walking it stopped the event
    loop for 40-90 ms under load (docs/benchmarks.md, "Readings")."""
    residue.track(Path("/run/stockade-t-life-gc"), "stockade-t-life-gc")
    proc = subprocess.run(
        [sys.executable, "-c", FREEZE_SCRIPT, str(tmp_path / "data")], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, before, after = next(x for x in proc.stdout.splitlines() if x.startswith("FROZEN")).split()
    assert int(before) == 0 and int(after) > 20_000, (before, after)  # FastAPI, pydantic, the registry
