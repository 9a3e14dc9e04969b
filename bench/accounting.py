"""Accounting against the reference: a box's CPU time and peak memory beside the kernel's rusage.

The same static C programs run bare (their rusage: what `/usr/bin/time -v` prints, at microsecond
resolution) and in a box, at concurrency 1 and with both slots busy (two at once on each side): a CPU
loop that stops when its own CPU clock reaches 0.2, 0.5 or 1 s, and an allocation of 64 or 256 MiB
touched page by page. The box's figures are the cgroup's (CPU of the whole tree, bubblewrap's set-up
subtracted; peak memory since the box was built, so bubblewrap's and init's ~1 MiB are in it); the
reference is user+sys time and maximum RSS of the one process. Then N programs that burn 0.5 s of CPU
run under a 1 s CPU limit with both slots busy, and the benchmark counts any `timeout`.

Usage: .venv/bin/python bench/accounting.py [--n 10] [--headroom-n 40] [--json PATH]  (as root)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_info, median, print_machine, print_table, start_sandbox, write_json
from stockade.sandbox import BoxSpec, InputFile, Limits, Sandbox, Status

SOURCE = r"""
#include <stdlib.h>
#include <string.h>
#include <time.h>
static double cpu_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}
int main(int argc, char **argv) {
    double x = atof(argv[2]);
    if (argv[1][0] == 'c') {            /* burn x seconds of CPU */
        volatile unsigned long n = 0;
        while (cpu_s() < x) n++;
    } else {                            /* touch x MiB */
        size_t bytes = (size_t)x << 20;
        char *p = malloc(bytes);
        for (size_t i = 0; i < bytes; i += 4096) p[i] = 1;
        memset(p, 2, bytes);
        return p[bytes - 1] == 2 ? 0 : 1; /* the pages are used: no compiler may drop them */
    }
    return 0;
}
"""
CASES = [("cpu", "0.2"), ("cpu", "0.5"), ("cpu", "1.0"), ("mem", "64"), ("mem", "256")]
LIMITS = Limits(cpu_ms=5000, wall_ms=30_000, memory_mb=512)


def build(tmp: Path) -> Path:
    src, out = tmp / "acct.c", tmp / "acct"
    src.write_text(SOURCE)
    subprocess.run(["gcc", "-O1", "-static", "-o", str(out), str(src)], check=True)
    return out


def _rusage_run(prog: Path, kind: str, arg: str) -> tuple[float, float]:
    pid = os.posix_spawn(str(prog), [str(prog), kind, arg], {})
    _, status, ru = os.wait4(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return (ru.ru_utime + ru.ru_stime) * 1000, float(ru.ru_maxrss)


async def reference(prog: Path, kind: str, arg: str) -> tuple[float, float]:
    """(CPU ms, max RSS KiB) of one bare run: the kernel's rusage of the process, which is what
    `/usr/bin/time -v` prints, at microsecond resolution instead of its 10 ms."""
    return await asyncio.to_thread(_rusage_run, prog, kind, arg)


async def boxed(
    sandbox: Sandbox, elf: bytes, kind: str, arg: str, limits: Limits = LIMITS
) -> tuple[float, float, Status]:
    r = await sandbox.run(
        BoxSpec(argv=["./acct", kind, arg], files=[InputFile("acct", elf, executable=True)], limits=limits)
    )
    return float(r.cpu_time_ms), float(r.peak_memory_kb), r.status


async def measure(sandbox: Sandbox, prog: Path, n: int, concurrency: int) -> list[dict[str, Any]]:
    elf = prog.read_bytes()
    rows = []
    for kind, arg in CASES:
        ref: list[tuple[float, float]] = []
        box: list[tuple[float, float, Status]] = []
        for _ in range(n):  # each side in turn, `concurrency` at once
            ref += await asyncio.gather(*(reference(prog, kind, arg) for _ in range(concurrency)))
            box += await asyncio.gather(*(boxed(sandbox, elf, kind, arg) for _ in range(concurrency)))
        col = 0 if kind == "cpu" else 1
        r_med, b_med = median([x[col] for x in ref]), median([x[col] for x in box])
        rows.append(
            {
                "case": f"{kind} {arg}",
                "figure": "cpu_ms" if kind == "cpu" else "peak_kib",
                "concurrency": concurrency,
                "reference_median": r_med,
                "box_median": b_med,
                "error_pct": (b_med - r_med) / r_med * 100,
                "statuses": sorted({s.value for *_, s in box}),
            }
        )
    return rows


async def headroom(sandbox: Sandbox, prog: Path, n: int) -> dict[str, int]:
    """0.5 s of CPU under a 1 s limit, both slots busy: how many end in timeout."""
    elf, limits = prog.read_bytes(), Limits(cpu_ms=1000, wall_ms=30_000)
    counts: dict[str, int] = {}
    for _ in range(n // 2):
        for _cpu, _mem, status in await asyncio.gather(*(boxed(sandbox, elf, "cpu", "0.5", limits) for _ in range(2))):
            counts[status.value] = counts.get(status.value, 0) + 1
    return counts


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10, help="rounds per case and concurrency")
    ap.add_argument("--headroom-n", type=int, default=40)
    ap.add_argument("--json")
    args = ap.parse_args()
    sandbox = start_sandbox()
    try:
        info = machine_info(sandbox)
        print_machine(info)
        with tempfile.TemporaryDirectory() as tmp:
            prog = build(Path(tmp))
            rows = await measure(sandbox, prog, args.n, 1) + await measure(sandbox, prog, args.n, 2)
            spare = await headroom(sandbox, prog, args.headroom_n)
    finally:
        sandbox.close()
    print_table(
        ["case", "figure", "conc", "rusage", "box", "error", "verdicts"],
        [
            [
                r["case"],
                r["figure"],
                str(r["concurrency"]),
                f"{r['reference_median']:.0f}",
                f"{r['box_median']:.0f}",
                f"{r['error_pct']:+.1f} %",
                ",".join(r["statuses"]),
            ]
            for r in rows
        ],
        right=[False, False, True, True, True, True, False],
    )
    print(f"0.5 s of CPU under a 1 s limit, both slots busy: {spare}")
    write_json(args.json, {"machine": info, "rows": rows, "headroom": spare})


if __name__ == "__main__":
    asyncio.run(main())
