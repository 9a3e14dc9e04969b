"""The cluster against the embedded node (issue 14, docs/cluster.md), hello world in Python throughout.

- latency at concurrency 1: `POST /v1/execute` on an embedded `stockade serve` (SQLite, its own boxes)
  against the same call on a cluster's API node (PostgreSQL, the Redis queue, a worker's box, the
  result back by pub/sub), in alternating blocks of 10 so the host's drift hits both alike;
- throughput and p50/p99 through the cluster with 1 worker, then 2 workers (1 slot each), at a
  concurrency of twice the slots (`POST /v1/execute`, a closed loop);
- queue wait against offered load: `POST /v1/submissions` arriving at fractions of the 2-worker
  throughput for a few seconds (an open loop), each submission's wait read from its record
  (`started_at` - `created_at`: until a worker's slot took it).

Private PostgreSQL and Redis servers and the nodes come from the test suite's helpers
(tests/cluster/servers.py, tests/cluster/nodes.py): run dirs /run/stockade-t-bench-*, uids from 65500.

    .venv/bin/python bench/cluster.py [--n 200] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from _common import fmt_ms, median, ms_since, now_ns, percentile, summarize

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: the tests' helpers

from tests import residue
from tests.cluster.nodes import Cluster, Worker, running
from tests.cluster.servers import PostgresServer, RedisServer
from tests.service.live import live_server, make_key

HELLO = {"language": "python", "code": "print(6*7)"}
BLOCK = 10
UNLIMITED = {"rate_per_minute": 10_000_000}


async def execute(client: httpx.AsyncClient) -> float:
    t0 = now_ns()
    r = await client.post("/v1/execute", json=HELLO)
    elapsed = ms_since(t0)
    assert r.status_code == 200 and r.json()["stdout"] == "42\n", r.text
    return elapsed


async def closed_loop(client: httpx.AsyncClient, n: int, concurrency: int) -> tuple[list[float], float]:
    """n calls, `concurrency` at a time: their latencies and the seconds they all took."""
    left = iter(range(n))
    samples: list[float] = []

    async def caller() -> None:
        for _ in left:
            samples.append(await execute(client))

    t0 = time.monotonic()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return samples, time.monotonic() - t0


async def latency(embedded: httpx.AsyncClient, clustered: httpx.AsyncClient, n: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {"embedded": [], "cluster": []}
    sides = [("embedded", embedded), ("cluster", clustered)]
    for block in range(0, n, BLOCK):
        for name, client in sides if block // BLOCK % 2 == 0 else sides[::-1]:
            samples[name] += (await closed_loop(client, min(BLOCK, n - block), 1))[0]
    return samples


def _at(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


async def offered(client: httpx.AsyncClient, rate: float, seconds: float) -> dict[str, Any]:
    """Submissions at `rate` per second for `seconds`, then each one's queue wait once all are finished."""
    ids: list[str] = []

    async def submit() -> None:
        r = await client.post("/v1/submissions", json=HELLO)
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])

    sent: list[asyncio.Task[None]] = []
    t0 = time.monotonic()
    for i in range(int(rate * seconds)):
        await asyncio.sleep(max(0.0, t0 + i / rate - time.monotonic()))
        sent.append(asyncio.create_task(submit()))
    await asyncio.gather(*sent)
    while True:
        records = []
        for i in range(0, len(ids), 100):
            r = await client.get("/v1/submissions", params={"ids": ",".join(ids[i : i + 100])})
            records += r.json()["submissions"]
        if all(rec["state"] == "finished" for rec in records):
            break
        await asyncio.sleep(0.2)
    assert all(rec["result"]["stdout"] == "42\n" for rec in records), records
    waits = [(_at(rec["started_at"]) - _at(rec["created_at"])) * 1000 for rec in records]
    span = max(_at(rec["finished_at"]) for rec in records) - min(_at(rec["created_at"]) for rec in records)
    return {"rate": rate, "done_per_s": len(ids) / span, "wait_ms": waits, **summarize(waits)}


