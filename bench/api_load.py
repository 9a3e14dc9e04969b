"""End-to-end latency and throughput of the HTTP service, against bare `python3 -c` in the same process.

A real `stockade serve` is started on loopback (its own data dir, run dir, uids and cgroup). For each
concurrency level the same number of Python hello-world executions go through a bare asyncio
subprocess spawn, through POST /v1/execute on lean keep-alive connections (LeanClient), and through
POST /v1/execute with httpx, in blocks that take turns (paired()); the ratios use the lean client.
Then, with no service at all, the same hello world at concurrency = cores bare, through Sandbox.run in
this process, and in a minimal bubblewrap box (namespaces, /usr, /proc, /dev, /tmp; no cgroup,
seccomp, init or supervisor): what the box, and any bubblewrap box, costs before the service adds
anything. Then three longer, CPU-bound programs at concurrency = cores. Then rejections at steady saturation:
every place held by a long program, then single requests one after another, each of which must be
turned away. Then two overload curves, counting served and rejected requests and how
fast a rejection comes back: hello world arriving open-loop at multiples (--factors) of the throughput
measured at concurrency = cores, for 3 s each; and bursts of sleeping programs at multiples of
capacity, written at once on connections opened beforehand. First of all (alone with --compat-only),
hello world at concurrency 1 through /v1/execute, Judge0's POST /judge0/submissions?wait=true and
Piston's POST /api/v2/execute, taking turns (docs/compat.md). The module is over 500 lines: one
benchmark's stages, kept together so that one run measures them all on one host state.

The service gets as many slots as the host has cores and a queue large enough that the highest
concurrency level is admitted whole (default max(8, top level - slots)), so every level measures
executions, not rejections. Latency percentiles and throughput count successful (200) executions
only; any other status is counted per level and shown as errors.

    .venv/bin/python bench/api_load.py [--n 100] [--levels 1 2 4 8 16] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from stockade.sandbox import BoxSpec, SandboxConfig, Status
from stockade.sandbox.bwrap import HostLayout

sys.path.insert(0, str(Path(__file__).parent))
from _common import (
    LoadMeter,
    bare_env,
    fmt_ms,
    gc_paused,
    machine_info,
    ms_since,
    now_ns,
    print_load,
    print_machine,
    print_table,
    spawn_timed,
    start_sandbox,
    summarize,
    write_json,
)

HELLO = 'print("Hello, World!")'
# CPU-bound programs (~40, ~75 and ~150 ms bare on the development host, the interpreter's start
# included): how the throughput ratio grows once the program outweighs a box's fixed cost.
BUSY_LOOPS = (150_000, 450_000, 1_200_000)


def busy(loops: int) -> str:
    return f"s = 0\nfor i in range({loops}):\n    s += i\nprint(s)"


PY = "/usr/bin/python3"
STOCKADE = str(Path(sys.executable).with_name("stockade"))
SLEEPER = "import time; time.sleep(0.5)"
HOLDER = "import time; time.sleep(3)"  # holds a place through the steady-saturation probes
BLOCK_PAUSE_S = 0.1  # after each block of paired(): longer than a box's teardown and rebuild


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    data_dir: Path, slots: int, queue: int, args: argparse.Namespace
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            STOCKADE,
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            "--slots",
            str(slots),
            "--queue",
            str(queue),
            "--run-dir",
            args.run_dir,
            "--uid-base",
            str(args.uid_base),
            "--cgroup-name",
            args.cgroup_name,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    sys.exit("the service did not become ready")


async def api_call(client: httpx.AsyncClient, code: str) -> tuple[float, int]:
    t0 = now_ns()
    r = await client.post("/v1/execute", json={"language": "python", "code": code})
    return ms_since(t0), r.status_code


def execute_request(url: str, code: str, path: str = "/v1/execute", payload: dict[str, Any] | None = None) -> bytes:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    body = json.dumps(payload or {"language": "python", "code": code}).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class LeanClient:
    """Keep-alive HTTP/1.1 over raw asyncio streams, one connection per request in flight. The
    latency levels use it so that they measure the service, not the client: httpx spends ~5 ms of CPU
    per request on the same two cores (printed alongside for comparison)."""

    def __init__(self, url: str, code: str, path: str = "/v1/execute", payload: dict[str, Any] | None = None) -> None:
        self.host, port = url.removeprefix("http://").rsplit(":", 1)
        self.port = int(port)
        self.request = execute_request(url, code, path, payload)
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def call(self) -> tuple[float, int]:
        reused = bool(self.idle)
        conn = self.idle.pop() if reused else await asyncio.open_connection(self.host, self.port)
        t0 = now_ns()
        conn[1].write(self.request)
        try:
            _, status = await read_status(conn[0])
        except (IndexError, ConnectionError):
            # The server closed a connection idle past its keep-alive (5 s: other sides' blocks under
            # load): time the request again on a new one.
            if not reused:
                raise
            conn[1].close()
            conn = await asyncio.open_connection(self.host, self.port)
            t0 = now_ns()
            conn[1].write(self.request)
            _, status = await read_status(conn[0])
        ms = ms_since(t0)
        self.idle.append(conn)
        return ms, 200 if status == 201 else status  # Judge0 answers a submission with 201

    async def close(self) -> None:
        for _, writer in self.idle:
            writer.close()


# The compatible APIs' execute calls (docs/compat.md) for the same hello world.
COMPAT = {
    "judge0": ("/judge0/submissions?wait=true", {"language_id": 71, "source_code": HELLO}),
    "piston": ("/api/v2/execute", {"language": "python", "version": "*", "files": [{"content": HELLO}]}),
}


async def compat_at_one(url: str, n: int) -> dict[str, dict[str, Any]]:
    """Hello world at concurrency 1 through /v1/execute and each compatible API, taking turns."""
    clients = {"v1": LeanClient(url, HELLO), **{k: LeanClient(url, HELLO, p, b) for k, (p, b) in COMPAT.items()}}
    try:
        return await paired(n, 1, {k: c.call for k, c in clients.items()})
    finally:
        for c in clients.values():
            await c.close()


def print_compat(compat: dict[str, dict[str, Any]], n: int) -> None:
    base = compat["v1"]["latency"]["median"]
    print(f"\nCompatible APIs: hello world at concurrency 1, {n} executions each (ms)")
    print_table(
        ["api", "p50", "p95", "p50 - v1", "errors"],
        [[k, fmt_ms(v["latency"]["median"]), fmt_ms(v["latency"]["p95"]),
          f"{v['latency']['median'] - base:+.2f}", str(v["errors"])] for k, v in compat.items()],
    )  # fmt: skip


async def bare_call(home: str, code: str = HELLO) -> tuple[float, int]:
    s = await spawn_timed([PY, "-c", code], env=bare_env(home, home), cwd=home)
    return s.ms, 200 if s.returncode == 0 else 500


async def block(n: int, c: int, call: Any) -> tuple[list[float], Counter[int], float]:
    """n calls with c in flight at once: the successful ones' latencies, every status, the seconds taken."""
    sem = asyncio.Semaphore(c)
    lat: list[float] = []
    statuses: Counter[int] = Counter()

    async def one() -> None:
        async with sem:
            ms, status = await call()
            statuses[status] += 1
            if status == 200:
                lat.append(ms)

    t0 = now_ns()
    await asyncio.gather(*(one() for _ in range(n)))
    return lat, statuses, ms_since(t0) / 1000


