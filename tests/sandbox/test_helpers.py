"""The box's two C helpers: stockade-launch (root -> slot uid, cgroup, rlimits) and stockade-init (pid 1)."""

from __future__ import annotations

import errno
import os
import resource
import signal
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from stockade.sandbox.helpers import build_helper, decode_status
from stockade.sandbox.supervise import _exit_facts, run_message


@pytest.fixture(scope="module")
def helpers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("helpers")
    return {name: build_helper(name, d) for name in ("launch", "init")}


def test_build_is_cached_by_source_hash(helpers: dict[str, Path]) -> None:
    assert build_helper("launch", helpers["launch"].parent) == helpers["launch"]
    assert os.access(helpers["launch"], os.X_OK)


def test_launch_drops_to_the_slot_uid_with_its_rlimits(helpers: dict[str, Path]) -> None:
    argv = [str(helpers["launch"]), "-r", f"{resource.RLIMIT_NOFILE}:77", "-u", "62990", "-g", "62991", "--",
            "/bin/sh", "-c", "id -u; id -g; id -G; ulimit -n; ulimit -Hn; cat /proc/self/oom_score_adj"]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout.split()
    assert out == ["62990", "62991", "62991", "77", "77", "1000"]


@pytest.mark.parametrize(
    "args",
    [
        ["-p", "/nonexistent/cgroup.procs", "-u", "62990", "-g", "62990", "--", "/bin/true"],
        ["-u", "0", "-g", "62990", "--", "/bin/true"],  # never root
        ["-x", "1", "-u", "62990", "-g", "62990", "--", "/bin/true"],
        ["-u", "62990", "-g", "62990", "--", "/nonexistent"],
    ],
)
def test_launch_fails_closed_with_its_own_status(helpers: dict[str, Path], args: list[str]) -> None:
    p = subprocess.run([str(helpers["launch"]), *args], capture_output=True, text=True)
    assert p.returncode == 125 and p.stderr.startswith("stockade-launch:")


@dataclass
class InitRun:
    returncode: int
    report: tuple[str, int] | None
    stdout: bytes  # the command's, through the descriptor sent with the run
    setup: bytes  # init's own stdout and stderr (bubblewrap's, in a box)
    said: bytes  # what init wrote to its control socket


def run_init(
    init: Path,
    message: bytes | None,
    stdin: bytes = b"",
    fds: int = 5,
    pids_current: str = "1\n",
    pids_events: str = "max 0\n",
) -> InitRun:
    """stockade-init with its status pipe and control socket, the run queued before it starts with
    the first `fds` of its stdin, stdout, stderr (pipes; the command's stderr is not kept) and files
    standing for the box's pids.current and pids.events, holding `pids_current` and `pids_events`."""
    r, w = os.pipe()
    host, box = socket.socketpair()
    stdin_r, stdin_w = os.pipe()
    out_r, out_w = os.pipe()
    os.write(stdin_w, stdin)
    os.close(stdin_w)
    count, events = os.memfd_create("pids.current"), os.memfd_create("pids.events")
    os.write(count, pids_current.encode())
    os.write(events, pids_events.encode())
    if message is not None:
        if fds:
            socket.send_fds(host, [b"G"], [stdin_r, out_w, out_w, count, events][:fds])
        else:
            host.sendall(b"G")
        host.sendall(message)
    host.shutdown(socket.SHUT_WR)
    for fd in (stdin_r, out_w, count, events):
        os.close(fd)
    p = subprocess.run([str(init), str(w), str(box.fileno())], pass_fds=(w, box.fileno()), capture_output=True)
    for fd in (w, box.fileno()):
        os.close(fd)
    host.setblocking(False)
    try:
        said = host.recv(64)
    except BlockingIOError:  # init said nothing
        said = b""
    host.close()
    report = decode_status(os.read(r, 64))
    os.close(r)
    with os.fdopen(out_r, "rb") as out:
        stdout = out.read()
    return InitRun(p.returncode, report, stdout, p.stdout + p.stderr, said)


def test_init_reports_the_real_wait_status(helpers: dict[str, Path]) -> None:
    p = run_init(helpers["init"], run_message(["/bin/sh", "-c", "kill -TERM $$"], {"PATH": "/bin"}, []))
    kind, status, _ = p.report or ("?", 0, 0)
    assert kind == "W" and os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM
    assert p.returncode == 128 + signal.SIGTERM


def test_init_runs_the_command_with_its_stdin_environment_and_rlimits(helpers: dict[str, Path]) -> None:
    script = "cat; env; ulimit -n; ulimit -Hn; ulimit -f"
    limits = [(resource.RLIMIT_NOFILE, 33), (resource.RLIMIT_FSIZE, 4096)]
    p = run_init(helpers["init"], run_message(["sh", "-c", script], {"PATH": "/bin", "X": "a b"}, limits), b"in\n")
    assert p.report == ("W", 0, 0) and p.setup == b"" and p.said == b"R"
    lines = p.stdout.decode().split("\n")
    assert lines[0] == "in" and sorted(lines[1:4]) == ["PATH=/bin", "PWD=" + os.getcwd(), "X=a b"]
    assert lines[4:7] == ["33", "33", "8"]  # ulimit -f counts 512-byte blocks


