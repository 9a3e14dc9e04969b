"""The wire form of judge mode (docs/judge.md): the models of POST /v1/judge and of stored problems,
the translation of a body into an engine JudgeRequest, and of a JudgeResult into the response body.

A problem (`ProblemSpec`: tests, checker or interactor, limits, policy) is one part of a request; the
submission's source is the other. POST /v1/judge sends both (`JudgeIn`); a stored problem keeps the
first (`ProblemIn`) and is judged with the second alone (`SourceIn`). A test's `stdin_file` and
`expected_file` name test data: a file of the request's `files` (which is then not one of the
submission's: no test data reaches its box) or of the stored problem's.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from stockade.engine import ExecutionRequest, StageLimits
from stockade.engine.checkers import CHECKER_KINDS, DEFAULT_ABS_EPS, DEFAULT_REL_EPS, Checker
from stockade.engine.judge import JudgeLimits, JudgeRequest, JudgeResult, ProgramChecker, TestCase, TestResult
from stockade.sandbox import BoxResult
from stockade.service.errors import ApiError
from stockade.service.node import Caller, Service
from stockade.service.tenants import Tenant
from stockade.service.wire import (
    CompileLimitsIn,
    CompileOut,
    Encoding,
    ExecuteIn,
    FileIn,
    RunLimitsIn,
    RuntimeRef,
    decode,
    encode,
    stage_limits,
    to_request,
)

# The fields of a submission or a checker program that make an ExecuteIn (stdin and args are per test).
SOURCE_FIELDS = {"language", "version", "code", "files", "entry", "limits", "compile_limits"}
MAX_TESTS = JudgeLimits().max_tests  # the schema's bound; the service's JudgeLimits decides
MAX_TEXT = 8 * 1024 * 1024


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TestIn(_Strict):
    stdin: str = Field("", max_length=MAX_TEXT)
    stdin_file: str | None = Field(None, max_length=512, description="stdin from this file of `files`")
    expected: str = Field("", max_length=MAX_TEXT, description="What the checker compares the stdout with")
    expected_file: str | None = Field(None, max_length=512, description="`expected` from this file of `files`")
    encoding: Encoding = Field("utf8", description="Of `stdin` and `expected`")
    args: list[str] = Field(default_factory=list, max_length=64)
    limits: RunLimitsIn | None = Field(None, description="This test's run limits; default: the request's `limits`")

    @model_validator(mode="after")
    def _one_of_each(self) -> TestIn:
        for name in ("stdin", "expected"):
            if getattr(self, f"{name}_file") is not None and name in self.model_fields_set:
                raise ValueError(f"give `{name}` or `{name}_file`, not both")
        return self


class ProgramIn(_Strict):
    """A program of the problem's (an interactor): any supported language, its own limits."""

    language: str = Field(min_length=1, max_length=64)
    version: str | None = Field(None, max_length=64)
    code: str | None = Field(None, max_length=MAX_TEXT)
    files: list[FileIn] | None = Field(None, max_length=64)
    entry: str | None = Field(None, max_length=512)
    limits: RunLimitsIn | None = None
    compile_limits: CompileLimitsIn | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ProgramIn:
        if (self.code is None) == (self.files is None):
            raise ValueError("give exactly one of `code` or `files`")
        return self


class CheckerIn(_Strict):
    kind: Literal["exact", "lines", "tokens", "float", "program"] = "lines"
    abs_eps: float = Field(DEFAULT_ABS_EPS, ge=0, description="float: absolute tolerance")
    rel_eps: float = Field(DEFAULT_REL_EPS, ge=0, description="float: relative tolerance")
    language: str | None = Field(None, max_length=64, description="program: the checker's language")
    version: str | None = Field(None, max_length=64)
    code: str | None = Field(None, max_length=MAX_TEXT)
    files: list[FileIn] | None = Field(None, max_length=64)
    entry: str | None = Field(None, max_length=512)
    limits: RunLimitsIn | None = None
    compile_limits: CompileLimitsIn | None = None

    @model_validator(mode="after")
    def _program_has_source(self) -> CheckerIn:
        program = (self.language, self.code, self.files, self.entry, self.version, self.limits, self.compile_limits)
        if self.kind == "program" and (self.language is None or (self.code is None) == (self.files is None)):
            raise ValueError("a program checker needs `language` and exactly one of `code` or `files`")
        if self.kind != "program" and any(v is not None for v in program):
            raise ValueError("only a program checker has a language, source or limits")
        return self


class ProblemSpec(_Strict):
    """What a problem is, whoever solves it."""

    tests: list[TestIn] = Field(min_length=1, max_length=MAX_TESTS)
    checker: CheckerIn = Field(default_factory=lambda: CheckerIn.model_validate({}))
    interactor: ProgramIn | None = Field(
        None, description="An interactive problem: this program talks with the submission and decides"
    )
    limits: RunLimitsIn | None = Field(None, description="Run limits of every test without its own")
    compile_limits: CompileLimitsIn | None = None
    stop_on_first_failure: bool = False

    @model_validator(mode="after")
    def _interactor_decides(self) -> ProblemSpec:
        if self.interactor is not None and "checker" in self.model_fields_set:
            raise ValueError("an interactive problem's interactor decides: give no `checker`")
        return self


