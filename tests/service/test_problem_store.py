"""The stored problems' SQLite store: per-tenant caps, tenants apart, what survives a reopen."""

from __future__ import annotations

from pathlib import Path

import pytest

from stockade.service.errors import ApiError
from stockade.service.problems import ProblemLimits, ProblemStore


def code_of(e: pytest.ExceptionInfo[ApiError]) -> str:
    return e.value.code


def test_caps_per_tenant_count_and_bytes(tmp_path: Path) -> None:
    store = ProblemStore(tmp_path / "problems.db", ProblemLimits(per_tenant=2, tenant_bytes=100))
    first = store.create("a", "x" * 40, 1, "one", "lines")
    store.create("a", "y" * 40, 1, "two", "exact")
    with pytest.raises(ApiError) as e:
        store.create("a", "z", 1, "three", "lines")
    assert code_of(e) == "PROBLEM_QUOTA_EXCEEDED" and "has 2 problems" in e.value.message
    store.create("b", "w" * 90, 3, "", "interactor")  # another tenant's caps are its own
    with pytest.raises(ApiError) as e:
        store.create("b", "v" * 11, 1, "", "lines")
    assert code_of(e) == "PROBLEM_QUOTA_EXCEEDED" and "101 bytes" in e.value.message
    store.delete("a", first.id)
    store.create("a", "u" * 60, 1, "", "lines")  # room again: 40 + 60
    assert [i.name for i in store.all("a")] == ["two", ""]


def test_tenants_apart_and_kept_across_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "problems.db"
    info = ProblemStore(path).create("a", '{"tests": []}', 0, "kept", "interactor")
    store = ProblemStore(path)
    got, body = store.get("a", info.id)
    assert (got, body) == (info, '{"tests": []}') and got.as_dict()["interactive"] is True
    for call in (lambda: store.get("b", info.id), lambda: store.delete("b", info.id)):
        with pytest.raises(ApiError) as e:
            call()
        assert code_of(e) == "PROBLEM_NOT_FOUND"
    store.delete("a", info.id)
    with pytest.raises(ApiError):
        store.get("a", info.id)
