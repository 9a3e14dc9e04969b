"""`stockade run` as a user runs it: a subprocess, local boxes or a live server (--url), one file or a batch.

Local runs use the CLI's own boxes (the default run dir, uids and cgroup), so they run one at a time: see
test_concurrent_local_runs_do_not_reap_each_other for why two at once are not safe yet.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.service.live import LiveServer

if TYPE_CHECKING:
    from conftest import KeyedServer

STOCKADE = str(Path(sys.executable).with_name("stockade"))


def local_boxes() -> set[Path]:
    """Running boxes of every local `stockade run` instance (each takes its own /run/stockade-cli-<k>)."""
    return {b for d in Path("/run").glob("stockade-cli-*/boxes") for b in d.iterdir()}


PROGRAMS = {
    "ok.py": "print(21 * 2)\n",
    "fails.py": "import sys\nprint('partial')\nsys.exit(3)\n",
    "spins.py": "while True:\n    pass\n",
    "broken.c": "int main( { return 0; }\n",
}
Run = subprocess.CompletedProcess[str]
BATCH_VERDICTS = {"ok.py": "ok", "fails.py": "runtime_error", "spins.py": "timeout", "broken.c": "compile_error"}


def stockade(
    *args: str, cwd: Path, api_key: str | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKADE_")}
    env["COLUMNS"] = "200"  # rich wraps tables to the terminal width; keep each row on one line
    if api_key is not None:
        env["STOCKADE_API_KEY"] = api_key
    return subprocess.run([STOCKADE, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def same_outcome(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Same verdict and output (timings and ids differ from run to run)."""
    fields = ("status", "stdout", "stderr", "exit_code", "signal", "timeout_kind", "stdout_truncated")
    compile_fields = ("status", "stdout", "stderr", "exit_code")

    def outcome(r: dict[str, Any]) -> tuple[Any, ...]:
        c = r["compile"]
        return (
            *(r[f] for f in fields),
            c and tuple(c[f] for f in compile_fields),
            r["runtime"]["language"],
        )

    return outcome(a) == outcome(b)


def json_out(proc: subprocess.CompletedProcess[str]) -> Any:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def progs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A work dir with progs/ holding one program per verdict (paths in the output stay short and relative)."""
    root = tmp_path_factory.mktemp("cli")
    (root / "progs").mkdir()
    for name, code in PROGRAMS.items():
        (root / "progs" / name).write_text(code)
    return root


@pytest.fixture(scope="module", autouse=True)
def remote(progs: Path, open_server: LiveServer, keyed_server: KeyedServer) -> Iterator[dict[str, Future[Run]]]:
    """The --url runs, started together in the background when the module starts: they do not share the local
    boxes, and each CLI start costs seconds on a busy host. Tests wait for the one they check."""
    calls: dict[str, tuple[tuple[str, ...], str | None]] = {
        "ok.py": (("progs/ok.py", "--json", "--url", open_server.url), None),
        "batch": (("progs", "--json", "--cpu-ms", "500", "--url", open_server.url), None),
        "keyed": (("progs/ok.py", "--json", "--url", keyed_server.url), keyed_server.key),
        "unkeyed": (("progs/ok.py", "--url", keyed_server.url), None),
    }
    with ThreadPoolExecutor(len(calls)) as pool:
        yield {name: pool.submit(stockade, "run", *args, cwd=progs, api_key=key) for name, (args, key) in calls.items()}


def test_local_run_human_output(progs: Path) -> None:
    proc = stockade("run", "progs/ok.py", cwd=progs)
    assert proc.returncode == 0, proc.stderr
    lines = [line.strip() for line in proc.stdout.splitlines()]
    assert lines[0] == "ok"
    assert re.search(r"time \d+ ms", proc.stdout)
    assert re.search(r"wall \d+ ms", proc.stdout)
    assert re.search(r"memory \d+ KiB", proc.stdout)
    assert "stdout" in proc.stdout
    assert "42" in lines


def test_local_and_remote_json(progs: Path, remote: dict[str, Future[Run]]) -> None:
    local = json_out(stockade("run", "progs/ok.py", "--json", cwd=progs))
    assert local["status"] == "ok"
    assert local["stdout"] == "42\n"
    assert local["exit_code"] == 0
    assert local["runtime"]["language"] == "python"
    assert same_outcome(json_out(remote["ok.py"].result()), local)


def test_api_key_from_environment(remote: dict[str, Future[Run]]) -> None:
    result = json_out(remote["keyed"].result())
    assert (result["status"], result["stdout"]) == ("ok", "42\n")


def test_missing_api_key_is_unauthenticated(remote: dict[str, Future[Run]]) -> None:
    proc = remote["unkeyed"].result()
    assert proc.returncode == 2
    assert "UNAUTHENTICATED" in proc.stdout + proc.stderr
    assert "42" not in proc.stdout


def table_rows(output: str) -> dict[str, list[str]]:
    """Rows of rich's summary table, by file: the cells of each line that names one of the programs."""
    rows = {}
    for line in output.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃|]", line)]
        cells = [c for c in cells if c]
        for name in PROGRAMS:
            if cells and cells[0] == f"progs/{name}":
                rows[name] = cells
    return rows


def test_batch_summary_table(progs: Path) -> None:
    proc = stockade("run", "progs", "--cpu-ms", "500", cwd=progs)
    assert proc.returncode == 0, proc.stderr
    assert "4 programs" in proc.stdout
    rows = table_rows(proc.stdout)
    assert set(rows) == set(PROGRAMS), proc.stdout
    for name, verdict in BATCH_VERDICTS.items():
        _file, language, shown = rows[name][:3]
        assert shown == verdict, rows[name]
        assert language == ("c" if name.endswith(".c") else "python")


def test_batch_json_local_and_remote(progs: Path, remote: dict[str, Future[Run]]) -> None:
    local = json_out(stockade("run", "progs", "--json", "--cpu-ms", "500", cwd=progs))
    remote_results = json_out(remote["batch"].result())
    for results in (local, remote_results):
        assert isinstance(results, list)
        assert {Path(r["file"]).name: r["status"] for r in results} == BATCH_VERDICTS
        by_name = {Path(r["file"]).name: r for r in results}
        assert by_name["ok.py"]["stdout"] == "42\n"
        assert (by_name["fails.py"]["exit_code"], by_name["fails.py"]["stdout"]) == (3, "partial\n")
        assert by_name["spins.py"]["timeout_kind"] == "cpu"
        assert "error" in by_name["broken.c"]["compile"]["stderr"]
    remote_by_file = {r["file"]: r for r in remote_results}
    for result in local:
        assert same_outcome(remote_by_file[result["file"]], result), result["file"]


def test_concurrent_local_runs_do_not_reap_each_other(progs: Path) -> None:
    (progs / "slow.py").write_text("import time\ntime.sleep(12)\nprint('done')\n")
    (progs / "quick.py").write_text("print('quick')\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKADE_")}
    before = local_boxes()
    slow = subprocess.Popen(
        [STOCKADE, "run", "slow.py", "--json", "--wall-ms", "60000"],
        cwd=progs,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not local_boxes() - before:  # the slow box is running
            assert slow.poll() is None and time.monotonic() < deadline, "the slow run never started a box"
            time.sleep(0.1)
        quick = json_out(stockade("run", "quick.py", "--json", cwd=progs))
        out, err = slow.communicate(timeout=120)
    finally:
        if slow.poll() is None:
            slow.kill()
            slow.wait()
    assert quick["status"] == "ok"
    result = json.loads(out)
    assert (result["status"], result["stdout"]) == ("ok", "done\n"), err[-2000:]
