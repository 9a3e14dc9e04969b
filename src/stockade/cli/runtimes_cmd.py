"""`stockade runtimes`: every language with its toolchain's version and availability on this host."""

from __future__ import annotations

import json

import click


@click.command("runtimes")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable list")
@click.option("--refresh", is_flag=True, help="Probe every toolchain again, even if nothing changed")
def runtimes(as_json: bool, refresh: bool) -> None:
    """Every language with each of its toolchains' versions and availability on this host (the default,
    the newest available, first). The answer is kept and
    reused while the language definitions, the installed packages and each version command's program are
    unchanged (see stockade/cli/runtimes_cache.py)."""
    from stockade.cli import runtimes_cache

    kept = None if refresh else runtimes_cache.load()
    rows, probed_at = kept if kept is not None else (runtimes_cache.probe(), None)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    defined = [r for r in rows if not r.get("missing")]
    languages = {r["language"] for r in defined}
    available = {r["language"] for r in defined if r["available"]}
    versions = sum(1 for r in defined if r["available"])
    lacking = len(rows) - len(defined)
    click.echo(f"{len(available)}/{len(languages)} languages available, {versions} versions; {lacking} not provided")
    table = [
        [str(r["language"]) if r.get("default", True) else "", str(r["name"]) if r.get("default", True) else "",
         "-" if r["compiled"] is None else "compiled" if r["compiled"] else "interpreted", str(r.get("toolchain", "")),
         (str(r["version"]) + (" (default)" if r.get("default", True) and r["available"] else ""))
         if r["available"] else f"{'not provided' if r.get('missing') else 'missing'} ({r['detail']})"]
        for r in rows
    ]  # fmt: skip
    missing = {i for i, r in enumerate(rows) if not r["available"]}
    print_table(["language", "name", "kind", "toolchain", "version"], table, red=missing)
    if probed_at:
        click.echo(f"(probed {probed_at}, nothing changed since; --refresh probes again)")


def print_table(headers: list[str], rows: list[list[str]], red: set[int]) -> None:
    """Plain aligned columns: rich would add ~40 ms of import and ~30 ms of layout to a 100 ms command."""
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]
    for i, cells in enumerate([headers, ["-" * w for w in widths], *rows]):
        line = "  ".join(cell.ljust(w) for cell, w in zip(cells, widths, strict=True)).rstrip()
        click.echo(click.style(line, fg="red") if i - 2 in red else line)  # colour only on a terminal
