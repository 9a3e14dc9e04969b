"""`stockade judge FILE --tests DIR`: a submission against a folder of tests, in boxes on this host (the
engine's Judge in this process) or on a server (--url, the SDK's judge()), with a per-test table.

DIR holds NAME.in and NAME.out (or NAME.ans) pairs, in natural order (2 before 10); an interactive
problem's tests may have a .in alone (the interactor's input). Exit 0 when accepted, 1 for any other
verdict, 2 when the request was refused.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from stockade.cli.errors import fail

if TYPE_CHECKING:
    from stockade.engine.judge import JudgeRequest
    from stockade.runtimes.registry import Registry

Result = dict[str, Any]  # the API's JSON shape, for local and remote judgements alike
VERDICT_STYLE = {"accepted": "bold green", "skipped": "dim"}
EXPECTED_SUFFIXES = (".out", ".ans")


def _natural(path: Path) -> list[Any]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", path.stem)]


def read_tests(folder: Path) -> list[tuple[str, bytes, bytes]]:
    """(name, stdin, expected) of each NAME.in in `folder`; expected is b"" when it has no answer file."""
    found = []
    for stdin in sorted(folder.glob("*.in"), key=_natural):
        answer = next((p for s in EXPECTED_SUFFIXES if (p := stdin.with_suffix(s)).is_file()), None)
        found.append((stdin.stem, stdin.read_bytes(), answer.read_bytes() if answer else b""))
    if not found:
        fail(f"no tests in {folder}: expected NAME.in files (with NAME.out or NAME.ans)", exit_code=2)
    return found


def _language(path: Path, registry: Registry, given: str | None) -> str:
    if given:
        return given
    lang = registry.by_extension(path.suffix)
    if lang is None:
        fail(f"no language for extension {path.suffix!r} of {path.name}; pass --language", exit_code=2)
    return lang.id


def _program(path: Path | None, registry: Registry) -> dict[str, Any] | None:
    """The wire form of a checker program or interactor read from `path`."""
    if path is None:
        return None
    files = [{"name": path.name, "content": path.read_text()}]
    return {"language": _language(path, registry, None), "files": files}


def build_body(source: Path, language: str, tests: list[tuple[str, bytes, bytes]], options: dict[str, Any]) -> Result:
    """The POST /v1/judge body of this command (also what the local engine is given)."""
    import base64

    def text(data: bytes) -> str:
        return base64.b64encode(data).decode()

    body: Result = {
        "language": language,
        "files": [{"name": source.name, "content": text(source.read_bytes()), "encoding": "base64"}],
        "tests": [{"stdin": text(i), "expected": text(o), "encoding": "base64"} for _, i, o in tests],
        "stop_on_first_failure": options["stop"],
    }
    limits = {k: options[k] for k in ("cpu_ms", "wall_ms", "memory_mb") if options[k] is not None}
    if limits:
        body["limits"] = limits
    if options["interactor"] is not None:
        body["interactor"] = options["interactor"]
    elif options["checker_program"] is not None:
        body["checker"] = {"kind": "program", **options["checker_program"]}
    else:
        checker: Result = {"kind": options["checker"]}
        if options["checker"] == "float":
            checker.update(abs_eps=options["abs_eps"], rel_eps=options["rel_eps"])
        body["checker"] = checker
    return body


def engine_request(body: Result) -> JudgeRequest:
    """The engine's JudgeRequest of a body this command built (no tenant: the local user's boxes)."""
    import base64

    from stockade.engine import ExecutionRequest, SourceFile, StageLimits
    from stockade.engine.checkers import Checker
    from stockade.engine.judge import JudgeRequest, ProgramChecker, TestCase

    def program(p: Result, limits: StageLimits | None = None) -> ExecutionRequest:
        files = [SourceFile(f["name"], base64.b64decode(f["content"]) if f.get("encoding") == "base64"
                            else f["content"].encode()) for f in p["files"]]  # fmt: skip
        return ExecutionRequest(p["language"], files, limits=limits or StageLimits())

    limits = StageLimits(**body.get("limits", {}))
    tests = [TestCase(base64.b64decode(t["stdin"]), base64.b64decode(t["expected"])) for t in body["tests"]]
    c = body.get("checker", {"kind": "lines"})
    checker = ProgramChecker(program(c)) if c["kind"] == "program" else Checker(**c)
    interactor = ProgramChecker(program(body["interactor"])) if "interactor" in body else None
    return JudgeRequest(program(body, limits), tests, checker, body["stop_on_first_failure"], interactor)


async def judge_locally(registry: Registry, body: Result, show_progress: bool) -> Result:
    import asyncio
    import contextlib
    import uuid

    from stockade.cli.local import local_sandbox
    from stockade.engine import Engine, EngineError
    from stockade.engine.judge import Judge, JudgeProgress
    from stockade.service.routes.judge_wire import response_body

    sandbox = local_sandbox(shared_ro_paths=registry.ro_paths)
    try:
        judge = Judge(Engine(sandbox, registry))
        try:
            plan = await judge.prepare(engine_request(body))
        except EngineError as e:
            return {"status": "failed", "error": e.code, "message": e.message}
        progress = JudgeProgress()
        loop = asyncio.get_running_loop()
        started = loop.time()
        task = asyncio.ensure_future(judge.run(plan, parallel=sandbox.slots_total, progress=progress))
        with contextlib.ExitStack() as stack:
            if show_progress:
                from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

                from stockade.cli.run_cmd import consoles

                bar = stack.enter_context(Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                                   MofNCompleteColumn(), console=consoles()[1]))  # fmt: skip
                shown = bar.add_task("judging", total=len(plan.tests))
                while not task.done():
                    bar.update(shown, completed=progress.done)
                    await asyncio.wait({task}, timeout=0.1)
                bar.update(shown, completed=progress.done)
            result = await task
        wall_ms = int((loop.time() - started) * 1000)
        return response_body(uuid.uuid4().hex, result, wall_ms, False, "utf8")
    finally:
        sandbox.close()


async def judge_remotely(url: str, api_key: str | None, body: Result, show_progress: bool) -> Result:
    import base64
    import contextlib

    from stockade.client import AsyncClient, File, StockadeError
    from stockade.client.judging import JudgeOptions

    source = body["files"][0]
    options: JudgeOptions = {
        "files": [File(source["name"], base64.b64decode(source["content"]))],
        "tests": body["tests"],
        "stop_on_first_failure": body["stop_on_first_failure"],
    }
    for name in ("limits", "checker", "interactor"):
        if name in body:
            options[name] = body[name]
    async with AsyncClient(url, api_key=api_key) as client:
        with contextlib.ExitStack() as stack:
            if show_progress:
                from stockade.cli.run_cmd import consoles

                stack.enter_context(consoles()[1].status(f"judging {len(body['tests'])} tests on {url}"))
            try:
                result = await client.judge(body["language"], **options)
            except StockadeError as e:
                return {"status": "failed", "error": e.code, "message": e.message}
    return dict(result.raw)


def print_result(result: Result, names: list[str]) -> None:
    from rich.table import Table

    from stockade.cli.run_cmd import consoles

    console, err_console = consoles()
    if result.get("status") == "failed":
        err_console.print(f"[bold red]{result['error']}[/]: {result['message']}", highlight=False)
        return
    table = Table(title=f"{len(result['tests'])} tests")
    for col in ("#", "test", "verdict", "time ms", "memory KiB", "message"):
        table.add_column(col)
    for t in result["tests"]:
        style = VERDICT_STYLE.get(t["verdict"], "bold red")
        table.add_row(str(t["index"]), names[t["index"]], f"[{style}]{t['verdict']}[/]", str(t["time_ms"]),
                      str(t["memory_kb"]), t["message"])  # fmt: skip
    console.print(table)
    compiled = result.get("compile") or {}
    if compiled.get("status") not in (None, "ok"):
        console.rule("compile output", style="dim")
        console.out(str(compiled.get("stdout", "")) + str(compiled.get("stderr", "")), highlight=False)
    style = VERDICT_STYLE.get(result["verdict"], "bold red")
    summary = f"[{style}]{result['verdict']}[/] · {result['accepted']}/{len(result['tests'])} accepted"
    console.print(f"{summary} · {result['message']}", highlight=False)


EXISTING_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.command("judge")
@click.argument("source", type=EXISTING_FILE)
@click.option("--tests", "tests_dir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of NAME.in / NAME.out (or .ans) pairs")  # fmt: skip
@click.option("--language", "-l", help="Language (default: from the file's extension)")
@click.option("--checker", type=click.Choice(["exact", "lines", "tokens", "float"]), default="lines",
              show_default=True, help="Built-in checker")  # fmt: skip
@click.option("--abs-eps", type=float, default=1e-6, show_default=True, help="float checker: absolute tolerance")
@click.option("--rel-eps", type=float, default=1e-6, show_default=True, help="float checker: relative tolerance")
@click.option("--checker-program", type=EXISTING_FILE, help="A checker program (testlib exit codes)")
@click.option("--interactor", type=EXISTING_FILE, help="An interactor program: an interactive problem")
@click.option("--cpu-ms", type=int, help="Run CPU time limit of each test (ms)")
@click.option("--wall-ms", type=int, help="Run wall time limit of each test (ms)")
@click.option("--memory-mb", type=int, help="Run memory limit of each test (MiB)")
@click.option("--stop", is_flag=True, help="Stop at the first test not accepted")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON")
@click.option("--url", envvar="STOCKADE_URL", help="Use this server instead of local boxes")
@click.option("--api-key", envvar="STOCKADE_API_KEY", help="API key for --url")
def judge(source: Path, tests_dir: Path, language: str | None, as_json: bool, url: str | None,
          api_key: str | None, **options: Any) -> None:  # fmt: skip
    """Judge SOURCE against the tests in a folder: compiled once, each test in a fresh box, a verdict per
    test. Exit 0 when accepted, 1 for another verdict, 2 when refused."""
    import asyncio

    from stockade.cli.languages import default_registry

    if options["checker_program"] is not None and options["interactor"] is not None:
        fail("give --checker-program or --interactor, not both: an interactor decides", exit_code=2)
    registry = default_registry()
    tests = read_tests(tests_dir)
    options["checker_program"] = _program(options["checker_program"], registry)
    options["interactor"] = _program(options["interactor"], registry)
    body = build_body(source, _language(source, registry, language), tests, options)
    progress = not as_json
    if url:
        result = asyncio.run(judge_remotely(url, api_key, body, progress))
    else:
        result = asyncio.run(judge_locally(registry, body, progress))
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        print_result(result, [name for name, _, _ in tests])
    if result.get("status") == "failed":
        raise click.exceptions.Exit(2)
    if result["verdict"] != "accepted":
        raise click.exceptions.Exit(1)