async def paired(n: int, c: int, sides: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """n calls per side with c in flight, in blocks that take turns, the order reversed every round (A B,
    B A, ...): a host that slows down or speeds up over the run (by 3 ms of a 20 ms run between two
    halves, seen here) hits every side alike. Blocks are short (10 calls per place), so there are many
    turns, and each is followed by a pause, so what a side leaves running when its block ends (a box's
    teardown and rebuild, ~15 ms) does not spill into the next. Per side: latencies of the successful
    calls, and throughput = successes / time spent in its blocks."""
    size = min(n, 10 * c)
    lat: dict[str, list[float]] = {k: [] for k in sides}
    statuses: dict[str, Counter[int]] = {k: Counter() for k in sides}
    spent = dict.fromkeys(sides, 0.0)
    names = list(sides)
    done, rnd = 0, 0
    while done < n:
        m = min(size, n - done)
        for k in names if rnd % 2 == 0 else reversed(names):
            ms, st, s = await block(m, c, sides[k])
            lat[k] += ms
            statuses[k] += st
            spent[k] += s
            await asyncio.sleep(BLOCK_PAUSE_S)
        done, rnd = done + m, rnd + 1
    return {
        k: {
            "latency": summarize(lat[k]),
            "throughput_per_s": len(lat[k]) / spent[k],
            "errors": n - len(lat[k]),
            "statuses": dict(statuses[k]),
            "samples": lat[k],
        }
        for k in sides
    }


def minimal_bwrap(uid: int) -> list[str]:
    """The least a bubblewrap box can be: six namespaces, the host's /usr read-only, its own /proc, /dev
    and /tmp, as an unprivileged uid. No cgroup, seccomp, init, masks or supervisor: a floor, not a box."""
    layout = HostLayout.probe()
    a = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "bwrap"]
    a += ["--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup"]
    for d in layout.dirs:
        a += ["--ro-bind", d, d]
    for link, target in layout.symlinks.items():
        a += ["--symlink", target, link]
    return [*a, "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--", PY, "-c", HELLO]


