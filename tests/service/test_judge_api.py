"""POST /v1/judge against a real `stockade serve`: per-test verdicts, checkers, quota, audit, refusals."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from stockade.service.store import Store
from tests.service.live import LiveServer, live_server

C_SUM = """#include <stdio.h>
int main(void) {
    long a, b;
    if (scanf("%ld %ld", &a, &b) != 2) return 3;
    while (a == 0) {}
    printf("%ld\\n", a < 0 ? a - b : a + b);
    return 0;
}
"""
FAST = {"cpu_ms": 1000, "wall_ms": 3000}


def ab(a: int, b: int) -> dict[str, Any]:
    return {"stdin": f"{a} {b}\n", "expected": f"{a + b}\n"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data_dir = tmp_path_factory.mktemp("judge-api") / "data"
    data_dir.mkdir(mode=0o700)
    with Store(data_dir / "stockade.db") as st:
        st.create_tenant("admin", "admin", rate_per_minute=1000)
        st.create_key("admin", "test")
    with live_server("judge-api", uid_base=67200, data_dir=data_dir) as s:
        yield s


def key_of(server: LiveServer, prefix: str, **opts: Any) -> tuple[str, str]:
    tenant = f"{prefix}-{uuid.uuid4().hex[:6]}"
    with Store(server.data_dir / "stockade.db") as st:
        st.create_tenant(tenant, tenant, rate_per_minute=1000, **opts)
        return tenant, st.create_key(tenant, "test")[1]


@pytest.fixture(scope="module")
def key(server: LiveServer) -> str:
    return key_of(server, "judge")[1]


def judge(server: LiveServer, key: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/judge", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=120)


def settled(server: LiveServer) -> None:
    """Diagnostics answer once every answered execution's audit record and usage are written."""
    with Store(server.data_dir / "stockade.db") as st:
        admin = st.create_key("admin", "settle")[1]
    diag = httpx.get(f"{server.url}/v1/diagnostics", headers={"Authorization": f"Bearer {admin}"}, timeout=30)
    assert diag.json()["admission"]["recording"] == 0


