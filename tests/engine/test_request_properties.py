"""Nothing a client sends produces internal_error (issue 27, section 5): internal_error means "the host has
a problem" and operators page on it, so every bad request must be a typed refusal or a program verdict.

The file tree is validated as a tree (a name may not also be another's directory); `processes` has a
minimum every language starts with; and a property test throws generated requests at the real engine."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from stockade.engine import (
    Engine,
    EngineError,
    ExecutionRequest,
    InvalidRequest,
    LimitOutOfRange,
    SourceFile,
    StageLimits,
    Verdict,
)
from stockade.engine.limits import COMPILE_BOUNDS, MIN_PROCESSES, RUN_BOUNDS
from stockade.sandbox import Sandbox

from .conftest import assert_nothing_left

PY_HELLO = b'print("hi")\n'
C_HELLO = b'#include <stdio.h>\nint main(void) { puts("hi"); return 0; }\n'


@pytest.mark.parametrize(
    "names",
    [("a", "a/b.py"), ("a/b.py", "a"), ("pkg/sub", "pkg/sub/x.py"), ("a/b/c", "a/b/c/d/e.py"), ("d", "d/main.py")],
    ids=["file-then-dir", "dir-then-file", "nested", "deep", "entry-under-a-file"],
)
async def test_a_name_that_is_also_a_directory_is_refused(engine: Engine, sandbox: Sandbox, names: tuple[str, ...]):
    """Was: NotADirectoryError (or FileExistsError) in the copy-in, and internal_error for the client."""
    files = [SourceFile("main.py", PY_HELLO), *(SourceFile(n, PY_HELLO) for n in names)]
    with pytest.raises(InvalidRequest, match="both a file and a directory"):
        await engine.execute(ExecutionRequest(language="python", files=files, entry="main.py"))
    assert_nothing_left(sandbox)


async def test_siblings_and_shared_directories_are_still_fine(engine: Engine) -> None:
    files = [SourceFile("main.py", b"import a.b, a.c\n"), SourceFile("a/b.py", b""), SourceFile("a/c.py", b"")]
    files.append(SourceFile("ab.py", b""))  # a prefix of a name that is not a directory of it
    result = await engine.execute(ExecutionRequest(language="python", files=files, entry="main.py"))
    assert result.status is Verdict.OK, result


@pytest.mark.parametrize("stage", ["limits", "compile_limits"])
@pytest.mark.parametrize("processes", [1, 2, MIN_PROCESSES - 1])
async def test_too_few_processes_is_a_typed_refusal(
    engine: Engine, sandbox: Sandbox, stage: str, processes: int
) -> None:
    """Was: `box init failed (errno 11)`, internal_error: the box's own bubblewrap and init count too."""
    req = ExecutionRequest.from_code("c", C_HELLO, **{stage: StageLimits(processes=processes)})
    with pytest.raises(LimitOutOfRange, match="processes"):
        await engine.execute(req)
    assert_nothing_left(sandbox)


# A sample: every language's echo program ran at 10, compile included (limits.MIN_PROCESSES).
@pytest.mark.parametrize(("language", "code"), [("python", PY_HELLO), ("c", C_HELLO), ("bash", b"echo hi\n")])
async def test_the_minimum_is_enough_to_start(engine: Engine, language: str, code: bytes) -> None:
    low = StageLimits(processes=MIN_PROCESSES)
    result = await engine.execute(ExecutionRequest.from_code(language, code, limits=low, compile_limits=low))
    assert result.status is Verdict.OK and result.run is not None and result.run.stdout == b"hi\n", result


# -- property: generated requests -------------------------------------------------------------------------


def _mostly(good: st.SearchStrategy, bad: st.SearchStrategy) -> st.SearchStrategy:
    """Nine in ten from `good`: requests must get past validation often enough to reach a box."""
    return st.sampled_from(range(10)).flatmap(lambda i: bad if i == 7 else good)  # not 0: drawn more often


# A small pool, so that trees where a name is another's directory, or a duplicate, are common.
GOOD_NAMES = st.sampled_from(["main.py", "main.c", "main.sh", "a", "a/b.py", "a/b", "a/b/c.py", "b/main.py"])
BAD_NAMES = st.one_of(
    st.lists(st.sampled_from(["a", "..", ".", "", "-o", "@f", "\\", "\n", "\x7f"]), min_size=1, max_size=10).map(
        "/".join
    ),
    st.text(max_size=24),
)
NAMES = _mostly(GOOD_NAMES, BAD_NAMES)
CONTENTS = st.one_of(st.sampled_from([PY_HELLO, C_HELLO, b"echo hi\n", b"", b"\xff\xfe\x00"]), st.binary(max_size=48))
FILES = st.one_of(
    st.builds(lambda content: [SourceFile("", content)], CONTENTS),  # `code`: the language names it
    st.lists(st.builds(SourceFile, NAMES, CONTENTS), max_size=5),
)
ARGS = _mostly(st.lists(st.text(max_size=12), max_size=3), st.lists(st.sampled_from(["\ud800", "a\0b"]), max_size=2))


def _limit(lo: int, hi: int) -> st.SearchStrategy[int | None]:
    """Mostly unset; then any value in range, the edges, and just past them (one field in 40)."""
    good = st.one_of(st.none(), st.integers(lo, hi), st.sampled_from([lo, hi]))
    return st.sampled_from(range(40)).flatmap(lambda i: st.sampled_from([lo - 1, hi + 1, -1, 0]) if i == 23 else good)


def _stage_limits(bounds: dict[str, tuple[int, int]]) -> st.SearchStrategy[StageLimits]:
    return st.builds(StageLimits, **{name: _limit(lo, hi) for name, (lo, hi) in bounds.items()})


REQUESTS = st.builds(
    ExecutionRequest,
    language=_mostly(st.sampled_from(["python", "c", "bash"]), st.sampled_from(["no-such-language", ""])),
    files=FILES,
    entry=_mostly(st.none(), NAMES),
    version=_mostly(st.none(), st.sampled_from(["3", "99", ""])),
    stdin=st.binary(max_size=32),
    args=ARGS,
    limits=_stage_limits(RUN_BOUNDS),
    compile_limits=_stage_limits(COMPILE_BOUNDS),
)


def _outcome(engine: Engine, req: ExecutionRequest) -> str:
    """A typed refusal's code, or the verdict; never internal_error."""
    try:
        result = asyncio.run(engine.execute(req))
    except EngineError as e:
        assert type(e) is not EngineError and e.code != "INTERNAL_ERROR", e
        return e.code
    final = result.final
    assert result.status is not Verdict.INTERNAL_ERROR, (req, final and final.error)
    return result.status.value


@given(req=REQUESTS)
@example(req=ExecutionRequest(language="python", files=[SourceFile("a", PY_HELLO), SourceFile("a/b.py", PY_HELLO)]))
@example(req=ExecutionRequest.from_code("python", PY_HELLO, limits=StageLimits(processes=1)))
@example(req=ExecutionRequest.from_code("c", C_HELLO, compile_limits=StageLimits(processes=2, wall_ms=1)))
@settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_no_generated_request_is_an_internal_error(engine: Engine, req: ExecutionRequest) -> None:
    event(_outcome(engine, req))  # --hypothesis-show-statistics: how many reached a box


def test_the_engine_is_clean_after_the_generated_requests(sandbox: Sandbox) -> None:
    # Runs after the property test in file order; it would also catch a box left by any test above.
    assert_nothing_left(sandbox)