class SourceIn(_Strict):
    """A submission's source, as in /v1/execute, with how its outputs come back."""

    language: str = Field(min_length=1, max_length=64, examples=["c"])
    version: str | None = Field(None, max_length=64)
    code: str | None = Field(None, max_length=MAX_TEXT)
    files: list[FileIn] | None = Field(None, max_length=64)
    entry: str | None = Field(None, max_length=512)
    include_output: bool = Field(False, description="Return each test's stdout and stderr")
    output_encoding: Encoding = "utf8"

    @model_validator(mode="after")
    def _a_source(self) -> SourceIn:
        if self.code is None and self.files is None:
            raise ValueError("give `code` or `files`")
        return self


class JudgeIn(ProblemSpec, SourceIn):
    """POST /v1/judge: a problem and a submission. `files` may also hold the tests' data files (with
    `code`, it holds nothing else)."""


class ProblemIn(ProblemSpec):
    """POST /v1/problems: a problem kept for later judgements; `files` are its tests' data files."""

    name: str = Field("", max_length=200, description="For people; not unique")
    files: list[FileIn] | None = Field(None, max_length=256, description="Data files the tests name")


class ProblemJudgeIn(SourceIn):
    """POST /v1/problems/{id}/judge: only the submission."""


class TestOut(BaseModel):
    index: int
    verdict: str = Field(description="accepted, wrong_answer, presentation_error, a run verdict, checker_error, "
                         "internal_error or skipped")  # fmt: skip
    message: str
    time_ms: int = Field(description="CPU time of the run, ms")
    wall_time_ms: int
    memory_kb: int
    exit_code: int | None
    signal: int | None
    stdout: str | None = Field(description="With include_output only")
    stderr: str | None = Field(description="With include_output only")
    checker_time_ms: int | None = Field(description="A checker program's or interactor's CPU time, ms")
    checker_memory_kb: int | None = Field(description="A checker program's or interactor's peak memory, KiB")


class JudgeOut(BaseModel):
    judge_id: str
    verdict: str = Field(description="The overall verdict (docs/judge.md: its precedence)")
    message: str
    failed_test: int | None = Field(description="Index of the test that decided a failing verdict")
    tests: list[TestOut]
    accepted: int
    compile: CompileOut | None
    checker_compile: CompileOut | None = Field(description="The checker program's or interactor's compile")
    interactive: bool
    problem_id: str | None = Field(description="The stored problem judged, if any")
    time_ms: int = Field(description="CPU time of every test run, ms")
    wall_time_ms: int = Field(description="Wall time of the whole judgement, ms")
    output_encoding: Encoding
    runtime: RuntimeRef


class ProblemOut(BaseModel):
    id: str = Field(examples=["pb_3f2a9c41d07e4b5c8a1f2e3d4c5b6a79"])
    name: str
    created_at: float = Field(description="Unix time")
    bytes: int
    tests: int
    interactive: bool
    checker: str = Field(description="The checker's kind (program for a checker program), or interactor")


# -- request: body -> engine JudgeRequest ---------------------------------------------------------


def data_files(files: list[FileIn] | None) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for f in files or []:
        if f.name in out:
            raise ApiError("INVALID_REQUEST", f"file {f.name[:80]!r} is given twice")
        out[f.name] = _decoded(f.content, f.encoding, f"file {f.name[:80]!r}")
    return out


def named_files(spec: ProblemSpec) -> set[str]:
    """The file names the tests refer to."""
    return {n for t in spec.tests for n in (t.stdin_file, t.expected_file) if n is not None}


def split_files(body: JudgeIn) -> tuple[SourceIn, dict[str, bytes]]:
    """A /v1/judge body's submission (without the test data) and its test data files."""
    named = named_files(body)
    data = [f for f in body.files or [] if f.name in named]
    source = [f for f in body.files or [] if f.name not in named]
    if body.code is not None and source:
        raise ApiError("INVALID_REQUEST", "with `code`, `files` may hold only the test data files the tests name")
    if body.code is None and not source:
        raise ApiError("INVALID_REQUEST", "no source: every file of `files` is a test's data")
    return body.model_copy(update={"files": source or None}), data_files(data)


def to_judge_request(
    spec: ProblemSpec, source: SourceIn, data: dict[str, bytes], who: Caller, service: Service
) -> JudgeRequest:
    """The engine's JudgeRequest: the submission within the tenant's languages and maxima, the tests
    (their files from `data`), the checker or interactor (their languages allowed to the tenant too)."""
    tenant = who.tenant
    fields = {**source.model_dump(include=SOURCE_FIELDS), **spec.model_dump(include={"limits", "compile_limits"})}
    submission = to_request(ExecuteIn(**fields), tenant, service.registry, service.engine.policy)
    tests, checker, interactor = problem_parts(spec, data, tenant, service, submission.limits)
    return JudgeRequest(submission, tests, checker, spec.stop_on_first_failure, interactor)


