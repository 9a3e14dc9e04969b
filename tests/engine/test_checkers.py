"""The built-in output checkers: exact, lines (Judge0's rule), tokens, float."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stockade.engine.checkers import CHECKER_KINDS, Checker, check, normalize_lines
from stockade.engine.errors import InvalidRequest

EXACT, LINES, TOKENS, FLOAT = (Checker(k) for k in CHECKER_KINDS)


def judge0_strip(text: str) -> str:
    """Judge0's `strip` (IsolateJob), transcribed: text.split("\\n").collect(&:rstrip).join("\\n").rstrip.

    Ruby's split drops trailing empty fields and rstrip strips NUL too; neither changes the result."""
    ws = " \t\n\v\f\r\0"
    return "\n".join(line.rstrip(ws) for line in text.split("\n")).rstrip(ws)


def test_exact_is_byte_for_byte() -> None:
    assert check(EXACT, b"3\n", b"3\n").ok
    assert not check(EXACT, b"3\n", b"3").ok
    assert not check(EXACT, b"3\n", b"3 \n").ok
    assert not check(EXACT, b"3\n", b"3\r\n").ok


def test_exact_message_names_the_first_difference() -> None:
    assert check(EXACT, b"abcd", b"abXd").message == "byte 2: expected 'cd', got 'Xd'"
    assert check(EXACT, b"abcd", b"ab").message == "output ends at byte 2, 2 byte(s) early"
    assert check(EXACT, b"ab", b"abcd").message == "output has 2 extra byte(s) after byte 2"


@given(st.binary(max_size=40), st.binary(max_size=40))
def test_exact_reports_the_first_differing_byte(expected: bytes, actual: bytes) -> None:
    result = check(EXACT, expected, actual)
    assert result.ok == (expected == actual)
    if not result.ok:
        at = next((i for i, (e, a) in enumerate(zip(expected, actual, strict=False)) if e != a), None)
        at = min(len(expected), len(actual)) if at is None else at
        assert f"byte {at}" in result.message


@pytest.mark.parametrize(
    ("expected", "actual"),
    [
        (b"3\n", b"3"),
        (b"3", b"3\n\n\n"),
        (b"1 2\n3\n", b"1 2   \n3\t\n"),
        (b"a\nb\n", b"a\r\nb\r\n"),
        (b"a\n", b"a\n \n\t\n"),
        (b"", b"\n\n"),
    ],
)
def test_lines_ignores_trailing_whitespace_and_final_newlines(expected: bytes, actual: bytes) -> None:
    assert check(LINES, expected, actual).ok


@pytest.mark.parametrize(
    ("expected", "actual", "message"),
    [
        (b"1 2\n", b"1  2\n", "line 1: expected '1 2', got '1  2'"),
        (b"a\nb\n", b"a\n b\n", "line 2: expected 'b', got ' b'"),  # leading whitespace counts
        (b"a\n\nb\n", b"a\nb\n", "line 2: expected '', got 'b'"),  # an inner blank line counts
        (b"a\nb\n", b"a\n", "output has 1 line(s), expected 2"),
        (b"a\n", b"a\nb\n", "output has 2 line(s), expected 1: extra 'b'"),
    ],
)
def test_lines_still_sees_real_differences(expected: bytes, actual: bytes, message: str) -> None:
    result = check(LINES, expected, actual)
    assert not result.ok
    assert result.message == message


printable = st.text(alphabet=st.sampled_from("ab1 \t\r\n\v\f\0"), max_size=30)


@given(printable, printable)
def test_lines_agrees_with_judge0(expected: str, actual: str) -> None:
    assert check(LINES, expected.encode(), actual.encode()).ok == (judge0_strip(expected) == judge0_strip(actual))


@given(printable)
def test_normal_form_is_idempotent_and_accepted(text: str) -> None:
    once = normalize_lines(text.encode())
    assert normalize_lines(once) == once
    assert check(LINES, once, text.encode()).ok


