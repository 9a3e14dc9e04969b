"""Hello world in every available language: compile + run wall time, bare vs through the engine.

For each language `await registry.detect_all()` reports available (or those given with --only), run
its `hello` program N times each way, interleaved (the order alternates every iteration so neither
side always runs on a cache the other just warmed), after one discarded warm-up pair:

  bare    the language's compile and run commands, expanded with expand_command, run directly with
          asyncio subprocesses in this process: a fresh temp dir holding the source (cwd and HOME)
          and a tmp dir (TMPDIR), PATH=/usr/local/bin:/usr/bin:/bin, the language's env. Timed from
          creating the temp dir to removing it, as the engine's time includes building and tearing
          down its boxes. The temp dir is on a tmpfs (/dev/shm) when there is one, as the box's /box
          and /tmp are: on this host's ext4 /tmp, removing Go's 256-folder build cache alone took
          0.8 s, and writing it slowed the bare compile too.
  engine  `await engine.execute(ExecutionRequest.from_code(id, hello))`: compile box, then a fresh
          run box fed the compiled files, default limits.

Every sample, either side, starts once the sandbox is idle (`await sandbox.recycled()`): what is
measured is one execution's latency on an idle engine, as a client sending one program at a time
sees it. The CPU of tearing down and rebuilding boxes after each result is not in these numbers;
bench/api_load.py measures executions back to back and under load, where it is.

Both must succeed with the same stdout, else the language is reported as failed, without a ratio.
Targets from the issue: engine/bare median <= 1.15 for compiled languages, <= 1.3 for interpreted.

Usage: .venv/bin/python bench/languages.py [--n 5] [--only LANG ...] [--json PATH]  (as root)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from _common import (
    BENCH_CONFIG,
    LoadMeter,
    Spawned,
    bare_env,
    fmt_ms,
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
from stockade.engine import Engine, ExecutionRequest, Verdict
from stockade.runtimes.entry_points import find_main
from stockade.runtimes.model import Language
from stockade.runtimes.registry import Registry, expand_command

TARGET = {"compiled": 1.15, "interpreted": 1.3}
# Compile box against the bare compile of the same file (issue 29: Go paid 3.8 s against 0.19 s).
COMPILE_TARGET = {"go": 1.5}
COMPILE_TIMEOUT_S = 180.0  # bare only; the engine applies its own compile/run limits
RUN_TIMEOUT_S = 30.0
_TMP_PATH = re.compile(r"(?<![\w./-])/tmp(?=/|$|[^\w.-])")


@dataclass
class Series:
    total: list[float] = field(default_factory=list)
    compile: list[float] = field(default_factory=list)
    run: list[float] = field(default_factory=list)


@dataclass
class Outcome:
    ok: bool
    stdout: bytes
    error: str = ""


def private_tmp(value: str, tmp: Path) -> str:
    """In a box /tmp is private; bare, a command's or env's /tmp paths (gnatmake -D /tmp, GOCACHE=
    /tmp/go-cache...) point into this run's own tmp dir instead, so concurrent jobs on the host never
    share (or link!) each other's objects."""
    return _TMP_PATH.sub(str(tmp), value)


def _tmpfs_dir() -> str | None:
    """/dev/shm if it is a tmpfs (like the box's /box and /tmp), else the default temp dir."""
    with contextlib.suppress(OSError), open("/proc/self/mounts", encoding="utf-8") as mounts:
        for line in mounts:
            fields = line.split()
            if len(fields) > 2 and fields[1] == "/dev/shm" and fields[2] == "tmpfs":
                return "/dev/shm"
    return None


BARE_DIR = _tmpfs_dir()


def _how(r: Spawned) -> str:
    return "timed out" if r.timed_out else f"exit {r.returncode}"


def kind(lang: Language) -> str:
    return "compiled" if lang.compiled else "interpreted"


