"""Run a BoxSpec in a box that exists for that run alone, with a bounded pool of slots.

Life of a box (docs/sandbox.md): built ahead of demand as soon as its slot is free — on the sandbox's
read-only root (rootfs.py), a fresh capped tmpfs, a cgroup, stockade-launch (joins the cgroup, drops
to the slot uid, execs bubblewrap) and stockade-init as pid 1, which waits on a socket -> a run
arrives: tmpfs caps, inputs and cgroup limits are set, init gets stdin, stdout and stderr, command,
environment and rlimits -> stream stdout/stderr under caps while watching CPU and wall time -> init
reports the real wait status once it has killed and reaped the rest of the box (or a limit kills the
whole cgroup) -> read accounting and output files -> hand the result back, while a builder thread
waits out the namespaces' teardown, unmounts, removes the cgroup and builds the slot's next box. A box
runs one command and is never reused.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import fcntl
import logging
import os
import resource
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from stockade.sandbox import hostfs, rootfs, seccomp
from stockade.sandbox.bwrap import HostLayout, box_env, build_argv, check_ro_path
from stockade.sandbox.cgroups import BoxCgroup, CgroupError, CgroupManager, detect
from stockade.sandbox.helpers import HelperBuildError, build_helper, decode_status
from stockade.sandbox.spec import BoxResult, BoxSpec, Limits, OutputFile, Status
from stockade.sandbox.verdict import Facts, decide

log = logging.getLogger("stockade.sandbox")

READ_CHUNK = 65536
CPU_POLL_S = 0.01
REAP_TIMEOUT_S = 5.0
START_TIMEOUT_S = 10.0  # for a box's init to say it is up (bubblewrap takes a few ms)
EXIT_GRACE_S = 1.0  # for a box's init to exit by itself before bubblewrap is killed
MEMLOCK_BYTES = 64 * 1024
SHARED_RLIMITS = ((resource.RLIMIT_CORE, 0), (resource.RLIMIT_MEMLOCK, MEMLOCK_BYTES), (resource.RLIMIT_MSGQUEUE, 0))
# A box is built with the default limits; a run with other ones gets its cgroup and tmpfs caps set late.
BUILD_LIMITS = Limits()


class CallerRuns:
    """The runs of one Sandbox.recycling_deferred() block: the slots whose finished boxes it holds back
    (handed to the builder at its end, or by settle()), and whether any of its runs has taken a slot
    (from then on it runs to its end: a caller may still drop a request that has not started, e.g. when
    its client has left)."""

    def __init__(self) -> None:
        self.slots: list[int] = []
        self.started = False


_CALLER: contextvars.ContextVar[CallerRuns | None] = contextvars.ContextVar("stockade_caller_runs", default=None)


@dataclass(frozen=True)
class SandboxConfig:
    run_dir: Path = Path("/run/stockade")
    slots: int = 4
    uid_base: int = 60000  # slot N runs as host uid/gid uid_base + N
    cgroup_name: str = "stockade"
    bwrap: str = "bwrap"
    # Build each slot's next box as soon as the slot is free, so a run finds its box ready.
    build_ahead: bool = True
    # Toolchain configs bound read-only into every box (the engine's languages' ro_paths), so one box
    # built ahead fits every run; a spec needing a path outside this set gets a box built for it.
    shared_ro_paths: tuple[str, ...] = ()


class SandboxUnavailable(RuntimeError):
    """The host cannot build a safe box; Stockade refuses to run code (fail closed)."""


class SandboxBusy(SandboxUnavailable):
    """Another process owns this run dir: its boxes are not ours to reap."""


class BoxStartFailed(RuntimeError):
    """bubblewrap did not bring the box up: it failed, or hung past START_TIMEOUT_S."""


# What building or starting a box can raise; any of them fails that one run with internal_error.
BUILD_ERRORS = (OSError, hostfs.HostFsError, CgroupError, ValueError, BoxStartFailed)

# run dir -> [lock fd, users]: several Sandbox objects of one process may share an instance.
_INSTANCE_LOCKS: dict[Path, list[int]] = {}


def _lock_instance(run_dir: Path) -> None:
    """One process per run dir (and so per cgroup name and uid range): start() reaps everything there."""
    if run_dir in _INSTANCE_LOCKS:
        _INSTANCE_LOCKS[run_dir][1] += 1
        return
    fd = os.open(run_dir / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise SandboxBusy(f"{run_dir} is in use by process {holder}; give this instance its own run dir") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _INSTANCE_LOCKS[run_dir] = [fd, 1]


def _unlock_instance(run_dir: Path) -> None:
    held = _INSTANCE_LOCKS.get(run_dir)
    if held is None:
        return
    held[1] -= 1
    if held[1] == 0:
        os.close(held[0])  # closing the only descriptor releases the flock
        del _INSTANCE_LOCKS[run_dir]


class NoSlotLeft(RuntimeError):
    """Every slot was taken out for good (quarantined): no run can get one until a restart."""


class _Slots:
    """Free slot numbers plus FIFO waiters. Not bound to one event loop, unlike asyncio.Queue, and
    given back from any thread: the builder thread returns a slot once its next box is built."""

    def __init__(self, n: int) -> None:
        self._lock = threading.Lock()
        self._free = list(range(n))
        self._waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[int]]] = deque()
        self.total = n
        self._lost = 0  # never given back

    @property
    def in_use(self) -> int:
        return self.total - len(self._free)

    @property
    def waiting(self) -> int:
        return sum(1 for _, w in self._waiters if not w.done())

    async def take(self) -> int:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._lost >= self.total:
                raise NoSlotLeft
            if self._free and not self.waiting:
                return self._free.pop(0)
            fut: asyncio.Future[int] = loop.create_future()
            self._waiters.append((loop, fut))
        try:
            return await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                self.give(fut.result())  # handed a slot while being cancelled: pass it on
            raise

    def give(self, slot: int) -> None:
        with self._lock:
            while self._waiters:
                loop, w = self._waiters.popleft()
                if w.done():
                    continue
                try:
                    loop.call_soon_threadsafe(self._hand, w, slot)  # asyncio futures live on their loop
                    return
                except RuntimeError:  # that loop is closed: nobody waits there any more
                    continue
            self._free.append(slot)

    def lose(self) -> None:
        """A slot will never be given back. Once none is left, every waiter fails now rather than
        waiting for ever."""
        with self._lock:
            self._lost += 1
            if self._lost < self.total:
                return
            waiters, self._waiters = self._waiters, deque()
        for loop, w in waiters:
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits there any more
                loop.call_soon_threadsafe(self._fail, w)

    @staticmethod
    def _fail(waiter: asyncio.Future[int]) -> None:
        if not waiter.done():
            waiter.set_exception(NoSlotLeft())

    def _hand(self, waiter: asyncio.Future[int], slot: int) -> None:
        if waiter.done():
            self.give(slot)  # cancelled meanwhile: the next waiter gets it
        else:
            waiter.set_result(slot)


def _exit_facts(report: tuple[str, int, int] | None, returncode: int) -> tuple[int | None, int | None, str | None]:
    """(exit code, signal, setup error) of the box command, from our init's report when there is one,
    else from bubblewrap's exit status: init was up (the box was handed out only then), so without a
    report it was killed."""
    if report is not None:
        kind, value, _refused = report
        if kind == "W":
            if os.WIFSIGNALED(value):
                return None, os.WTERMSIG(value), None
            return os.WEXITSTATUS(value), None, None
        if kind == "E":
            return 127, None, None  # command not found in the box: the program's failure, as a shell says
        return None, None, f"box init failed (errno {value})"
    # Killed before init could report (our cgroup kill, an OOM kill of the whole box).
    return None, -returncode if returncode < 0 else signal.SIGKILL, None


def _launch_argv(launch: Path, procs_files: list[str], uid: int, gid: int) -> list[str]:
    """stockade-launch joins the box cgroup first (so bubblewrap and all it starts is accounted and
    killable), sets the rlimits every box shares, drops to the slot's uid/gid, then execs bubblewrap.
    The run's own rlimits come later, with the command, and our init sets them."""
    argv = [str(launch)]
    for path in procs_files:
        argv += ["-p", path]
    for res, value in SHARED_RLIMITS:
        argv += ["-r", f"{res}:{value}"]
    return [*argv, "-u", str(uid), "-g", str(gid), "--"]


