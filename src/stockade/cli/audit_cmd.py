"""`stockade audit verify|export`: the signed, hash-chained audit trail of the service's data directory."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

import click

from stockade.cli.datadir import data_dir_option, opened

if TYPE_CHECKING:
    from datetime import datetime

ANCHOR = re.compile(r"^([1-9][0-9]*):([0-9a-f]{64})$")


@click.group("audit", no_args_is_help=True)
def audit() -> None:
    """The signed, hash-chained audit trail."""


def _anchor(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, str] | None:
    if value is None:
        return None
    m = ANCHOR.match(value.strip().lower())
    if m is None:
        raise click.BadParameter(f"expected SEQ:HASH (a record number and its 64 hex digit hash), got {value!r}")
    return int(m.group(1)), m.group(2)


@audit.command("verify")
@click.option("--anchor", callback=_anchor, help="SEQ:HASH of a head saved off the host")
@click.option(
    "--public-key", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Verify with this public key"
)
@data_dir_option()
def audit_verify(anchor: tuple[int, str] | None, public_key: Path | None, data_dir: Path) -> None:
    """Check every record's hash, chain and signature; name any edited, deleted, inserted or moved record.
    Exit 1 when the trail does not verify."""
    with opened(data_dir) as (_, log):
        report = log.verify(public_key=public_key, anchor=anchor)
        click.echo(json.dumps(report.to_json(), indent=2, default=str))
    if not report.ok:
        raise click.exceptions.Exit(1)


@audit.command("export")
@click.option("--since", type=click.DateTime(), help="Only records at or after this time (UTC)")
@data_dir_option()
def audit_export(since: datetime | None, data_dir: Path) -> None:
    """Write records as JSON lines."""
    with opened(data_dir) as (_, log):
        for record in log.export(since):
            click.echo(json.dumps(record, sort_keys=True, default=str))
