"""`stockade worker`: a cluster's execution node (docs/cluster.md). No HTTP API: it takes the Redis
queue's jobs, runs them in its own boxes and records them in the shared store. SIGTERM stops taking
jobs and drains the running ones as `serve` does; a second signal ends the drain's wait."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import click

from stockade.cli.datadir import data_dir_option
from stockade.cli.errors import fail
from stockade.cli.node_options import node_options, started_node


@click.command("worker")
@data_dir_option()
@click.option("--database-url", envvar="STOCKADE_DATABASE_URL", metavar="URL", required=True,
              help="The PostgreSQL store the cluster's nodes share")  # fmt: skip
@click.option("--redis-url", envvar="STOCKADE_REDIS_URL", metavar="URL", required=True,
              help="The cluster's job queue")  # fmt: skip
@click.option("--node-id", envvar="STOCKADE_NODE_ID", required=True,
              help="This worker's name in the cluster, the same across its restarts")  # fmt: skip
@node_options
def worker(
    data_dir: Path,
    database_url: str,
    redis_url: str,
    node_id: str,
    **shared: Any,
) -> None:
    """Run the cluster's queued jobs. Refuses to start, naming why, when the host cannot build a safe box."""
    import asyncio

    from stockade.service.queue import ERRORS

    service = started_node(shared, data_dir=data_dir, database_url=database_url, redis_url=redis_url, node_id=node_id)
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
