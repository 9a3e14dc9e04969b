"""`stockade sandbox run|check`: one box from the command line, and the host self-check."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from stockade.sandbox import InputFile

POSITIVE = click.IntRange(min=1)


@click.group("sandbox", no_args_is_help=True)
def sandbox() -> None:
    """Run one command in a box; check what the host offers."""


def _parse_files(specs: tuple[str, ...]) -> list[InputFile]:
    from stockade.sandbox import InputFile

    files = []
    for item in specs:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise click.BadParameter(f"--file expects NAME=PATH, got {item!r}", param_hint="'--file'")
        try:
            p = Path(path)
            files.append(InputFile(name, p.read_bytes(), executable=bool(p.stat().st_mode & 0o111)))
        except OSError as e:
            raise click.BadParameter(f"{path}: {e.strerror}", param_hint="'--file'") from e
    return files


@sandbox.command("run", context_settings={"allow_interspersed_args": False})  # COMMAND keeps its options
@click.option("--memory-mb", type=POSITIVE, help="Memory limit (MiB)")
@click.option("--cpu-ms", type=POSITIVE, help="CPU time of the whole tree (ms)")
@click.option("--wall-ms", type=POSITIVE, help="Wall time (ms)")
@click.option("--pids", type=POSITIVE, help="Processes and threads")
@click.option("--output-kb", type=POSITIVE, help="stdout and stderr cap, each (KiB)")
@click.option("--file-kb", type=POSITIVE, help="Largest file (KiB)")
@click.option("--stdin", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="File fed to stdin")
@click.option("--file", "files", multiple=True, metavar="NAME=PATH", help="Copied into /box (repeatable)")
@click.option("--collect", is_flag=True, help="List the regular files left in /box")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def sandbox_run(
    memory_mb: int | None,
    cpu_ms: int | None,
    wall_ms: int | None,
    pids: int | None,
    output_kb: int | None,
    file_kb: int | None,
    stdin: Path | None,
    files: tuple[str, ...],
    collect: bool,
    command: tuple[str, ...],
) -> None:
    """Run COMMAND (after --) in a fresh box and print the result as JSON (exit 0 whenever the box ran)."""
    import asyncio

    from stockade.cli.local import local_sandbox
    from stockade.sandbox import BoxSpec, Limits

    limits = Limits().with_overrides(
        memory_mb=memory_mb, cpu_ms=cpu_ms, wall_ms=wall_ms, processes=pids, output_kb=output_kb,
        file_size_kb=file_kb,
    )  # fmt: skip
    spec = BoxSpec(
        argv=list(command),
        stdin=stdin.read_bytes() if stdin else b"",
        files=_parse_files(files),
        limits=limits,
        collect_files=collect,
    )

    async def go() -> dict[str, object]:
        box = local_sandbox(slots=1)
        try:
            return (await box.run(spec)).to_json()
        finally:
            box.close()

    result = asyncio.run(go())
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")


@sandbox.command("check")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable report")
def sandbox_check(as_json: bool) -> None:
    """Print what the host offers; exit non-zero, naming the cause, when a safe box cannot be built."""
    import asyncio

    from stockade.sandbox.check import check_host

    report = asyncio.run(check_host())
    if as_json:
        body = {"ok": report.ok, "problems": report.problems, "warnings": report.warnings, "facts": report.facts}
        click.echo(json.dumps(body, indent=2))
    else:
        for key, value in report.facts.items():
            click.echo(f"{key:>20}: {value}")
        click.echo("")
        if report.ok:
            click.echo("OK: this host can build safe boxes")
        for w in report.warnings:
            click.echo(f"WARN: {w}", err=True)
        for p in report.problems:
            click.echo(f"FAIL: {p}", err=True)
    if not report.ok:
        raise click.exceptions.Exit(1)
