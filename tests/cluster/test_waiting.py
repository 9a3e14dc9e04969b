"""An API node's waits for queued submissions (cluster.Clustered.final): a request for another tenant's
submission id neither gets its record nor ends its owner's wait. No servers: a store that never finishes
the submission, so only the announcement can."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from stockade.service.cluster import Clustered

KEY = "0753e6eded2f4a9e858577066ce32c89"
QUEUED = {"id": KEY, "state": "queued"}
FINAL = {"id": KEY, "state": "finished", "result": {"stdout": "42\n"}}


class Store:
    """acme's submission, queued for ever; another tenant has none. Says when acme's was first read."""

    def __init__(self) -> None:
        self.acme_read = threading.Event()

    def get(self, tenant: str, key: str) -> dict[str, Any] | None:
        if tenant != "acme":
            return None
        self.acme_read.set()
        return QUEUED


async def test_another_tenants_wait_on_an_id_neither_sees_nor_ends_the_owners() -> None:
    store = Store()
    cluster = Clustered(None, store, None)  # type: ignore[arg-type]  # final() uses the store alone
    owner = asyncio.create_task(cluster.final(KEY, 30.0, "acme"))
    await asyncio.to_thread(store.acme_read.wait, 10)  # the owner waits now
    assert await cluster.final(KEY, 30.0, "mallory") is None  # not found for another tenant
    cluster._announced({"key": KEY, "tenant": "acme", "record": FINAL})
    assert await owner == FINAL  # woken by the announcement (the store alone would say queued)
    cluster._announced({"key": KEY, "tenant": "acme", "record": FINAL})  # no waiter left: ignored
