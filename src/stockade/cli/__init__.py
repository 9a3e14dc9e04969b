"""The `stockade` command: operator and user commands over every layer.

One module per command, named after it (`run_cmd.py` holds `stockade run`). Importing this package loads
click and those modules only: each command imports what it uses when it runs (the web stack only for
`serve`, the engine only for `run`), so `stockade --help` and the light commands start at once.
tests/clients/test_cli_startup.py holds that.
"""

from __future__ import annotations

from stockade.cli.audit_cmd import audit
from stockade.cli.errors import OneLineErrors
from stockade.cli.judge_cmd import judge
from stockade.cli.mcp_cmd import mcp
from stockade.cli.run_cmd import run
from stockade.cli.runtimes_cmd import runtimes
from stockade.cli.sandbox_cmd import sandbox
from stockade.cli.serve_cmd import serve
from stockade.cli.tenants_cmd import keys, tenants
from stockade.cli.toolchains_cmd import toolchains
from stockade.cli.worker_cmd import worker

app = OneLineErrors(
    "stockade",
    help="Stockade: secure polyglot code execution.",
    no_args_is_help=True,
    commands=[serve, worker, run, judge, runtimes, toolchains, sandbox, tenants, keys, audit, mcp],
)
app.context_settings = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
