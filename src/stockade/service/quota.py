"""Executions past the quota check whose usage is not recorded yet.

A request's usage is written with its audit record, after its run. Checking the daily executions quota
against the written counters alone let concurrent requests pass the check together and overrun the
quota by the number in flight. A hold counts the request from its check (on the event loop, with no
await between reading the counters and taking the hold, so the pair is atomic) until its usage is
written or it ends without a run. Holds are per node: nodes sharing one database can still overrun by
the others' requests in flight.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable


class QuotaHold:
    """One request's hold on an execution of its tenant's daily quota; released exactly once."""

    def __init__(self, release: Callable[[], None]) -> None:
        self._release: Callable[[], None] | None = release

    def release(self) -> None:
        """Safe to call again (the request's end releases every hold it may have taken)."""
        if self._release is not None:
            self._release()
            self._release = None


class QuotaHolds:
    def __init__(self) -> None:
        self._held: Counter[str] = Counter()

    def held(self, tenant_id: str) -> int:
        return self._held[tenant_id]

    def hold(self, tenant_id: str) -> QuotaHold:
        self._held[tenant_id] += 1
        return QuotaHold(lambda: self._give_back(tenant_id))

    def _give_back(self, tenant_id: str) -> None:
        self._held[tenant_id] -= 1
        if not self._held[tenant_id]:
            del self._held[tenant_id]