async def bare_once(lang: Language, into: Series | None) -> Outcome:
    t0 = now_ns()
    root = Path(tempfile.mkdtemp(prefix="stockade-bench-lang-", dir=BARE_DIR))
    try:
        work, tmp = root / "box", root / "tmp"
        work.mkdir()
        tmp.mkdir()
        entry = lang.source_file
        (work / entry).write_text(lang.hello)
        env = bare_env(work, tmp, {k: private_tmp(v, tmp) for k, v in lang.env.items()})
        names = [entry]
        compile_ms = 0.0
        main = None
        if lang.compile is not None:
            argv = [private_tmp(a, tmp) for a in expand_command(lang.compile.command, entry, names, lang.extensions)]
            c = await spawn_timed(argv, env=env, cwd=work, timeout=COMPILE_TIMEOUT_S)
            compile_ms = c.ms
            if c.returncode != 0:
                return Outcome(False, b"", f"bare compile {_how(c)}: {c.stderr[-300:]!r}")
            names = sorted(str(p.relative_to(work)) for p in work.rglob("*") if p.is_file())
            main = find_main(lang, ((name, (work / name).read_bytes()) for name in names), entry)
        run_argv = expand_command(lang.run.command, entry, names, lang.extensions, main=main)
        argv = [private_tmp(a, tmp) for a in run_argv]
        r = await spawn_timed(argv, env=env, cwd=work, timeout=RUN_TIMEOUT_S)
        if r.returncode != 0:
            return Outcome(False, r.stdout, f"bare run {_how(r)}: {r.stderr[-300:]!r}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    total = ms_since(t0)
    if into is not None:
        into.total.append(total)
        into.compile.append(compile_ms)
        into.run.append(r.ms)
    return Outcome(True, r.stdout)


async def engine_once(engine: Engine, lang: Language, into: Series | None) -> Outcome:
    t0 = now_ns()
    res = await engine.execute(ExecutionRequest.from_code(lang.id, lang.hello))
    total = ms_since(t0)
    if res.status is not Verdict.OK or res.run is None:
        final = res.final
        detail = (final.error or final.stderr[-300:].decode("utf-8", "replace")) if final else ""
        return Outcome(False, b"", f"engine {res.status.value}: {detail}")
    if into is not None:
        into.total.append(total)
        into.compile.append(float(res.compile.wall_time_ms) if res.compile else 0.0)
        into.run.append(float(res.run.wall_time_ms))
    return Outcome(True, res.run.stdout)


async def bench_language(engine: Engine, lang: Language, n: int, warmup: int) -> dict[str, Any]:
    bare, eng = Series(), Series()
    for i in range(warmup + n):
        record = i >= warmup
        outs: dict[str, Outcome] = {}
        for side in ("bare", "engine") if i % 2 == 0 else ("engine", "bare"):
            # Each sample starts on an idle engine: the previous execution's boxes are torn down and
            # rebuilt after its result, and that work would otherwise share the cores with this sample.
            await engine.sandbox.recycled()
            if side == "bare":
                outs[side] = await bare_once(lang, bare if record else None)
            else:
                outs[side] = await engine_once(engine, lang, eng if record else None)
            if not outs[side].ok:
                return {"ok": False, "error": outs[side].error}
        if outs["bare"].stdout != outs["engine"].stdout:
            return {
                "ok": False,
                "error": f"stdout differs: bare {outs['bare'].stdout[:80]!r} vs engine {outs['engine'].stdout[:80]!r}",
            }
    b, e = summarize(bare.total), summarize(eng.total)
    ratio = e["median"] / b["median"]
    bare_compile, box_compile = summarize(bare.compile)["median"], summarize(eng.compile)["median"]
    return {
        "ok": True,
        "bare_ms": b,
        "engine_ms": e,
        "ratio": ratio,
        "overhead_ms": e["median"] - b["median"],
        "target": TARGET[kind(lang)],
        "met": ratio <= TARGET[kind(lang)],
        "compile_ratio": box_compile / bare_compile if bare_compile > 0 else None,
        "stages_median_ms": {
            "bare_compile": bare_compile,
            "bare_run": summarize(bare.run)["median"],
            "engine_compile_box_wall": box_compile,
            "engine_run_box_wall": summarize(eng.run)["median"],
        },
        "samples_ms": {"bare": bare.total, "engine": eng.total},
    }


def print_compile_table(results: dict[str, dict[str, Any]], n: int) -> None:
    """The compile stage alone: the compile box's wall time against the bare compile's."""
    rows = []
    for lang_id, r in results.items():
        if not r["ok"] or r["compile_ratio"] is None:
            continue
        stages, target = r["stages_median_ms"], COMPILE_TARGET.get(lang_id)
        rows.append(
            [
                lang_id,
                fmt_ms(stages["bare_compile"]),
                fmt_ms(stages["engine_compile_box_wall"]),
                f"{r['compile_ratio']:.2f}",
                f"<={target}" if target else "-",
                ("yes" if r["compile_ratio"] <= target else "no") if target else "-",
            ]
        )
    if rows:
        print()
        print(f"Compile stage alone, wall time, median of {n} (ms)")
        print_table(["language", "bare compile", "compile box", "ratio", "target", "met"], rows)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    registry = Registry.default()
    # As the service runs it: every box binds every language's paths, so boxes built ahead fit all.
    sandbox = start_sandbox(replace(BENCH_CONFIG, shared_ro_paths=registry.ro_paths))
    info = machine_info(sandbox)
    print_machine(info)
    engine = Engine(sandbox, registry)
    toolchains = await registry.detect_all()
    wanted = [registry.get(x) for x in args.only] if args.only else list(registry)
    langs = [lang for lang in wanted if toolchains[lang.id].available]
    skipped = {lang.id: toolchains[lang.id].detail for lang in wanted if not toolchains[lang.id].available}
    print(f"{len(langs)} available: {' '.join(lang.id for lang in langs)}")
    if skipped:
        print(f"skipped (toolchain missing): {', '.join(skipped)}")

    results: dict[str, dict[str, Any]] = {}
    load = LoadMeter()
    for lang in langs:
        t0 = now_ns()
        res = await bench_language(engine, lang, args.n, args.warmup)
        res.update(kind=kind(lang), version=toolchains[lang.id].version)
        results[lang.id] = res
        state = f"ratio {res['ratio']:.2f}" if res["ok"] else f"FAILED: {res['error']}"
        print(f"  {lang.id:<14} {ms_since(t0) / 1000:6.1f} s  {state}", file=sys.stderr, flush=True)
    load_result = load.result()
    sandbox.close()

    print()
    print(f"Hello world, compile + run wall time, median of {args.n} (ms)")
    rows = []
    for lang_id, r in results.items():
        if not r["ok"]:
            rows.append([lang_id, r["kind"], "-", "-", "-", "-", f"<={TARGET[r['kind']]}", "FAILED"])
            continue
        rows.append(
            [
                lang_id,
                r["kind"],
                fmt_ms(r["bare_ms"]["median"]),
                fmt_ms(r["engine_ms"]["median"]),
                f"{r['overhead_ms']:+.0f}",
                f"{r['ratio']:.2f}",
                f"<={r['target']}",
                "yes" if r["met"] else "no",
            ]
        )
    print_table(["language", "kind", "bare ms", "engine ms", "overhead", "ratio", "target", "met"], rows)
    failed = [k for k, r in results.items() if not r["ok"]]
    for k in failed:
        print(f"{k}: {results[k]['error']}")
    met = sum(1 for r in results.values() if r["ok"] and r["met"])
    print(f"targets met: {met}/{len(results) - len(failed)}" + (f"; failed: {' '.join(failed)}" if failed else ""))
    print_compile_table(results, args.n)
    print()
    print_load(load_result)
    return {
        "benchmark": "languages",
        "params": {"n": args.n, "warmup": args.warmup, "only": args.only},
        "machine": info,
        "load": load_result,
        "skipped": skipped,
        "results": results,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--n", type=int, default=5, help="measured runs each way per language (default 5)")
    ap.add_argument("--warmup", type=int, default=1, help="discarded pairs first (default 1)")
    ap.add_argument("--only", nargs="+", metavar="LANG", help="only these languages (ids or aliases)")
    ap.add_argument("--json", metavar="PATH", help="also write results and raw samples here")
    args = ap.parse_args()
    if args.n < 1:
        ap.error("--n must be >= 1")
    out = asyncio.run(main_async(args))
    write_json(args.json, out)


if __name__ == "__main__":
    main()
