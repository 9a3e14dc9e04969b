"""Piston v2's API as its README describes it (docs/compat.md), against a real server."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.service.live import LiveServer

STAGE_KEYS = {"stdout", "stderr", "output", "code", "signal", "message", "status", "cpu_time", "wall_time", "memory"}


def execute(client: httpx.Client, **body: Any) -> httpx.Response:
    return client.post("/api/v2/execute", json={"version": "*", **body})


def test_execute_interpreted(client: httpx.Client) -> None:
    files = [{"name": "m.py", "content": "import sys; print(input(), sys.argv[1:])"}]
    r = execute(client, language="py", version="3.x", files=files, stdin="hi", args=["1", "2"])
    assert r.status_code == 200, r.text
    out = r.json()
    assert set(out) == {"language", "version", "run"} and out["language"] == "python"
    run = out["run"]
    assert set(run) == STAGE_KEYS
    assert run["stdout"] == "hi ['1', '2']\n" and run["output"] == run["stdout"] and run["code"] == 0
    assert (
        run["signal"] is None
        and run["status"] is None
        and run["memory"] > 0
        and run["wall_time"] >= run["cpu_time"] >= 0
    )


def test_execute_compiled_and_its_compile_error(client: httpx.Client) -> None:
    ok = execute(client, language="c", files=[{"content": '#include <stdio.h>\nint main(void){puts("c");return 4;}'}])
    out = ok.json()
    assert set(out) == {"language", "version", "compile", "run"}
    assert out["compile"]["code"] == 0 and out["run"]["stdout"] == "c\n" and out["run"]["code"] == 4
    assert out["run"]["status"] == "RE" and out["run"]["message"] == "Exited with error status 4"
    bad = execute(client, language="c", files=[{"content": "int main(void){ return 0 }"}]).json()
    assert bad["compile"]["code"] != 0 and bad["compile"]["status"] == "RE" and "error" in bad["compile"]["stderr"]
    assert bad["run"] == bad["compile"]  # Piston's answer when the compile failed


def test_several_files_the_first_runs(client: httpx.Client) -> None:
    files = [
        {"name": "main.py", "content": "import helper; print(helper.X)"},
        {"name": "helper.py", "content": "X = 5"},
    ]
    assert execute(client, language="python", files=files).json()["run"]["stdout"] == "5\n"
    main = {"name": "a.py", "content": "print(open('x.txt', 'rb').read(), open('y.txt').read())"}
    data = [
        {"name": "x.txt", "content": "00ff", "encoding": "hex"},
        {"name": "y.txt", "content": "eQ==", "encoding": "base64"},
    ]
    r = execute(client, language="python", files=[main, *data])
    assert r.json()["run"]["stdout"] == "b'\\x00\\xff' y\n", r.text


def test_versions_are_semver_ranges(client: httpx.Client) -> None:
    version = next(r["version"] for r in client.get("/api/v2/runtimes").json() if r["language"] == "python")
    major, minor = version.split(".")[:2]
    for wanted in (version, f"{major}.{minor}", f"^{major}.{minor}", f"{major}.x", ">=3", "*"):
        r = execute(client, language="python", version=wanted, files=[{"content": "print(1)"}])
        assert r.status_code == 200 and r.json()["version"] == version, (wanted, r.text)
    for wanted in ("2.7", f"<{major}", "99.x"):
        r = execute(client, language="python", version=wanted, files=[{"content": "print(1)"}])
        assert r.status_code == 400 and r.json() == {"message": f"python-{wanted} runtime is unknown"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"version": "*", "files": []}, "language is required as a string"),
        ({"language": "python", "files": []}, "version is required as a string"),
        ({"language": "python", "version": "*"}, "files is required as an array"),
        ({"language": "python", "version": "*", "files": [{"name": "x"}]}, "files[0].content is required as a string"),
        ({"language": "cobra", "version": "*", "files": [{"content": ""}]}, "cobra-* runtime is unknown"),
        ({"language": "python", "version": "*", "files": [{"content": "AA==", "encoding": "base64"}]},
         "files must include at least one utf8 encoded file"),
        ({"language": "python", "version": "*", "files": [{"content": "1"}], "run_timeout": "1"},
         "If specified, run_timeout must be a number"),
        ({"language": "python", "version": "*", "files": [{"content": "1"}], "run_timeout": 10**9},
         "run_timeout cannot exceed the configured limit of 120000"),
        ({"language": "python", "version": "*", "files": [{"content": "1"}], "compile_memory_limit": -5},
         "compile_memory_limit must be non-negative"),
    ],
)  # fmt: skip
def test_piston_errors(client: httpx.Client, body: dict[str, Any], message: str) -> None:
    r = client.post("/api/v2/execute", json=body)
    assert r.status_code == 400 and r.json() == {"message": message}


def test_content_type_must_be_json(client: httpx.Client) -> None:
    r = client.post("/api/v2/execute", content=b"{}", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415 and r.json() == {"message": "requests must be of type application/json"}
    # The JSON body as the npm piston-client sends it: checked as JSON (here: no language), not refused.
    r = client.post("/api/v2/execute", content=b"{}", headers={"Content-Type": "text/plain;charset=UTF-8"})
    assert r.status_code == 400 and "language" in r.json()["message"]


def test_limits_and_their_statuses(client: httpx.Client) -> None:
    loop = execute(client, language="python", files=[{"content": "while True: pass"}], run_cpu_time=300).json()["run"]
    assert loop["status"] == "TO" and loop["signal"] == "SIGKILL" and loop["code"] is None
    mem = execute(client, language="python", files=[{"content": "x = bytearray(300 * 2**20)"}],
                  run_memory_limit=64 * 2**20).json()["run"]  # fmt: skip
    assert mem["status"] == "SG" and mem["signal"] == "SIGKILL" and mem["message"] == "Memory limit exceeded"
    seg = execute(client, language="python", files=[{"content": "import os; os.kill(os.getpid(), 11)"}]).json()["run"]
    assert seg["status"] == "SG" and seg["signal"] == "SIGSEGV"
    out = execute(client, language="python", files=[{"content": "print('x' * 4_000_000)"}]).json()["run"]
    assert out["status"] == "OL" and out["message"] == "stdout length exceeded"


def test_runtimes_and_packages(client: httpx.Client) -> None:
    runtimes = client.get("/api/v2/runtimes").json()
    python = next(r for r in runtimes if r["language"] == "python")
    assert set(python) == {"language", "version", "aliases"} and "py" in python["aliases"]
    packages = client.get("/api/v2/packages").json()
    assert all(set(p) == {"language", "language_version", "installed"} for p in packages)
    assert next(p for p in packages if p["language"] == "python")["installed"] is True
    assert client.post("/api/v2/packages", json={"language": "python", "version": "3"}).status_code == 405
    assert client.get("/api/v2/piston/runtimes").json() == runtimes


def test_keys_apply_and_refusals_are_pistons(keyed_server: tuple[LiveServer, dict[str, str]]) -> None:
    server, keys = keyed_server
    with httpx.Client(base_url=server.url, timeout=60) as c:
        body = {"language": "python", "version": "*", "files": [{"content": "print(1)"}]}
        anon = c.post("/api/v2/execute", json=body)
        assert anon.status_code == 401 and set(anon.json()) == {"message"}
        auth = {"Authorization": f"Bearer {keys['python-only']}"}
        assert c.post("/api/v2/execute", json=body, headers=auth).json()["run"]["stdout"] == "1\n"
        c_body = {**body, "language": "c", "files": [{"content": "int main(void){return 0;}"}]}
        other = c.post("/api/v2/execute", json=c_body, headers=auth)
        assert other.status_code == 403 and "may not use" in other.json()["message"]


def test_every_installed_version_is_a_runtime_and_runs(client: httpx.Client) -> None:
    """Piston lists a runtime per version; asking for one (exactly, or by a range only it satisfies) runs
    that toolchain."""
    ours = next(r for r in client.get("/v1/runtimes").json()["runtimes"] if r["language"] == "python")
    installed = [v["version"] for v in ours["versions"] if v["available"]]
    listed = [r["version"] for r in client.get("/api/v2/runtimes").json() if r["language"] == "python"]
    assert listed == installed and len(installed) >= 2  # Debian's python3 and the pyenv builds
    for version in (installed[0], installed[-1]):
        series = [v for v in installed if v.split(".")[:2] == version.split(".")[:2]]
        for wanted in [version] + ([f"~{version}"] if series == [version] else []):  # ~X.Y.Z: that series
            r = execute(client, language="python", version=wanted,
                        files=[{"content": "import platform; print(platform.python_version())"}])  # fmt: skip
            assert r.status_code == 200 and r.json()["version"] == version, (wanted, r.text)
            assert r.json()["run"]["stdout"] == f"{version}\n"
