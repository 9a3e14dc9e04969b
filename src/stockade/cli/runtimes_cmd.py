"""`stockade runtimes`: every language with its toolchain's version and availability on this host."""

from __future__ import annotations

import json

import click


@click.command("runtimes")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable list")
@click.option("--refresh", is_flag=True, help="Probe every toolchain again, even if nothing changed")
def runtimes(as_json: bool, refresh: bool) -> None:
    """Every language with its toolchain version and availability on this host. The answer is kept and
    reused while the language definitions, the installed packages and each version command's program are
    unchanged (see stockade/cli/runtimes_cache.py)."""
    from stockade.cli import runtimes_cache

    kept = None if refresh else runtimes_cache.load()
    rows, probed_at = kept if kept is not None else (runtimes_cache.probe(), None)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    available = sum(1 for r in rows if r["available"])
    caption = f"probed {probed_at}, nothing changed since (--refresh probes again)" if probed_at else None
    table = Table(title=f"{available}/{len(rows)} languages available", caption=caption)
    for col in ("language", "name", "version", "kind"):
        table.add_column(col)
    for r in rows:
        version = str(r["version"]) if r["available"] else f"[red]missing[/] ({r['detail']})"
        table.add_row(str(r["language"]), str(r["name"]), version, "compiled" if r["compiled"] else "interpreted")
    Console().print(table)
