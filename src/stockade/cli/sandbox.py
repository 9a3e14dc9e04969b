"""`stockade sandbox run|check`: one box from the command line, and the host self-check."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from stockade.cli.local import local_sandbox
from stockade.sandbox import BoxSpec, InputFile, Limits
from stockade.sandbox.check import check_host

app = typer.Typer(no_args_is_help=True, help="Run one command in a box; check what the host offers.")


def _parse_files(specs: list[str]) -> list[InputFile]:
    files = []
    for item in specs:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise typer.BadParameter(f"--file expects NAME=PATH, got {item!r}")
        p = Path(path)
        files.append(InputFile(name, p.read_bytes(), executable=bool(p.stat().st_mode & 0o111)))
    return files


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def run(
    command: Annotated[list[str], typer.Argument(help="Command and arguments, after --")],
    memory_mb: Annotated[int | None, typer.Option(help="Memory limit (MiB)")] = None,
    cpu_ms: Annotated[int | None, typer.Option(help="CPU time of the whole tree (ms)")] = None,
    wall_ms: Annotated[int | None, typer.Option(help="Wall time (ms)")] = None,
    pids: Annotated[int | None, typer.Option(help="Processes and threads")] = None,
    output_kb: Annotated[int | None, typer.Option(help="stdout and stderr cap, each (KiB)")] = None,
    file_kb: Annotated[int | None, typer.Option(help="Largest file (KiB)")] = None,
    stdin: Annotated[Path | None, typer.Option(help="File fed to stdin")] = None,
    file: Annotated[list[str] | None, typer.Option("--file", help="NAME=PATH copied into /box")] = None,
    collect: Annotated[bool, typer.Option(help="List the regular files left in /box")] = False,
) -> None:
    """Run CMD in a fresh box and print the result as JSON (exit 0 whenever the box ran)."""
    limits = Limits().with_overrides(
        memory_mb=memory_mb, cpu_ms=cpu_ms, wall_ms=wall_ms, processes=pids, output_kb=output_kb,
        file_size_kb=file_kb,
    )  # fmt: skip
    spec = BoxSpec(
        argv=command,
        stdin=stdin.read_bytes() if stdin else b"",
        files=_parse_files(file or []),
        limits=limits,
        collect_files=collect,
    )

    async def go() -> dict[str, object]:
        sandbox = local_sandbox(slots=1)
        try:
            return (await sandbox.run(spec)).to_json()
        finally:
            sandbox.close()

    result = asyncio.run(go())
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")


@app.command()
def check(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable report")] = False) -> None:
    """Print what the host offers; exit non-zero, naming the cause, when a safe box cannot be built."""
    report = asyncio.run(check_host())
    if as_json:
        typer.echo(json.dumps({"ok": report.ok, "problems": report.problems, "facts": report.facts}, indent=2))
    else:
        for key, value in report.facts.items():
            typer.echo(f"{key:>20}: {value}")
        typer.echo("")
        if report.ok:
            typer.echo("OK: this host can build safe boxes")
        for p in report.problems:
            typer.echo(f"FAIL: {p}", err=True)
    if not report.ok:
        raise typer.Exit(1)
