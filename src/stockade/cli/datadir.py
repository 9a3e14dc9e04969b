"""The service's data directory for the operator commands: where it is, and its store and audit log opened."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from stockade.cli.errors import fail

if TYPE_CHECKING:
    from stockade.service.audit import AuditLog
    from stockade.service.store import Store

DEFAULT_DATA_DIR = Path("/var/lib/stockade")
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
    """The store and audit log of `data_dir`. Without `create`, a directory that holds no database is an error
    (a typo in --data-dir must not start an empty one). Store errors end the command with their message."""
    import sqlite3

    from stockade.service.audit import AuditLog
    from stockade.service.config import ServiceConfig
    from stockade.service.store import Store, StoreError

    cfg = ServiceConfig(data_dir=data_dir)
    if not create and not cfg.db_path.is_file():
        fail(
            f"no Stockade data in {data_dir} (no {cfg.db_path.name}): pass --data-dir or set STOCKADE_DATA_DIR "
            "to the service's data directory, or start one with `stockade tenants create TENANT`"
        )
    try:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        store = Store(cfg.db_path)
    except (OSError, sqlite3.Error, StoreError) as e:
        fail(f"cannot open {cfg.db_path}: {e}")
    try:
        yield store, AuditLog(store, cfg.audit_key_path)
    except (StoreError, LookupError, ValueError, sqlite3.Error) as e:
        fail(str(e))
    finally:
        store.close()
