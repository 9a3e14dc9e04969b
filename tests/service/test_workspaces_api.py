"""Workspaces and files out against a real `stockade serve`: round trips, one execution at a time on a
workspace, quota, and hostile programs against the write-back, checked on the host (the store's files)."""

from __future__ import annotations

import base64
import os
import stat
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from stockade.service.store import Store
from tests.service.live import LiveServer, live_server

FAST = {"cpu_ms": 2000, "wall_ms": 10000}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data_dir = tmp_path_factory.mktemp("workspaces-api") / "data"
    data_dir.mkdir(mode=0o700)
    with Store(data_dir / "stockade.db") as st:
        st.create_tenant("admin", "admin", rate_per_minute=1000)
        st.create_key("admin", "test")
    with live_server("workspaces-api", uid_base=69400, data_dir=data_dir) as s:
        yield s


def new_key(server: LiveServer) -> tuple[str, dict[str, str]]:
    tenant = f"ws-{uuid.uuid4().hex[:6]}"
    with Store(server.data_dir / "stockade.db") as st:
        st.create_tenant(tenant, tenant, rate_per_minute=1000)
        return tenant, {"Authorization": f"Bearer {st.create_key(tenant, 'test')[1]}"}


@pytest.fixture
def auth(server: LiveServer) -> tuple[str, dict[str, str]]:
    return new_key(server)


def api(server: LiveServer, method: str, path: str, headers: dict[str, str], **kw: Any) -> httpx.Response:
    return httpx.request(method, f"{server.url}{path}", headers=headers, timeout=120, **kw)


