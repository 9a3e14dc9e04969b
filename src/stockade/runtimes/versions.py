"""Toolchain versions: ordering, and matching a requested version the way Piston's semver ranges do.

A version is compared by its leading dotted numbers ("3.11.2", "17.0.16", "OTP" never): `key`. A request
(`matches`) is one of
- nothing, `*`, `x` or `latest`: any version (the caller then takes the newest);
- a plain version, complete or not: `3.11.2` exactly, `3.11`, `3.11.x`, `3` or `3.*` any 3.11.… or 3.…
  (the old prefix rule, and npm's "partial version is a range");
- npm-style comparators joined by spaces (all must hold) and `||` (either side): `>=3.8 <3.12`,
  `^3.9` (same major), `~3.10.1` (same minor), `=3.11.2`, `>2`, `<=3.9` (any 3.9.x too).
Anything else is no match (never an exception): the caller lists what is available instead.
"""

from __future__ import annotations

import re

_NUMBERS = re.compile(r"\d+(?:\.\d+)*")
_PLAIN = re.compile(r"v?(\d+(?:\.\d+)*)(?:\.[x*X])?")
_COMPARATOR = re.compile(r"(>=|<=|>|<|=|\^|~>?)?\s*v?(\d+(?:\.\d+)*)(?:\.[x*X])?")
ANY = frozenset({"", "*", "x", "X", "latest"})
MAX_SPEC = 64


def key(version: str | None) -> tuple[int, ...]:
    """Sort key: the version's leading dotted numbers; () for none (sorts before every number)."""
    found = _NUMBERS.search(version or "")
    return tuple(int(n) for n in found.group().split(".")) if found else ()


def _cmp(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    width = max(len(a), len(b))
    a, b = a + (0,) * (width - len(a)), b + (0,) * (width - len(b))
    return (a > b) - (a < b)


def _prefix(version: tuple[int, ...], wanted: tuple[int, ...]) -> bool:
    return version[: len(wanted)] == wanted and len(version) >= len(wanted)


def _bump(numbers: tuple[int, ...], index: int) -> tuple[int, ...]:
    return (*numbers[:index], numbers[index] + 1)


def _comparator(op: str, numbers: tuple[int, ...], version: tuple[int, ...]) -> bool:
    if op in ("", "="):
        return _prefix(version, numbers)
    if op == ">=":
        return _cmp(version, numbers) >= 0
    if op == "<":
        return _cmp(version, numbers) < 0
    # A partial bound covers every version it names: `>3.8` is past 3.8.x, `<=3.9` includes 3.9.x.
    if op == ">":
        return _cmp(version, numbers) > 0 and not _prefix(version, numbers)
    if op == "<=":
        return _cmp(version, numbers) <= 0 or _prefix(version, numbers)
    if op == "^":  # the first non-zero component is fixed (npm: ^0.2.3 is <0.3.0)
        first = next((i for i, n in enumerate(numbers) if n != 0), len(numbers) - 1)
        return _cmp(version, numbers) >= 0 and _cmp(version, _bump(numbers, first)) < 0
    # ~ and ~>: the minor is fixed when given, else the major.
    return _cmp(version, numbers) >= 0 and _cmp(version, _bump(numbers, min(1, len(numbers) - 1))) < 0


def _all_of(clause: str, version: str, numbers: tuple[int, ...]) -> bool:
    pos, seen = 0, False
    clause = clause.strip()
    while pos < len(clause):
        match = _COMPARATOR.match(clause, pos)
        if match is None:
            return False
        op, wanted = match.group(1) or "", tuple(int(n) for n in match.group(2).split("."))
        if not numbers or not _comparator(op, wanted, numbers):
            return False
        seen, pos = True, match.end()
        while pos < len(clause) and clause[pos] in " ,":
            pos += 1
    return seen


def matches(spec: str | None, version: str | None) -> bool:
    """Whether `version` (a detected version) satisfies the request `spec`."""
    spec = (spec or "").strip()
    if spec in ANY:
        return version is not None
    if version is None or len(spec) > MAX_SPEC:
        return False
    if spec == version:
        return True
    numbers = key(version)
    plain = _PLAIN.fullmatch(spec)
    if plain is not None:
        return bool(numbers) and _prefix(numbers, tuple(int(n) for n in plain.group(1).split(".")))
    return any(_all_of(clause, version, numbers) for clause in spec.split("||"))
