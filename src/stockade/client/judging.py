"""Judge mode in the SDK (docs/judge.md): `client.judge(...)` and `client.problems` (stored problems).

`judge` sends a submission with its tests (POST /v1/judge), or only the source to a stored problem
(`problem=` its id: POST /v1/problems/{id}/judge); every verdict is a JudgeResult, not an exception.
The flows run on the clients' sans-IO core (sdk.py): the same retries and errors.
"""

from __future__ import annotations

import base64
from collections.abc import Generator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict
from urllib.parse import quote

from stockade.client.errors import UnexpectedResponse, json_object
from stockade.client.types import FilesArg, LimitsArg, OutputEncoding, _files_json, _limits_json

if TYPE_CHECKING:
    import httpx

    from stockade.client.sdk import AsyncClient, Client

JUDGE_SLACK_S = 60.0  # read time on top of the tests' own wall limits (queueing, compiles)
DEFAULT_WALL_S = 10.0  # the server's default run wall limit, for a test that sets none


@dataclass(frozen=True)
class Test:
    """One test: stdin and expected output inline (str, or bytes sent base64) or named files of the
    request's `files` (or of the stored problem); its own args and limits."""

    __test__ = False  # not a pytest class
    stdin: str | bytes = ""
    expected: str | bytes = ""
    stdin_file: str | None = None
    expected_file: str | None = None
    args: tuple[str, ...] = ()
    limits: LimitsArg | None = None

    def to_json(self) -> dict[str, Any]:
        binary = isinstance(self.stdin, bytes) or isinstance(self.expected, bytes)
        out: dict[str, Any] = {}
        for name in ("stdin", "expected"):
            value, named = getattr(self, name), getattr(self, f"{name}_file")
            if named is not None:
                out[f"{name}_file"] = named
            elif value:
                raw = value.encode() if isinstance(value, str) else bytes(value)
                out[name] = base64.b64encode(raw).decode() if binary else value
        if binary:
            out["encoding"] = "base64"
        if self.args:
            out["args"] = [str(a) for a in self.args]
        if self.limits is not None:
            out["limits"] = _limits_json(self.limits)
        return out


TestsArg = Iterable[Test | Mapping[str, Any]]
CheckerArg = str | Mapping[str, Any]  # a kind ("tokens"), or the checker object of docs/judge.md


class JudgeOptions(TypedDict, total=False):
    """judge()'s keyword options (docs/judge.md, the request's fields)."""

    tests: TestsArg
    problem: str
    files: FilesArg
    entry: str
    checker: CheckerArg
    interactor: Mapping[str, Any]
    limits: LimitsArg
    compile_limits: LimitsArg
    version: str
    stop_on_first_failure: bool
    include_output: bool
    output_encoding: OutputEncoding


@dataclass(frozen=True)
class TestVerdict:
    __test__ = False
    index: int
    verdict: str
    message: str
    time_ms: int
    wall_time_ms: int
    memory_kb: int
    exit_code: int | None
    signal: int | None
    stdout: str | None
    stderr: str | None
    checker_time_ms: int | None

    @property
    def accepted(self) -> bool:
        return self.verdict == "accepted"


@dataclass(frozen=True)
class JudgeResult:
    """One judgement: the overall verdict (docs/judge.md: its precedence) and one per test."""

    judge_id: str
    verdict: str
    message: str
    failed_test: int | None
    tests: tuple[TestVerdict, ...]
    interactive: bool
    problem_id: str | None
    time_ms: int
    wall_time_ms: int
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def accepted(self) -> bool:
        return self.verdict == "accepted"

    @property
    def compile(self) -> Mapping[str, Any] | None:
        return self.raw.get("compile")


@dataclass(frozen=True)
class Problem:
    id: str
    name: str
    tests: int
    checker: str
    interactive: bool
    bytes: int
    created_at: float
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


def _tests_json(tests: TestsArg) -> list[dict[str, Any]]:
    out = [t.to_json() if isinstance(t, Test) else dict(t) for t in tests]
    if not out:
        raise ValueError("give at least one test")
    return out