def test_c_submission_verdict_per_test(server: LiveServer, key: str) -> None:
    body = {"language": "c", "code": C_SUM, "limits": FAST, "tests": [ab(1, 2), ab(-1, 2), ab(0, 1), ab(5, 5)]}
    r = judge(server, key, body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert [t["verdict"] for t in out["tests"]] == ["accepted", "wrong_answer", "timeout", "accepted"]
    assert out["verdict"] == "wrong_answer" and out["failed_test"] == 1 and out["accepted"] == 2
    assert out["compile"]["status"] == "ok"
    assert out["tests"][1]["message"] == "line 1: expected '1', got '-3'"
    assert out["tests"][0]["stdout"] is None  # without include_output
    assert all(t["memory_kb"] > 0 for t in out["tests"])
    assert out["runtime"]["language"] == "c"
    assert r.headers["X-RateLimit-Limit"] == "1000"


def test_stop_on_first_failure_and_outputs(server: LiveServer, key: str) -> None:
    body = {
        "language": "python",
        "code": "a, b = map(int, input().split()); print(a * b)",
        "tests": [{"stdin": "2 2", "expected": "4"}, {"stdin": "2 3", "expected": "5"}]
        + [{"stdin": "1 1", "expected": "1"}] * 6,
        "stop_on_first_failure": True,
        "include_output": True,
    }
    out = judge(server, key, body).json()
    verdicts = [t["verdict"] for t in out["tests"]]
    assert verdicts[:2] == ["accepted", "wrong_answer"] and out["failed_test"] == 1
    assert "skipped" in verdicts  # two slots: at most the tests already running finish
    assert out["tests"][0]["stdout"] == "4\n" and out["compile"] is None


def test_program_checker_and_float_checker(server: LiveServer, key: str) -> None:
    checker = {
        "kind": "program",
        "language": "python",
        "code": "import sys\nout, ans = open(sys.argv[2]).read(), open(sys.argv[3]).read()\n"
        "print('sorted ok' if sorted(out.split()) == sorted(ans.split()) else 'no')\n"
        "sys.exit(0 if sorted(out.split()) == sorted(ans.split()) else 1)\n",
    }
    body = {
        "language": "python",
        "code": "import sys; print(*reversed(sys.stdin.read().split()))",
        "tests": [{"stdin": "1 2 3", "expected": "1 2 3"}, {"stdin": "1 2", "expected": "1 3"}],
        "checker": checker,
    }
    out = judge(server, key, body).json()
    assert [(t["verdict"], t["message"]) for t in out["tests"]] == [("accepted", "sorted ok"), ("wrong_answer", "no")]
    assert all(t["checker_time_ms"] is not None for t in out["tests"])
    floats = {
        "language": "python",
        "code": "print(1/3)",
        "tests": [{"expected": "0.333333"}, {"expected": "0.3334"}],
        "checker": {"kind": "float", "abs_eps": 1e-6, "rel_eps": 0},
    }
    assert [t["verdict"] for t in judge(server, key, floats).json()["tests"]] == ["accepted", "wrong_answer"]


def test_compile_error_is_one_execution_and_each_test_run_is_one(server: LiveServer) -> None:
    tenant, key = key_of(server, "judge-usage")
    bad = judge(server, key, {"language": "c", "code": "int main( {", "tests": [ab(1, 1)] * 5}).json()
    assert bad["verdict"] == "compile_error" and {t["verdict"] for t in bad["tests"]} == {"skipped"}
    assert "error" in bad["compile"]["stderr"]
    good = judge(server, key, {"language": "c", "code": C_SUM, "tests": [ab(i, i) for i in range(1, 4)]}).json()
    assert good["verdict"] == "accepted"
    settled(server)
    with Store(server.data_dir / "stockade.db") as st:
        assert st.check_quota(tenant).executions_used == 1 + 3
    db = sqlite3.connect(server.data_dir / "stockade.db")
    try:
        records = [json.loads(b)["data"] for (b,) in db.execute("SELECT body FROM audit_log")]
    finally:
        db.close()
    mine = [r for r in records if r.get("judge_id") == good["judge_id"]]
    assert sorted(r["test"] for r in mine) == [0, 1, 2]
    assert {r["judged"] for r in mine} == {"accepted"} and {r["verdict"] for r in mine} == {"ok"}
    assert len([r for r in records if r.get("judge_id") == bad["judge_id"]]) == 1


def test_a_judge_request_needs_quota_for_every_test(server: LiveServer) -> None:
    _, key = key_of(server, "judge-quota", executions_per_day=3)
    body = {"language": "python", "code": "print(input())", "tests": [{"stdin": "x", "expected": "x"}] * 4}
    r = judge(server, key, body)
    assert r.status_code == 429 and r.json()["error"] == "QUOTA_EXCEEDED", r.text
    body["tests"] = body["tests"][:3]
    r = judge(server, key, body)
    assert r.status_code == 200 and r.json()["verdict"] == "accepted", r.text  # the refused one held nothing
    r = judge(server, key, {**body, "tests": body["tests"][:1]})
    assert r.status_code == 429, r.text


@pytest.mark.parametrize(
    ("change", "code", "status"),
    [
        ({"tests": []}, "INVALID_REQUEST", 400),
        ({"tests": [ab(1, 1)] * 257}, "INVALID_REQUEST", 400),
        ({"checker": {"kind": "program", "code": "x"}}, "INVALID_REQUEST", 400),
        ({"checker": {"kind": "lines", "language": "python"}}, "INVALID_REQUEST", 400),
        ({"checker": {"kind": "float", "abs_eps": -1}}, "INVALID_REQUEST", 400),
        ({"checker": {"kind": "program", "language": "cobol-2077", "code": "x"}}, "UNKNOWN_LANGUAGE", 404),
        ({"tests": [{**ab(1, 1), "limits": {"cpu_ms": 10**9}}]}, "LIMIT_OUT_OF_RANGE", 422),
        ({"tests": [{"stdin": "%%%", "encoding": "base64"}]}, "INVALID_REQUEST", 400),
    ],
)
def test_refusals(server: LiveServer, key: str, change: dict[str, Any], code: str, status: int) -> None:
    body = {"language": "c", "code": C_SUM, "tests": [ab(1, 1)], **change}
    r = judge(server, key, body)
    assert r.status_code == status, r.text
    assert r.json()["error"] == code


def test_a_forbidden_checker_language(server: LiveServer) -> None:
    _, key = key_of(server, "judge-langs", allowed_languages=["c"])
    checker = {"kind": "program", "language": "python", "code": "print(1)"}
    r = judge(server, key, {"language": "c", "code": C_SUM, "tests": [ab(1, 1)], "checker": checker})
    assert r.status_code == 403 and r.json()["error"] == "FORBIDDEN", r.text


def test_documented_in_the_schema(server: LiveServer) -> None:
    schema = httpx.get(f"{server.url}/openapi.json").json()
    op = schema["paths"]["/v1/judge"]["post"]
    assert "200" in op["responses"] and "429" in op["responses"]
    assert {"JudgeIn", "JudgeOut", "TestIn", "CheckerIn"} <= set(schema["components"]["schemas"])
