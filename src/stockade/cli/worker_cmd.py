"""`stockade worker`: a cluster's execution node (docs/cluster.md). No HTTP API: it takes the Redis
queue's jobs, runs them in its own boxes and records them in the shared store. SIGTERM stops taking
jobs and drains the running ones as `serve` does; a second signal ends the drain's wait."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import click

from stockade.cli.datadir import data_dir_option
from stockade.cli.errors import fail


@click.command("worker")
@data_dir_option()
@click.option("--database-url", envvar="STOCKADE_DATABASE_URL", metavar="URL", required=True,
              help="The PostgreSQL store the cluster's nodes share")  # fmt: skip
@click.option("--redis-url", envvar="STOCKADE_REDIS_URL", metavar="URL", required=True,
              help="The cluster's job queue")  # fmt: skip
@click.option("--node-id", envvar="STOCKADE_NODE_ID", required=True,
              help="This worker's name in the cluster, the same across its restarts")  # fmt: skip
@click.option("--slots", envvar="STOCKADE_SLOTS", type=click.IntRange(min=1), default=os.cpu_count() or 1,
              show_default=True, help="Jobs running at once")  # fmt: skip
@click.option("--run-dir", envvar="STOCKADE_RUN_DIR", type=click.Path(path_type=Path), default=Path("/run/stockade"),
              show_default=True, help="Per-box host dirs")  # fmt: skip
@click.option("--uid-base", envvar="STOCKADE_UID_BASE", type=int, default=60000, show_default=True,
              help="Host uid of slot 0")  # fmt: skip
@click.option("--cgroup-name", envvar="STOCKADE_CGROUP", default="stockade", show_default=True,
              help="cgroup under the worker's own")  # fmt: skip
@click.option("--drain-seconds", envvar="STOCKADE_DRAIN_SECONDS", type=float, default=30.0, show_default=True,
              help="SIGTERM grace")  # fmt: skip
@click.option("--webhook-allow", envvar="STOCKADE_WEBHOOK_ALLOW", multiple=True, metavar="CIDR",
              help="A network webhooks may call although not public; repeatable")  # fmt: skip
def worker(
    data_dir: Path,
    database_url: str,
    redis_url: str,
    node_id: str,
    slots: int,
    run_dir: Path,
    uid_base: int,
    cgroup_name: str,
    drain_seconds: float,
    webhook_allow: tuple[str, ...],
) -> None:
    """Run the cluster's queued jobs. Refuses to start, naming why, when the host cannot build a safe box."""
    import asyncio

    from stockade.sandbox import SandboxConfig, SandboxUnavailable
    from stockade.service.config import ServiceConfig
    from stockade.service.node import Service, StartupRefused
    from stockade.service.queue import ERRORS
    from stockade.service.telemetry import setup_logging

    setup_logging()
    config = ServiceConfig(
        data_dir=data_dir,
        database_url=database_url,
        redis_url=redis_url,
        node_id=node_id,
        sandbox=SandboxConfig(run_dir=run_dir, slots=slots, uid_base=uid_base, cgroup_name=cgroup_name),
        drain_seconds=drain_seconds,
        webhook_allow=tuple(n for v in webhook_allow for n in v.split()),
    )
    service = Service(config)
    try:
        service.start()
    except (SandboxUnavailable, StartupRefused) as e:
        fail(f"cannot start: {e}", exit_code=2)
    try:
        asyncio.run(_work(service))
    except ERRORS as e:
        fail(f"cannot start: the queue at {redis_url} does not answer: {type(e).__name__}: {e}", exit_code=2)


async def _work(service: object) -> None:
    import asyncio
    import sys

    from stockade.service import webhooks
    from stockade.service.cluster import queue_of, shared_store, worker_of
    from stockade.service.node import Service
    from stockade.service.submissions import calling_back

    assert isinstance(service, Service)
    store, queue = shared_store(service), queue_of(service)
    deliveries = webhooks.configured(service.config)
    node = worker_of(service, store, queue, calling_back(store, deliveries))
    stop = asyncio.Event()
    forced = False

    def on_signal() -> None:
        nonlocal forced
        forced = stop.is_set()
        stop.set()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    try:
        await node.start()
        print(f"stockade: worker {service.config.node_id} taking jobs", file=sys.stderr, flush=True)
        await stop.wait()
        service.begin_drain()
        await asyncio.gather(node.stop(service.config.drain_seconds), service.drain(force=lambda: forced))
    finally:
        await service.stop()
        await deliveries.stop(service.config.drain_seconds)
        await queue.close()
        store.close()
