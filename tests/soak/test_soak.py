"""Soak and fault suite: `make soak` runs it; `make test` leaves it out (marked slow).

STOCKADE_SOAK_N mixed executions (default 5000) go through a real `stockade serve` at concurrency twice its
slots (STOCKADE_SOAK_SLOTS, default the host's cores): benign programs, stdin, a runtime error, CPU and wall
timeouts, memory and fork bombs, output floods, compile errors (tests/soak/programs.py). Then every verdict
must be the expected one and the same for every run of one program; nothing of a box may be left (process,
cgroup, mount, box dir, toolchain probe dir); the service's descriptors must be back to their count before the
soak and its RSS within 20 MB of it. Then kill -9 with runs in flight: a restart on the same data dir reaps
what the dead service left, is ready, and its audit trail verifies and holds every answered execution once.

The figures are printed (pytest -s) and written as JSON to STOCKADE_SOAK_REPORT when set.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import signal
import statistics
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.service.live import LiveServer, cli, live_server, processes_of
from tests.soak.programs import PROGRAMS, Program, schedule

pytestmark = pytest.mark.slow

N = int(os.environ.get("STOCKADE_SOAK_N", "5000"))
SLOTS = int(os.environ.get("STOCKADE_SOAK_SLOTS", str(os.cpu_count() or 2)))
CONCURRENCY = 2 * SLOTS
UID_BASE = 68000  # 68000 up to 68000 + slots: this suite's own slot uids
NAME = "soak"
RSS_GROWTH_MAX_KB = 20 * 1024
NOTHING_LEFT = {"processes": [], "cgroups": [], "box_dirs": []}
HELLO = {"language": "python", "code": "print('hello')"}


@dataclass
class Outcome:
    program: Program
    http_status: int
    result: dict[str, Any]
    seconds: float


@dataclass
class Soak:
    server: LiveServer
    data_dir: Path
    answered: dict[str, str] = field(default_factory=dict)  # execution id -> verdict
    figures: dict[str, Any] = field(default_factory=dict)


def report(figures: dict[str, Any]) -> None:
    print("\nsoak figures:", json.dumps(figures, indent=1, sort_keys=True))
    if path := os.environ.get("STOCKADE_SOAK_REPORT"):
        Path(path).write_text(json.dumps(figures, indent=1, sort_keys=True) + "\n")


@pytest.fixture(scope="module")
def soak(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Soak]:
    data_dir = tmp_path_factory.mktemp("soak") / "data"
    queue = max(8, CONCURRENCY)
    with live_server(NAME, uid_base=UID_BASE, data_dir=data_dir, slots=SLOTS, queue=queue) as server:
        httpx.get(f"{server.url}/v1/runtimes", timeout=300)  # waits for the start-up toolchain detection
        state = Soak(server, data_dir)
        yield state
    report(state.figures)


def signature(result: dict[str, Any]) -> tuple[Any, ...]:
    """What must be the same for every run of one program."""
    compile_status = result["compile"]["status"] if result.get("compile") else None
    digest = {k: hashlib.sha256(str(result.get(k)).encode()).hexdigest()[:16] for k in ("stdout", "stderr")}
    return (
        result.get("status"), result.get("timeout_kind"), result.get("exit_code"), result.get("signal"),
        digest["stdout"], digest["stderr"], result.get("stdout_truncated"), compile_status,
    )  # fmt: skip


def problem(o: Outcome) -> str | None:
    """Why this outcome is not the one its program must get, or None."""
    if o.http_status != 200:
        return f"{o.program.name}: HTTP {o.http_status} {o.result}"
    wrong = {k: o.result.get(k) for k, v in o.program.expect.items() if o.result.get(k) != v}
    if o.program.stdout_bytes is not None and len(o.result.get("stdout", "")) != o.program.stdout_bytes:
        wrong["len(stdout)"] = len(o.result.get("stdout", ""))
    return f"{o.program.name}: {wrong} (want {o.program.expect})" if wrong else None


async def run_mix(url: str, programs: list[Program], concurrency: int) -> list[Outcome]:
    """Every program once, `concurrency` requests in flight at all times, on keep-alive connections."""
    outcomes: list[Outcome] = []
    todo = iter(programs)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=180, limits=limits) as client:

        async def worker() -> None:
            for program in todo:
                t0 = time.monotonic()
                r = await client.post("/v1/execute", json=program.body())
                outcomes.append(Outcome(program, r.status_code, r.json(), time.monotonic() - t0))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return outcomes


def diagnostics(server: LiveServer) -> dict[str, Any]:
    r = httpx.get(f"{server.url}/v1/diagnostics", timeout=30)
    assert r.status_code == 200, r.text
    return dict(r.json())


def wait_idle(server: LiveServer, timeout: float = 120) -> dict[str, Any]:
    """Until nothing runs, nothing is being recorded and every slot has its next box built."""
    deadline = time.monotonic() + timeout
    while True:
        d = diagnostics(server)
        slots, admission = d["slots"], d["admission"]
        busy = slots["in_use"] or admission["in_flight"] or admission["recording"]
        if not busy and len(slots["ready"]) == slots["total"] - len(slots["quarantined"]):
            return d
        assert time.monotonic() < deadline, f"the service never became idle: {d}"
        time.sleep(0.1)


def fd_count(server: LiveServer) -> int:
    return len(os.listdir(f"/proc/{server.pid}/fd"))


def fd_kinds(server: LiveServer) -> Counter[str]:
    """The service's descriptors by what they are: a path (box ids as box-*), or socket, pipe, anon_inode:..."""
    kinds: Counter[str] = Counter()
    for fd in os.listdir(f"/proc/{server.pid}/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{server.pid}/fd/{fd}").split(":[")[0]
            kinds[re.sub(r"/box-[0-9a-f]+/", "/box-*/", target)] += 1
    return kinds


