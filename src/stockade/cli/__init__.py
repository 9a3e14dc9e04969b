"""The `stockade` command: operator and user commands over every layer."""

from __future__ import annotations

import typer

from stockade.cli import admin as admin_cmds
from stockade.cli import engine as engine_cmds
from stockade.cli import sandbox as sandbox_cmds
from stockade.cli import serve as serve_cmds

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Stockade: secure polyglot code execution.")
app.add_typer(sandbox_cmds.app, name="sandbox")
app.add_typer(engine_cmds.toolchains_app, name="toolchains")
app.add_typer(admin_cmds.tenants_app, name="tenants")
app.add_typer(admin_cmds.keys_app, name="keys")
app.add_typer(admin_cmds.audit_app, name="audit")
app.command()(engine_cmds.run)
app.command()(engine_cmds.runtimes)
app.command()(serve_cmds.serve)
