"""`stockade serve`: the HTTP service on an embedded default (SQLite file, no other server)."""

from __future__ import annotations

import contextlib
import re
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

from stockade.cli.datadir import data_dir_option
from stockade.cli.errors import fail
from stockade.cli.node_options import node_options, started_node

if TYPE_CHECKING:
    import uvicorn
    from fastapi import FastAPI

    from stockade.service.node import Service


def listen_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def draining_server(service: Service, app: FastAPI, url: str) -> uvicorn.Server:
    """uvicorn, with a "listening on" line, and SIGTERM draining the service (Service.drain) before the
    listener closes: /readyz and new requests get their typed 503 at once, for as long as the drain lasts.
    A second signal ends the drain's wait (its runs are then stopped and recorded as interrupted)."""
    import asyncio

    import uvicorn

    from stockade.service.connections import BACKLOG, Guard, protocol_class

    guard = Guard(service.metrics, service.sandbox.slots_total)  # timeouts and the connection cap

    class DrainingServer(uvicorn.Server):
        loop: asyncio.AbstractEventLoop | None = None
        forced = False

        async def startup(self, sockets: list[Any] | None = None) -> None:
            self.loop = asyncio.get_running_loop()
            self.loop.set_exception_handler(guard.exception_handler)  # accept()'s EMFILE: a count, not a flood
            await super().startup(sockets)
            if self.started:
                print(f"stockade: listening on {url}", file=sys.stderr, flush=True)

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            self.forced = self.should_exit
            service.draining = True  # readiness and admission, before the loop even runs again
            if self.loop is not None:  # from a signal handler: only a thread-safe call is safe
                self.loop.call_soon_threadsafe(service.begin_drain)
            super().handle_exit(sig, frame)
            # A completed drain is a clean exit (status 0); uvicorn would re-raise the signal afterwards.
            self._captured_signals.clear()

        async def shutdown(self, sockets: list[Any] | None = None) -> None:
            await service.drain(force=lambda: self.forced)  # the listener is still open meanwhile
            await super().shutdown(sockets)

        def capture_signals(self) -> contextlib._GeneratorContextManager[None]:
            # uvicorn restores the handlers it found once serving ends. Make those "ignore": past that
            # point the process is only exiting, and a late signal must not turn a clean exit into -15.
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, signal.SIG_IGN)
            return super().capture_signals()

    drain = int(service.config.drain_seconds) + 1
    config = uvicorn.Config(
        app, host=service.config.host, port=service.config.port, log_config=None, access_log=False,
        timeout_graceful_shutdown=drain, http=protocol_class(guard), backlog=BACKLOG,
        # /v1/execute/stream: websockets' sans-IO protocol pauses its writes at the transport's high-water
        # mark and its reads while a message waits (bounded both ways); one message is at most a body.
        ws="websockets-sansio", ws_max_size=service.config.max_body_bytes, ws_per_message_deflate=False,
    )  # fmt: skip
    return DrainingServer(config)


def _pins(values: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """NAME=ADDRESS pins for the egress proxy (docs/network.md), checked here like the CIDRs."""
    import ipaddress

    pins: dict[str, list[str]] = {}
    for pin in (p for v in values for p in v.split()):
        name, sep, address = pin.partition("=")
        try:
            if not sep or not name:
                raise ValueError("expected NAME=ADDRESS")
            pins.setdefault(name.lower(), []).append(str(ipaddress.ip_address(address)))
        except ValueError as e:
            raise click.BadParameter(f"{pin!r}: {e}") from None
    return {name: tuple(addresses) for name, addresses in pins.items()}


def _prefix(value: str) -> str:
    """A path prefix: '' (the root) or /segment[/segment...], each of URL-safe characters."""
    value = "" if value == "/" else value
    if not re.fullmatch(r"(/[A-Za-z0-9._~-]+)*", value):
        raise click.BadParameter(f"{value!r}: '/' or a path such as /judge0 (no trailing slash)")
    return value


@click.command("serve")
@click.option("--host", envvar="STOCKADE_HOST", default="127.0.0.1", show_default=True, help="Bind address")
@click.option("--port", envvar="STOCKADE_PORT", type=click.IntRange(1, 65535), default=8000, show_default=True)
@data_dir_option()
@click.option("--database-url", envvar="STOCKADE_DATABASE_URL", metavar="URL",
              help="A PostgreSQL store shared by a cluster's nodes, instead of the data dir's SQLite file")  # fmt: skip
@click.option("--node-id", envvar="STOCKADE_NODE_ID", default="",
              help="This node's name among those sharing --database-url, the same across its restarts")  # fmt: skip
@click.option("--redis-url", envvar="STOCKADE_REDIS_URL", metavar="URL",
              help="The cluster's job queue: submissions and /v1/execute run on workers (docs/cluster.md)")  # fmt: skip
@click.option("--embedded-worker", envvar="STOCKADE_EMBEDDED_WORKER", is_flag=True,
              help="With --redis-url: this node runs queued jobs too")  # fmt: skip
@click.option("--tenant-queue", envvar="STOCKADE_TENANT_QUEUE", type=click.IntRange(min=1), default=200,
              show_default=True, help="With --redis-url: a tenant's jobs queued or running; beyond: 429")  # fmt: skip
@click.option(
    "--queue", envvar="STOCKADE_QUEUE", type=click.IntRange(min=0), default=8, show_default=True,
    help="Requests that may wait for a slot",
)  # fmt: skip
@click.option("--judge0/--no-judge0", envvar="STOCKADE_JUDGE0", default=True, show_default=True,
              help="The Judge0 CE compatible API (docs/compat.md)")  # fmt: skip
@click.option("--judge0-prefix", envvar="STOCKADE_JUDGE0_PREFIX", default="/judge0", show_default=True,
              callback=lambda _c, _p, v: _prefix(v), help="Its path prefix ('/' for the root)")  # fmt: skip
@click.option("--piston/--no-piston", envvar="STOCKADE_PISTON", default=True, show_default=True,
              help="The Piston v2 compatible API at /api/v2")  # fmt: skip
@click.option("--egress-pin", envvar="STOCKADE_EGRESS_PINS", multiple=True, metavar="NAME=ADDRESS",
              callback=lambda _c, _p, v: _pins(v),
              help="Resolve NAME to ADDRESS in the egress proxy instead of DNS; repeatable")  # fmt: skip
@node_options
def serve(
    host: str,
    port: int,
    data_dir: Path,
    database_url: str | None,
    node_id: str,
    redis_url: str | None,
    embedded_worker: bool,
    tenant_queue: int,
    queue: int,
    judge0: bool,
    judge0_prefix: str,
    piston: bool,
    egress_pin: dict[str, tuple[str, ...]],
    **shared: Any,
) -> None:
    """Start the service. Refuses to start, naming why, when the host cannot build a safe box."""
    # The web stack loads only for this command, so `stockade run` and friends start fast.
    from stockade.service.app import create_app

    service = started_node(
        shared, host=host, port=port, data_dir=data_dir, database_url=database_url, node_id=node_id,
        redis_url=redis_url, embedded_worker=embedded_worker, tenant_queue_size=tenant_queue, queue_size=queue,
        judge0=judge0, judge0_prefix=judge0_prefix, piston=piston, egress_pins=egress_pin,
    )  # fmt: skip
    server = draining_server(service, create_app(service=service), listen_url(host, port))
    server.run()
    if not server.started:
        fail(f"could not listen on {listen_url(host, port)} (see the log above)", exit_code=2)
