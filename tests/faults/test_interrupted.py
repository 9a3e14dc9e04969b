"""Nothing the service accepted goes unrecorded (issues 24 §1, 28 §1): kill -9 with runs in their boxes
and runs queued, then a restart; SIGTERM with a drain shorter than the runs. Against a real `stockade
serve` and its data dir; every accepted execution ends with exactly one signed record."""

from __future__ import annotations

import hashlib
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx

from tests.faults.helpers import HELLO, executions, post, report, sleeper, slots, verify, wait_until
from tests.service.live import LiveServer, live_server, metric

NOTHING_LEFT = {"processes": [], "cgroups": [], "box_dirs": []}


def pending(data_dir: Path) -> list[tuple[str, str]]:
    """(id, stage) of the runs journaled and not yet recorded, read-only beside the live server."""
    db = sqlite3.connect(f"file:{data_dir / 'stockade.db'}?mode=ro", uri=True)
    try:
        return [(r[0], r[1]) for r in db.execute("SELECT id, stage FROM runs_pending")]
    finally:
        db.close()


def code_sha256(body: dict[str, Any]) -> str:
    """The digest the audit record keeps of a request's code (audit.py: name NUL content)."""
    return hashlib.sha256(b"main.py\0" + body["code"].encode()).hexdigest()


def fill(server: LiveServer, running: list[dict[str, Any]], queued: list[dict[str, Any]]) -> list[Any]:
    """Start `running` in both slots (journaled at stage run), then `queued` behind them."""
    calls = [post(server.url, b) for b in running]
    wait_until("the runs in their boxes", lambda: [s for _, s in pending(server.data_dir)].count("run") == 2)
    calls += [post(server.url, b) for b in queued]
    wait_until("the runs queued behind them", lambda: slots(server)["waiting"] == len(queued))
    return calls


def test_kill9_with_runs_in_flight_and_queued_then_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    opts: dict[str, Any] = {"uid_base": 69000, "data_dir": data_dir, "slots": 2, "queue": 4}
    with live_server("fault-kill", **opts) as first:
        r = httpx.post(f"{first.url}/v1/execute", json=HELLO, timeout=60)
        assert r.status_code == 200 and r.json()["stdout"] == "hello\n", r.text
        bodies = [sleeper(60 + i) for i in range(4)]  # distinct code: each record names its request
        calls = fill(first, bodies[:2], bodies[2:])
        assert sorted(s for _, s in pending(data_dir)) == ["queued", "queued", "run", "run"]
        assert first.stop(signal.SIGKILL) == -signal.SIGKILL
        for call in calls:
            assert call.join().error is not None  # the clients lost their server

    with live_server("fault-kill", **opts) as second:
        assert second.leftovers() == NOTHING_LEFT
        text = httpx.get(f"{second.url}/metrics", timeout=10).text
        assert metric(text, "stockade_interrupted_total", reason="restart") == 4
        lines = [x for x in second.log_records() if "left unfinished" in x.get("message", "")]
        assert len(lines) == 1 and len(lines[0]["interrupted"]) == 4, second.log()[-3000:]
    assert pending(data_dir) == []

    verify(data_dir)
    recs = executions(data_dir)
    ids = [r["data"]["execution_id"] for r in recs]
    assert len(ids) == len(set(ids)) == 5  # the answered one and the four cut short: one record each
    assert recs[0]["data"]["verdict"] == "ok"
    cut = {r["data"]["code_sha256"]: r for r in recs[1:]}
    assert set(cut) == {code_sha256(b) for b in bodies}
    for i, body in enumerate(bodies):
        rec = cut[code_sha256(body)]
        data = rec["data"]
        assert data["status"] == data["verdict"] == "interrupted" and data["reason"] == "restart"
        assert data["stage"] == ("run" if i < 2 else "queued"), data  # how far it got
        assert rec["tenant"] == "local" and data["language"] == "python" and data["limits"]["run"]["wall_ms"]
        assert data["admitted_at"] <= rec["time"]


def test_sigterm_past_the_drain_deadline(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    drain = 8.0
    with live_server("fault-drain", uid_base=69100, data_dir=data_dir, slots=2, queue=4, drain_seconds=drain) as s:
        # `short` must still be running when SIGTERM comes (after fill, which waits on a loaded host) and
        # end within the drain: 2 s before its deadline leaves fill 6 s.
        short, long_ = sleeper(drain - 2), sleeper(60)
        calls = fill(s, [long_, short], [sleeper(61), sleeper(62)])
        keep_alive = httpx.Client(base_url=s.url, timeout=30)
        assert keep_alive.get("/healthz").status_code == 200  # a connection open before the signal

        s.proc.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        ready = httpx.get(f"{s.url}/readyz", timeout=10)
        assert ready.status_code == 503 and ready.json()["checks"]["accepting"] is False
        answers: list[str] = []
        for client in (keep_alive, httpx.Client(base_url=s.url, timeout=30)):
            r = client.post("/v1/execute", json=HELLO)
            assert r.status_code == 503 and r.json()["error"] == "OVERLOADED", r.text
            assert int(r.headers["Retry-After"]) > 0
            answers.append("503")
        for queued in calls[2:]:  # waiting for a slot: they will not start
            r = queued.join().response
            assert r is not None and r.status_code == 503 and r.json()["error"] == "OVERLOADED", r
            assert "Retry-After" in r.headers
        # New requests while the listener is open: only the typed 503, then no connection at all.
        while s.proc.poll() is None and time.monotonic() - t0 < drain + 30:
            try:
                r = httpx.post(f"{s.url}/v1/execute", json=HELLO, timeout=10)
            except httpx.TransportError:
                answers.append("no connection")
                time.sleep(0.05)
                continue
            assert r.status_code == 503 and r.json()["error"] == "OVERLOADED" and "Retry-After" in r.headers, r.text
            answers.append("503")
            time.sleep(0.05)

        finished = calls[1].join().response
        assert finished is not None and finished.status_code == 200 and finished.json()["stdout"] == "slept\n"
        stopped = calls[0].join().response
        assert stopped is not None and stopped.status_code == 503, stopped
        assert stopped.json()["error"] == "INTERRUPTED" and "Retry-After" in stopped.headers, stopped.text
        rc = s.stop(signal.SIGTERM, timeout=60)
        assert rc == 0, s.log()[-3000:]
        exit_s = time.monotonic() - t0
        assert "drain deadline passed" in s.log()
        assert "Traceback" not in s.log(), s.log()[-3000:]

    verify(data_dir)
    recs = executions(data_dir)
    by_code = {r["data"]["code_sha256"]: r["data"] for r in recs}
    assert by_code[code_sha256(short)]["verdict"] == "ok"
    stopped_rec = by_code[code_sha256(long_)]
    assert [stopped_rec[k] for k in ("status", "reason", "stage")] == ["interrupted", "drain_timeout", "run"]
    refused = [d for d in by_code.values() if d.get("reason") == "shutdown"]
    assert [d["stage"] for d in refused] == ["queued", "queued"]
    assert len(recs) == 4 and pending(data_dir) == []
    report(
        "drain",
        {
            "drain_seconds": drain,
            "sigterm_to_exit_s": round(exit_s, 2),
            "finished_in_drain": 1,
            "interrupted_at_deadline": 1,
            "queued_refused_503": 2,
            "new_requests_503": answers.count("503"),
            "new_requests_no_connection": answers.count("no connection"),
            "records": len(recs),
        },
    )
