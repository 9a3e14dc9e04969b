"""Output checkers: does a program's output match the expected output? Pure functions, no I/O.

Four built-in kinds (a checker *program* is run in a box by `engine.judge`, not here):

- `exact`: byte for byte.
- `lines`: Judge0's rule for `expected_output` — every line's trailing whitespace is dropped, then the
  trailing whitespace (blank lines, final newline) of the whole text. Leading whitespace still counts.
- `tokens`: the whitespace-separated words, in order; how they are spaced or broken into lines is free.
- `float`: as `tokens`, but a pair of tokens that both read as decimal numbers matches when
  |actual - expected| <= abs_eps or <= rel_eps * |expected| (testlib's rule, with its 1e-15 slack).
  A NaN expected wants a NaN, an infinity wants the same infinity; other tokens must be equal.

Whitespace is Ruby's `rstrip` set (space, \\t, \\n, \\v, \\f, \\r, NUL), so `lines` agrees with Judge0 exactly.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from stockade.engine.errors import InvalidRequest

CHECKER_KINDS = ("exact", "lines", "tokens", "float")
DEFAULT_ABS_EPS = 1e-6
DEFAULT_REL_EPS = 1e-6
_WHITESPACE = b" \t\n\v\f\r\0"
# Tokens split on the same set (bytes.split() alone would keep NUL inside a token).
_SPLIT = re.compile(rb"[ \t\n\v\f\r\0]+")
# Plain decimal notation only: float() would also take "1_0", which no judge calls a number.
_NUMBER = re.compile(rb"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?(?:nan|inf|infinity)", re.IGNORECASE)
# testlib's slack: 1.1 - 1 is 0.10000000000000009 in binary, and an epsilon of 0.1 should take it.
_SLACK = 1e-15
_SHOWN = 40  # characters of a token or line a message quotes


@dataclass(frozen=True)
class Checker:
    kind: str
    abs_eps: float = DEFAULT_ABS_EPS
    rel_eps: float = DEFAULT_REL_EPS

    def __post_init__(self) -> None:
        if self.kind not in CHECKER_KINDS:
            raise InvalidRequest(f"unknown checker {self.kind!r} (one of {', '.join(CHECKER_KINDS)})")
        for name in ("abs_eps", "rel_eps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
                raise InvalidRequest(f"checker {name} must be a finite number >= 0, not {value!r}")


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    message: str


def check(checker: Checker, expected: bytes, actual: bytes) -> CheckResult:
    """Compare `actual` with `expected` under `checker`; the message says where they first differ."""
    if checker.kind == "exact":
        return _exact(expected, actual)
    if checker.kind == "lines":
        return _lines(expected, actual)
    return _tokens(expected, actual, checker if checker.kind == "float" else None)


def normalize_lines(text: bytes) -> bytes:
    """Judge0's normal form: each line right-stripped, then the whole text right-stripped."""
    return b"\n".join(line.rstrip(_WHITESPACE) for line in text.split(b"\n")).rstrip(_WHITESPACE)


def _show(data: bytes) -> str:
    text = data.decode("utf-8", "replace")
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "…")


def _exact(expected: bytes, actual: bytes) -> CheckResult:
    if expected == actual:
        return CheckResult(True, "output is identical")
    at = _common_prefix(expected, actual)
    if at == len(actual):
        return CheckResult(False, f"output ends at byte {at}, {len(expected) - at} byte(s) early")
    if at == len(expected):
        return CheckResult(False, f"output has {len(actual) - at} extra byte(s) after byte {at}")
    return CheckResult(False, f"byte {at}: expected {_show(expected[at:])}, got {_show(actual[at:])}")


def _common_prefix(a: bytes, b: bytes) -> int:
    """Length of the common prefix, by bisection over slice compares (C speed, no Python loop per byte)."""
    va, vb = memoryview(a), memoryview(b)
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if va[lo:mid] == vb[lo:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _lines(expected: bytes, actual: bytes) -> CheckResult:
    want = normalize_lines(expected).split(b"\n")
    got = normalize_lines(actual).split(b"\n")
    if want == got:
        return CheckResult(True, f"{len(want)} line(s) match")
    for number, (e, a) in enumerate(zip(want, got, strict=False), start=1):
        if e != a:
            return CheckResult(False, f"line {number}: expected {_show(e)}, got {_show(a)}")
    if len(got) < len(want):
        return CheckResult(False, f"output has {len(got)} line(s), expected {len(want)}")
    extra = _show(got[len(want)])
    return CheckResult(False, f"output has {len(got)} line(s), expected {len(want)}: extra {extra}")


def _split(text: bytes) -> list[bytes]:
    return [t for t in _SPLIT.split(text) if t]


def _tokens(expected: bytes, actual: bytes, numeric: Checker | None) -> CheckResult:
    want, got = _split(expected), _split(actual)
    for number, (e, a) in enumerate(zip(want, got, strict=False), start=1):
        if e != a and not (numeric and _close(e, a, numeric)):
            return CheckResult(False, f"token {number}: expected {_show(e)}, got {_show(a)}")
    if len(got) < len(want):
        return CheckResult(False, f"output has {len(got)} token(s), expected {len(want)}")
    if len(got) > len(want):
        extra = _show(got[len(want)])
        return CheckResult(False, f"output has {len(got)} token(s), expected {len(want)}: extra {extra}")
    return CheckResult(True, f"{len(want)} token(s) match")


def _close(expected: bytes, actual: bytes, checker: Checker) -> bool:
    if not (_NUMBER.fullmatch(expected) and _NUMBER.fullmatch(actual)):
        return False
    e, a = float(expected), float(actual)
    if math.isnan(e) or math.isnan(a):
        return math.isnan(e) and math.isnan(a)
    if math.isinf(e) or math.isinf(a):
        return e == a
    diff = abs(a - e)
    return diff <= checker.abs_eps + _SLACK or diff <= checker.rel_eps * abs(e) + _SLACK
