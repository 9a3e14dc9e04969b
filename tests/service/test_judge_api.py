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


def audit_data(server: LiveServer) -> list[dict[str, Any]]:
    settled(server)
    db = sqlite3.connect(server.data_dir / "stockade.db")
    try:
        return [json.loads(b)["data"] for (b,) in db.execute("SELECT body FROM audit_log")]
    finally:
        db.close()


# -- test data files --------------------------------------------------------------------------------

SHOWS_ITS_BOX = (
    "import os, sys\na, b = map(int, input().split())\nprint(a + b)\nprint(sorted(os.listdir('.')), file=sys.stderr)\n"
)


def test_stdin_and_expected_from_files_which_stay_out_of_the_submissions_box(server: LiveServer, key: str) -> None:
    files = [
        {"name": "main.py", "content": SHOWS_ITS_BOX},
        {"name": "data/1.in", "content": "1 2\n"},
        {"name": "data/1.out", "content": "3\n"},
        {"name": "data/2.in", "content": "NSA1", "encoding": "base64"},  # "5 5"
        {"name": "data/2.out", "content": "11\n"},
    ]
    tests = [{"stdin_file": f"data/{i}.in", "expected_file": f"data/{i}.out"} for i in (1, 2)]
    body = {"language": "python", "files": files, "tests": tests, "include_output": True}
    r = judge(server, key, body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert [t["verdict"] for t in out["tests"]] == ["accepted", "wrong_answer"]
    assert out["tests"][1]["message"] == "line 1: expected '11', got '10'"
    assert out["tests"][0]["stderr"] == "['main.py']\n"  # no test data in its box
    # With `code`, `files` holds only test data.
    inline = {"language": "python", "code": "print(sum(map(int, input().split())))",
              "files": files[1:3], "tests": tests[:1]}  # fmt: skip
    assert judge(server, key, inline).json()["verdict"] == "accepted"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tests": [{"stdin_file": "nope.in"}]}, "test 0 stdin_file 'nope.in' is not one of the files"),
        ({"tests": [{"stdin": "1", "stdin_file": "a.in"}]}, "give `stdin` or `stdin_file`, not both"),
        (
            {
                "files": [{"name": "a.in", "content": "x"}, {"name": "b.py", "content": "pass"}],
                "tests": [{"stdin_file": "a.in"}],
            },
            "with `code`, `files` may hold only",
        ),
    ],
)
def test_data_file_refusals(server: LiveServer, key: str, change: dict[str, Any], message: str) -> None:
    r = judge(server, key, {"language": "python", "code": "pass", **change})
    assert r.status_code == 400 and r.json()["error"] == "INVALID_REQUEST", r.text
    assert message in r.json()["message"]


# -- interactive problems and the checker's share of the quota --------------------------------------

INTERACTOR = """import sys
secret = int(open(sys.argv[1]).read())
for n in range(1, 31):
    line = sys.stdin.readline()
    try:
        guess = int(line)
    except ValueError:
        print(f"not a number: {line.strip()[:20]!r}", file=sys.stderr)
        sys.exit(2)
    if guess == secret:
        print("correct", flush=True)
        print(f"found in {n}", file=sys.stderr)
        sys.exit(0)
    print("higher" if guess < secret else "lower", flush=True)
sys.exit(1)
"""
BISECT = """lo, hi = 1, 1000
while True:
    mid = (lo + hi) // 2
    print(mid, flush=True)
    reply = input()
    if reply == "correct":
        break
    lo, hi = (mid + 1, hi) if reply == "higher" else (lo, mid - 1)
"""


def test_an_interactive_problem_and_its_interactor_counted_as_executions(server: LiveServer) -> None:
    tenant, key = key_of(server, "judge-inter", executions_per_day=4)
    body: dict[str, Any] = {
        "language": "python",
        "code": BISECT,
        "limits": {"wall_ms": 3000},
        "tests": [{"stdin": "1"}, {"stdin": "777"}, {"stdin": "1000"}],
        "interactor": {"language": "python", "code": INTERACTOR},
    }
    r = judge(server, key, body)  # 3 tests and 3 interactor runs: 6 executions, over the 4 left
    assert r.status_code == 429 and r.json()["error"] == "QUOTA_EXCEEDED", r.text
    body["tests"] = body["tests"][1:]
    out = judge(server, key, body).json()
    assert out["verdict"] == "accepted" and out["interactive"] is True, out
    assert all(t["checker_time_ms"] is not None and t["memory_kb"] > 0 for t in out["tests"])
    assert [t["message"].startswith("found in ") for t in out["tests"]] == [True, True]
    records = [r for r in audit_data(server) if r.get("judge_id") == out["judge_id"]]
    assert sorted((r.get("role", "submission"), r["test"]) for r in records) == [
        ("interactor", 0), ("interactor", 1), ("submission", 0), ("submission", 1)
    ]  # fmt: skip
    with Store(server.data_dir / "stockade.db") as st:
        assert st.check_quota(tenant).executions_used == 4
    r = judge(server, key_of(server, "judge-inter2")[1], {**body, "checker": {"kind": "tokens"}})
    assert r.status_code == 400 and "interactor decides" in r.json()["message"], r.text