def _checker_json(checker: CheckerArg) -> dict[str, Any]:
    return {"kind": checker} if isinstance(checker, str) else dict(checker)


def problem_fields(
    tests: TestsArg,
    *,
    checker: CheckerArg | None = None,
    interactor: Mapping[str, Any] | None = None,
    limits: LimitsArg | None = None,
    compile_limits: LimitsArg | None = None,
    stop_on_first_failure: bool = False,
) -> dict[str, Any]:
    """The problem's part of a body (POST /v1/judge or /v1/problems)."""
    body: dict[str, Any] = {"tests": _tests_json(tests)}
    if checker is not None:
        body["checker"] = _checker_json(checker)
    if interactor is not None:
        body["interactor"] = dict(interactor)
    if limits is not None:
        body["limits"] = _limits_json(limits)
    if compile_limits is not None:
        body["compile_limits"] = _limits_json(compile_limits)
    if stop_on_first_failure:
        body["stop_on_first_failure"] = True
    return body


def build_judge_body(language: str, code: str | None, options: JudgeOptions) -> tuple[str, dict[str, Any]]:
    """(the path, the body) of a judgement. Raises ValueError/TypeError before anything is sent."""
    files, problem = options.get("files"), options.get("problem")
    if code is None and files is None:
        raise ValueError("pass code= or files=")
    body: dict[str, Any] = {"language": language}
    for name in ("version", "entry", "output_encoding"):
        if options.get(name) is not None:
            body[name] = options[name]
    if code is not None:
        body["code"] = code
    if files is not None:
        body["files"] = _files_json(files)
    if options.get("include_output"):
        body["include_output"] = True
    parts = ("tests", "checker", "interactor", "limits", "compile_limits", "stop_on_first_failure")
    if problem is not None:
        if any(options.get(p) for p in parts):
            raise ValueError("a stored problem has its own tests, checker and limits: pass only the source")
        return f"/v1/problems/{quote(problem, safe='')}/judge", body
    if "tests" not in options:
        raise ValueError("pass tests= (or problem=, a stored problem's id)")
    given = {p: options[p] for p in parts if p in options}  # type: ignore[literal-required]
    return "/v1/judge", {**body, **problem_fields(**given)}


def judge_timeout(body: Mapping[str, Any], base: float | None) -> float | None:
    """A read timeout long enough for every test at its wall limit, one after the other."""
    if base is None:
        return None
    tests = body.get("tests") or []
    default = (body.get("limits") or {}).get("wall_ms")
    default_s = default / 1000 if isinstance(default, int | float) else DEFAULT_WALL_S
    wall_s = 0.0
    for t in tests:
        own = (t.get("limits") or {}).get("wall_ms") if isinstance(t, Mapping) else None
        wall_s += own / 1000 if isinstance(own, int | float) else default_s
    return max(base, wall_s + JUDGE_SLACK_S) if tests else max(base, 600.0)  # a stored problem: unknown