async def box_alone(args: argparse.Namespace, slots: int, home: str) -> dict[str, dict[str, Any]]:
    """Python hello world at concurrency = cores, with no HTTP, engine or service: bare, through
    `Sandbox.run` in this process (the box's own cost, which the service cannot beat), and in a minimal
    bubblewrap box (what any box built with bubblewrap costs)."""
    sandbox = start_sandbox(
        SandboxConfig(
            run_dir=Path(f"{args.run_dir}-box"),
            slots=slots,
            uid_base=args.box_uid_base,
            cgroup_name=f"{args.cgroup_name}-box",
        )
    )
    spec = BoxSpec(argv=[PY, "-c", HELLO])
    floor = minimal_bwrap(args.box_uid_base + slots)  # a uid no slot uses

    async def boxed() -> tuple[float, int]:
        t0 = now_ns()
        res = await sandbox.run(spec)
        return ms_since(t0), 200 if res.status is Status.OK else 500

    async def bwrap_min() -> tuple[float, int]:
        s = await spawn_timed(floor, env=bare_env(home, home), cwd="/")
        return s.ms, 200 if s.returncode == 0 else 500

    try:
        await sandbox.recycled()
        return await paired(args.n, slots, {"bare": lambda: bare_call(home), "box": boxed, "bwrap_min": bwrap_min})
    finally:
        sandbox.close()


async def read_status(reader: asyncio.StreamReader) -> tuple[int, int]:
    """The response's status and when its status line arrived; the rest is read and dropped."""
    status_line = await reader.readline()
    t = now_ns()
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return t, int(status_line.split()[1])


