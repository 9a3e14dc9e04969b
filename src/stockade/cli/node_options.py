"""What `serve` and `worker` share: the options of a node's boxes, drain and webhooks, and its start."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from stockade.cli.errors import fail

if TYPE_CHECKING:
    from stockade.service.node import Service

F = TypeVar("F", bound=Callable[..., Any])


def _networks(values: tuple[str, ...]) -> tuple[str, ...]:
    """CIDRs, checked here so a typo stops the start with a usage error (an env var may hold several)."""
    import ipaddress

    found = tuple(n for v in values for n in v.split())
    for n in found:
        try:
            ipaddress.ip_network(n)
        except ValueError as e:
            raise click.BadParameter(str(e)) from None
    return found


OPTIONS = [
    click.option("--slots", envvar="STOCKADE_SLOTS", type=click.IntRange(min=1), default=os.cpu_count() or 1,
                 show_default=True, help="Boxes running at once"),
    click.option("--run-dir", envvar="STOCKADE_RUN_DIR", type=click.Path(path_type=Path),
                 default=Path("/run/stockade"), show_default=True, help="Per-box host dirs"),
    click.option("--uid-base", envvar="STOCKADE_UID_BASE", type=int, default=60000, show_default=True,
                 help="Host uid of slot 0"),
    click.option("--cgroup-name", envvar="STOCKADE_CGROUP", default="stockade", show_default=True,
                 help="cgroup under the node's own"),
    click.option("--drain-seconds", envvar="STOCKADE_DRAIN_SECONDS", type=float, default=30.0, show_default=True,
                 help="SIGTERM grace"),
    click.option("--webhook-allow", envvar="STOCKADE_WEBHOOK_ALLOW", multiple=True, metavar="CIDR",
                 callback=lambda _c, _p, v: _networks(v),
                 help="A network webhooks may call although not public; repeatable"),
]  # fmt: skip


def node_options(command: F) -> F:
    for option in reversed(OPTIONS):
        command = option(command)
    return command


def started_node(shared: dict[str, Any], **fields: Any) -> Service:
    """The node's Service, started, from the shared options and the command's own ServiceConfig fields
    (`egress_pins` goes to the box); a start the host or the config refuses ends the command, saying why."""
    from stockade.sandbox import SandboxConfig, SandboxUnavailable
    from stockade.service.config import ServiceConfig
    from stockade.service.node import Service, StartupRefused
    from stockade.service.telemetry import setup_logging

    setup_logging()
    box = SandboxConfig(
        run_dir=shared["run_dir"], slots=shared["slots"], uid_base=shared["uid_base"],
        cgroup_name=shared["cgroup_name"], egress_pins=fields.pop("egress_pins", {}),
    )  # fmt: skip
    config = ServiceConfig(
        sandbox=box, drain_seconds=shared["drain_seconds"], webhook_allow=shared["webhook_allow"], **fields
    )
    if problem := config.cluster_problem():
        fail(f"cannot start: {problem}", exit_code=2)
    service = Service(config)
    try:
        service.start()
    except (SandboxUnavailable, StartupRefused) as e:
        fail(f"cannot start: {e}", exit_code=2)
    return service