def fd_growth(server: LiveServer, before: Counter[str], after: Counter[str]) -> Counter[str]:
    """New descriptors, less the store's: each worker thread opens its own SQLite connection to
    stockade.db when it first writes a record (database and WAL), so those grow with the threads used, up
    to the pool's size. The data dir's other databases (judge0.db, submissions.db, ...) hold one
    connection each for the node's life: those do not grow at all."""
    store = str(server.data_dir / "stockade.db")
    threads = int(next(x for x in Path(f"/proc/{server.pid}/status").read_text().splitlines()
                       if x.startswith("Threads:")).split()[1])  # fmt: skip
    assert sum(n for k, n in after.items() if k.startswith(store)) <= 2 * threads + 2, after
    return Counter({k: n for k, n in (after - before).items() if not k.startswith(store)})


def open_connections(server: LiveServer) -> int:
    """The service's TCP connections not closed on its side yet (established, or closed by the client only)."""
    port = f"{server.port:04X}"
    n = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            n += local.endswith(f":{port}") and state in ("01", "08")  # ESTABLISHED, CLOSE_WAIT
    return n


def wait_connections_closed(server: LiveServer, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while open_connections(server):
        assert time.monotonic() < deadline, "the service kept connections its client had closed"
        time.sleep(0.05)


def mounts_under(path: Path) -> list[str]:
    prefix = f"{path}/"
    return sorted(line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
                  if line.split()[4].startswith(prefix))  # fmt: skip


def stray_mounts(server: LiveServer, ready: list[str]) -> list[str]:
    """Mounts of box dirs other than the boxes built ahead (the read-only roots are the sandbox's own)."""
    boxes = server.run_dir / "boxes"
    return [m for m in mounts_under(boxes) if not any(m.startswith(f"{boxes}/{b}") for b in ready)]


def probe_dirs(pid: int) -> list[str]:
    return sorted(str(p) for p in Path(tempfile.gettempdir()).glob(f"stockade-detect-{pid}-*"))


def host_state(server: LiveServer) -> dict[str, Any]:
    ready = wait_idle(server)["slots"]["ready"]
    wait_connections_closed(server)  # the descriptors first, with no request open
    return {
        "rss_kb": server.rss_kb(),
        "fds": fd_count(server),
        "fd_kinds": fd_kinds(server),
        "roots": mounts_under(server.run_dir / "roots"),
        "stray_mounts": stray_mounts(server, ready),
        "leftovers": server.leftovers(),
        "probe_dirs": probe_dirs(server.pid),
    }


def summarize(outcomes: list[Outcome], seconds: float) -> dict[str, Any]:
    by_program: dict[str, list[float]] = defaultdict(list)
    for o in outcomes:
        by_program[o.program.name].append(o.seconds * 1000)
    return {
        "executions": len(outcomes),
        "seconds": round(seconds, 1),
        "per_second": round(len(outcomes) / seconds, 1),
        "verdicts": dict(Counter(str(o.result.get("status", o.http_status)) for o in outcomes)),
        "p50_ms": {name: round(statistics.median(v), 1) for name, v in sorted(by_program.items())},
    }


def test_soak_mixed_executions(soak: Soak) -> None:
    server = soak.server
    # Warm-up: every program twice, then a share of the mix, so lazily built state is in the baseline.
    warm = asyncio.run(run_mix(server.url, PROGRAMS * 2 + schedule(max(0, N // 20), seed=7), CONCURRENCY))
    assert [p for o in warm if (p := problem(o))] == []
    before = host_state(server)

    t0 = time.monotonic()
    outcomes = asyncio.run(run_mix(server.url, schedule(N), CONCURRENCY))
    elapsed = time.monotonic() - t0
    after = host_state(server)
    soak.answered.update({o.result["execution_id"]: o.result["status"] for o in warm + outcomes})
    soak.figures.update(
        n=N, slots=SLOTS, concurrency=CONCURRENCY, **summarize(outcomes, elapsed),
        rss_kb={"before": before["rss_kb"], "after": after["rss_kb"]},
        fds={"before": before["fds"], "after": after["fds"]},
    )  # fmt: skip

    assert len(outcomes) == N
    wrong = [p for o in outcomes if (p := problem(o))]
    assert wrong == [], f"{len(wrong)} unexpected verdicts, first ones: {wrong[:10]}"
    signatures: dict[str, set[tuple[Any, ...]]] = defaultdict(set)
    for o in outcomes:
        signatures[o.program.name].add(signature(o.result))
    assert {k: v for k, v in signatures.items() if len(v) > 1} == {}, "one program, different results"
    assert after["leftovers"] == NOTHING_LEFT
    assert after["stray_mounts"] == []
    assert after["roots"] == before["roots"]  # one read-only root, prepared at start, and no other
    assert after["probe_dirs"] == []
    assert fd_growth(server, before["fd_kinds"], after["fd_kinds"]) == Counter()
    growth = after["rss_kb"] - before["rss_kb"]
    assert growth < RSS_GROWTH_MAX_KB, f"RSS grew by {growth} kB over {N} executions"


def running_programs(server: LiveServer) -> list[str]:
    """Processes of the slot uids that are a Python program (not a box's own bubblewrap or init)."""
    out = []
    for p in processes_of(server.uids):
        pid = p.split()[0]
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/comm").read_text().strip().startswith("python"):
                out.append(p)
    return out


async def _hold_every_place(url: str, n: int) -> list[asyncio.Task[httpx.Response]]:
    body = {"language": "python", "code": "import time\ntime.sleep(60)", "limits": {"wall_ms": 90_000}}
    client = httpx.AsyncClient(base_url=url, timeout=180)
    return [asyncio.create_task(client.post("/v1/execute", json=body)) for _ in range(n)]


async def _kill_with_runs_in_flight(server: LiveServer) -> list[BaseException | httpx.Response]:
    """kill -9 once every slot runs a program and as many requests again wait in the queue."""
    tasks = await _hold_every_place(server.url, CONCURRENCY)
    deadline = time.monotonic() + 120
    while True:
        await asyncio.sleep(0.1)
        d = await asyncio.to_thread(diagnostics, server)
        held = d["slots"]["in_use"] == SLOTS and d["admission"]["in_flight"] == CONCURRENCY
        if held and len(running_programs(server)) == SLOTS:  # the programs themselves run
            break
        assert time.monotonic() < deadline, f"the runs never all started: {d}"
    assert server.stop(signal.SIGKILL) == -signal.SIGKILL
    return await asyncio.gather(*tasks, return_exceptions=True)


def test_kill9_with_runs_in_flight_then_restart(soak: Soak) -> None:
    first = soak.server
    answers = asyncio.run(_kill_with_runs_in_flight(first))
    assert all(isinstance(a, httpx.TransportError) for a in answers), answers  # no answer came
    deadline = time.monotonic() + 30
    while processes_of(first.uids) and time.monotonic() < deadline:  # the boxes die with their supervisor
        time.sleep(0.05)
    assert processes_of(first.uids) == []
    left = first.leftovers()
    assert left["cgroups"] and left["box_dirs"], left  # what the dead supervisor could not remove

    kwargs: dict[str, Any] = {"uid_base": UID_BASE, "data_dir": soak.data_dir, "slots": SLOTS}
    with live_server(NAME, **kwargs) as second:
        reaped = [r for r in second.log_records() if "reaped" in str(r.get("message", ""))]
        assert reaped, second.log()[-3000:]
        assert second.leftovers() == NOTHING_LEFT
        assert httpx.get(f"{second.url}/readyz", timeout=30).status_code == 200
        r = httpx.post(f"{second.url}/v1/execute", json=HELLO, timeout=120)
        assert r.status_code == 200 and r.json()["stdout"] == "hello\n", r.text
        verify = cli("audit", "verify", data_dir=soak.data_dir, timeout=600)
        report_ = json.loads(verify.stdout)
        assert report_["ok"] is True and report_["problems"] == [], report_
        exported = cli("audit", "export", data_dir=soak.data_dir, timeout=600).stdout
        records = [json.loads(line) for line in exported.splitlines() if line]
        recorded = Counter(r["data"].get("execution_id") for r in records if r["kind"] == "execution")
        verdicts = {r["data"]["execution_id"]: r["data"]["verdict"] for r in records if r["kind"] == "execution"}
        missing = [i for i in soak.answered if recorded[i] != 1 or verdicts[i] != soak.answered[i]]
        assert missing == [], f"{len(missing)} answered executions not recorded once with their verdict"
        rc = second.stop(signal.SIGTERM)
        assert rc == 0 and second.leftovers() == NOTHING_LEFT, (rc, second.log()[-3000:])
    soak.figures["restart"] = {
        "in_flight_killed": CONCURRENCY,
        "reaped_log": [r.get("message") for r in reaped],
        "audit_records": report_["count"],
        "answered_recorded": len(soak.answered),
    }
