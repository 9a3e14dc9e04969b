"""The OCI image end to end (docs/deploy.md): built by the project's own build (deploy/image/build.sh: no
daemon, no base image), run by podman with exactly the documented flags, a Python and a C hello world
through its API, a held-in adversarial smoke set against the container, and its refusal to start
without a cgroup namespace of its own.

The build is reused while its inputs (the tree hashes of what it reads) are unchanged: build.sh tags it
by them. A fresh machine builds it once, in about five minutes.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.service.live import free_port

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "deploy" / "image" / "build.sh"
DEPLOY_DOC = REPO / "docs" / "deploy.md"
COMPOSE = REPO / "deploy" / "compose.yaml"
BUILD_TIMEOUT_S = 1800
READY_TIMEOUT_S = 300.0
# The least privilege a box can be built with (docs/deploy.md says why each is needed).
FLAGS = [
    "--cgroupns=private",
    "--cap-drop=all",
    "--cap-add=CHOWN,DAC_OVERRIDE,FOWNER,SETUID,SETGID,SYS_ADMIN,MKNOD,KILL",
    "--security-opt", "unmask=/proc/*",
]  # fmt: skip
# What this host's podman needs besides (docs/deploy.md, "On this host"): crun refuses its hybrid cgroups,
# and podman's default ulimits are above its hard limits.
HOST_FLAGS = ["--runtime=runc", "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=4096:4096"]
HELLO_C = '#include <stdio.h>\nint main(void) { puts("hello from c"); return 0; }\n'


def podman(*args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout, check=check)


@pytest.fixture(scope="module")
def image() -> str:
    tag = subprocess.run([str(BUILD), "--tag", "stockade"], capture_output=True, text=True, check=True).stdout.strip()
    if podman("image", "exists", tag, check=False).returncode != 0:
        built = subprocess.run([str(BUILD), "stockade"], capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
        assert built.returncode == 0, built.stderr[-4000:]
    return tag


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("image") / "data"
    path.mkdir(mode=0o700)
    return path


@pytest.fixture(scope="module")
def token(image: str, data_dir: Path) -> str:
    """A key: the container listens beyond loopback, where open mode is refused."""
    made = podman("run", "--rm", *FLAGS, *HOST_FLAGS, "-v", f"{data_dir}:/var/lib/stockade", image,
                  "keys", "create", "acme", "--create-tenant", "--key-only")  # fmt: skip
    return made.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def container(image: str, data_dir: Path, token: str) -> Iterator[str]:
    name = f"stockade-test-{secrets.token_hex(4)}"
    port = free_port()
    podman("run", "-d", "--name", name, *FLAGS, *HOST_FLAGS, "-v", f"{data_dir}:/var/lib/stockade",
           "-p", f"127.0.0.1:{port}:8000", image)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, lambda: podman("logs", name, check=False).stderr[-4000:], lambda: _running(name))
        yield url
    finally:
        podman("rm", "-f", "-t", "30", name, check=False)


def wait_ready(url: str, log: Callable[[], str], alive: Callable[[], bool] = lambda: True) -> None:
    """Poll /readyz (the container's start runs a sandbox check and detects toolchains) to a deadline."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                return
        assert alive(), f"the container exited:\n{log()}"
        assert time.monotonic() < deadline, f"not ready in {READY_TIMEOUT_S:g} s:\n{log()}"
        time.sleep(0.5)


def _running(name: str) -> bool:
    return podman("inspect", "-f", "{{.State.Running}}", name, check=False).stdout.strip() == "true"


def execute(url: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
    reply = httpx.post(f"{url}/v1/execute", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=120)
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def test_the_documented_flags_are_the_tested_ones() -> None:
    doc = DEPLOY_DOC.read_text()
    for flag in [*FLAGS, *HOST_FLAGS]:
        assert flag in doc, f"docs/deploy.md does not give {flag}"


def test_hello_world_in_python_and_c(container: str, token: str) -> None:
    py = execute(container, token, {"language": "python", "code": "print(21 * 2)"})
    assert (py["status"], py["stdout"]) == ("ok", "42\n")
    c = execute(container, token, {"language": "c", "code": HELLO_C})
    assert (c["status"], c["stdout"], c["compile"]["status"]) == ("ok", "hello from c\n", "ok")


SMOKE = {
    # no route out of a box (192.0.2.1 is TEST-NET-1: nothing is sent, there is no route to send it by)
    "network": ("import socket\ntry:\n    socket.create_connection(('192.0.2.1', 80), timeout=5)\n    print('open')\n"
                "except OSError as e:\n    print(e.errno)", {}, "ok", "101\n"),
    "read-only system": ("open('/usr/bin/owned', 'w')", {}, "runtime_error", ""),
    "no host secrets": ("import os\nprint(os.path.exists('/etc/shadow'), os.getuid())", {}, "ok", "False 1000\n"),
    "cpu limit": ("while True: pass", {"limits": {"cpu_ms": 500}}, "timeout", ""),
    "memory limit": ("b = bytearray(512 << 20)\nprint(len(b))", {"limits": {"memory_mb": 64}}, "memory_limit", ""),
    "process limit": ("import os\nwhile True:\n    os.fork()", {"limits": {"processes": 16}}, None, ""),
    "tmpfs cap": ("open('/tmp/big', 'wb').write(b'x' * (256 << 20))", {}, None, ""),
}  # fmt: skip


@pytest.mark.parametrize("case", list(SMOKE))
def test_the_adversarial_smoke_set_holds_in_the_container(container: str, token: str, case: str) -> None:
    code, extra, status, stdout = SMOKE[case]
    result = execute(container, token, {"language": "python", "code": code, **extra})
    if status is not None:
        assert result["status"] == status, result
    else:  # a limit, whichever the kernel hits first; never ok, never the service's failure
        assert result["status"] not in ("ok", "internal_error"), result
    if stdout:
        assert result["stdout"] == stdout, result
    # The container is whole afterwards: it still runs a program.
    assert execute(container, token, {"language": "python", "code": "print('after')"})["stdout"] == "after\n"


def test_a_programs_processes_end_with_its_run(container: str, token: str) -> None:
    code = "import subprocess\nsubprocess.Popen(['sleep', '313'])\nprint('left one behind')"
    assert execute(container, token, {"language": "python", "code": code})["stdout"] == "left one behind\n"
    deadline = time.monotonic() + 60  # the box's teardown follows its answer
    while left := [pid for pid in os.listdir("/proc") if pid.isdigit() and _cmdline(pid) == b"sleep\x00313\x00"]:
        assert time.monotonic() < deadline, f"a box's process outlived its run, on the host: {left}"
        time.sleep(0.2)


def _cmdline(pid: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def test_compose_brings_up_one_node(image: str) -> None:
    project, port = f"stockade-compose-{secrets.token_hex(3)}", free_port()
    podman("tag", image, "localhost/stockade:latest")  # what compose.yaml names
    # Debian's podman-compose 1.0 has no `cgroup` key (docs/deploy.md); newer ones and docker compose do.
    compose = ["podman-compose", "-p", project, "-f", str(COMPOSE),
               f"--podman-run-args=--cgroupns=private {' '.join(HOST_FLAGS)}"]  # fmt: skip
    env = {**os.environ, "STOCKADE_PORT": str(port)}

    def run(*args: str) -> str:
        done = subprocess.run([*compose, *args], capture_output=True, text=True, env=env, timeout=600)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        return done.stdout

    try:
        made = run(
            "run", "--rm", "-T", "--no-deps", "stockade", "keys", "create", "acme", "--create-tenant", "--key-only"
        )
        token = next(line for line in made.splitlines() if line.startswith("sk_"))  # among podman-compose's lines
        run("up", "-d")
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, lambda: run("logs"))
        assert execute(url, token, {"language": "python", "code": "print('composed')"})["stdout"] == "composed\n"
    finally:
        subprocess.run([*compose, "down", "-v"], capture_output=True, env=env, timeout=600)


def test_without_a_private_cgroup_namespace_it_refuses_to_start(image: str, data_dir: Path) -> None:
    shared = [f for f in FLAGS if f != "--cgroupns=private"]
    run = podman("run", "--rm", "--cgroupns=host", *shared, *HOST_FLAGS, "-v", f"{data_dir}:/var/lib/stockade",
                 image, check=False, timeout=300)  # fmt: skip
    assert run.returncode == 78, (run.returncode, run.stderr[-2000:])
    assert "refusing to start" in run.stderr and "cgroup namespace" in run.stderr