def client(url: str, token: str) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    return httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=300, limits=limits)


async def bench(root: Path, pg: PostgresServer, redis: RedisServer, args: argparse.Namespace) -> dict[str, Any]:
    cluster = Cluster(root, pg.new_database(), redis.url, redis, pg)
    os.environ["STOCKADE_DATABASE_URL"] = cluster.database_url  # the operator commands' store
    token = make_key(cluster.keys_dir, "bench", **UNLIMITED)
    del os.environ["STOCKADE_DATABASE_URL"]
    local_dir = root / "embedded"
    local_token = make_key(local_dir, "bench", **UNLIMITED)
    out: dict[str, Any] = {}
    with (
        live_server("bench-embedded", uid_base=65500, data_dir=local_dir, slots=2) as local,
        cluster.api("bench-api", 65510) as api,
    ):
        async with client(local.url, local_token) as e, client(api.url, token) as c:
            with running(Worker.start(cluster, "bench-work-a", 65520, 2)):
                for side in (e, c):  # warm: toolchain probes, first boxes, connections
                    await closed_loop(side, 10, 1)
                out["latency"] = await latency(e, c, args.n)
            for workers in (1, 2):
                with contextlib.ExitStack() as stack:
                    for w in range(workers):
                        stack.enter_context(running(Worker.start(cluster, f"bench-work-{w}", 65530 + 10 * w, 1)))
                    await closed_loop(c, 10, 2 * workers)
                    samples, seconds = await closed_loop(c, args.n, 2 * workers)
                    out[f"workers_{workers}"] = {"per_s": args.n / seconds, "samples_ms": samples}
                    if workers == 2:
                        capacity = args.n / seconds
                        out["queue_wait"] = [
                            await offered(c, capacity * f, args.seconds) for f in (0.25, 0.5, 0.75, 1.0, 1.5)
                        ]
    return out


def report(out: dict[str, Any], n: int) -> None:
    lat = out["latency"]
    e, c = median(lat["embedded"]), median(lat["cluster"])
    print(f"hello world, n={n}, load {os.getloadavg()[0]:.1f}")
    print(f"{'concurrency 1':<26} {'p50 ms':>8} {'p99 ms':>8}")
    for side in ("embedded", "cluster"):
        print(f"{side:<26} {fmt_ms(median(lat[side])):>8} {fmt_ms(percentile(lat[side], 99)):>8}")
    print(f"cluster - embedded p50: {c - e:+.1f} ms (target <= +3 ms)")
    print(f"\n{'throughput':<26} {'per s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for workers in (1, 2):
        side = out[f"workers_{workers}"]
        xs = side["samples_ms"]
        label = f"{workers} worker(s), c={2 * workers}"
        print(f"{label:<26} {side['per_s']:>8.1f} {fmt_ms(median(xs)):>8} {fmt_ms(percentile(xs, 99)):>8}")
    print(f"2 workers / 1 worker: {out['workers_2']['per_s'] / out['workers_1']['per_s']:.2f}x")
    print(f"\n{'offered per s':<14} {'n':>5} {'done per s':>10} {'wait p50':>9} {'wait p99':>9}")
    for level in out["queue_wait"]:
        print(
            f"{level['rate']:<14.1f} {level['n']:>5} {level['done_per_s']:>10.1f} "
            f"{fmt_ms(level['median']):>9} {fmt_ms(level['p99']):>9}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200, help="calls per latency side and per throughput run")
    ap.add_argument("--seconds", type=float, default=5.0, help="length of each offered-load level")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    try:
        with tempfile.TemporaryDirectory() as tmp, PostgresServer() as pg, RedisServer() as redis:
            out = asyncio.run(bench(Path(tmp), pg, redis, args))
    finally:
        for problem in residue.sweep():  # the nodes' run dirs and cgroups, once they have gone
            print(f"left on the host: {problem}", file=sys.stderr)
    report(out, args.n)
    if args.json:
        args.json.write_text(json.dumps({"n": args.n, **out}, indent=2))


if __name__ == "__main__":
    main()
