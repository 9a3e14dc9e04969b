"""Executions past the quota check whose usage is not recorded yet.

A request's usage is written with its audit record, after its run. Checking the daily executions quota
against the written counters alone let concurrent requests pass the check together and overrun the
quota by the number in flight. A hold counts the request from its check (on the event loop, with no
await between reading the counters and taking the hold, so the pair is atomic) until its usage is
written or it ends without a run.

One node on its own store keeps its holds in memory (QuotaHolds). Nodes sharing one PostgreSQL store
keep them in the database (SharedHolds: the quota_holds table), where the check counts every node's
holds and adds its own in one write transaction, so together they cannot overrun a quota either.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from stockade.service.storage import WRITE_ERRORS
from stockade.service.tenants import QuotaState, Tenant

if TYPE_CHECKING:
    from stockade.service.store import Store

log = logging.getLogger("stockade.service")


class QuotaHold:
    """One request's hold on an execution of its tenant's daily quota; released exactly once."""

    def __init__(self, release: Callable[[], None], hold_id: str | None = None) -> None:
        self._release: Callable[[], None] | None = release
        self.id = hold_id  # a shared hold's row: a worker of the cluster releases it by id (adopt)

    def release(self) -> None:
        """Safe to call again (the request's end releases every hold it may have taken)."""
        if self._release is not None:
            self._release()
            self._release = None


def unlimited(tenant: Tenant) -> QuotaState | None:
    """The quota state of a tenant with no daily quota at all (nothing to read or hold), else None."""
    if tenant.executions_per_day is not None or tenant.cpu_seconds_per_day is not None:
        return None
    return QuotaState(tenant.id, datetime.now(UTC).date(), 0, None, 0.0, None, None)


class QuotaHolds:
    """One node's holds, in memory."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._held: Counter[str] = Counter()

    def take(self, tenant: Tenant) -> tuple[QuotaState, QuotaHold | None]:
        """Today's quota state counting the holds, and a new hold unless a quota is exceeded."""
        q = unlimited(tenant) or self.store.check_quota(tenant.id, pending=self.held(tenant.id))
        return q, None if q.exceeded else self.hold(tenant.id)

    def held(self, tenant_id: str) -> int:
        return self._held[tenant_id]

    def hold(self, tenant_id: str) -> QuotaHold:
        self._held[tenant_id] += 1
        return QuotaHold(lambda: self._give_back(tenant_id))

    def _give_back(self, tenant_id: str) -> None:
        self._held[tenant_id] -= 1
        if not self._held[tenant_id]:
            del self._held[tenant_id]


class SharedHolds:
    """The holds of every node sharing the store, in its quota_holds table (module doc)."""

    def __init__(self, store: Store, node: str) -> None:
        self.store = store
        self.node = node
        store.drop_holds(node)  # what this node's previous process held, it holds no more

    def take(self, tenant: Tenant) -> tuple[QuotaState, QuotaHold | None]:
        if tenant.executions_per_day is None:  # nothing to hold: a read at most, not a write transaction
            q = unlimited(tenant) or self.store.check_quota(tenant.id)
            return q, None if q.exceeded else QuotaHold(lambda: None)
        q, hold_id = self.store.hold_execution(tenant.id, self.node)
        return q, None if hold_id is None else self.adopt(hold_id)

    def adopt(self, hold_id: str) -> QuotaHold:
        """A hold another node took (a queued job's), released here once its usage is recorded."""
        return QuotaHold(lambda: self._give_back(hold_id), hold_id)

    def _give_back(self, hold_id: str) -> None:
        try:
            self.store.release_hold(hold_id)
        except WRITE_ERRORS as e:  # the hold then lapses (store.HOLD_LAPSES) or goes at this node's restart
            log.warning("could not release quota hold %s: %s: %s", hold_id, type(e).__name__, e)
