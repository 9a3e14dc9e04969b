"""What an egress policy costs a box (docs/network.md), side by side in one process:

- setup:    `/bin/true` in a box without a policy vs with one (its forwarder and proxy started and stopped);
            the wall time of Sandbox.run, boxes built ahead in both
- download: 1 MiB over HTTP from a server in a network namespace made here, timed inside the box
            program (urllib through the forwarder and the host's proxy) vs the same fetch by this
            process directly (bare: no box, no proxy)

Rounds interleave the sides; medians over the rounds and the ratios against the baseline of each pair.

    .venv/bin/python bench/network.py --rounds 30 [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
import time
import urllib.request
from pathlib import Path

from _common import fmt_ms, gc_paused, median, ms_since, now_ns, start_sandbox, summarize
from stockade.sandbox import BoxSpec, Limits, SandboxConfig
from stockade.sandbox.netpolicy import NetworkPolicy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.netns import HTTP_PORT, NAME, WebNamespace  # the test suite's namespace server

CONFIG = SandboxConfig(
    run_dir=Path("/run/stockade-bench-net"), slots=2, uid_base=65700, cgroup_name="stockade-bench-net"
)
SIZE = 1 << 20
LIMITS = Limits(cpu_ms=10_000, wall_ms=30_000, memory_mb=256)
FETCH = """
import sys, time, urllib.request
t = time.perf_counter()
with urllib.request.urlopen(sys.argv[1], timeout=30) as r:
    n = len(r.read())
print(n, (time.perf_counter() - t) * 1000)
"""


def bare_fetch(url: str) -> float:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy of this host's env
    t = now_ns()
    with opener.open(url, timeout=30) as r:
        assert len(r.read()) == SIZE
    return ms_since(t)


async def main(rounds: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {k: [] for k in ("box", "box+policy", "bare download", "box download")}
    with WebNamespace() as web:
        config = dataclasses.replace(CONFIG, egress_pins={NAME: (web.address,)})
        sandbox = start_sandbox(config)
        policy = NetworkPolicy.parse([NAME, web.network])
        url = f"http://{NAME}:{HTTP_PORT}/bytes/{SIZE}"
        direct = f"http://{web.address}:{HTTP_PORT}/bytes/{SIZE}"
        try:
            with gc_paused():
                for _ in range(rounds):
                    for side, net in (("box", None), ("box+policy", policy)):
                        await sandbox.recycled()
                        t = now_ns()
                        r = await sandbox.run(BoxSpec(["/bin/true"], limits=LIMITS, network=net))
                        samples[side].append(ms_since(t))
                        assert r.status.value == "ok", r.error
                    samples["bare download"].append(bare_fetch(direct))
                    r = await sandbox.run(
                        BoxSpec(["/usr/bin/python3", "-c", FETCH, url], limits=LIMITS, network=policy)
                    )
                    n, ms = r.stdout.split()
                    assert int(n) == SIZE, r.stderr
                    samples["box download"].append(float(ms))
        finally:
            sandbox.close()
    return samples


def report(samples: dict[str, list[float]]) -> None:
    m = {k: median(v) for k, v in samples.items()}
    print(f"{'side':<16}{'median ms':>12}{'p95 ms':>10}")
    for side, values in samples.items():
        print(f"{side:<16}{fmt_ms(m[side]):>12}{fmt_ms(summarize(values)['p95']):>10}")
    print(f"setup: +{fmt_ms(m['box+policy'] - m['box'])} ms, ratio {m['box+policy'] / m['box']:.2f}")
    print(f"1 MiB download: ratio {m['box download'] / m['bare download']:.2f} against bare")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    started = time.time()
    result = asyncio.run(main(args.rounds))
    report(result)
    if args.json:
        args.json.write_text(json.dumps({"started": started, "samples": result}, indent=1))
