"""The service's data directory for the operator commands: where it is, and its store and audit log opened."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from stockade.cli.errors import fail

if TYPE_CHECKING:
    from stockade.service.audit import AuditLog
    from stockade.service.config import ServiceConfig
    from stockade.service.store import Store

DEFAULT_DATA_DIR = Path("/var/lib/stockade")
DATABASE_URL_ENV = "STOCKADE_DATABASE_URL"
F = TypeVar("F", bound=Callable[..., Any])


def data_dir_option(help_text: str = "Service data directory (SQLite file and audit key)") -> Callable[[F], F]:
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        envvar="STOCKADE_DATA_DIR",
        default=DEFAULT_DATA_DIR,
        show_default=True,
        help=help_text,
    )


@contextmanager
def opened(data_dir: Path, *, create: bool = False) -> Iterator[tuple[Store, AuditLog]]:
    """The store and audit log of `data_dir`, or of the cluster's database when STOCKADE_DATABASE_URL is set
    (as for `serve`; the audit key stays in `data_dir`). Without `create`, a directory that holds no database
    is an error (a typo in --data-dir must not start an empty one). Store errors end the command with their
    message."""
    from stockade.service.audit import AuditLog
    from stockade.service.db import describe
    from stockade.service.storage import WRITE_ERRORS
    from stockade.service.store import Store

    refused: tuple[type[Exception], ...] = (LookupError, ValueError, *WRITE_ERRORS)
    cfg = config(data_dir)
    if not create and cfg.database_url is None and not cfg.db_path.is_file():
        fail(
            f"no Stockade data in {data_dir} (no {cfg.db_path.name}): pass --data-dir or set STOCKADE_DATA_DIR "
            "to the service's data directory, or start one with `stockade tenants create TENANT`"
        )
    try:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        store = Store(cfg.store_location)
    except WRITE_ERRORS as e:
        fail(f"cannot open {describe(cfg.store_location)}: {e}")
    try:
        yield store, AuditLog(store, cfg.audit_key_path)
    except refused as e:
        fail(str(e))
    finally:
        store.close()


def config(data_dir: Path) -> ServiceConfig:
    """The service's settings the operator commands share with `serve`: the data dir, and the cluster's
    database when STOCKADE_DATABASE_URL is set."""
    from stockade.service.config import ServiceConfig

    return ServiceConfig(data_dir=data_dir, database_url=os.environ.get(DATABASE_URL_ENV) or None)
