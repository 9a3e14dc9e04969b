"""`stockade audit verify|head|export`: the signed, hash-chained audit trail of the service's data directory.

All three only read (service/trail.py): no key, database or directory is ever created. Pin the public key
(printed with its fingerprint at the service's first start; keep a copy off the host) with --public-key,
and store `stockade audit head` elsewhere for --anchor: without both, a re-keyed or rolled-back trail
cannot be told from a genuine one (docs/audit.md, "What verify cannot detect").
"""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

import click

from stockade.cli import datadir
from stockade.cli.datadir import data_dir_option
from stockade.cli.errors import fail

if TYPE_CHECKING:
    from collections.abc import Iterator
    from datetime import datetime

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from stockade.service.trail import Anchor

ANCHOR = re.compile(r"^([1-9][0-9]*):([0-9a-f]{64})$")


@click.group("audit", no_args_is_help=True)
def audit() -> None:
    """The signed, hash-chained audit trail."""


def _anchor(ctx: click.Context, param: click.Parameter, value: str | None) -> Anchor | None:
    """SEQ:HASH, or a file holding what `stockade audit head` printed (then its signature is checked too)."""
    from stockade.service.trail import Anchor, TrailError, parse_anchor_file

    if value is None:
        return None
    m = ANCHOR.match(value.strip().lower())
    if m is not None:
        return Anchor(int(m.group(1)), m.group(2))
    if Path(value).is_file():
        try:
            return parse_anchor_file(Path(value))
        except TrailError as e:
            raise click.BadParameter(str(e)) from None
    raise click.BadParameter(f"expected SEQ:HASH (a record number and its 64 hex digit hash) or a head file: {value!r}")


@contextlib.contextmanager
def _trail(data_dir: Path) -> Iterator[None]:
    """A data dir that exists, and trail errors ending the command with their one line."""
    from stockade.service.trail import TrailError

    if not data_dir.is_dir():
        fail(f"no Stockade data directory at {data_dir}: pass --data-dir or set STOCKADE_DATA_DIR")
    try:
        yield
    except TrailError as e:
        fail(str(e))


def _key(public_key: Path | None, data_dir: Path) -> tuple[Ed25519PublicKey, bool]:
    """(the key to verify with, whether it is pinned): --public-key, else the data dir's own `.pub`."""
    from stockade.service.audit import public_key_path
    from stockade.service.trail import read_public_key

    if public_key is not None:
        return read_public_key(public_key), True
    return read_public_key(public_key_path(datadir.config(data_dir).audit_key_path)), False


PUBLIC_KEY_OPTION = click.option(
    "--public-key", type=click.Path(dir_okay=False, path_type=Path),
    help="The audit public key pinned off the host (default: the data dir's own, which an attacker can replace)",
)  # fmt: skip


@audit.command("verify")
@click.option("--anchor", callback=_anchor, help="SEQ:HASH, or a file from `stockade audit head`, saved off the host")
@PUBLIC_KEY_OPTION
@data_dir_option()
def audit_verify(anchor: Anchor | None, public_key: Path | None, data_dir: Path) -> None:
    """Check every record's hash, chain and signature; name any edited, deleted, inserted or moved record.
    Reads only. Exit 1 when the trail does not verify, or cannot be read."""
    from stockade.service import trail
    from stockade.service.audit import key_fingerprint

    with _trail(data_dir):
        key, pinned = _key(public_key, data_dir)
        report = trail.verify(datadir.config(data_dir).store_location, key, anchor)
    out = {**report.to_json(), "key": {"fingerprint": key_fingerprint(key), "pinned": pinned}, "anchored": bool(anchor)}
    click.echo(json.dumps(out, indent=2, default=str))
    if not pinned or anchor is None:
        missing = " and ".join(x for x, ok in (("--public-key", pinned), ("--anchor", anchor)) if not ok)
        click.echo(f"stockade audit verify: note: without {missing}, a re-keyed or rolled-back trail "
                   "verifies as ok (docs/audit.md)", err=True)  # fmt: skip
    if not report.ok:
        raise click.exceptions.Exit(1)


@audit.command("head")
@PUBLIC_KEY_OPTION
@data_dir_option()
def audit_head(public_key: Path | None, data_dir: Path) -> None:
    """Print the trail's signed head (after verifying it), to store off the host for `verify --anchor`.
    Reads only."""
    from stockade.service import trail

    with _trail(data_dir):
        key, _ = _key(public_key, data_dir)
        click.echo(json.dumps(trail.signed_head(datadir.config(data_dir).store_location, key), indent=2))


@audit.command("export")
@click.option("--since", type=click.DateTime(), help="Only records at or after this time (UTC)")
@data_dir_option()
def audit_export(since: datetime | None, data_dir: Path) -> None:
    """Write records as JSON lines. Reads only."""
    from stockade.service import trail

    with _trail(data_dir):
        for record in trail.export(datadir.config(data_dir).store_location, since):
            click.echo(json.dumps(record, sort_keys=True, default=str))
