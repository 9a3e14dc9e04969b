"""Judge mode against its alternatives: one C submission, N small tests (default 20).

- judge:     one POST /v1/judge with the N tests (one compile, N run boxes, 2 at a time)
- execute-1: N POST /v1/execute calls one after another (N compiles), the naive client
- execute-2: the same N calls, 2 at a time (the node's slots), a client that parallelises
- bare:      gcc once, then the binary N times, no box and no service (the floor)

Each round runs every side once, in turn, on one `stockade serve` (2 slots, its own run dir, uids and
cgroup); medians over the rounds, and ratios against judge in the same run.

    .venv/bin/python bench/judge.py --rounds 5 --tests 20 [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from _common import fmt_ms, gc_paused, median, ms_since, now_ns, summarize

STOCKADE = str(Path(sys.executable).with_name("stockade"))
SLOTS = 2
C_SUM = """#include <stdio.h>
int main(void) { long a, b; if (scanf("%ld %ld", &a, &b) != 2) return 1; printf("%ld\\n", a + b); return 0; }
"""


def start_server(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    argv = [
        STOCKADE, "serve", "--port", str(port), "--data-dir", str(data_dir), "--slots", str(SLOTS),
        "--queue", "64", "--run-dir", "/run/stockade-bench-judge", "--uid-base", "65400",
        "--cgroup-name", "stockade-bench-judge",
    ]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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


def tests(n: int) -> list[dict[str, str]]:
    return [{"stdin": f"{i} {2 * i}\n", "expected": f"{3 * i}\n"} for i in range(1, n + 1)]


async def judge_side(c: httpx.AsyncClient, n: int) -> float:
    t0 = now_ns()
    r = await c.post("/v1/judge", json={"language": "c", "code": C_SUM, "tests": tests(n)})
    elapsed = ms_since(t0)
    out = r.json()
    assert r.status_code == 200 and out["verdict"] == "accepted", r.text
    return elapsed


async def execute_side(c: httpx.AsyncClient, n: int, concurrency: int) -> float:
    todo = iter(tests(n))
    t0 = now_ns()

    async def worker() -> None:
        for t in todo:
            r = await c.post("/v1/execute", json={"language": "c", "code": C_SUM, "stdin": t["stdin"]})
            out = r.json()
            assert r.status_code == 200 and out["stdout"] == t["expected"], r.text

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ms_since(t0)


def bare_side(n: int, work: Path) -> float:
    src, exe = work / "main.c", work / "main"
    src.write_text(C_SUM)
    t0 = now_ns()
    subprocess.run(["gcc", "-O2", "-pipe", "-std=gnu17", "-o", str(exe), str(src), "-lm"], check=True)
    for t in tests(n):
        out = subprocess.run([str(exe)], input=t["stdin"].encode(), capture_output=True, check=True).stdout
        assert out.decode() == t["expected"]
    return ms_since(t0)


async def bench(url: str, rounds: int, n: int, work: Path) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {"judge": [], "execute-1": [], "execute-2": [], "bare": []}
    async with httpx.AsyncClient(base_url=url, timeout=300) as c:
        await judge_side(c, 2)  # warm: toolchain detection, first boxes
        for _ in range(rounds):
            with gc_paused():
                samples["judge"].append(await judge_side(c, n))
                samples["execute-1"].append(await execute_side(c, n, 1))
                samples["execute-2"].append(await execute_side(c, n, SLOTS))
                samples["bare"].append(bare_side(n, work))
    return samples


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--tests", type=int, default=20)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_server(Path(tmp) / "data")
        try:
            samples = asyncio.run(bench(url, args.rounds, args.tests, Path(tmp)))
        finally:
            proc.terminate()
            proc.wait(30)
    judged = median(samples["judge"])
    print(f"C a+b, {args.tests} tests, {args.rounds} rounds, {SLOTS} slots, load {os.getloadavg()[0]:.1f}")
    print(f"{'side':<10} {'median ms':>10} {'vs judge':>9}")
    for side, xs in samples.items():
        print(f"{side:<10} {fmt_ms(median(xs)):>10} {median(xs) / judged:>8.2f}x")
    if args.json:
        out: dict[str, Any] = {s: {"samples_ms": xs, **summarize(xs)} for s, xs in samples.items()}
        args.json.write_text(json.dumps({"tests": args.tests, "rounds": args.rounds, **out}, indent=2))


if __name__ == "__main__":
    main()