async def burst(url: str, n: int, code: str) -> tuple[list[tuple[float, int]], float]:
    """n requests sent at once: one connection each, opened beforehand, then every request written in one
    go. httpx cannot do that: its own ~5 ms of CPU per request spread a burst of 100 over ~500 ms, so a
    request's latency "from the burst" was mostly its wait inside the client. Returns each response's
    (ms from the burst, status) and how long writing the burst took."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    request = execute_request(url, code)
    conns = await asyncio.gather(*(asyncio.open_connection(host, int(port)) for _ in range(n)))
    await asyncio.sleep(0.5)  # the service accepts them before the burst, as a keep-alive client's
    t0 = now_ns()
    for _, writer in conns:
        writer.write(request)
    sent_ms = ms_since(t0)
    try:
        results = await asyncio.gather(*(read_status(reader) for reader, _ in conns))
    finally:
        for _, writer in conns:
            writer.close()
    return [((t - t0) / 1e6, status) for t, status in results], sent_ms


async def overload(url: str, capacity: int, factors: list[int]) -> list[dict[str, Any]]:
    out = []
    for factor in factors:
        offered = capacity * factor
        results, sent_ms = await burst(url, offered, SLEEPER)
        served = [ms for ms, st in results if st == 200]
        rejected = [ms for ms, st in results if st in (429, 503)]
        other = [st for _, st in results if st not in (200, 429, 503)]
        out.append({
            "offered": offered, "served": len(served), "rejected": len(rejected), "other": len(other),
            "sent_ms": sent_ms, "rejection_latency": summarize(rejected) if rejected else None,
        })  # fmt: skip
        await asyncio.sleep(1.5)  # let the queue drain before the next burst
    return out


async def offered_rate(url: str, rate: float, seconds: float) -> dict[str, Any]:
    """Open-loop overload: hello-world requests arriving at `rate` per second for `seconds`, whether or
    not earlier ones were answered (keep-alive connections, a new one whenever none is idle). Counts
    served and rejected requests and times each from its write to its status line."""
    client = LeanClient(url, HELLO)
    results: list[tuple[float, int]] = []

    async def one() -> None:
        results.append(await client.call())

    n = int(rate * seconds)
    tasks = []
    t0 = time.monotonic()
    for i in range(n):
        delay = t0 + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one()))
    sent_s = time.monotonic() - t0
    await asyncio.gather(*tasks)
    elapsed_s = time.monotonic() - t0
    await client.close()
    served = [ms for ms, st in results if st == 200]
    rejected = [ms for ms, st in results if st in (429, 503)]
    return {
        "offered_per_s": rate,
        "offered": n,
        "achieved_offered_per_s": n / sent_s if sent_s else rate,
        "served": len(served),
        "served_per_s": len(served) / elapsed_s,
        "rejected": len(rejected),
        "other": len(results) - len(served) - len(rejected),
        "served_latency": summarize(served) if served else None,
        "rejection_latency": summarize(rejected) if rejected else None,
    }


async def in_flight(client: httpx.AsyncClient) -> float:
    for line in (await client.get("/metrics")).text.splitlines():
        if line.startswith("stockade_in_flight "):
            return float(line.split()[1])
    return -1.0


async def saturated(client: httpx.AsyncClient, capacity: int, probes: int) -> dict[str, Any]:
    """Every place held by a 3 s program; then `probes` requests one at a time, none of them in a
    burst: how long a refusal takes when the service is full but not swamped."""
    holders = [asyncio.create_task(api_call(client, HOLDER)) for _ in range(capacity)]
    deadline = time.monotonic() + 3
    while await in_flight(client) < capacity and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    results = [await api_call(client, HELLO) for _ in range(probes)]
    held = await asyncio.gather(*holders)
    rejected = [ms for ms, st in results if st in (429, 503)]
    return {
        "capacity": capacity,
        "probes": probes,
        "rejected": len(rejected),
        "holders_served": sum(1 for _, st in held if st == 200),
        "rejection_latency": summarize(rejected) if rejected else None,
        "samples": rejected,
    }


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100, help="executions per concurrency level and mode")
    ap.add_argument("--levels", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    ap.add_argument("--factors", type=int, nargs="+", default=[2, 5, 10], help="overload: × throughput and × capacity")
    ap.add_argument("--probes", type=int, default=20, help="single requests at steady saturation")
    ap.add_argument("--queue", type=int, help="service queue (default max(8, top level - slots))")
    ap.add_argument("--json", help="write results and raw samples here")
    ap.add_argument("--compat-only", action="store_true", help="only the compatible APIs against /v1/execute")
    # Two benchmark runs on one host (e.g. two checkouts) need their own run dir, slot uids and cgroup.
    ap.add_argument("--run-dir", default="/run/stockade-bench-api", help="the service's run dir")
    ap.add_argument("--uid-base", type=int, default=65100, help="the service's uid of slot 0")
    ap.add_argument("--cgroup-name", default="stockade-bench-api", help="the service's cgroup")
    ap.add_argument("--box-uid-base", type=int, default=65300, help="uid of slot 0 of the box-alone sandbox")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("benchmarks need root")

    slots = os.cpu_count() or 1
    queue = args.queue if args.queue is not None else max(8, max(args.levels) - slots)
    info = machine_info()
    print_machine(info)
    meter = LoadMeter()
    with tempfile.TemporaryDirectory(prefix="stockade-bench-api-") as tmp:
        proc, url = start_server(Path(tmp) / "data", slots, queue, args)
        try:
            async with httpx.AsyncClient(base_url=url, timeout=120) as client:
                # The service detects every toolchain at start-up, in the background (70 version
                # commands, some of them JVMs); /v1/runtimes waits for it, so no level shares the cores with it.
                await client.get("/v1/runtimes")
                for _ in range(5):  # warm-up: first imports
                    await api_call(client, HELLO)
                    await bare_call(tmp)
                with gc_paused():
                    compat = await compat_at_one(url, args.n)
                print_compat(compat, args.n)
                if args.compat_only:
                    write_json(args.json, {"benchmark": "api_load", "machine": info, "compat": compat})
                    return
                rows, levels = [], {}
                lean = LeanClient(url, HELLO)
                for c in args.levels:
                    with gc_paused():
                        levels[c] = await paired(
                            args.n, c, {"bare": lambda: bare_call(tmp), "api": lean.call,
                                        "api_httpx": lambda: api_call(client, HELLO)},
                        )  # fmt: skip
                    bare, api, via_httpx = levels[c]["bare"], levels[c]["api"], levels[c]["api_httpx"]
                    rows.append([
                        str(c), fmt_ms(bare["latency"]["median"]), fmt_ms(api["latency"]["median"]),
                        f"{api['latency']['median'] / bare['latency']['median']:.2f}",
                        fmt_ms(api["latency"]["p95"]), fmt_ms(api["latency"]["p99"]),
                        f"{bare['throughput_per_s']:.1f}", f"{api['throughput_per_s']:.1f}",
                        f"{100 * api['throughput_per_s'] / bare['throughput_per_s']:.0f}%", str(api["errors"]),
                        fmt_ms(via_httpx["latency"]["median"]), f"{via_httpx['throughput_per_s']:.1f}",
                    ])  # fmt: skip
                await lean.close()
                with gc_paused():
                    alone = await box_alone(args, slots, tmp)
                # Throughput at concurrency = cores for longer programs.
                programs = []
                for loops in BUSY_LOOPS:
                    code = busy(loops)
                    busy_lean = LeanClient(url, code)
                    sides = {"bare": lambda code=code: bare_call(tmp, code), "api": busy_lean.call}
                    with gc_paused():
                        programs.append({"loops": loops, **await paired(max(10, args.n // 2), slots, sides)})
                    await busy_lean.close()
                print(f"\nPython hello world, {args.n} executions per level (ms; throughput per second)")
                print_table(
                    ["conc", "bare p50", "api p50", "ratio", "api p95", "api p99", "bare tput", "api tput",
                     "api/bare", "errors", "httpx p50", "httpx tput"],
                    rows,
                )  # fmt: skip
                bt = alone["bare"]["throughput_per_s"]
                print(f"\nNo service, at concurrency {slots}: bare, Sandbox.run in this process, minimal bubblewrap")
                print_table(
                    ["side", "p50", "throughput", "of bare", "errors"],
                    [[k, fmt_ms(v["latency"]["median"]), f"{v['throughput_per_s']:.1f}",
                      f"{100 * v['throughput_per_s'] / bt:.0f}%", str(v["errors"])] for k, v in alone.items()],
                )  # fmt: skip
                print(f"\nLonger programs at concurrency {slots} (a loop of n additions; ms; throughput per second)")
                print_table(
                    ["loop", "bare p50", "api p50", "bare tput", "api tput", "api/bare", "errors"],
                    [[f"{p['loops']:,}", fmt_ms(p["bare"]["latency"]["median"]), fmt_ms(p["api"]["latency"]["median"]),
                      f"{p['bare']['throughput_per_s']:.1f}", f"{p['api']['throughput_per_s']:.1f}",
                      f"{100 * p['api']['throughput_per_s'] / p['bare']['throughput_per_s']:.0f}%",
                      str(p["api"]["errors"])] for p in programs],
                )  # fmt: skip
                with gc_paused():
                    sat = await saturated(client, slots + queue, args.probes)
                rl = sat["rejection_latency"]
                print(
                    f"\nSteady saturation: {slots + queue} places held, {args.probes} single requests: "
                    f"{sat['rejected']} rejected, rejection p50 {fmt_ms(rl['median']) if rl else '-'} ms, "
                    f"p95 {fmt_ms(rl['p95']) if rl else '-'} ms, max {fmt_ms(rl['max']) if rl else '-'} ms"
                )
                # Open-loop overload: arrivals at multiples of the throughput just measured at
                # concurrency = cores, for 3 s each.
                capacity_rate = levels[slots]["api"]["throughput_per_s"] if slots in levels else 40.0
                rates = []
                for factor in args.factors:
                    with gc_paused():
                        row = await offered_rate(url, factor * capacity_rate, 3.0)
                    rates.append({"factor": factor, **row})
                    await asyncio.sleep(1.0)  # let the queue drain
                print(f"\nOverload at a rate: hello world arriving at multiples of {capacity_rate:.1f}/s for 3 s")
                print_table(
                    ["× tput", "offered/s", "served", "served/s", "rejected", "other", "served p50",
                     "reject p50", "reject p95", "reject p99"],
                    [[str(r["factor"]), f"{r['achieved_offered_per_s']:.0f}", str(r["served"]),
                      f"{r['served_per_s']:.1f}", str(r["rejected"]), str(r["other"]),
                      fmt_ms(r["served_latency"]["median"]) if r["served_latency"] else "-",
                      fmt_ms(r["rejection_latency"]["median"]) if r["rejection_latency"] else "-",
                      fmt_ms(r["rejection_latency"]["p95"]) if r["rejection_latency"] else "-",
                      fmt_ms(r["rejection_latency"]["p99"]) if r["rejection_latency"] else "-"] for r in rates],
                )  # fmt: skip
                with gc_paused():
                    curve = await overload(url, slots + queue, args.factors)
                print(f"\nOverload: bursts of a 0.5 s program, capacity {slots} slots + {queue} queue")
                print_table(
                    ["offered", "sent in ms", "served", "rejected", "other", "reject p50", "reject p95", "fastest"],
                    [[str(r["offered"]), fmt_ms(r["sent_ms"]), str(r["served"]), str(r["rejected"]), str(r["other"]),
                      fmt_ms(r["rejection_latency"]["median"]) if r["rejection_latency"] else "-",
                      fmt_ms(r["rejection_latency"]["p95"]) if r["rejection_latency"] else "-",
                      fmt_ms(r["rejection_latency"]["min"]) if r["rejection_latency"] else "-"] for r in curve],
                )  # fmt: skip
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    load = meter.result()
    print_load(load)
    params = {"n": args.n, "levels": args.levels, "factors": args.factors, "slots": slots, "queue": queue}
    out = {"benchmark": "api_load", "params": params, "machine": info, "load": load}
    results = {
        "levels": levels,
        "box_alone": alone,
        "programs": programs,
        "saturated": sat,
        "overload_rate": rates,
        "overload": curve,
        "compat": compat,
    }
    write_json(args.json, {**out, **results})


if __name__ == "__main__":
    asyncio.run(main())