def parse_judge(data: Mapping[str, Any]) -> JudgeResult:
    try:
        tests = tuple(
            TestVerdict(
                index=int(t["index"]),
                verdict=str(t["verdict"]),
                message=str(t.get("message") or ""),
                time_ms=int(t.get("time_ms") or 0),
                wall_time_ms=int(t.get("wall_time_ms") or 0),
                memory_kb=int(t.get("memory_kb") or 0),
                exit_code=t.get("exit_code"),
                signal=t.get("signal"),
                stdout=t.get("stdout"),
                stderr=t.get("stderr"),
                checker_time_ms=t.get("checker_time_ms"),
            )
            for t in data["tests"]
        )
        return JudgeResult(
            judge_id=str(data["judge_id"]),
            verdict=str(data["verdict"]),
            message=str(data.get("message") or ""),
            failed_test=data.get("failed_test"),
            tests=tests,
            interactive=bool(data.get("interactive", False)),
            problem_id=data.get("problem_id"),
            time_ms=int(data.get("time_ms") or 0),
            wall_time_ms=int(data.get("wall_time_ms") or 0),
            raw=dict(data),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UnexpectedResponse(UnexpectedResponse.CODE, f"malformed judge result ({exc!r}): {data!r:.300}") from exc


def _problem(data: Mapping[str, Any]) -> Problem:
    try:
        return Problem(
            id=str(data["id"]),
            name=str(data.get("name") or ""),
            tests=int(data["tests"]),
            checker=str(data["checker"]),
            interactive=bool(data["interactive"]),
            bytes=int(data["bytes"]),
            created_at=float(data["created_at"]),
            raw=dict(data),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise UnexpectedResponse(UnexpectedResponse.CODE, f"malformed problem ({exc!r}): {data!r:.300}") from exc


Flow = Generator[Any, "httpx.Response | None", Any]


class _Flows:
    """The call flows of judge mode, shared by the sync and async fronts."""

    def __init__(self, client: Client | AsyncClient) -> None:
        from stockade.client.sdk import _Call

        self._c, self._Call = client, _Call

    def call(self, method: str, path: str, body: Mapping[str, Any] | None = None, timeout: float | None = None) -> Flow:
        return self._c._call_flow(self._Call(method, path, body, timeout))

    def judge(self, language: str, code: str | None, options: JudgeOptions) -> Flow:
        path, body = build_judge_body(language, code, options)
        response = yield from self.call("POST", path, body, judge_timeout(body, self._c.timeout))
        return parse_judge(json_object(response))

    def create(self, tests: TestsArg, name: str, files: FilesArg | None, **parts: Any) -> Flow:
        body = {**problem_fields(tests, **parts), "name": name}
        if files is not None:
            body["files"] = _files_json(files)
        return _problem(json_object((yield from self.call("POST", "/v1/problems", body))))

    def get(self, problem_id: str) -> Flow:
        return _problem(json_object((yield from self.call("GET", f"/v1/problems/{quote(problem_id, safe='')}"))))

    def list(self) -> Flow:
        data = json_object((yield from self.call("GET", "/v1/problems")))
        return [_problem(p) for p in data.get("problems", [])]

    def delete(self, problem_id: str) -> Flow:
        yield from self.call("DELETE", f"/v1/problems/{quote(problem_id, safe='')}")


class Problems:
    """`client.problems`: store a problem once (its tests, checker or interactor, limits), then
    `client.judge(language, code, problem=id)`; get, list and delete them."""

    def __init__(self, client: Client) -> None:
        self._client, self._flows = client, _Flows(client)

    def create(self, tests: TestsArg, *, name: str = "", files: FilesArg | None = None, **parts: Any) -> Problem:
        """`parts`: checker, interactor, limits, compile_limits, stop_on_first_failure."""
        return self._client._run(self._flows.create(tests, name, files, **parts))  # type: ignore[no-any-return]

    def get(self, problem_id: str) -> Problem:
        return self._client._run(self._flows.get(problem_id))  # type: ignore[no-any-return]

    def list(self) -> list[Problem]:
        return self._client._run(self._flows.list())

    def delete(self, problem_id: str) -> None:
        self._client._run(self._flows.delete(problem_id))


class AsyncProblems:
    """`async_client.problems`: the methods of Problems, awaited."""

    def __init__(self, client: AsyncClient) -> None:
        self._client, self._flows = client, _Flows(client)

    async def create(self, tests: TestsArg, *, name: str = "", files: FilesArg | None = None, **parts: Any) -> Problem:
        return await self._client._run(self._flows.create(tests, name, files, **parts))

    async def get(self, problem_id: str) -> Problem:
        return await self._client._run(self._flows.get(problem_id))

    async def list(self) -> list[Problem]:
        return await self._client._run(self._flows.list())

    async def delete(self, problem_id: str) -> None:
        await self._client._run(self._flows.delete(problem_id))