def test_tokens_ignores_spacing_but_not_order_or_count() -> None:
    assert check(TOKENS, b"1 2 3\n", b"1\n2\t\t3").ok
    assert check(TOKENS, b"", b" \n ").ok
    assert check(TOKENS, b"1 2 3", b"1 3 2").message == "token 2: expected '2', got '3'"
    assert check(TOKENS, b"1 2 3", b"1 2").message == "output has 2 token(s), expected 3"
    assert check(TOKENS, b"1 2", b"1 2 3").message == "output has 3 token(s), expected 2: extra '3'"
    assert not check(TOKENS, b"1.0", b"1").ok  # no numeric reading without the float checker


@given(st.lists(st.text(alphabet="xyz19.", min_size=1, max_size=5), max_size=8), st.randoms())
def test_tokens_accepts_any_whitespace_layout(words: list[str], rnd) -> None:  # type: ignore[no-untyped-def]
    expected = " ".join(words).encode()
    actual = "".join(w + rnd.choice([" ", "\n", "\t", "  \r\n"]) for w in words).encode()
    assert check(TOKENS, expected, actual).ok


def test_float_within_absolute_or_relative_epsilon() -> None:
    assert check(FLOAT, b"0.333333", b"0.3333334").ok
    assert check(FLOAT, b"1 2.5 x", b"1.0000001 2.5000002 x").ok
    assert not check(FLOAT, b"0.5", b"0.5001").ok
    assert not check(FLOAT, b"x", b"y").ok  # non-numbers compare exactly
    big = Checker("float", abs_eps=0.0, rel_eps=1e-6)
    assert check(big, b"1e12", b"1000000900000").ok  # 9e5 off, within 1e-6 of 1e12
    assert not check(big, b"1e12", b"1000001100000").ok
    strict = Checker("float", abs_eps=0.0, rel_eps=0.0)
    assert check(strict, b"2.50", b"2.5").ok  # equal as numbers
    assert not check(strict, b"0.1", b"0.1000000001").ok


def test_float_edge_cases() -> None:
    assert check(FLOAT, b"nan", b"NaN").ok
    assert not check(FLOAT, b"nan", b"0").ok
    assert not check(FLOAT, b"0", b"nan").ok  # a NaN is never within epsilon of a number
    assert check(FLOAT, b"inf", b"Infinity").ok
    assert not check(FLOAT, b"inf", b"-inf").ok
    assert not check(FLOAT, b"1e308", b"inf").ok
    assert check(FLOAT, b"-0.0", b"0").ok
    assert not check(FLOAT, b"10", b"1_0").ok  # Python's float() reads it; no judge does
    assert not check(FLOAT, b"1", b"0x1").ok
    assert check(FLOAT, b".5", b"5e-1").ok
    assert check(Checker("float", abs_eps=0.1, rel_eps=0.0), b"1", b"1.1").ok  # the bound itself passes


@given(st.floats(allow_nan=False, allow_infinity=False, width=64), st.floats(min_value=-1e-7, max_value=1e-7))
def test_float_accepts_values_within_abs_eps(value: float, delta: float) -> None:
    checker = Checker("float", abs_eps=1e-6, rel_eps=0.0)
    shifted = value + delta
    if math.isinf(shifted) or abs(shifted - value) > 1e-6:
        return  # rounding at huge magnitudes moves the value by more than delta
    assert check(checker, repr(value).encode(), repr(shifted).encode()).ok


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "program"},
        {"kind": "Lines"},
        {"kind": "float", "abs_eps": -1e-9},
        {"kind": "float", "rel_eps": math.inf},
        {"kind": "float", "abs_eps": math.nan},
        {"kind": "float", "abs_eps": "0.1"},
        {"kind": "float", "abs_eps": True},
    ],
)
def test_bad_checker_is_a_typed_error(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidRequest):
        Checker(**kwargs)  # type: ignore[arg-type]


def test_messages_are_bounded_and_printable() -> None:
    result = check(LINES, b"x" * 10_000, b"\xff\x00" + b"y" * 10_000)
    assert not result.ok
    assert len(result.message) < 200
    assert result.message.isprintable()
