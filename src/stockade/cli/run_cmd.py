"""`stockade run`: programs in boxes on this host (the engine in this process), or on a server (--url)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from stockade.cli.errors import fail

if TYPE_CHECKING:
    from rich.console import Console

    from stockade.clients import AsyncClient
    from stockade.engine import Engine, ExecutionRequest
    from stockade.runtimes.registry import Registry

VERDICT_STYLE = {"ok": "bold green", "compile_error": "bold yellow", "runtime_error": "bold yellow"}
Result = dict[str, Any]  # the API's JSON shape, for local and remote runs alike


def consoles() -> tuple[Console, Console]:
    from rich.console import Console

    return Console(), Console(stderr=True)


def compile_output(result: Result) -> str:
    c = result.get("compile") or {}
    return str(c.get("stdout", "")) + str(c.get("stderr", ""))


def print_human(result: Result) -> None:
    console, err_console = consoles()
    status = result["status"]
    if status == "failed":
        err_console.print(f"[bold red]{result['error']}[/]: {result['message']}", highlight=False)
        return
    console.print(f"[{VERDICT_STYLE.get(status, 'bold red')}]{status}[/]", highlight=False)
    facts = [f"time {result['time_ms']} ms", f"wall {result['wall_time_ms']} ms", f"memory {result['memory_kb']} KiB"]
    if result.get("exit_code") not in (None, 0):
        facts.append(f"exit {result['exit_code']}")
    if result.get("signal"):
        facts.append(f"signal {result.get('signal_name') or result['signal']}")
    console.print("  " + " · ".join(facts), style="dim", highlight=False)
    if result.get("explanation"):
        console.print("  " + str(result["explanation"]), style="yellow", highlight=False)
    for label, text in (("compile output", compile_output(result)), ("stdout", result["stdout"]),
                        ("stderr", result["stderr"])):  # fmt: skip
        if text:
            console.rule(label, style="dim")
            console.out(text, end="" if text.endswith("\n") else "\n", highlight=False)


def print_table(targets: list[tuple[Path, str | None]], results: list[Result]) -> None:
    from rich.table import Table

    table = Table(title=f"{len(results)} programs")
    for col in ("file", "language", "verdict", "time ms", "memory KiB"):
        table.add_column(col)
    for (path, lang), r in zip(targets, results, strict=True):
        verdict = r["status"] if r["status"] != "failed" else r["error"]
        style = VERDICT_STYLE.get(r["status"], "bold red")
        table.add_row(str(path), lang or "?", f"[{style}]{verdict}[/]", str(r.get("time_ms", "")),
                      str(r.get("memory_kb", "")))  # fmt: skip
    consoles()[0].print(table)


def failed(code: str, message: str) -> Result:
    return {"status": "failed", "error": code, "message": message}


class LocalRunner:
    """The engine in this process, boxes on this host."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.engine: Engine | None = None

    async def __call__(self, request: ExecutionRequest) -> Result:
        import uuid

        from stockade.cli.local import local_sandbox
        from stockade.engine import Engine, EngineError
        from stockade.service.wire import response_body

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
        from stockade.clients import AsyncClient

        self.client: AsyncClient = AsyncClient(url, api_key=api_key)

    async def __call__(self, request: ExecutionRequest) -> Result:
        from stockade.clients import StockadeError

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


def _targets(paths: tuple[Path, ...], registry: Registry, language: str | None) -> list[tuple[Path, str | None]]:
    """Files to run with their language; a folder stands for its files of known extensions."""
    out: list[tuple[Path, str | None]] = []
    for p in paths:
        files = sorted(x for x in p.iterdir() if x.is_file() and registry.by_extension(x.suffix)) if p.is_dir() else [p]
        for f in files:
            lang = registry.by_extension(f.suffix)
            out.append((f, language or (lang.id if lang else None)))
    return out


async def run_all(
    runner: LocalRunner | RemoteRunner, requests: list[ExecutionRequest | Result], progress: bool
) -> list[Result]:
    """Every request at once (a Result stands for one refused before it was sent), with a progress bar."""
    import asyncio
    import contextlib

    async def one(request: ExecutionRequest | Result) -> Result:
        return request if isinstance(request, dict) else await runner(request)

    try:
        if not progress:
            return list(await asyncio.gather(*(one(r) for r in requests)))
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

        with contextlib.ExitStack() as stack:
            bar = stack.enter_context(Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                               MofNCompleteColumn(), console=consoles()[1]))  # fmt: skip
            task = bar.add_task("running", total=len(requests))

            async def tracked(request: ExecutionRequest | Result) -> Result:
                result = await one(request)
                bar.advance(task)
                return result

            return list(await asyncio.gather(*(tracked(r) for r in requests)))
    finally:
        await runner.close()


EXISTING_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.command("run")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--language", "-l", help="Language (default: from the file's extension)")
@click.option("--stdin", type=EXISTING_FILE, help="File fed to stdin")
@click.option("--arg", "args", multiple=True, help="Program argument (repeatable)")
@click.option("--json", "as_json", is_flag=True, help="Print results as JSON")
@click.option("--cpu-ms", type=int, help="Run CPU time limit (ms)")
@click.option("--wall-ms", type=int, help="Run wall time limit (ms)")
@click.option("--memory-mb", type=int, help="Run memory limit (MiB)")
@click.option("--url", envvar="STOCKADE_URL", help="Use this server instead of local boxes")
@click.option("--api-key", envvar="STOCKADE_API_KEY", help="API key for --url")
def run(
    paths: tuple[Path, ...],
    language: str | None,
    stdin: Path | None,
    args: tuple[str, ...],
    as_json: bool,
    cpu_ms: int | None,
    wall_ms: int | None,
    memory_mb: int | None,
    url: str | None,
    api_key: str | None,
) -> None:
    """Run programs in boxes, locally or on a server (--url). Several files or a folder run concurrently,
    with a progress bar and a summary table. Exit 2 when any run was refused (not for a verdict)."""
    import asyncio

    from stockade.cli.languages import default_registry
    from stockade.engine import ExecutionRequest, SourceFile, StageLimits

    registry = default_registry()
    targets = _targets(paths, registry, language)
    if not targets:
        fail("nothing to run: no file with a known extension", exit_code=2)
    limits = StageLimits(cpu_ms=cpu_ms, wall_ms=wall_ms, memory_mb=memory_mb)
    stdin_bytes = stdin.read_bytes() if stdin else b""
    requests: list[ExecutionRequest | Result] = []
    for path, lang in targets:
        if lang is None:
            requests.append(failed("UNKNOWN_LANGUAGE", f"no language for extension {path.suffix!r}; pass --language"))
            continue
        source = [SourceFile(path.name, path.read_bytes())]
        requests.append(ExecutionRequest(lang, source, stdin=stdin_bytes, args=list(args), limits=limits))
    runner = RemoteRunner(url, api_key) if url else LocalRunner(registry)
    results = asyncio.run(run_all(runner, requests, progress=len(targets) > 1 and not as_json))
    refused = any(r["status"] == "failed" for r in results)  # a verdict is a result; a refusal is not
    if len(targets) == 1:
        if as_json:
            click.echo(json.dumps(results[0], indent=2))
        else:
            print_human(results[0])
    elif as_json:
        click.echo(json.dumps([{"file": str(p), **r} for (p, _), r in zip(targets, results, strict=True)], indent=2))
    else:
        print_table(targets, results)
    if refused:
        raise click.exceptions.Exit(2)
