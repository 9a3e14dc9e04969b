"""Every CLI error ends as one line on stderr and a non-zero exit; an unexpected one also gets an id and a log.

Exit codes: 0 done, 1 the operation failed (CliError), 2 bad usage or a refusal (click's usage errors, CliError
with code 2), 70 internal error (the traceback is appended to the CLI log, under the id printed).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import click

EXIT_INTERNAL = 70
LOG_ENV = "STOCKADE_CLI_LOG"


class CliError(Exception):
    """An expected failure of a command: printed as `<command path>: <message>`, exit `exit_code`."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        ctx = click.get_current_context(silent=True)
        self.command_path = ctx.command_path if ctx is not None else "stockade"


def fail(message: str, exit_code: int = 1) -> NoReturn:
    raise CliError(message, exit_code)


def one_line(text: str) -> str:
    return "; ".join(part.strip() for part in text.strip().splitlines() if part.strip())


def _log_path() -> Path:
    configured = os.environ.get(LOG_ENV)
    if configured:
        return Path(configured)
    if os.geteuid() == 0:
        return Path("/var/log/stockade/cli.log")
    import tempfile

    return Path(tempfile.gettempdir()) / f"stockade-cli-{os.geteuid()}.log"


def _log_internal(error_id: str, exc: BaseException) -> Path | None:
    import traceback
    from datetime import UTC, datetime

    path = _log_path()
    text = "".join(traceback.format_exception(exc))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as log:
            log.write(f"{datetime.now(UTC).isoformat()} internal error {error_id}: {' '.join(sys.argv)}\n{text}\n")
    except OSError:
        return None
    return path


def report_internal(exc: BaseException) -> int:
    import secrets

    error_id = secrets.token_hex(4)
    where = _log_internal(error_id, exc)
    detail = f"; traceback in {where}" if where else ""
    click.echo(f"stockade: internal error {error_id}: {type(exc).__name__}: {one_line(str(exc))}{detail}", err=True)
    return EXIT_INTERNAL


class OneLineErrors(click.Group):
    """The root group: runs a command and turns whatever it raises into one line and an exit code."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        sys.exit(self.exit_code(args, prog_name or "stockade", **extra))

    def exit_code(self, args: Sequence[str] | None, prog_name: str, **extra: Any) -> int:
        try:
            rv = super().main(args, prog_name, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as e:
            e.show()  # a bare group: its help, as click prints it
            return e.exit_code
        except click.UsageError as e:
            path = e.ctx.command_path if e.ctx is not None else prog_name
            click.echo(f"{path}: {one_line(e.format_message())} (see '{path} --help')", err=True)
            return e.exit_code
        except click.ClickException as e:
            click.echo(f"{prog_name}: {one_line(e.format_message())}", err=True)
            return e.exit_code
        except click.Abort:
            click.echo(f"{prog_name}: aborted", err=True)
            return 130
        except CliError as e:
            click.echo(f"{e.command_path}: {one_line(e.message)}", err=True)
            return e.exit_code
        except Exception as e:
            return report_internal(e)
        return rv if isinstance(rv, int) else 0
