"""Property-based fuzzing of the live server from its own /openapi.json (schemathesis 4): valid and invalid
requests to every documented operation; no 5xx, no hang, and every answer declared by the schema and
conforming to it (status code, content type, body)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tests.service.live import LiveServer, live_server  # noqa: E402

MAX_EXAMPLES = 50
RUN_EXAMPLES = 30  # each may run a program in the sandbox
REQUEST_TIMEOUT_S = 30  # a hang is a failure, not a stuck suite
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data_dir = tmp_path_factory.mktemp("fuzz") / "data"
    with live_server("fuzz", uid_base=66300, data_dir=data_dir, slots=2, queue=8) as s:
        yield s


@pytest.fixture(scope="module")
def api_schema(fuzz_server: LiveServer) -> object:
    schema = schemathesis.openapi.from_url(f"{fuzz_server.url}/openapi.json", timeout=30)
    schema.config.update(base_url=fuzz_server.url)
    schema.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
        max_examples=MAX_EXAMPLES,
        database="none",  # no .hypothesis/ directory in the work tree
    )
    return schema


P, N = GenerationMode.POSITIVE, GenerationMode.NEGATIVE
# Negative data exists only where there is input to break: the execute body.
OPERATIONS = [
    ("/v1/execute", "POST", P),
    ("/v1/execute", "POST", N),
    ("/v1/runtimes", "GET", P),
    ("/healthz", "GET", P),
    ("/readyz", "GET", P),
    ("/v1/diagnostics", "GET", P),
]


@pytest.mark.parametrize(("path", "method", "mode"), OPERATIONS, ids=lambda v: str(v))
def test_openapi_operation(api_schema: object, path: str, method: str, mode: GenerationMode) -> None:
    operation = api_schema[path][method]  # type: ignore[index]
    calls: list[int] = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def fuzz(case: schemathesis.Case) -> None:
        response = case.call(timeout=REQUEST_TIMEOUT_S)
        calls.append(response.status_code)
        case.validate_response(response, checks=CHECKS)

    fuzz()
    assert calls


def _runnable(case: schemathesis.Case, language: str) -> schemathesis.Case:
    """Make a generated execute body run: a real language and exactly one of code/files (the schema cannot
    say "one of"), keeping every other generated field (stdin, args, encodings, limits...)."""
    body = dict(case.body) if isinstance(case.body, dict) else {}
    body["language"] = language
    body.pop("version", None)
    if isinstance(body.get("files"), list) and body["files"]:
        body.pop("code", None)
        names = [f.get("name") for f in body["files"] if isinstance(f, dict)]
        if body.get("entry") not in names:
            body.pop("entry", None)
    else:
        body.pop("files", None)
        if not isinstance(body.get("code"), str):
            body["code"] = ""
    case.body = body
    return case


def test_execute_runs_generated_programs(api_schema: object) -> None:
    """Generated requests that pass validation reach the sandbox; their results conform to the schema."""
    operation = api_schema["/v1/execute"]["POST"]  # type: ignore[index]
    calls: list[int] = []
    strategy = st.tuples(operation.as_strategy(generation_mode=P), st.sampled_from(["python", "bash"]))

    @given(pair=strategy.map(lambda pair: _runnable(*pair)))
    @settings(max_examples=RUN_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def fuzz(pair: schemathesis.Case) -> None:
        response = pair.call(timeout=REQUEST_TIMEOUT_S)
        calls.append(response.status_code)
        pair.validate_response(response, checks=CHECKS)
        if response.status_code == 200:
            assert response.json()["status"] != "internal_error", response.text

    fuzz()
    assert 200 in calls, calls


def test_schema_lists_the_public_operations(api_schema: object) -> None:
    paths = set(api_schema.raw_schema["paths"])  # type: ignore[attr-defined]
    assert {"/v1/execute", "/v1/runtimes", "/healthz", "/readyz", "/v1/diagnostics"} <= paths
    assert "/execute" not in paths  # the alias is not documented twice