# -- stored problems --------------------------------------------------------------------------------

SORTED_CHECKER = {
    "kind": "program",
    "language": "python",
    "code": "import sys\nout, ans = (open(p).read().split() for p in sys.argv[2:4])\n"
    "sys.exit(0 if sorted(out) == sorted(ans) else 1)\n",
}


def call(server: LiveServer, key: str, method: str, path: str, body: Any = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.request(method, f"{server.url}{path}", json=body, headers=headers, timeout=120)


def test_a_stored_problem_is_judged_with_only_the_source(server: LiveServer) -> None:
    _, key = key_of(server, "judge-problems")
    problem = {
        "name": "A+B, any order",
        "files": [{"name": "1.in", "content": "1 2\n"}, {"name": "1.out", "content": "3\n"}],
        "tests": [{"stdin_file": "1.in", "expected_file": "1.out"}, {"stdin": "5 7", "expected": "12"}],
        "checker": SORTED_CHECKER,
        "limits": {"cpu_ms": 1000},
    }
    r = call(server, key, "POST", "/v1/problems", problem)
    assert r.status_code == 201, r.text
    created = r.json()
    pid = created["id"]
    assert (created["tests"], created["checker"], created["interactive"]) == (2, "program", False)
    shown = call(server, key, "GET", f"/v1/problems/{pid}").json()
    assert shown["problem"]["name"] == "A+B, any order" and shown["problem"]["files"][0]["name"] == "1.in"
    assert [p["id"] for p in call(server, key, "GET", "/v1/problems").json()["problems"]] == [pid]
    r = call(server, key, "POST", f"/v1/problems/{pid}/judge", {"language": "c", "code": C_SUM})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["verdict"] == "accepted" and out["problem_id"] == pid and out["compile"]["status"] == "ok", out
    wrong = call(server, key, "POST", f"/v1/problems/{pid}/judge", {"language": "python", "code": "print(3)"}).json()
    assert [t["verdict"] for t in wrong["tests"]] == ["accepted", "wrong_answer"]
    records = [r for r in audit_data(server) if r.get("judge_id") == out["judge_id"]]
    assert len(records) == 4 and {r["problem_id"] for r in records} == {pid}  # two runs, two checker runs
    # Another tenant's problem is not found; a deleted one neither.
    _, other = key_of(server, "judge-others")
    for method, path in (("GET", f"/v1/problems/{pid}"), ("DELETE", f"/v1/problems/{pid}")):
        r = call(server, other, method, path)
        assert r.status_code == 404 and r.json()["error"] == "PROBLEM_NOT_FOUND", r.text
    r = call(server, other, "POST", f"/v1/problems/{pid}/judge", {"language": "python", "code": "pass"})
    assert r.status_code == 404 and r.json()["error"] == "PROBLEM_NOT_FOUND", r.text
    assert call(server, key, "DELETE", f"/v1/problems/{pid}").status_code == 204
    assert call(server, key, "GET", f"/v1/problems/{pid}").status_code == 404


def test_a_stored_interactive_problem(server: LiveServer, key: str) -> None:
    problem = {"tests": [{"stdin": "500"}], "interactor": {"language": "python", "code": INTERACTOR},
               "limits": {"wall_ms": 1500}}  # fmt: skip
    r = call(server, key, "POST", "/v1/problems", problem)
    assert r.status_code == 201 and r.json()["checker"] == "interactor", r.text
    path = f"/v1/problems/{r.json()['id']}/judge"
    assert call(server, key, "POST", path, {"language": "python", "code": BISECT}).json()["verdict"] == "accepted"
    stuck = call(server, key, "POST", path, {"language": "python", "code": "input()"}).json()
    assert stuck["verdict"] == "timeout" and "deadlock" in stuck["tests"][0]["message"], stuck


@pytest.mark.parametrize(
    ("change", "code", "status"),
    [
        ({"tests": [{"stdin_file": "missing"}]}, "INVALID_REQUEST", 400),
        ({"checker": {"kind": "program", "language": "cobol-2077", "code": "x"}}, "UNKNOWN_LANGUAGE", 404),
        ({"interactor": {"language": "python", "code": "x"}, "checker": {"kind": "exact"}}, "INVALID_REQUEST", 400),
        ({"limits": {"cpu_ms": 10**9}}, "LIMIT_OUT_OF_RANGE", 422),
        ({"tests": [{"stdin": "1", "limits": {"wall_ms": 0}}]}, "LIMIT_OUT_OF_RANGE", 422),
    ],
)
def test_problem_refusals(server: LiveServer, key: str, change: dict[str, Any], code: str, status: int) -> None:
    r = call(server, key, "POST", "/v1/problems", {"tests": [{"stdin": "1"}], **change})
    assert r.status_code == status and r.json()["error"] == code, r.text


def test_a_forbidden_language_in_a_stored_problem(server: LiveServer) -> None:
    _, key = key_of(server, "judge-problem-langs", allowed_languages=["c"])
    problem = {"tests": [{"stdin": "1"}], "interactor": {"language": "python", "code": "pass"}}
    r = call(server, key, "POST", "/v1/problems", problem)
    assert r.status_code == 403 and r.json()["error"] == "FORBIDDEN", r.text
