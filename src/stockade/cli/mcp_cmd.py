"""`stockade mcp`: the MCP server over stdio (docs/agents.md), for an agent that starts it as a subprocess.

Every call runs as one tenant of the data dir (`--tenant`; by default the open mode's `local`), with its
rate limit, quota, languages and maximum limits, through the same pipeline as the HTTP service: each
execution is journaled, recorded and audited in the data dir. stdout carries the protocol only; logs go
to stderr. The tools are those of service/routes/mcp.py.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from stockade.cli.datadir import data_dir_option
from stockade.cli.errors import fail

if TYPE_CHECKING:
    from stockade.service.node import Caller, Service


@click.command("mcp")
@data_dir_option()
@click.option("--tenant", envvar="STOCKADE_MCP_TENANT", default=None,
              help="The tenant every call runs as (default: open mode's `local`, made if missing)")  # fmt: skip
@click.option("--slots", type=click.IntRange(min=1), default=min(os.cpu_count() or 1, 4), show_default=True,
              help="Boxes running at once")  # fmt: skip
@click.option("--run-dir", envvar="STOCKADE_MCP_RUN_DIR", type=click.Path(path_type=Path),
              default=Path("/run/stockade-mcp"), show_default=True, help="Per-box host dirs")  # fmt: skip
@click.option("--uid-base", envvar="STOCKADE_MCP_UID_BASE", type=int, default=62500, show_default=True,
              help="Host uid of slot 0")  # fmt: skip
@click.option("--cgroup-name", envvar="STOCKADE_MCP_CGROUP", default="stockade-mcp", show_default=True,
              help="cgroup under this process's own")  # fmt: skip
def mcp(data_dir: Path, tenant: str | None, slots: int, run_dir: Path, uid_base: int, cgroup_name: str) -> None:
    """Serve the MCP tools (run_code, list_languages, workspaces) over stdin and stdout."""
    import asyncio

    from stockade.sandbox import SandboxConfig, SandboxUnavailable
    from stockade.service.config import ServiceConfig
    from stockade.service.node import Caller, Service, StartupRefused
    from stockade.service.telemetry import setup_logging

    setup_logging()
    sandbox = SandboxConfig(run_dir=run_dir, slots=slots, uid_base=uid_base, cgroup_name=cgroup_name)
    service = Service(ServiceConfig(data_dir=data_dir, sandbox=sandbox, queue_size=slots * 4, mcp=False))
    try:
        service.start()
    except (SandboxUnavailable, StartupRefused) as e:
        fail(f"cannot start: {e}", exit_code=2)
    store = service.store
    assert store is not None
    name = tenant or service.config.open_tenant
    try:
        who = Caller(store.get_tenant(name), None)
    except LookupError:
        if tenant:
            service.sandbox.close()
            fail(f"no tenant {tenant!r} in {data_dir}: create it with `stockade tenants create {tenant}`")
        store.create_tenant(name, "stockade mcp over stdio", rate_per_minute=service.config.open_rate_per_minute)
        who = Caller(store.get_tenant(name), None)
    asyncio.run(_serve(service, who))


async def _serve(service: Service, who: Caller) -> None:
    import asyncio

    from stockade.service.routes.mcp import build

    detection = asyncio.create_task(service.registry.detect_all())
    try:
        await build(service, lambda _ctx: who).run_stdio_async()
    finally:
        detection.cancel()
        await service.registry.cancel_probes()
        await service.stop()