def run_rlimits(limits: Limits) -> list[tuple[int, int]]:
    """Per-run rlimits, set by init with hard = soft just before it starts the command."""
    return [
        (resource.RLIMIT_CPU, limits.cpu_ms // 1000 + 2),  # per-process backstop; the tree's CPU is watched
        (resource.RLIMIT_FSIZE, limits.file_size_kb * 1024),
        (resource.RLIMIT_NOFILE, limits.open_files),
        (resource.RLIMIT_STACK, limits.stack_mb * 1024 * 1024),
        (resource.RLIMIT_NPROC, limits.processes + 8),  # per uid: the slot uid is this box's alone
    ]


def run_message(argv: list[str], env: dict[str, str], rlimits: list[tuple[int, int]], pids_max: int = 0) -> bytes:
    """What init reads from its control socket after the run's descriptors (see init.c). At `pids_max`
    processes init refuses process creation itself (0: never)."""
    fields = [
        str(pids_max),
        str(len(rlimits)),
        *(f"{r}:{v}" for r, v in rlimits),
        str(len(argv)),
        *argv,
        str(len(env)),
        *(f"{k}={v}" for k, v in env.items()),
    ]
    if any("\0" in f for f in fields) or any("=" in k or not k for k in env):
        raise ValueError("argv and environment may not contain NUL bytes; names may not contain '='")
    return b"".join(f.encode() + b"\0" for f in fields)


async def _read_capped(fd: int, cap: int, on_exceed: Callable[[], None]) -> tuple[bytes, bool]:
    loop = asyncio.get_running_loop()
    readable = asyncio.Event()
    loop.add_reader(fd, readable.set)
    buf = bytearray()
    truncated = False
    try:
        while True:
            try:
                chunk = os.read(fd, READ_CHUNK)
            except BlockingIOError:
                readable.clear()  # level-triggered: set again at once if data is still there
                await readable.wait()
                continue
            if not chunk:
                break
            if truncated:
                continue  # drain so the writer is never stuck on a full pipe before the kill lands
            room = cap - len(buf)
            if len(chunk) > room:
                buf += chunk[:room]
                truncated = True
                on_exceed()
            else:
                buf += chunk
    finally:
        loop.remove_reader(fd)
    return bytes(buf), truncated


async def _read_report(fd: int) -> bytes:
    """init's one report (a single write of a few bytes, so it arrives whole), or b"" at EOF."""
    loop = asyncio.get_running_loop()
    readable = asyncio.Event()
    loop.add_reader(fd, readable.set)
    try:
        while True:
            try:
                return os.read(fd, 64)
            except BlockingIOError:
                readable.clear()
                await readable.wait()
    finally:
        loop.remove_reader(fd)


def _read_available(fd: int, cap: int = READ_CHUNK) -> bytes:
    try:
        return os.read(fd, cap)
    except BlockingIOError:
        return b""


async def _first_word(control: socket.socket) -> bytes:
    """What a box's init writes first on its control socket (b"R" once up); b"" at EOF, on an error
    or after START_TIMEOUT_S."""
    try:
        return await asyncio.wait_for(asyncio.get_running_loop().sock_recv(control, 1), START_TIMEOUT_S)
    except (OSError, TimeoutError):
        return b""


async def _wait_exit(proc: subprocess.Popen[bytes]) -> int:
    """Wait for a child without blocking the loop and without a child watcher (any loop may ask)."""
    loop = asyncio.get_running_loop()
    pidfd = os.pidfd_open(proc.pid)
    try:
        exited = asyncio.Event()
        loop.add_reader(pidfd, exited.set)
        try:
            await exited.wait()
        finally:
            loop.remove_reader(pidfd)
    finally:
        os.close(pidfd)
    return proc.wait()


@dataclass
class _Box:
    """A built box: tmpfs, cgroup and bubblewrap up to our init, which waits on `control` for its run.
    Every descriptor here is the host's end and is closed when the box is discarded."""

    box_id: str
    slot: int
    box_dir: Path
    cg: BoxCgroup
    proc: subprocess.Popen[bytes]
    control: socket.socket
    status_r: int
    setup_r: int  # bubblewrap's and stockade-launch's own stdout and stderr: why a box did not start
    ro_paths: frozenset[str]  # what its root adds to the system dirs (rootfs.added_paths)
    stdout_r: int = -1  # the run's output pipes, made when the run arrives
    stderr_r: int = -1

    @property
    def fs_root(self) -> Path:
        return self.box_dir / "fs"


class Sandbox:
    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.cgroups: CgroupManager | None = None
        self.layout: HostLayout | None = None
        self.init: Path | None = None
        self.launch: Path | None = None
        self._slots = _Slots(self.config.slots)
        self._active: set[str] = set()  # ids of every box built and not yet torn down
        self._running: dict[str, BoxCgroup] = {}
        self._ready: dict[int, _Box] = {}  # slot -> box built ahead of demand, never used yet
        # Teardown of finished boxes and building of the next ones, off the event loop; slot -> its job.
        self._builder: concurrent.futures.ThreadPoolExecutor | None = None
        self._recycling: dict[int, concurrent.futures.Future[None]] = {}
        # slot -> the caller holding its finished box back from the builder, and that box
        self._deferred: dict[int, tuple[CallerRuns, _Box | None]] = {}
        self._lock = threading.Lock()
        self._shared_ro_paths: frozenset[str] = frozenset(check_ro_path(p) for p in self.config.shared_ro_paths)
        self._shared_root_paths: frozenset[str] = frozenset()  # what of those a root adds (set at start)
        self._roots: dict[frozenset[str], Path] = {}  # read-only roots by the ro paths they add
        self._roots_lock = threading.Lock()
        self.quarantined: set[int] = set()  # slots whose teardown failed; never handed out again

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        """Check the host, prepare shared read-only files, reap boxes of a previous process and build
        the first boxes ahead of demand."""
        if os.geteuid() != 0:
            raise SandboxUnavailable("the sandbox supervisor must run as root to create per-box uids and tmpfs")
        if shutil.which(self.config.bwrap) is None:
            raise SandboxUnavailable(f"bubblewrap not found ({self.config.bwrap}); install the bubblewrap package")
        try:
            self.cgroups = detect(self.config.cgroup_name)
        except (CgroupError, OSError) as e:
            raise SandboxUnavailable(str(e)) from e
        try:
            seccomp.compiled_bpf()
        except Exception as e:  # libseccomp missing or refusing the policy
            raise SandboxUnavailable(f"cannot compile the seccomp filter: {e}") from e
        self.layout = HostLayout.probe()
        run = self.config.run_dir
        run.mkdir(mode=0o711, parents=True, exist_ok=True)
        os.chmod(run, 0o711)  # slot uids must traverse to their own box dir, never list
        _lock_instance(run)
        try:
            self.init = build_helper("init", run)
            self.launch = build_helper("launch", run)
        except (HelperBuildError, OSError, subprocess.SubprocessError) as e:
            raise SandboxUnavailable(str(e)) from e
        (run / "boxes").mkdir(mode=0o711, exist_ok=True)
        (run / "roots").mkdir(mode=0o711, exist_ok=True)
        try:
            self.reap()
        except BUILD_ERRORS as e:
            raise SandboxUnavailable(f"cannot remove what a previous process left in {run}: {e}") from e
        self._shared_root_paths = rootfs.added_paths(self.layout, self._shared_ro_paths)
        try:
            self._root(self._shared_root_paths)
        except BUILD_ERRORS as e:
            raise SandboxUnavailable(f"cannot assemble the boxes' read-only root: {e}") from e
        # bubblewrap's --die-with-parent follows the thread that spawned it: the builder threads live
        # as long as the sandbox (close() or the process ends them, after the boxes are gone).
        self._builder = concurrent.futures.ThreadPoolExecutor(self.config.slots, thread_name_prefix="stockade-builder")
        for slot in range(self.config.slots):
            self._build_ahead(slot)

    def close(self) -> None:
        """Settle, then give up the instance (its run dir) once no box of this object runs any more."""
        self.settle()
        if self._builder is not None:
            self._builder.shutdown()
            self._builder = None
        with self._roots_lock:
            for root in self._roots.values():
                try:
                    rootfs.remove(root)
                except (OSError, hostfs.HostFsError):
                    log.exception("root %s: unmount failed; the next start reaps it", root)
            self._roots.clear()
        if self.cgroups is not None:
            _unlock_instance(self.config.run_dir)
            self.cgroups = None

    def reap(self) -> int:
        """Kill and remove every box left by an earlier process (kill -9 of the service mid-run)."""
        assert self.cgroups is not None
        count = 0
        for cg in self.cgroups.leftovers():
            if cg.name not in self._active:
                cg.kill_and_remove()
                count += 1
        boxes = self.config.run_dir / "boxes"
        for d in boxes.iterdir():
            if d.name not in self._active:
                self._remove_box_dir(d)
                count += 1
        ours = set(self._roots.values())
        for d in (self.config.run_dir / "roots").iterdir():
            if d not in ours:
                rootfs.remove(d)
        if count:
            log.warning("reaped %d leftover box resources", count)
        return count

    @property
    def slots_total(self) -> int:
        return self._slots.total

    @property
    def slots_in_use(self) -> int:
        return self._slots.in_use

    @property
    def slots_waiting(self) -> int:
        return self._slots.waiting

    def _uid(self, slot: int) -> int:
        return self.config.uid_base + slot

    @property
    def root(self) -> Path:
        """The read-only root of the boxes built ahead (it adds the shared ro paths)."""
        assert self.layout is not None, "sandbox not started"
        return self._root(self._shared_root_paths)

    @property
    def ready_box_ids(self) -> frozenset[str]:
        """Boxes built ahead of demand, waiting for their run."""
        with self._lock:
            return frozenset(b.box_id for b in self._ready.values())

    # -- one run -------------------------------------------------------------------------------
    async def run(self, spec: BoxSpec) -> BoxResult:
        if self.cgroups is None or self.layout is None:
            raise SandboxUnavailable("sandbox not started")
        try:
            needed = rootfs.added_paths(self.layout, [check_ro_path(p) for p in spec.ro_paths])
        except ValueError as e:
            return BoxResult(status=Status.INTERNAL_ERROR, error=f"box setup failed: {e}")
        caller = _CALLER.get()
        if caller is not None and caller.slots:
            self._recycle_deferred(caller)  # this caller's earlier box may hold the slot this run needs
        asked = time.monotonic()
        try:
            slot = await self._slots.take()
        except NoSlotLeft:
            why = "every slot is quarantined after a failed teardown; restart the service (its start reaps)"
            return BoxResult(status=Status.INTERNAL_ERROR, error=f"no box available: {why}")
        if caller is not None:
            caller.started = True  # before any await: no cancel lands between taking the slot and saying so
        queue_ms = int((time.monotonic() - asked) * 1000)
        with self._lock:
            box = self._ready.pop(slot, None)
        if box is not None and (not needed <= box.ro_paths or box.proc.poll() is not None):
            self._discard(box)  # needs other paths bound, or died idle (killed by the host's root)
            box = None
        try:
            if slot in self.quarantined:  # that discard failed: this uid may not get another box
                raise CgroupError(f"slot {slot} is quarantined: a box's teardown failed")
            if box is None:
                box = self._build(slot, needed)
                self._started(box, await _first_word(box.control))
            result = await self._run_box(box, spec)
        except BUILD_ERRORS as e:
            box_id = box.box_id if box is not None else ""
            log.exception("box %s could not be built or started", box_id or "?")
            result = BoxResult(status=Status.INTERNAL_ERROR, error=f"box setup failed: {e}", box_id=box_id)
        finally:
            # Every process of the box is dead by now (or, for a box that never started, is killed in
            # its teardown); removing what is left of it and building the slot's next box happen in a
            # builder thread while the result is handed back, or once the caller is done with it.
            with self._lock:
                if caller is None:
                    self._submit_recycle(slot, box)
                else:
                    self._deferred[slot] = (caller, box)
                    caller.slots.append(slot)
        result.queue_ms = queue_ms
        return result

    @contextlib.contextmanager
    def recycling_deferred(self) -> Iterator[CallerRuns]:
        """Runs in this block (this context and the tasks it starts) leave their finished boxes to the
        builder thread only when the block ends. The builder's teardown and build are Python too:
        started while the caller still turns the result into its response, they contend with it for
        the GIL (~0.6 ms of the service's latency here). Yields the block's CallerRuns."""
        mine = CallerRuns()
        token = _CALLER.set(mine)
        try:
            yield mine
        finally:
            _CALLER.reset(token)
            self._recycle_deferred(mine)

    def _recycle_deferred(self, caller: CallerRuns | None) -> None:
        """Hand the finished boxes `caller` holds back (every caller's, for None) to the builder."""
        with self._lock:
            for slot, (owner, box) in list(self._deferred.items()):
                if caller is None or owner is caller:
                    del self._deferred[slot]
                    owner.slots.remove(slot)
                    self._submit_recycle(slot, box)

    def _submit_recycle(self, slot: int, box: _Box | None) -> None:
        assert self._builder is not None
        self._recycling[slot] = self._builder.submit(self._recycle, slot, box)

    def _recycle(self, slot: int, box: _Box | None) -> None:
        """Builder thread: tear the finished box down, build the slot's next one, give the slot back."""
        try:
            if box is not None:
                self._discard(box)
            if slot not in self.quarantined:
                self._build_ahead(slot)
        except Exception:
            log.exception("slot %d: recycling failed", slot)
            self.quarantined.add(slot)  # what is left of the box is unknown: fail closed
        finally:
            with self._lock:
                del self._recycling[slot]
            if slot in self.quarantined:
                # Its uid may still own a process that survived SIGKILL: no other box may ever get it.
                log.error("slot %d (uid %d) quarantined", slot, self._uid(slot))
                self._slots.lose()
            else:
                self._slots.give(slot)

    def _recycling_jobs(self) -> list[concurrent.futures.Future[None]]:
        with self._lock:
            return list(self._recycling.values())

    async def recycled(self) -> None:
        """Wait until every box finished so far is torn down and its slot's next box built (a box
        left to a recycling_deferred() block still running counts once that block ends)."""
        if jobs := self._recycling_jobs():
            await asyncio.wait([asyncio.wrap_future(j) for j in jobs])

    def settle(self) -> None:
        """Finish every pending teardown now and discard the boxes built ahead: afterwards no box of
        this sandbox exists on the host (no process, cgroup, mount or box dir) until the next run."""
        self._recycle_deferred(None)
        while jobs := self._recycling_jobs():
            concurrent.futures.wait(jobs)
        with self._lock:
            boxes = list(self._ready.values())
            self._ready.clear()
        for box in boxes:
            self._discard(box)

    def _build_ahead(self, slot: int) -> None:
        if not self.config.build_ahead or self.cgroups is None or slot in self._ready:
            return
        try:
            box = self._build_started(slot, frozenset())
            with self._lock:
                self._ready[slot] = box
        except BUILD_ERRORS:
            log.exception("slot %d: building a box ahead of demand failed; the next run builds its own", slot)

    def _build_started(self, slot: int, extra_root_paths: frozenset[str]) -> _Box:
        """_build, then wait (blocking: a builder thread) until the box's init says it is up. So a box
        ready for a run is whole, sandbox.recycled() means the host is idle, and a box that never
        starts fails here, with bubblewrap's reason, not as its run's verdict. (A run that builds its
        own box waits the same way, on its loop: _first_word.)"""
        box = self._build(slot, extra_root_paths)
        try:
            box.control.settimeout(START_TIMEOUT_S)
            said = box.control.recv(1)
            box.control.setblocking(False)
        except OSError:  # TimeoutError included
            said = b""
        try:
            self._started(box, said)
        except BoxStartFailed:
            self._discard(box)
            raise
        return box

    @staticmethod
    def _started(box: _Box, said: bytes) -> None:
        """Raise BoxStartFailed, with bubblewrap's words, unless the box's init said it is up. Discarding
        the box is the caller's: in a builder thread, never on the loop (a hung bubblewrap is given
        EXIT_GRACE_S there before it is killed)."""
        if said == b"R":
            return
        why = _read_available(box.setup_r).decode("utf-8", "replace").strip()
        code = box.proc.poll()
        state = "still running" if code is None else f"exit status {code}"
        raise BoxStartFailed(f"box did not start (no word from its init; bubblewrap {state}): {why or 'no message'}")

    def _build(self, slot: int, extra_root_paths: frozenset[str]) -> _Box:
        """Everything of a box that does not depend on the run: tmpfs, cgroup, bubblewrap and our init,
        which then waits for the command. Nothing untrusted has run in it yet. Its root adds the shared
        ro paths and `extra_root_paths` (checked, as rootfs.added_paths gives them)."""
        assert self.cgroups is not None and self.layout is not None and self.init is not None
        assert self.launch is not None
        uid = gid = self._uid(slot)
        limits = BUILD_LIMITS
        box_id = uuid.uuid4().hex[:16]
        box_dir = self.config.run_dir / "boxes" / box_id
        fs_root = box_dir / "fs"
        binds = self._shared_root_paths | extra_root_paths
        root = self._root(binds)
        made: list[int] = []
        cg: BoxCgroup | None = None
        self._active.add(box_id)
        try:
            box_dir.mkdir(mode=0o711)
            fs_root.mkdir(mode=0o700)
            hostfs.mount_tmpfs(fs_root, size_mb=limits.tmpfs_mb, inodes=limits.tmpfs_inodes, uid=uid, gid=gid)
            hostfs.prepare_dirs(fs_root, uid, gid)
            cg = self.cgroups.create(box_id, limits)
            cg.stats()  # opens its accounting files now, off the run's path
            self.cgroups.set_cpu_weight(cg, running=False)
            host_end, box_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            made += [host_end.detach(), box_end.detach()]
            made += os.pipe2(os.O_CLOEXEC)  # status
            made += os.pipe2(os.O_CLOEXEC)  # set-up messages
            control, control_box, status_r, status_w, setup_r, setup_w = made
            seccomp_fd = seccomp.bpf_fd()
            made.append(seccomp_fd)
            argv = build_argv(
                layout=self.layout,
                root=root,
                fs_root=fs_root,
                seccomp_fd=seccomp_fd,
                status_fd=status_w,
                control_fd=control_box,
                bwrap=self.config.bwrap,
            )
            proc = subprocess.Popen(
                [*_launch_argv(self.launch, cg.procs_files, uid, gid), *argv],
                stdin=subprocess.DEVNULL,
                stdout=setup_w,
                stderr=setup_w,
                env=box_env({}),  # never the service's environment, even for bubblewrap
                pass_fds=(seccomp_fd, status_w, control_box),
                cwd="/",
                start_new_session=True,
            )
        except BaseException:
            for fd in made:
                with contextlib.suppress(OSError):
                    os.close(fd)
            if cg is not None:
                with contextlib.suppress(OSError, CgroupError):
                    cg.kill_and_remove()
            self._remove_box_dir(box_dir)
            self._active.discard(box_id)
            raise
        for fd in (control_box, status_w, setup_w, seccomp_fd):
            os.close(fd)
        for fd in (status_r, setup_r):
            os.set_blocking(fd, False)
        sock = socket.socket(fileno=control)
        sock.setblocking(False)
        return _Box(
            box_id=box_id,
            slot=slot,
            box_dir=box_dir,
            cg=cg,
            proc=proc,
            control=sock,
            status_r=status_r,
            setup_r=setup_r,
            ro_paths=binds,
        )

    def _root(self, ro_paths: frozenset[str]) -> Path:
        """The read-only root adding these paths, assembled on first use (the shared one at start)."""
        assert self.layout is not None and self.init is not None
        with self._roots_lock:
            root = self._roots.get(ro_paths)
            if root is None:
                root = self.config.run_dir / "roots" / uuid.uuid4().hex[:12]
                root.mkdir(mode=0o755)
                try:
                    rootfs.build(root, layout=self.layout, init=self.init, ro_paths=ro_paths)
                except BaseException:
                    root.rmdir()
                    raise
                self._roots[ro_paths] = root
            return root

    def _discard(self, box: _Box) -> None:
        """Kill the box's cgroup, close the host's descriptors, unmount and remove everything of it."""
        self._running.pop(box.box_id, None)
        box.control.close()  # an unused box's init reads EOF and exits; a finished run's init is exiting
        try:
            # bubblewrap first: it is our child, and until we reap it its zombie keeps the cgroup busy.
            # Let it see its init out (the namespaces' teardown) rather than kill it mid-way.
            try:
                box.proc.wait(EXIT_GRACE_S)
            except subprocess.TimeoutExpired:
                box.proc.kill()
                box.proc.wait(REAP_TIMEOUT_S)
            box.cg.kill_and_remove()
        except (OSError, CgroupError, subprocess.TimeoutExpired):
            log.exception("box %s: cgroup teardown failed", box.box_id)
            self.quarantined.add(box.slot)
        for fd in (box.status_r, box.setup_r, box.stdout_r, box.stderr_r):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._remove_box_dir(box.box_dir)
        self._active.discard(box.box_id)

    def kill_all(self) -> int:
        """Kill every running box (shutdown deadline passed); their runs then end and tear down."""
        running = list(self._running.values())
        for cg in running:
            with contextlib.suppress(OSError, CgroupError):
                cg.manager.kill(cg)
        return len(running)

    @staticmethod
    def _stdin_fd(data: bytes) -> int:
        mfd = os.memfd_create("stockade-stdin", os.MFD_CLOEXEC)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(mfd, view) :]
            # The box gets a read-only view of its stdin.
            return os.open(f"/proc/self/fd/{mfd}", os.O_RDONLY | os.O_CLOEXEC)
        finally:
            os.close(mfd)

    async def _run_box(self, box: _Box, spec: BoxSpec) -> BoxResult:
        """Fit the built box to this run (tmpfs size, inputs, cgroup limits), hand init the command,
        then supervise it."""
        limits = spec.limits
        message = run_message(spec.argv, box_env(spec.env), run_rlimits(limits), limits.processes)
        uid = gid = self._uid(box.slot)
        if (limits.tmpfs_mb, limits.tmpfs_inodes) != (BUILD_LIMITS.tmpfs_mb, BUILD_LIMITS.tmpfs_inodes):
            hostfs.resize_tmpfs(box.fs_root, size_mb=limits.tmpfs_mb, inodes=limits.tmpfs_inodes)
        if spec.files:
            hostfs.write_inputs(box.fs_root / "box", spec.files, uid, gid)
        box.cg.manager.apply_limits(box.cg, limits, since=BUILD_LIMITS)
        box.cg.manager.set_cpu_weight(box.cg, running=True)
        self._running[box.box_id] = box.cg
        cpu_base_us = box.cg.cpu_time_us()  # bubblewrap's own set-up is not the run's
        t0 = time.monotonic()
        # Output pipes of the run alone: only the command and what it starts ever hold their write ends.
        box.stdout_r, out_w = os.pipe2(os.O_CLOEXEC)
        box.stderr_r, err_w = os.pipe2(os.O_CLOEXEC)
        os.set_blocking(box.stdout_r, False)  # never the write ends: they are the command's stdout and stderr
        os.set_blocking(box.stderr_r, False)
        pids_current = os.open(box.cg.manager.pids_current_file(box.cg), os.O_RDONLY | os.O_CLOEXEC)
        passed = (self._stdin_fd(spec.stdin), out_w, err_w, pids_current)
        try:
            socket.send_fds(box.control, [b"G"], list(passed))
            await asyncio.get_running_loop().sock_sendall(box.control, message)
            box.control.shutdown(socket.SHUT_WR)
        except OSError as e:
            # The box was killed after it came up, before it took the run: no report follows.
            log.warning("box %s did not take its run: %s", box.box_id, e)
        finally:
            for fd in passed:
                os.close(fd)
        return await self._supervise(box, spec, t0, cpu_base_us)

    async def _supervise(self, box: _Box, spec: BoxSpec, t0: float, cpu_base_us: int) -> BoxResult:
        limits = spec.limits
        cg = box.cg
        kill_reason: dict[str, bool] = {"output": False, "cpu": False, "wall": False}
        # bubblewrap itself (our child) is spared until the command is gone, so it reaps the box's init.
        spare = frozenset({box.proc.pid})

        def kill_box() -> None:
            with contextlib.suppress(OSError, CgroupError):
                if spare:
                    cg.manager.kill_sparing(cg, spare)
                else:
                    cg.manager.kill(cg)

        cap = limits.output_kb * 1024

        def output_exceeded() -> None:
            kill_reason["output"] = True
            kill_box()

        out_task = asyncio.create_task(_read_capped(box.stdout_r, cap, output_exceeded))
        err_task = asyncio.create_task(_read_capped(box.stderr_r, cap, output_exceeded))
        # init reports once the command has exited and it has killed and reaped the rest of the box;
        # EOF without a report means init was killed (our kill, an OOM kill of the box).
        report_task = asyncio.create_task(_read_report(box.status_r))
        wait_task: asyncio.Task[int] | None = None

        cpu_limit_us = limits.cpu_ms * 1000
        wall_deadline = t0 + limits.wall_ms / 1000
        try:
            while not report_task.done():
                now = time.monotonic()
                if now >= wall_deadline:
                    kill_reason["wall"] = True
                    kill_box()
                    break
                with contextlib.suppress(OSError):
                    if cg.cpu_time_us() - cpu_base_us >= cpu_limit_us:
                        kill_reason["cpu"] = True
                        kill_box()
                        break
                await asyncio.wait({report_task}, timeout=min(CPU_POLL_S, wall_deadline - now))
            if not report_task.done():  # a limit killed the box: init's pipe closes as it dies
                try:
                    await asyncio.wait_for(asyncio.shield(report_task), REAP_TIMEOUT_S)
                except TimeoutError:
                    spare = frozenset()
                    kill_box()
            raw_report = await report_task
            wall_ms = int((time.monotonic() - t0) * 1000)
            report = decode_status(raw_report)
            returncode = 0
            if report is None:
                # No report: init was killed (a limit, an OOM kill of the box). The box's namespaces
                # are gone with it, so every process of it is dead; the cgroup kill is for the record.
                wait_task = asyncio.create_task(_wait_exit(box.proc))
                try:
                    returncode = await asyncio.wait_for(asyncio.shield(wait_task), REAP_TIMEOUT_S)
                except TimeoutError:
                    spare = frozenset()
                    kill_box()
                    returncode = await wait_task
                spare = frozenset()
                kill_box()
            # With a report the box is empty (init's certificate): no process can race the copy-out, and
            # its namespaces are torn down after the result is handed back (Sandbox._discard).
            (stdout, out_trunc), (stderr, err_trunc) = await asyncio.wait_for(
                asyncio.gather(out_task, err_task), REAP_TIMEOUT_S
            )
        except BaseException:
            # Cancelled (client gone, shutdown) or failed: the box dies now, teardown follows in the caller.
            spare = frozenset()
            kill_box()
            for task in (out_task, err_task, report_task, wait_task):
                if task is not None:
                    task.cancel()
            raise
        stats = cg.stats()
        cpu_us = max(0, stats.cpu_time_us - cpu_base_us)
        exit_code, sig, setup_error = _exit_facts(report, returncode)
        failed = sig is not None or exit_code != 0
        at_fsize = failed and hostfs.any_file_at_least(box.fs_root, limits.file_size_kb * 1024)
        status, timeout_kind = decide(
            Facts(
                exit_code=exit_code,
                signal=sig,
                setup_error=setup_error,
                oom_killed=stats.oom_kills > 0,
                output_exceeded=kill_reason["output"],
                cpu_exceeded=kill_reason["cpu"] or cpu_us > cpu_limit_us,
                wall_exceeded=kill_reason["wall"],
                file_at_size_limit=at_fsize,
            )
        )
        if setup_error:
            log.error("box %s: %s", box.box_id, setup_error)
        files: list[OutputFile] = []
        skipped: list[str] = []
        if spec.collect_files and status is not Status.INTERNAL_ERROR:
            files, skipped = hostfs.collect_outputs(
                box.fs_root / "box", max_bytes=spec.collect_max_bytes, max_files=spec.collect_max_files
            )
        return BoxResult(
            status=status,
            exit_code=exit_code,
            signal=sig,
            timeout_kind=timeout_kind,
            cpu_time_ms=cpu_us // 1000,
            wall_time_ms=wall_ms,
            peak_memory_kb=stats.peak_memory_bytes // 1024,
            stdout=stdout,
            stderr=stderr,
            stdout_truncated=out_trunc,
            stderr_truncated=err_trunc,
            oom_killed=stats.oom_kills > 0,
            pids_limit_hit=stats.pids_limit_hits > 0 or (report is not None and report[2] > 0),
            files=files,
            files_skipped=skipped,
            error=setup_error,
            box_id=box.box_id,
        )

    @staticmethod
    def _remove_box_dir(box_dir: Path) -> None:
        fs_root = box_dir / "fs"
        try:
            if hostfs.is_mountpoint(fs_root):
                hostfs.umount(fs_root)  # the tmpfs and all the box wrote vanish at once
            with contextlib.suppress(FileNotFoundError):
                fs_root.rmdir()
            with contextlib.suppress(FileNotFoundError):
                box_dir.rmdir()
        except OSError:
            log.exception("box dir %s: teardown failed", box_dir)