def problem_parts(
    spec: ProblemSpec, data: dict[str, bytes], tenant: Tenant, service: Service, limits: StageLimits
) -> tuple[list[TestCase], Checker | ProgramChecker, ProgramChecker | None]:
    """The tests, the checker and the interactor of a problem, for `tenant`; `limits` are the
    submission's run limits, which a test's own limits complete."""
    tests = []
    for i, t in enumerate(spec.tests):
        stdin = (
            _from(data, t.stdin_file, i, "stdin_file")
            if t.stdin_file
            else _decoded(t.stdin, t.encoding, f"test {i} stdin")
        )
        if t.expected_file:
            expected = _from(data, t.expected_file, i, "expected_file")
        else:
            expected = _decoded(t.expected, t.encoding, f"test {i} expected")
        tests.append(TestCase(stdin, expected, tuple(t.args), _test_limits(t, tenant, limits, i)))
    c = spec.checker
    checker: Checker | ProgramChecker
    if c.kind == "program":
        checker = ProgramChecker(_program(c, tenant, service))
    else:
        assert c.kind in CHECKER_KINDS
        checker = Checker(c.kind, c.abs_eps, c.rel_eps)
    interactor = ProgramChecker(_program(spec.interactor, tenant, service)) if spec.interactor else None
    return tests, checker, interactor


def _program(program: BaseModel, tenant: Tenant, service: Service) -> ExecutionRequest:
    body = ExecuteIn(**program.model_dump(include=SOURCE_FIELDS))
    return to_request(body, tenant, service.registry, service.engine.policy)


def _from(data: dict[str, bytes], name: str, i: int, field: str) -> bytes:
    try:
        return data[name]
    except KeyError:
        raise ApiError("INVALID_REQUEST", f"test {i} {field} {name[:80]!r} is not one of the files") from None


def _decoded(text: str, encoding: str, what: str) -> bytes:
    try:
        return decode(text, encoding, what)
    except UnicodeEncodeError:
        raise ApiError("INVALID_REQUEST", "text fields must be valid Unicode (no lone surrogates)") from None


def _test_limits(t: TestIn, tenant: Tenant, submission: StageLimits, i: int) -> StageLimits | None:
    """A test's own limits, within the tenant's maxima; the submission's where it sets none."""
    if t.limits is None:
        return None
    own = stage_limits(t.limits, tenant, submission, f"test {i} run")
    given = t.limits.model_dump()
    return StageLimits(**{n: getattr(own if given[n] is not None else submission, n) for n in StageLimits.names()})


# -- response: engine JudgeResult -> body ---------------------------------------------------------


def _compile_out(box: BoxResult | None, encoding: str) -> dict[str, Any] | None:
    if box is None:
        return None
    return {
        "status": box.status.value,
        "stdout": encode(box.stdout, encoding)[0],
        "stderr": encode(box.stderr, encoding)[0],
        "exit_code": box.exit_code,
        "signal": box.signal,
        "time_ms": box.cpu_time_ms,
        "wall_time_ms": box.wall_time_ms,
        "memory_kb": box.peak_memory_kb,
        "stdout_truncated": box.stdout_truncated,
        "stderr_truncated": box.stderr_truncated,
    }


def _test_out(t: TestResult, include_output: bool, encoding: str) -> dict[str, Any]:
    run = t.run
    return {
        "index": t.index,
        "verdict": t.verdict.value,
        "message": t.message,
        "time_ms": run.cpu_time_ms if run else 0,
        "wall_time_ms": run.wall_time_ms if run else 0,
        "memory_kb": run.peak_memory_kb if run else 0,
        "exit_code": run.exit_code if run else None,
        "signal": run.signal if run else None,
        "stdout": encode(run.stdout, encoding)[0] if run and include_output else None,
        "stderr": encode(run.stderr, encoding)[0] if run and include_output else None,
        "checker_time_ms": t.checker.cpu_time_ms if t.checker else None,
        "checker_memory_kb": t.checker.peak_memory_kb if t.checker else None,
    }


def response_body(
    judge_id: str,
    result: JudgeResult,
    wall_ms: int,
    include_output: bool,
    encoding: str,
    problem_id: str | None = None,
) -> dict[str, Any]:
    return {
        "judge_id": judge_id,
        "verdict": result.verdict.value,
        "message": result.message,
        "failed_test": result.failed_test,
        "tests": [_test_out(t, include_output, encoding) for t in result.tests],
        "accepted": sum(1 for t in result.tests if t.verdict.value == "accepted"),
        "compile": _compile_out(result.compile, encoding),
        "checker_compile": _compile_out(result.checker_compile, encoding),
        "interactive": result.interactive,
        "problem_id": problem_id,
        "time_ms": sum(t.run.cpu_time_ms for t in result.tests if t.run),
        "wall_time_ms": wall_ms,
        "output_encoding": encoding,
        "runtime": {"language": result.language, "version": result.version},
    }
