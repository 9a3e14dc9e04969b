"""CLI start-up: whole `stockade` processes against bare interpreters, timed side by side in one run.

Each round runs every series once, in a rotated order (so the host's drift hits every series alike), as a
whole process: spawn to exit with its output read, as a shell or a script calling the CLI sees it.

  baselines    /usr/bin/python3 -c pass (the interpreter the boxes run), the venv's python -c pass (the
               CLI's interpreter), python -c "import click" (what the CLI is built on) and -c "import typer"
               (issue 25's yardstick, when installed), /usr/bin/python3 hello.py
  CLI          stockade --help; stockade runtimes and runtimes --json (a kept answer, see
               stockade/cli/runtimes_cache.py); stockade sandbox run -- /bin/true (a cold box: the CLI
               builds its box on demand); stockade run hello.py (local boxes, no server)
  parts        python -c "import stockade.runtimes" / "import stockade.engine" / building Registry.default():
               where `stockade run`'s time goes, as differences of medians

`stockade runtimes --refresh` (probing every toolchain, seconds) is timed apart, --probe-n times.
With --before SRC (a `src` directory of an earlier commit, e.g. from `git archive OLD src | tar -x -C DIR`),
that code's `stockade --help`, `sandbox run` and `run hello.py` run in the same rounds, through this venv.

Usage: .venv/bin/python bench/cli_startup.py [--n 40] [--warmup 3] [--probe-n 3] [--before SRC] [--json PATH]
(as root)
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import (
    LoadMeter,
    fmt_ms,
    machine_info,
    median,
    print_load,
    print_machine,
    print_table,
    summarize,
    write_json,
)

VENV_PY = sys.executable
STOCKADE = str(Path(sys.executable).with_name("stockade"))
SYSTEM_PY = "/usr/bin/python3"
Series = dict[str, list[str]]
# The console script's body, for code outside the venv's install (PYTHONPATH first on sys.path).
ENTRY = "import sys; sys.argv[0] = 'stockade'; from stockade.cli import app; sys.exit(app())"


def series(work: Path, before: Path | None) -> Series:
    hello = str(work / "hello.py")
    out: Series = {
        "python3 -c pass": [SYSTEM_PY, "-c", "pass"],
        "venv python -c pass": [VENV_PY, "-c", "pass"],
        "python -c 'import click'": [VENV_PY, "-c", "import click"],
    }
    if importlib.util.find_spec("typer") is not None:
        out["python -c 'import typer'"] = [VENV_PY, "-c", "import typer"]
    out |= {
        "python3 hello.py": [SYSTEM_PY, hello],
        "stockade --help": [STOCKADE, "--help"],
        "stockade runtimes": [STOCKADE, "runtimes"],
        "stockade runtimes --json": [STOCKADE, "runtimes", "--json"],
        "stockade sandbox run -- /bin/true": [STOCKADE, "sandbox", "run", "--", "/bin/true"],
        "stockade run hello.py": [STOCKADE, "run", hello],
        "import stockade.runtimes": [VENV_PY, "-c", "import stockade.runtimes"],
        "import stockade.engine": [VENV_PY, "-c", "import stockade.engine"],
        "Registry.default()": [VENV_PY, "-c", "from stockade.runtimes.registry import Registry; Registry.default()"],
    }
    if before is not None:
        old = ["env", f"PYTHONPATH={before}", VENV_PY, "-c", ENTRY]
        out |= {
            "before: stockade --help": [*old, "--help"],
            "before: stockade sandbox run -- /bin/true": [*old, "sandbox", "run", "--", "/bin/true"],
            "before: stockade run hello.py": [*old, "run", hello],
        }
    return out


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    t0 = time.perf_counter_ns()
    proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, timeout=120, check=False)
    ms = (time.perf_counter_ns() - t0) / 1e6
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.decode(errors='replace')[-2000:]}")
    return ms


def ratio(samples: dict[str, list[float]], a: str, b: str) -> str:
    if a not in samples or b not in samples:
        return "n/a"
    return f"{median(samples[a]) / median(samples[b]):.2f}x"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=40, help="rounds (every series once per round; >= 30)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed rounds first (page cache, kept answer)")
    ap.add_argument("--probe-n", type=int, default=3, help="runs of `stockade runtimes --refresh`")
    ap.add_argument("--before", type=Path, help="src/ of an earlier commit, timed beside this one")
    ap.add_argument("--json", help="write raw samples and summaries here")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root (stockade sandbox run and stockade run build boxes)")

    with tempfile.TemporaryDirectory(prefix="stockade-bench-cli-") as tmp:
        work = Path(tmp)
        (work / "hello.py").write_text('print("Hello, World!")\n')
        env = {
            "PATH": f"{Path(VENV_PY).parent}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(work),
            "LANG": "C.UTF-8",
            "COLUMNS": "100",
            "STOCKADE_CACHE_DIR": str(work / "cache"),  # the bench's own kept answer of `stockade runtimes`
        }
        plan = series(work, args.before.resolve() if args.before else None)
        info = machine_info()
        load = LoadMeter()
        probe = [timed([STOCKADE, "runtimes", "--refresh", "--json"], env, work) for _ in range(max(1, args.probe_n))]
        samples: dict[str, list[float]] = {name: [] for name in plan}
        names = list(plan)
        for r in range(args.warmup + args.n):
            k = r % len(names)
            for name in names[k:] + names[:k]:
                ms = timed(plan[name], env, work)
                if r >= args.warmup:
                    samples[name].append(ms)
        host = load.result()

    print_machine(info)
    print_load(host)
    print(f"{args.n} rounds (after {args.warmup} warm-up), every series once per round; ms, whole process")
    rows = []
    for name, xs in samples.items():
        s = summarize(xs)
        rows.append([name, fmt_ms(s["median"]), fmt_ms(s["p95"]), fmt_ms(s["min"])])
    print_table(["series", "median", "p95", "min"], rows)
    print(f"stockade runtimes --refresh (probes every toolchain): median {fmt_ms(median(probe), 0)} ms of {len(probe)}")
    checks = [
        ("stockade --help / import typer", ratio(samples, "stockade --help", "python -c 'import typer'")),
        ("stockade runtimes / import typer", ratio(samples, "stockade runtimes", "python -c 'import typer'")),
        ("stockade --help / import click", ratio(samples, "stockade --help", "python -c 'import click'")),
        ("stockade --help / venv python -c pass", ratio(samples, "stockade --help", "venv python -c pass")),
        ("stockade run hello.py / python3 hello.py", ratio(samples, "stockade run hello.py", "python3 hello.py")),
        ("stockade --help / before", ratio(samples, "stockade --help", "before: stockade --help")),
        ("stockade run hello.py / before", ratio(samples, "stockade run hello.py", "before: stockade run hello.py")),
    ]
    print_table(["ratio of medians", "value"], checks)
    write_json(
        args.json,
        {
            "machine": info,
            "load": host,
            "n": args.n,
            "samples_ms": samples,
            "summary": {k: summarize(v) for k, v in samples.items()},
            "runtimes_refresh_ms": probe,
        },
    )


if __name__ == "__main__":
    main()
