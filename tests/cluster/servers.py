"""Private PostgreSQL and Redis servers for the cluster tests, from the Debian packages.

Each server lives in a temp dir of its own, listens on a loopback port picked here, and is stopped and removed
by `close()`. `stop()` / `start()` / `restart()` keep the port and the data, for fault tests ("stop PostgreSQL
for a few seconds", "restart Redis"). Readiness is polled against a generous deadline, never slept for.

    with PostgresServer() as pg:        # initdb + postgres, as an unprivileged user when run as root
        url = pg.new_database()         # postgresql://stockade@127.0.0.1:PORT/db_N, empty, trust auth
        pg.stop(); ...; pg.start()      # same port, same data
    with RedisServer() as r:            # redis-server, no persistence (appendonly=True keeps an AOF)
        r.url                           # redis://127.0.0.1:PORT/0
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import psycopg

READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
USER = "stockade"  # the PostgreSQL superuser initdb creates (trust auth on loopback and the socket)


class ServerError(RuntimeError):
    """A test server did not install, start or stop; the message carries the end of its log."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def postgres_bin(name: str) -> str:
    """`initdb` / `postgres` of the newest PostgreSQL the Debian packages installed (they are not on PATH)."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(Path(p).parts[4]))
    if found:
        return found[-1]
    on_path = shutil.which(name)
    if on_path:
        return on_path
    raise ServerError(f"{name} not found: install the Debian package postgresql (make test does)")


def _unprivileged() -> pwd.struct_passwd | None:
    """The user to run PostgreSQL as when we are root (initdb and postgres refuse root); None = ourselves."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise ServerError("running as root and neither user postgres nor nobody exists")


def _as_user(user: pwd.struct_passwd | None) -> dict[str, Any]:
    """subprocess arguments that run a child as `user` (no supplementary groups), or as ourselves."""
    if user is None:
        return {}
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


class _Process:
    """One server process in its own session; stopped by signal, waited for, never left behind."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def spawn(self, argv: list[str], user: pwd.struct_passwd | None, cwd: Path) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                start_new_session=True,
                **_as_user(user),
            )

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self, what: str) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise ServerError(f"{what} exited {self.proc.returncode} while starting:\n{_tail(self.log)}")

    def stop(self, sig: int) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT_S)


def _poll(ready: Callable[[], bool], process: _Process, what: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        process.check_alive(what)
        if ready():
            return
        if time.monotonic() > deadline:
            raise ServerError(f"{what} did not answer within {READY_TIMEOUT_S:.0f} s:\n{_tail(process.log)}")
        time.sleep(0.05)  # a poll interval, not an assertion


class _Server:
    """What both servers share: a temp dir of their own, one process, and a close that leaves nothing."""

    _close_signal: signal.Signals

    def __init__(self, prefix: str, log_name: str) -> None:
        self.root = Path(tempfile.mkdtemp(prefix=prefix))
        self._process = _Process(self.root / log_name)

    @property
    def running(self) -> bool:
        return self._process.running

    def close(self) -> None:
        self._process.stop(self._close_signal)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()


class PostgresServer(_Server):
    """initdb into a temp dir, then `postgres` on 127.0.0.1:port with its unix socket in the same dir."""

    _close_signal = signal.SIGINT

    def __init__(self, port: int | None = None) -> None:
        self._user = _unprivileged()  # before the temp dir, so a refusal leaves nothing
        super().__init__("stockade-pg-", "postgres.log")
        self.data = self.root / "data"
        self.socket_dir = self.root / "run"
        self.port = port or free_port()
        self._databases = 0
        try:
            self._initdb()
            self.start()
        except BaseException:
            self.close()
            raise

    def _initdb(self) -> None:
        self.socket_dir.mkdir()
        if self._user:
            for path in (self.root, self.socket_dir):
                os.chown(path, self._user.pw_uid, self._user.pw_gid)
        argv = [postgres_bin("initdb"), "-D", str(self.data), "-U", USER, "--auth=trust", "-E", "UTF8", "--no-sync"]
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            cwd=self.root,
            timeout=120,
            **_as_user(self._user),
        )
        if proc.returncode != 0:
            raise ServerError(f"initdb exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        """Start the server on its port and data (after stop()); returns once it accepts connections."""
        if self._process.running:
            return
        argv = [postgres_bin("postgres"), "-D", str(self.data), "-p", str(self.port), "-k", str(self.socket_dir)]
        # Test data: no fsync; enough connections for several pools of several nodes.
        for setting in ("listen_addresses=127.0.0.1", "fsync=off", "synchronous_commit=off", "max_connections=200"):
            argv += ["-c", setting]
        self._process.spawn(argv, self._user, self.root)
        _poll(self._answers, self._process, f"postgres on port {self.port}")

    def _answers(self) -> bool:
        try:
            with psycopg.connect(self.url(), connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.OperationalError:
            return False

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: "fast" (SIGINT, clean), or "immediate" (SIGQUIT, crash-like: recovery at start)."""
        self._process.stop({"fast": signal.SIGINT, "immediate": signal.SIGQUIT}[mode])

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def new_database(self) -> str:
        """A new empty database on this server; its URL."""
        self._databases += 1
        name = f"db_{self._databases}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


class RedisServer(_Server):
    """redis-server on 127.0.0.1:port, its files in a temp dir; no persistence unless appendonly=True."""

    _close_signal = signal.SIGTERM

    def __init__(self, port: int | None = None, appendonly: bool = False) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServerError("redis-server not found: install the Debian package redis-server (make test does)")
        super().__init__("stockade-redis-", "redis.log")
        self._binary = binary
        self.port = port or free_port()
        self.appendonly = appendonly
        try:
            self.start()
        except BaseException:
            self.close()
            raise

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server on its port (after stop()); with appendonly its data comes back from the AOF."""
        if self._process.running:
            return
        argv = [self._binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.root)]
        argv += ["--save", "", "--daemonize", "no", "--logfile", ""]
        argv += ["--appendonly", "yes", "--appendfsync", "always"] if self.appendonly else ["--appendonly", "no"]
        self._process.spawn(argv, None, self.root)
        _poll(self._answers, self._process, f"redis-server on port {self.port}")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")  # "-LOADING" while it reads its AOF
        except OSError:
            return False

    def stop(self, kill: bool = False) -> None:
        """Stop the server: SIGTERM (clean), or SIGKILL with kill=True (a crash)."""
        self._process.stop(signal.SIGKILL if kill else signal.SIGTERM)

    def restart(self, kill: bool = False) -> None:
        self.stop(kill)
        self.start()
