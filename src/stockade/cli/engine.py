"""`stockade run`, `stockade runtimes`, `stockade toolchains install`: the engine without a server."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from stockade.engine import Engine, EngineError, ExecutionRequest, ExecutionResult, SourceFile, StageLimits
from stockade.runtimes.registry import Registry
from stockade.runtimes.toolchains import install_packages
from stockade.sandbox import Sandbox, SandboxConfig, SandboxUnavailable
from stockade.sandbox.spec import BoxResult

console = Console()
err_console = Console(stderr=True)
toolchains_app = typer.Typer(no_args_is_help=True, help="Install language toolchains (Debian packages).")

VERDICT_STYLE = {"ok": "bold green", "compile_error": "bold yellow", "runtime_error": "bold yellow"}


def stage_json(box: BoxResult | None) -> dict[str, Any] | None:
    return None if box is None else box.to_json()


def result_json(result: ExecutionResult) -> dict[str, Any]:
    return {
        "status": result.status.value,
        "language": result.language,
        "version": result.version,
        "compile": stage_json(result.compile),
        "run": stage_json(result.run),
    }


def print_human(result: dict[str, Any], name: str | None = None) -> None:
    """One shape for local and remote results: status, time, memory, outputs."""
    status = result["status"]
    title = f"{name}: " if name else ""
    console.print(f"{title}[{VERDICT_STYLE.get(status, 'bold red')}]{status}[/]", highlight=False)
    facts = [f"time {result.get('time_ms', 0)} ms", f"wall {result.get('wall_time_ms', 0)} ms"]
    facts.append(f"memory {result.get('memory_kb', 0)} KiB")
    if result.get("exit_code") not in (None, 0):
        facts.append(f"exit {result['exit_code']}")
    if result.get("signal"):
        facts.append(f"signal {result['signal']}")
    console.print("  " + " · ".join(facts), style="dim", highlight=False)
    compile_out = result.get("compile_output") or ""
    for label, text in (
        ("compile output", compile_out),
        ("stdout", result.get("stdout")),
        ("stderr", result.get("stderr")),
    ):
        if text:
            console.rule(label, style="dim")
            console.out(text, end="" if text.endswith("\n") else "\n", highlight=False)


def flatten(result: ExecutionResult) -> dict[str, Any]:
    """The service's flat view of a result (time and memory of the deciding stage)."""
    final = result.final
    compile_out = ""
    if result.compile is not None:
        compile_out = (result.compile.stdout + result.compile.stderr).decode("utf-8", "replace")
    return {
        "status": result.status.value,
        "stdout": final.stdout.decode("utf-8", "replace") if final and result.run else "",
        "stderr": final.stderr.decode("utf-8", "replace") if final and result.run else "",
        "compile_output": compile_out,
        "exit_code": final.exit_code if final else None,
        "signal": final.signal if final else None,
        "time_ms": final.cpu_time_ms if final else 0,
        "wall_time_ms": final.wall_time_ms if final else 0,
        "memory_kb": final.peak_memory_kb if final else 0,
    }


def local_sandbox() -> Sandbox:
    sandbox = Sandbox(SandboxConfig(slots=2))
    try:
        sandbox.start()
    except SandboxUnavailable as e:
        err_console.print(f"[red]cannot build a safe box:[/] {e}")
        raise typer.Exit(2) from e
    return sandbox


def run(
    file: Annotated[Path, typer.Argument(help="Source file", exists=True, dir_okay=False)],
    language: Annotated[str | None, typer.Option("--language", "-l", help="Language (default: from extension)")] = None,
    stdin: Annotated[Path | None, typer.Option(help="File fed to stdin", exists=True, dir_okay=False)] = None,
    arg: Annotated[list[str] | None, typer.Option("--arg", help="Program argument (repeatable)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full result as JSON")] = False,
    cpu_ms: Annotated[int | None, typer.Option(help="Run CPU time limit (ms)")] = None,
    wall_ms: Annotated[int | None, typer.Option(help="Run wall time limit (ms)")] = None,
    memory_mb: Annotated[int | None, typer.Option(help="Run memory limit (MiB)")] = None,
) -> None:
    """Run a source file locally in a box (no server); the language is inferred from the extension."""
    registry = Registry.default()
    if language is None:
        lang = registry.by_extension(file.suffix)
        if lang is None:
            err_console.print(f"[red]no language for extension {file.suffix!r}[/]; pass --language")
            raise typer.Exit(2)
        language = lang.id
    request = ExecutionRequest(
        language=language,
        files=[SourceFile(file.name, file.read_bytes())],
        stdin=stdin.read_bytes() if stdin else b"",
        args=list(arg or []),
        limits=StageLimits(cpu_ms=cpu_ms, wall_ms=wall_ms, memory_mb=memory_mb),
    )

    async def go() -> ExecutionResult:
        return await Engine(local_sandbox(), registry).execute(request)

    try:
        result = asyncio.run(go())
    except EngineError as e:
        err_console.print(f"[red]{e.code}[/]: {e.message}")
        raise typer.Exit(2) from e
    if as_json:
        json.dump(result_json(result), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_human(flatten(result))


def runtimes(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable list")] = False) -> None:
    """Every language with its toolchain version and availability on this host."""
    registry = Registry.default()
    found = asyncio.run(registry.detect_all())
    rows = [
        {
            "language": lang.id,
            "name": lang.name,
            "available": found[lang.id].available,
            "version": found[lang.id].version,
            "detail": found[lang.id].detail,
            "compiled": lang.compiled,
        }
        for lang in registry.languages
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title=f"{sum(1 for r in rows if r['available'])}/{len(rows)} languages available")
    for col in ("language", "name", "version", "kind"):
        table.add_column(col)
    for r in rows:
        version = str(r["version"]) if r["available"] else f"[red]missing[/] ({r['detail']})"
        table.add_row(str(r["language"]), str(r["name"]), version, "compiled" if r["compiled"] else "interpreted")
    console.print(table)


@toolchains_app.command("install")
def toolchains_install(
    languages: Annotated[list[str] | None, typer.Argument(help="Languages to install")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every defined language")] = False,
) -> None:
    """apt-get install the toolchains of the given languages (idempotent)."""
    registry = Registry.default()
    if all_ == bool(languages):
        err_console.print("give either --all or a list of languages")
        raise typer.Exit(2)
    chosen = list(registry.languages) if all_ else [registry.get(name) for name in languages or []]
    report = install_packages(chosen)
    if report.installed:
        console.print(f"installed: {' '.join(report.installed)}")
    console.print(f"{len(report.already_installed)} of {len(report.requested)} packages were already installed")
    if report.unavailable:
        # Not fatal: those languages report TOOLCHAIN_MISSING, which is what they are.
        err_console.print(f"[yellow]not in this distribution's archive:[/] {' '.join(report.unavailable)}")
    failed = [p for p in report.requested if p not in report.unavailable] if not report.ok else []
    if failed and not (set(report.installed) | set(report.already_installed)) >= set(failed):
        err_console.print(f"[red]apt-get failed[/]\n{report.output[-4000:]}")
        raise typer.Exit(1)
