"""`stockade run`, `stockade runtimes`, `stockade toolchains install`: the engine without a server."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Table

from stockade.cli.local import local_sandbox
from stockade.clients import AsyncClient, StockadeError
from stockade.engine import Engine, EngineError, ExecutionRequest, SourceFile, StageLimits
from stockade.runtimes.registry import Registry
from stockade.runtimes.toolchains import install_packages
from stockade.service.wire import response_body

console = Console()
err_console = Console(stderr=True)
toolchains_app = typer.Typer(no_args_is_help=True, help="Install language toolchains (Debian packages).")

VERDICT_STYLE = {"ok": "bold green", "compile_error": "bold yellow", "runtime_error": "bold yellow"}
Result = dict[str, Any]  # the API's JSON shape, for local and remote runs alike


def compile_output(result: Result) -> str:
    c = result.get("compile") or {}
    return str(c.get("stdout", "")) + str(c.get("stderr", ""))


def print_human(result: Result, name: str | None = None) -> None:
    status = result["status"]
    title = f"{name}: " if name else ""
    if status == "failed":
        err_console.print(f"{title}[bold red]{result['error']}[/]: {result['message']}", highlight=False)
        return
    console.print(f"{title}[{VERDICT_STYLE.get(status, 'bold red')}]{status}[/]", highlight=False)
    facts = [f"time {result['time_ms']} ms", f"wall {result['wall_time_ms']} ms", f"memory {result['memory_kb']} KiB"]
    if result.get("exit_code") not in (None, 0):
        facts.append(f"exit {result['exit_code']}")
    if result.get("signal"):
        facts.append(f"signal {result['signal']}")
    console.print("  " + " · ".join(facts), style="dim", highlight=False)
    for label, text in (("compile output", compile_output(result)), ("stdout", result["stdout"]),
                        ("stderr", result["stderr"])):  # fmt: skip
        if text:
            console.rule(label, style="dim")
            console.out(text, end="" if text.endswith("\n") else "\n", highlight=False)


def failed(code: str, message: str) -> Result:
    return {"status": "failed", "error": code, "message": message}


class LocalRunner:
    """The engine in this process, boxes on this host."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.engine: Engine | None = None

    async def __call__(self, request: ExecutionRequest) -> Result:
        if self.engine is None:
            self.engine = Engine(local_sandbox(shared_ro_paths=self.registry.ro_paths), self.registry)
        try:
            result = await self.engine.execute(request)
        except EngineError as e:
            return failed(e.code, e.message)
        return response_body(uuid.uuid4().hex, result, "utf8")

    async def close(self) -> None:
        if self.engine is not None:
            self.engine.sandbox.close()


class RemoteRunner:
    """A Stockade server, through the SDK."""

    def __init__(self, url: str, api_key: str | None) -> None:
        self.client = AsyncClient(url, api_key=api_key)

    async def __call__(self, request: ExecutionRequest) -> Result:
        f = request.files[0]
        try:
            result = await self.client.submit(
                request.language,
                files={f.name: f.content},
                stdin=request.stdin.decode("utf-8", "replace"),
                args=request.args,
                limits={k: v for k, v in request.limits.as_dict().items() if v is not None},
            )
        except StockadeError as e:
            return failed(e.code, e.message)
        return dict(result.raw)

    async def close(self) -> None:
        await self.client.aclose()


def _targets(paths: list[Path], registry: Registry, language: str | None) -> list[tuple[Path, str | None]]:
    """Files to run with their language; a folder stands for its files of known extensions."""
    out: list[tuple[Path, str | None]] = []
    for p in paths:
        files = sorted(x for x in p.iterdir() if x.is_file() and registry.by_extension(x.suffix)) if p.is_dir() else [p]
        for f in files:
            lang = registry.by_extension(f.suffix)
            out.append((f, language or (lang.id if lang else None)))
    return out


def run(
    paths: Annotated[list[Path], typer.Argument(help="Source files or folders", exists=True)],
    language: Annotated[str | None, typer.Option("--language", "-l", help="Language (default: from extension)")] = None,
    stdin: Annotated[Path | None, typer.Option(help="File fed to stdin", exists=True, dir_okay=False)] = None,
    arg: Annotated[list[str] | None, typer.Option("--arg", help="Program argument (repeatable)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print results as JSON")] = False,
    cpu_ms: Annotated[int | None, typer.Option(help="Run CPU time limit (ms)")] = None,
    wall_ms: Annotated[int | None, typer.Option(help="Run wall time limit (ms)")] = None,
    memory_mb: Annotated[int | None, typer.Option(help="Run memory limit (MiB)")] = None,
    url: Annotated[
        str | None, typer.Option(envvar="STOCKADE_URL", help="Use this server instead of local boxes")
    ] = None,
    api_key: Annotated[str | None, typer.Option(envvar="STOCKADE_API_KEY", help="API key for --url")] = None,
) -> None:
    """Run programs in boxes, locally or on a server (--url). Several files or a folder run concurrently,
    with a progress bar and a summary table."""
    registry = Registry.default()
    targets = _targets(paths, registry, language)
    if not targets:
        err_console.print("nothing to run")
        raise typer.Exit(2)
    runner = RemoteRunner(url, api_key) if url else LocalRunner(registry)
    limits = StageLimits(cpu_ms=cpu_ms, wall_ms=wall_ms, memory_mb=memory_mb)
    stdin_bytes = stdin.read_bytes() if stdin else b""

    async def one(path: Path, lang: str | None) -> Result:
        if lang is None:
            return failed("UNKNOWN_LANGUAGE", f"no language for extension {path.suffix!r}; pass --language")
        request = ExecutionRequest(lang, [SourceFile(path.name, path.read_bytes())], stdin=stdin_bytes,
                                   args=list(arg or []), limits=limits)  # fmt: skip
        return await runner(request)

    async def single() -> Result:
        try:
            return await one(*targets[0])
        finally:
            await runner.close()

    async def batch() -> list[Result]:
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      console=err_console, disable=as_json) as progress:  # fmt: skip
            task = progress.add_task("running", total=len(targets))

            async def tracked(path: Path, lang: str | None) -> Result:
                result = await one(path, lang)
                progress.advance(task)
                return result

            try:
                return await asyncio.gather(*(tracked(p, lang) for p, lang in targets))
            finally:
                await runner.close()

    if len(targets) == 1:
        result = asyncio.run(single())
        if as_json:
            typer.echo(json.dumps(result, indent=2))
        else:
            print_human(result)
        if result["status"] == "failed":
            raise typer.Exit(2)
        return

    results = asyncio.run(batch())
    refused = any(r["status"] == "failed" for r in results)  # a verdict is a result; a refusal is not
    if as_json:
        typer.echo(json.dumps([{"file": str(p), **r} for (p, _), r in zip(targets, results, strict=True)], indent=2))
        if refused:
            raise typer.Exit(2)
        return
    table = Table(title=f"{len(results)} programs")
    for col in ("file", "language", "verdict", "time ms", "memory KiB"):
        table.add_column(col)
    for (path, lang), r in zip(targets, results, strict=True):
        verdict = r["status"] if r["status"] != "failed" else r["error"]
        style = VERDICT_STYLE.get(r["status"], "bold red")
        table.add_row(str(path), lang or "?", f"[{style}]{verdict}[/]", str(r.get("time_ms", "")),
                      str(r.get("memory_kb", "")))  # fmt: skip
    console.print(table)
    if refused:
        raise typer.Exit(2)


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
