"""The mappings that no real program reaches from outside (an internal error, a compile time limit)."""

from __future__ import annotations

from stockade.engine import ExecutionResult, Verdict
from stockade.sandbox.spec import BoxResult, Status
from stockade.service.compat import judge0_records as records
from stockade.service.compat import piston as pi


def test_internal_error_is_judge0_13_and_piston_xx() -> None:
    box = BoxResult(Status.INTERNAL_ERROR, error="cgroup gone")
    result = ExecutionResult(Verdict.INTERNAL_ERROR, "python", "3.11", run=box)
    status, message = records.status_of(result, None)
    assert status == 13 and message is not None and "cgroup" not in message  # no internals leak
    assert pi.stage(box)["status"] == "XX"


def test_compile_time_limit_is_a_compilation_error_saying_so() -> None:
    compiled = BoxResult(Status.TIMEOUT, stdout=b"partial")
    result = ExecutionResult(Verdict.COMPILE_LIMIT, "c", "12", compile=compiled)
    record = records.finish({"expected_output": None, "status_id": 1}, result)
    assert record["status_id"] == 6 and records.render(record, ("compile_output",), False) == {
        "compile_output": "Compilation time limit exceeded."
    }


def test_versions_match_as_node_semver_does() -> None:
    assert pi.version_matches("3.11", "3.11.2") and pi.version_matches("~3.11.0", "3.11.2")
    assert pi.version_matches("3.11.2", "3.11.2") and pi.version_matches("*", "1")
    assert not pi.version_matches("3.12", "3.11.2") and not pi.version_matches("3", None)
    assert not pi.version_matches("not a range", "3.11.2")


def test_each_surface_switches_off_and_judge0_moves() -> None:
    """Wired or not: Admission's execute paths, and whether a route answers (a service never started
    answers a wired route with 500, an absent one with the playground's 404)."""
    from starlette.testclient import TestClient

    from stockade.service.admission import Admission
    from stockade.service.app import create_app
    from stockade.service.config import ServiceConfig

    def wired(**cfg: object) -> tuple[set[str], dict[str, int]]:
        app = create_app(ServiceConfig(**cfg))  # type: ignore[arg-type]
        surfaces = next(m.kwargs["surfaces"] for m in app.user_middleware if m.cls is Admission)
        client = TestClient(app, raise_server_exceptions=False)  # no lifespan: nothing starts
        probes = ("/judge0/statuses", "/j0/statuses", "/api/v2/runtimes")
        return set(surfaces), {p: client.get(p).status_code for p in probes}

    paths, status = wired()
    assert paths == {"/judge0/submissions", "/judge0/submissions/batch", "/api/v2/execute", "/api/v2/piston/execute"}
    assert status == {"/judge0/statuses": 500, "/j0/statuses": 404, "/api/v2/runtimes": 500}
    paths, status = wired(judge0=False, piston=False)
    assert paths == set() and set(status.values()) == {404}
    paths, status = wired(judge0_prefix="/j0", piston=False)
    assert paths == {"/j0/submissions", "/j0/submissions/batch"} and status["/j0/statuses"] == 500
