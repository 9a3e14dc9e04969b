"""Version order and requests: exact, prefixes, and Piston's semver ranges (runtimes.versions)."""

from __future__ import annotations

import pytest

from stockade.runtimes.versions import key, matches


def test_key_orders_by_numbers_not_text() -> None:
    found = ["3.9.18", "3.13.0", "3.10.13", "2.7.18", "3.11.2", "25.0.3", "17.0.15"]
    assert sorted(found, key=key) == ["2.7.18", "3.9.18", "3.10.13", "3.11.2", "3.13.0", "17.0.15", "25.0.3"]
    assert key("2.2.9.debian") == (2, 2, 9) and key("1.3-SNAPSHOT") == (1, 3) and key("OTP") == ()


@pytest.mark.parametrize("spec", [None, "", "*", "x", "latest", " * "])
def test_anything_matches_any_version(spec: str | None) -> None:
    assert matches(spec, "3.11.2") and not matches(spec, None)


@pytest.mark.parametrize(
    ("spec", "yes", "no"),
    [
        ("3.11.2", ["3.11.2"], ["3.11.20", "3.11", "3.1.2"]),
        ("3.11", ["3.11.2", "3.11.7", "3.11"], ["3.1.1", "3.110.0", "3.12.0"]),
        ("3", ["3.6.15", "3.13.0"], ["2.7.18", "30.1"]),
        ("3.x", ["3.6.15"], ["2.7.18"]),
        ("3.11.x", ["3.11.7"], ["3.12.1"]),
        ("3.*", ["3.13.0"], ["2.7.18"]),
        ("v3.12", ["3.12.1"], ["3.13.0"]),
        ("=3.12.1", ["3.12.1"], ["3.12.2"]),
        (">=3.8 <3.12", ["3.8.18", "3.11.7"], ["3.7.16", "3.12.1"]),
        (">=3.8, <3.12", ["3.9.18"], ["3.12.0"]),
        (">3.8", ["3.9.0", "3.13.0"], ["3.8.18", "3.8.0"]),
        ("<=3.9", ["3.9.18", "3.6.15"], ["3.10.13"]),
        ("^3.9", ["3.9.18", "3.13.0"], ["3.8.18", "4.0.0"]),
        ("^0.11.2", ["0.11.5"], ["0.12.0", "0.11.1"]),
        ("~3.10.1", ["3.10.13"], ["3.11.0", "3.10.0"]),
        ("~3", ["3.13.0"], ["4.0", "2.7"]),
        ("<3 || >=3.13", ["2.7.18", "3.13.0"], ["3.12.1"]),
        ("1.3-SNAPSHOT", ["1.3-SNAPSHOT"], ["1.3.31"]),
    ],
)
def test_requests(spec: str, yes: list[str], no: list[str]) -> None:
    assert [v for v in yes if matches(spec, v)] == yes
    assert [v for v in no if matches(spec, v)] == []


@pytest.mark.parametrize("spec", ["python", ">=", "3..1", "^", "3.11.2 garbage", "~>", "1" * 65, "3.11."])
def test_nonsense_matches_nothing(spec: str) -> None:
    assert not any(matches(spec, v) for v in ("3.11.2", "1.0", "11111"))