def execute(server: LiveServer, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    r = api(server, "POST", "/v1/execute", headers, json={"language": "python", "limits": FAST, **body})
    assert r.status_code == 200, r.text
    return dict(r.json())


def store_dir(server: LiveServer, tenant: str, ws: str) -> Path:
    return server.data_dir / "workspaces" / tenant / ws


def host_tree(server: LiveServer, tenant: str, ws: str) -> dict[str, bytes]:
    """The oracle: the workspace's files as the host holds them; nothing but regular files and dirs."""
    home = store_dir(server, tenant, ws)
    gens = [p for p in home.iterdir() if p.name.startswith("g")]
    assert len(gens) == 1, gens
    found = {}
    for dirpath, dirnames, filenames in os.walk(gens[0]):
        for name in dirnames + filenames:
            mode = os.lstat(os.path.join(dirpath, name)).st_mode
            assert stat.S_ISDIR(mode) or stat.S_ISREG(mode), f"{name}: mode {mode:o}"
        for name in filenames:
            full = Path(dirpath, name)
            found[str(full.relative_to(gens[0]))] = full.read_bytes()
    return found


def test_workspace_round_trip(server: LiveServer, auth: tuple[str, dict[str, str]]) -> None:
    tenant, h = auth
    r = api(server, "POST", "/v1/workspaces", h)
    assert r.status_code == 201, r.text
    ws = r.json()["id"]
    assert r.json()["files"] == 0 and r.headers["X-RateLimit-Limit"] == "1000"
    assert api(server, "PUT", f"/v1/workspaces/{ws}/files/data/in.csv", h, content=b"1\n2\n3\n").status_code == 200
    code = (
        "import os\n"
        "rows = open('data/in.csv').read().split()\n"
        "open('total.txt', 'w').write(str(sum(map(int, rows))))\n"
        "os.remove('data/in.csv')\n"
    )
    out = execute(server, h, code=code, workspace=ws)
    assert out["status"] == "ok", out
    assert out["workspace"] == {"id": ws, "saved": True, "files": 1, "bytes": 1, "skipped": [], "error": None}
    assert api(server, "GET", f"/v1/workspaces/{ws}/files/total.txt", h).content == b"6"
    assert api(server, "GET", f"/v1/workspaces/{ws}/files/data/in.csv", h).status_code == 404
    shown = api(server, "GET", f"/v1/workspaces/{ws}", h).json()
    assert shown["entries"] == [{"path": "total.txt", "size": 1, "executable": False}] and not shown["busy"]
    assert host_tree(server, tenant, ws) == {"total.txt": b"6"}
    # The next execution sees what the last one left.
    assert execute(server, h, code="print(open('total.txt').read())", workspace=ws)["stdout"] == "6\n"
    assert [w["id"] for w in api(server, "GET", "/v1/workspaces", h).json()["workspaces"]] == [ws]
    assert api(server, "DELETE", f"/v1/workspaces/{ws}/files/total.txt", h).status_code == 204
    assert api(server, "DELETE", f"/v1/workspaces/{ws}", h).status_code == 204
    r = api(server, "POST", "/v1/execute", h, json={"language": "python", "code": "1", "workspace": ws})
    assert r.status_code == 404 and r.json()["error"] == "WORKSPACE_NOT_FOUND"
    assert not store_dir(server, tenant, ws).exists()


def test_another_tenant_sees_no_workspace_of_yours(server: LiveServer, auth: tuple[str, dict[str, str]]) -> None:
    _, mine = auth
    _, theirs = new_key(server)
    ws = api(server, "POST", "/v1/workspaces", mine).json()["id"]
    api(server, "PUT", f"/v1/workspaces/{ws}/files/secret.txt", mine, content=b"mine")
    for method, path in (("GET", f"/v1/workspaces/{ws}"), ("GET", f"/v1/workspaces/{ws}/files/secret.txt"),
                         ("PUT", f"/v1/workspaces/{ws}/files/x"), ("DELETE", f"/v1/workspaces/{ws}")):  # fmt: skip
        r = api(server, method, path, theirs, content=b"x" if method == "PUT" else None)
        assert r.status_code == 404 and r.json()["error"] == "WORKSPACE_NOT_FOUND", (method, path, r.text)
    r = api(server, "POST", "/v1/execute", theirs, json={"language": "python", "code": "1", "workspace": ws})
    assert r.json()["error"] == "WORKSPACE_NOT_FOUND"
    assert api(server, "GET", "/v1/workspaces", {}).status_code == 401  # no key, no workspaces


def test_bad_paths_and_ids(server: LiveServer, auth: tuple[str, dict[str, str]]) -> None:
    _, h = auth
    ws = api(server, "POST", "/v1/workspaces", h).json()["id"]
    r = api(server, "PUT", f"/v1/workspaces/{ws}/files/a%2F..%2F..%2Fetc", h, content=b"x")
    assert r.status_code == 400 and r.json()["error"] == "INVALID_REQUEST", r.text
    assert api(server, "GET", "/v1/workspaces/ws_nope", h).json()["error"] == "WORKSPACE_NOT_FOUND"
    api(server, "PUT", f"/v1/workspaces/{ws}/files/a", h, content=b"file")
    r = api(server, "PUT", f"/v1/workspaces/{ws}/files/a/b", h, content=b"x")  # `a` is a file
    assert r.status_code == 400, r.text


def test_collect_returns_files_out_of_any_execution(server: LiveServer, auth: tuple[str, dict[str, str]]) -> None:
    _, h = auth
    code = (
        "import os\n"
        "os.makedirs('out/sub')\n"
        "open('plot.png', 'wb').write(bytes(range(256)))\n"
        "open('out/sub/r.csv', 'w').write('x')\n"
        "open('other.txt', 'w').write('no')\n"
        "os.symlink('/etc/shadow', 'shadow.png')\n"
    )
    out = execute(server, h, code=code, collect=["*.png", "out/**"])
    assert out["status"] == "ok", out
    assert [(f["path"], f["size"]) for f in out["files"]] == [("out/sub/r.csv", 1), ("plot.png", 256)]
    assert base64.b64decode(out["files"][1]["content"]) == bytes(range(256))
    assert out["files_skipped"] == [{"path": "shadow.png", "reason": "not_regular"}]
    assert "workspace" not in out
    plain = execute(server, h, code="1")
    assert "files" not in plain and "workspace" not in plain
    r = api(server, "POST", "/v1/execute", h, json={"language": "python", "code": "1", "collect": ["../x"]})
    assert r.status_code == 400 and r.json()["error"] == "INVALID_REQUEST"


def box_with(server: LiveServer, marker: str) -> Path:
    """The host dir of the running box whose /box holds `marker` (the program made it)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for box in (server.run_dir / "boxes").iterdir():
            if (box / "fs" / "box" / marker).exists():
                return box / "fs" / "box"
        time.sleep(0.05)
    raise AssertionError(f"no running box made {marker}")


def test_one_execution_at_a_time_on_a_workspace(server: LiveServer, auth: tuple[str, dict[str, str]]) -> None:
    tenant, h = auth
    ws = api(server, "POST", "/v1/workspaces", h).json()["id"]
    marker = f"running-{uuid.uuid4().hex}"
    # The first run holds the workspace until the test lets it go (a file the host puts in its box):
    # a handshake, no sleep racing with it.
    first_code = (
        "import os\n"
        f"open('{marker}', 'w').close()\n"
        "while not os.path.exists('go'): pass\n"
        f"os.remove('{marker}'); os.remove('go')\n"
        "open('first.txt', 'w').write('1')\n"
    )
    results: dict[str, Any] = {}
    body = {"code": first_code, "workspace": ws, "limits": {"cpu_ms": 60000, "wall_ms": 120000}}
    first = threading.Thread(target=lambda: results.update(first=execute(server, h, **body)))
    first.start()
    box = box_with(server, marker)
    assert api(server, "GET", f"/v1/workspaces/{ws}", h).json()["busy"] is True
    second = api(server, "POST", "/v1/execute", h, json={"language": "python", "code": "1", "workspace": ws})
    assert second.status_code == 409 and second.json()["error"] == "WORKSPACE_BUSY", second.text
    assert second.headers["Retry-After"] == "1"
    put = api(server, "PUT", f"/v1/workspaces/{ws}/files/x.txt", h, content=b"x")
    assert put.status_code == 409 and put.json()["error"] == "WORKSPACE_BUSY"
    assert api(server, "DELETE", f"/v1/workspaces/{ws}", h).status_code == 409
    (box / "go").write_text("")
    first.join(120)
    assert results["first"]["status"] == "ok" and results["first"]["workspace"]["saved"], results
    assert host_tree(server, tenant, ws) == {"first.txt": b"1"}
    after = execute(server, h, code="print(open('first.txt').read())", workspace=ws)
    assert after["stdout"] == "1\n" and after["workspace"]["saved"]


def test_workspaces_per_tenant_quota(server: LiveServer, auth: tuple[str, dict[str, str]]) -> None:
    _, h = auth
    limits = api(server, "GET", "/v1/workspaces", h).json()["limits"]
    for _ in range(int(limits["per_tenant"])):
        assert api(server, "POST", "/v1/workspaces", h).status_code == 201
    r = api(server, "POST", "/v1/workspaces", h)
    assert r.status_code == 413 and r.json()["error"] == "WORKSPACE_QUOTA_EXCEEDED", r.text


def test_bytes_quota_of_uploads(server: LiveServer, auth: tuple[str, dict[str, str]]) -> None:
    _, h = auth
    ws = api(server, "POST", "/v1/workspaces", h).json()["id"]
    max_bytes = int(api(server, "GET", "/v1/workspaces", h).json()["limits"]["max_bytes"])
    chunk = b"z" * (10 * 1024 * 1024)
    for i in range(max_bytes // len(chunk)):
        assert api(server, "PUT", f"/v1/workspaces/{ws}/files/part{i}", h, content=chunk).status_code == 200
    r = api(server, "PUT", f"/v1/workspaces/{ws}/files/last", h, content=chunk)
    assert r.status_code == 413 and r.json()["error"] == "WORKSPACE_QUOTA_EXCEEDED", r.text


# -- hostile programs against the write-back ------------------------------------------------------


def test_symlinks_to_host_paths_are_never_followed(
    server: LiveServer, auth: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    tenant, h = auth
    secret = tmp_path / "host-secret.txt"
    secret.write_text(f"HOST-SECRET-{uuid.uuid4().hex}")
    ws = api(server, "POST", "/v1/workspaces", h).json()["id"]
    api(server, "PUT", f"/v1/workspaces/{ws}/files/data.txt", h, content=b"kept?")
    home = store_dir(server, tenant, ws)
    code = (
        "import os\n"
        "os.remove('data.txt')\n"
        f"os.symlink({str(secret)!r}, 'data.txt')\n"  # named like a workspace file
        f"os.symlink({str(home)!r}, 'store')\n"  # the store's own host dir
        "os.symlink('/etc', 'etc')\n"
        "open('ok.txt', 'w').write('fine')\n"
    )
    out = execute(server, h, code=code, workspace=ws, collect=["**"])
    assert out["status"] == "ok", out
    assert out["workspace"]["saved"] is True
    assert {s["path"] for s in out["workspace"]["skipped"]} == {"data.txt", "store", "etc"}
    assert [f["path"] for f in out["files"]] == ["ok.txt"]
    tree = host_tree(server, tenant, ws)
    assert tree == {"ok.txt": b"fine"}
    assert all(secret.read_bytes() not in content for content in tree.values())
    assert api(server, "GET", f"/v1/workspaces/{ws}/files/data.txt", h).status_code == 404


def test_a_fifo_named_like_a_collected_file_does_not_block(
    server: LiveServer, auth: tuple[str, dict[str, str]]
) -> None:
    tenant, h = auth
    ws = api(server, "POST", "/v1/workspaces", h).json()["id"]
    code = "import os\nos.mkfifo('plot.png')\nos.mkfifo('pipe.png')\nopen('real.png', 'wb').write(b'png')\n"
    out = execute(server, h, code=code, workspace=ws, collect=["*.png"])
    assert out["status"] == "ok", out
    assert [f["path"] for f in out["files"]] == ["real.png"]
    assert {(s["path"], s["reason"]) for s in out["files_skipped"]} == {("pipe.png", "not_regular"),
                                                                       ("plot.png", "not_regular")}  # fmt: skip
    assert host_tree(server, tenant, ws) == {"real.png": b"png"}


def test_a_flood_of_tiny_files_is_not_written_back(server: LiveServer, auth: tuple[str, dict[str, str]]) -> None:
    tenant, h = auth
    ws = api(server, "POST", "/v1/workspaces", h).json()["id"]
    api(server, "PUT", f"/v1/workspaces/{ws}/files/before.txt", h, content=b"before")
    code = (
        "import os\n"
        "made = 0\n"
        "try:\n"
        "    for i in range(100000):\n"
        "        open(f'f{i}', 'w').close(); made += 1\n"
        "except OSError as e:\n"
        "    print('stopped', e.errno)\n"
        "print(made)\n"
    )
    out = execute(server, h, code=code, workspace=ws)
    made = int(out["stdout"].split()[-1])
    assert made < 100000  # the box's inodes end it long before
    ws_out = out["workspace"]
    assert ws_out["saved"] is False and ws_out["error"]["error"] == "WORKSPACE_QUOTA_EXCEEDED", ws_out
    assert host_tree(server, tenant, ws) == {"before.txt": b"before"}  # as it was


def test_a_compiled_program_compiles_with_the_workspaces_files(
    server: LiveServer, auth: tuple[str, dict[str, str]]
) -> None:
    """A header kept in the workspace is there for the compiler; what the compiler made is not written
    back, and the workspace's own files stay as they were."""
    tenant, h = auth
    ws = api(server, "POST", "/v1/workspaces", h).json()["id"]
    header = b'#define GREETING "from the workspace"\n'
    assert api(server, "PUT", f"/v1/workspaces/{ws}/files/greet.h", h, content=header).status_code == 200
    code = '#include <stdio.h>\n#include "greet.h"\nint main(void) { puts(GREETING); return 0; }\n'
    out = execute(server, h, language="c", code=code, workspace=ws)
    assert out["status"] == "ok" and out["stdout"] == "from the workspace\n", out
    assert out["workspace"]["saved"] is True
    assert host_tree(server, tenant, ws) == {"greet.h": header}  # no main binary, no source
    assert api(server, "DELETE", f"/v1/workspaces/{ws}", h).status_code == 204
