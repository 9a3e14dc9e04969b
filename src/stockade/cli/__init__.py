"""The `stockade` command: operator and user commands over every layer."""

from __future__ import annotations

import typer

from stockade.cli import sandbox as sandbox_cmds

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Stockade: secure polyglot code execution.")
app.add_typer(sandbox_cmds.app, name="sandbox")