def test_init_reports_a_command_it_cannot_execute(helpers: dict[str, Path]) -> None:
    p = run_init(helpers["init"], run_message(["/nonexistent"], {}, []))
    assert p.report == ("E", errno.ENOENT, 0) and p.returncode == 127


@pytest.mark.parametrize(
    "message",
    [
        b"",
        b"0\0",
        b"0\x000\0",
        b"0\x000\x000\x000\0",
        b"0\x001\0x\x001\0/bin/true\x000\0",
        b"0\x000\x001\0/bin/true\x000\0extra",
        b"0\x000\x009\0/bin/true\x000\0",
        b"x\x000\x001\0/bin/true\x000\0",  # the process limit is a number
        b"-1\x000\x001\0/bin/true\x000\0",
    ],
)
def test_init_refuses_a_malformed_run(helpers: dict[str, Path], message: bytes) -> None:
    p = run_init(helpers["init"], message)
    assert p.report is not None and p.report[0] == "X" and p.returncode == 126


@pytest.mark.parametrize("fds", [0, 1, 2, 3, 4])
def test_init_refuses_a_run_without_its_five_descriptors(helpers: dict[str, Path], fds: int) -> None:
    p = run_init(helpers["init"], run_message(["/bin/true"], {}, []), fds=fds)
    assert p.report == ("X", errno.EPROTO, 0) and p.returncode == 126


# Three forks, each waited for; prints OK or the errno name of each.
FORKS = [
    "/usr/bin/python3",
    "-I",
    "-c",
    "import errno, os\nfor _ in range(3):\n    try:\n        pid = os.fork()\n    except OSError as e:\n"
    "        print(errno.errorcode[e.errno])\n        continue\n    if pid == 0:\n        os._exit(0)\n"
    "    os.waitpid(pid, 0)\n    print('OK')",
]


def test_init_refuses_process_creation_at_the_process_limit(helpers: dict[str, Path]) -> None:
    """At the limit, once the kernel has refused a fork itself (pids.events counts it), a fork fails
    with EAGAIN before the kernel makes a task, and the report counts it."""
    p = run_init(helpers["init"], run_message(FORKS, {}, [], 5), pids_current="5\n", pids_events="max 1\n")
    assert p.stdout == b"EAGAIN\n" * 3 and p.report == ("W", 0, 3), p


@pytest.mark.parametrize(
    "current, limit, events",
    [
        ("4\n", 5, "max 1\n"),  # below the limit
        ("9\n", 0, "max 1\n"),  # no limit
        ("5\n", 5, "max 0\n"),  # at it, but the kernel has not refused one yet: it must, and count it
    ],
)
def test_init_lets_the_kernel_create_processes_otherwise(
    helpers: dict[str, Path], current: str, limit: int, events: str
) -> None:
    p = run_init(helpers["init"], run_message(FORKS, {}, [], limit), pids_current=current, pids_events=events)
    assert p.stdout == b"OK\n" * 3 and p.report == ("W", 0, 0), p


def test_init_of_a_discarded_box_exits_quietly(helpers: dict[str, Path]) -> None:
    p = run_init(helpers["init"], None)
    assert p.report is None and p.returncode == 0 and p.setup == b"" and p.said == b"R"


def test_init_whose_host_is_gone_before_it_starts_exits_quietly(helpers: dict[str, Path]) -> None:
    r, w = os.pipe()
    host, box = socket.socketpair()
    host.close()  # the box was discarded before its init got to say it is up: EPIPE, never SIGPIPE
    p = subprocess.run(
        [str(helpers["init"]), str(w), str(box.fileno())], pass_fds=(w, box.fileno()), capture_output=True
    )
    os.close(w)
    box.close()
    assert (p.returncode, p.stdout, p.stderr, os.read(r, 64)) == (0, b"", b"", b"")
    os.close(r)


def test_run_message_refuses_what_init_could_not_read() -> None:
    for argv, env in ((["a\0b"], {}), (["a"], {"A=B": "c"}), (["a"], {"": "c"})):
        with pytest.raises(ValueError):
            run_message(argv, env, [])


def test_exit_facts() -> None:
    assert _exit_facts(("W", 3 << 8, 0), 3) == (3, None, None)
    assert _exit_facts(("W", signal.SIGSEGV, 2), 139) == (None, signal.SIGSEGV, None)
    assert _exit_facts(("E", 2, 0), 127) == (127, None, None)
    assert _exit_facts(("X", 71, 0), 126) == (None, None, "box init failed (errno 71)")
    assert _exit_facts(None, -9) == (None, 9, None)
    # Without a report init was killed, whatever bubblewrap's status: never a program's exit code.
    assert _exit_facts(None, 137) == (None, signal.SIGKILL, None)
