from __future__ import annotations

import threading
import types

import pytest

import stockade.service.ratelimit as ratelimit_mod
from stockade.service.ratelimit import RateLimiter


class FakeClock:
    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """Drive both our module and the `limits` memory storage from one fake clock."""
    import limits.storage.memory as memory_mod

    fake = FakeClock()
    shim = types.SimpleNamespace(time=fake.time)
    monkeypatch.setattr(memory_mod, "time", shim)
    monkeypatch.setattr(ratelimit_mod, "time", shim)
    return fake


def test_allows_budget_then_denies() -> None:
    rl = RateLimiter()
    decisions = [rl.hit("acme", 3) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    assert decisions[0].retry_after_s == 0
    assert 1 <= decisions[3].retry_after_s <= 60
    assert decisions[3].limit == 3


def test_tenants_are_independent() -> None:
    rl = RateLimiter()
    assert rl.hit("acme", 1).allowed
    assert not rl.hit("acme", 1).allowed
    assert rl.hit("beta", 1).allowed


def test_moving_window_and_retry_after(clock: FakeClock) -> None:
    rl = RateLimiter()
    for t in (0, 20, 40):
        clock.now = 1_000_000.0 + t
        assert rl.hit("acme", 3).allowed
    clock.now = 1_000_050.0
    denied = rl.hit("acme", 3)
    assert not denied.allowed and denied.retry_after_s == 10  # the hit at t=0 leaves the window at t=60
    clock.now = 1_000_060.5
    assert rl.hit("acme", 3).allowed
    # A fixed window would now allow a burst; the moving window still holds the hits at 20 and 40.
    assert not rl.hit("acme", 3).allowed


def test_reset_forgets_hits() -> None:
    rl = RateLimiter()
    assert rl.hit("acme", 1).allowed
    assert not rl.hit("acme", 1).allowed
    rl.reset()
    assert rl.hit("acme", 1).allowed


def test_invalid_rate() -> None:
    with pytest.raises(ValueError):
        RateLimiter().hit("acme", 0)


def test_concurrent_hits_never_exceed_limit() -> None:
    rl = RateLimiter()
    results: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(25):
            ok = rl.hit("acme", 50).allowed
            with lock:
                results.append(ok)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 50
