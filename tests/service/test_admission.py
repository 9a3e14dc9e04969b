"""Execution places: claimed on arrival, admitted for the run, given back exactly once; and quota holds."""

from __future__ import annotations

from pathlib import Path

from stockade.service.admission import Places
from stockade.service.quota import QuotaHolds
from stockade.service.store import Store


def test_claims_take_places_until_full() -> None:
    places = Places(2)
    first, second = places.claim(), places.claim()
    assert first is not None and second is not None
    assert places.full and places.claim() is None
    first.release()
    assert not places.full and places.claimed == 1
    assert places.claim() is not None


def test_admitted_run_holds_its_place_until_released() -> None:
    places = Places(1)
    place = places.claim()
    assert place is not None
    place.admit()
    assert (places.claimed, places.admitted) == (0, 1)
    assert places.claim() is None
    place.release()
    assert (places.claimed, places.admitted) == (0, 0)


def test_release_is_idempotent() -> None:
    places = Places(2)
    place = places.claim()
    assert place is not None
    place.admit()
    place.release()
    place.release()  # the response start and the request's end both give it back
    assert (places.claimed, places.admitted) == (0, 0)
    other = places.claim()
    assert other is not None
    other.release()
    other.release()
    assert places.claimed == 0


def test_quota_holds_count_per_tenant_and_give_back_once(tmp_path: Path) -> None:
    holds = QuotaHolds(Store(tmp_path / "store.db"))
    a1, a2, b = holds.hold("a"), holds.hold("a"), holds.hold("b")
    assert (holds.held("a"), holds.held("b"), holds.held("c")) == (2, 1, 0)
    a1.release()
    a1.release()  # a second release gives nothing back
    assert (holds.held("a"), holds.held("b")) == (1, 1)
    a2.release()
    b.release()
    assert (holds.held("a"), holds.held("b")) == (0, 0) and not holds._held  # no tenant left behind
