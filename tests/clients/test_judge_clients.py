"""Judge mode from the clients: the SDK's judge() and client.problems against a real server, and
`stockade judge FILE --tests DIR` as a user runs it, in local boxes and against a server (--url)."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest

from stockade.client import AsyncClient, Client, InvalidRequest, Test
from tests.clients.test_cli import stockade
from tests.service.live import LiveServer

SUM_C = '#include <stdio.h>\nint main(void){long a,b;scanf("%ld %ld",&a,&b);printf("%ld\\n",a<0?a-b:a+b);}\n'
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


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STOCKADE_API_KEY", raising=False)
    monkeypatch.delenv("STOCKADE_URL", raising=False)


def test_sdk_judge_per_test_verdicts(open_server: LiveServer) -> None:
    tests = [Test("1 2\n", "3\n"), Test(b"-1 1\n", b"0\n"), {"stdin": "5 7", "expected": "12"}]
    with Client(open_server.url, retries=0, timeout=120) as c:
        result = c.judge("c", SUM_C, tests=tests, limits={"cpu_ms": 1000}, include_output=True)
        assert [t.verdict for t in result.tests] == ["accepted", "wrong_answer", "accepted"]
        assert result.verdict == "wrong_answer" and result.failed_test == 1 and not result.accepted
        assert result.tests[1].stdout == "-2\n" and result.tests[1].message == "line 1: expected '0', got '-2'"
        assert result.compile is not None and result.compile["status"] == "ok"
        with pytest.raises(InvalidRequest):
            c.judge("c", SUM_C, tests=[{"stdin_file": "missing.in"}])
        with pytest.raises(ValueError, match="pass tests="):
            c.judge("c", SUM_C)


def test_async_sdk_judges_an_interactive_problem(open_server: LiveServer) -> None:
    async def main() -> Any:
        async with AsyncClient(open_server.url, retries=0, timeout=120) as c:
            interactor = {"language": "python", "code": INTERACTOR}
            return await c.judge("python", BISECT, tests=[Test("1"), Test("999")], interactor=interactor)

    result = asyncio.run(main())
    assert result.accepted and result.interactive, result
    assert all(t.checker_time_ms is not None for t in result.tests)


def test_sdk_stored_problem(open_server: LiveServer) -> None:
    with Client(open_server.url, retries=0, timeout=120) as c:
        problem = c.problems.create(
            [Test(stdin_file="1.in", expected_file="1.out"), Test("5 7", "12")],
            name="a+b",
            files={"1.in": "1 2\n", "1.out": "3\n"},
            checker="tokens",
        )
        assert (problem.name, problem.tests, problem.checker, problem.interactive) == ("a+b", 2, "tokens", False)
        assert problem.id in [p.id for p in c.problems.list()]
        assert c.problems.get(problem.id).bytes == problem.bytes
        result = c.judge("c", SUM_C, problem=problem.id)
        assert result.accepted and result.problem_id == problem.id, result
        with pytest.raises(ValueError, match="only the source"):
            c.judge("c", SUM_C, problem=problem.id, tests=[Test("1 1", "2")])
        c.problems.delete(problem.id)
        assert problem.id not in [p.id for p in c.problems.list()]


# -- the command ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("judge-cli")
    (root / "sum.c").write_text(SUM_C)
    (root / "bisect.py").write_text(BISECT)
    (root / "interactor.py").write_text(INTERACTOR)
    ab, game = root / "ab", root / "game"
    ab.mkdir()
    game.mkdir()
    for name, stdin, answer in (("1", "1 2", "3"), ("2", "5 7", "12"), ("10", "-1 1", "0")):
        (ab / f"{name}.in").write_text(stdin + "\n")
        (ab / f"{name}.{'ans' if name == '10' else 'out'}").write_text(answer + "\n")
    for name, secret in (("a", 1), ("b", 512), ("c", 1000)):
        (game / f"{name}.in").write_text(str(secret))
    return root


def rows(output: str) -> list[list[str]]:
    """The cells of each line of rich's table that starts with a test's index."""
    found = []
    for line in output.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃|]", line) if c.strip()]
        if cells and cells[0].isdigit():
            found.append(cells)
    return found


def test_cli_judges_a_folder_locally_with_a_per_test_table(work: Path) -> None:
    proc = stockade("judge", "sum.c", "--tests", "ab", "--cpu-ms", "1000", cwd=work)
    assert proc.returncode == 1, proc.stderr  # a verdict other than accepted
    table = rows(proc.stdout)
    # Natural order of the names (2 before 10); .ans counts as an answer file.
    assert [(r[1], r[2]) for r in table] == [("1", "accepted"), ("2", "accepted"), ("10", "wrong_answer")]
    assert "expected '0', got '-2'" in table[2][-1]
    assert proc.stdout.strip().splitlines()[-1].startswith("wrong_answer · 2/3 accepted")


def test_cli_local_and_remote_json_agree_and_an_interactive_folder(work: Path, open_server: LiveServer) -> None:
    local = stockade("judge", "sum.c", "--tests", "ab", "--json", "--stop", cwd=work)
    remote = stockade("judge", "sum.c", "--tests", "ab", "--json", "--stop", "--url", open_server.url, cwd=work)
    for proc in (local, remote):
        assert proc.returncode == 1, proc.stderr
    verdicts = [[t["verdict"] for t in json.loads(p.stdout)["tests"]] for p in (local, remote)]
    assert verdicts == [["accepted", "accepted", "wrong_answer"]] * 2
    game = stockade("judge", "bisect.py", "--tests", "game", "--interactor", "interactor.py", "--json", cwd=work)
    assert game.returncode == 0, game.stdout + game.stderr
    out = json.loads(game.stdout)
    assert out["verdict"] == "accepted" and out["interactive"] is True and len(out["tests"]) == 3


def test_cli_refusals_exit_2(work: Path) -> None:
    refused = stockade("judge", "sum.c", "--tests", "ab", "-l", "cobol-2077", cwd=work)
    assert refused.returncode == 2 and "UNKNOWN_LANGUAGE" in refused.stdout + refused.stderr
    empty = work / "empty"
    empty.mkdir(exist_ok=True)
    none = stockade("judge", "sum.c", "--tests", "empty", cwd=work)
    assert none.returncode == 2 and "no tests in empty" in none.stderr
