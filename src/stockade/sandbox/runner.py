"""Run a BoxSpec in a box that exists for that run alone, with a bounded pool of slots.

Life of a box: take a slot (its own host uid/gid) -> mount a fresh capped tmpfs and write the inputs ->
create the cgroup with its limits -> spawn stockade-launch, which joins the cgroup, sets rlimits, drops
to the slot uid and execs bubblewrap, whose pid 1 is stockade-init -> stream stdout/stderr under caps
while watching CPU and wall time -> kill the whole cgroup -> read the real wait status, accounting and
output files -> unmount, remove the cgroup. Nothing is reused.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import resource
import shutil
import signal
import subprocess
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from stockade.sandbox import hostfs, seccomp
from stockade.sandbox.bwrap import HostLayout, box_env, build_argv, synthetic_etc
from stockade.sandbox.cgroups import BoxCgroup, CgroupError, CgroupManager, detect
from stockade.sandbox.helpers import HelperBuildError, build_helper, decode_status
from stockade.sandbox.spec import BoxResult, BoxSpec, Limits, OutputFile, Status
from stockade.sandbox.verdict import Facts, decide

log = logging.getLogger("stockade.sandbox")

READ_CHUNK = 65536
CPU_POLL_S = 0.01
REAP_TIMEOUT_S = 5.0
MEMLOCK_BYTES = 64 * 1024


@dataclass(frozen=True)
class SandboxConfig:
    run_dir: Path = Path("/run/stockade")
    slots: int = 4
    uid_base: int = 60000  # slot N runs as host uid/gid uid_base + N
    cgroup_name: str = "stockade"
    bwrap: str = "bwrap"


class SandboxUnavailable(RuntimeError):
    """The host cannot build a safe box; Stockade refuses to run code (fail closed)."""


class SandboxBusy(SandboxUnavailable):
    """Another process owns this run dir: its boxes are not ours to reap."""


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


class _Slots:
    """Free slot numbers plus FIFO waiters; not bound to one event loop, unlike asyncio.Queue."""

    def __init__(self, n: int) -> None:
        self._free = list(range(n))
        self._waiters: deque[asyncio.Future[int]] = deque()
        self.total = n

    @property
    def in_use(self) -> int:
        return self.total - len(self._free)

    @property
    def waiting(self) -> int:
        return sum(1 for w in self._waiters if not w.done())

    async def take(self) -> int:
        if self._free and not self.waiting:
            return self._free.pop(0)
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            return await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.give(fut.result())  # handed a slot while being cancelled: pass it on
            raise

    def give(self, slot: int) -> None:
        while self._waiters:
            w = self._waiters.popleft()
            if not w.done():
                w.set_result(slot)
                return
        self._free.append(slot)


def _exit_facts(
    report: tuple[str, int] | None, returncode: int, stderr: bytes
) -> tuple[int | None, int | None, str | None]:
    """(exit code, signal, setup error) of the box command, from our init's report when there is one."""
    if report is not None:
        kind, value = report
        if kind == "W":
            if os.WIFSIGNALED(value):
                return None, os.WTERMSIG(value), None
            return os.WEXITSTATUS(value), None, None
        if kind == "E":
            return 127, None, None  # command not found in the box: the program's failure, as a shell says
        return None, None, f"box init failed (errno {value})"
    if (returncode, stderr[:7]) == (1, b"bwrap: ") or (returncode, stderr[:16]) == (125, b"stockade-launch:"):
        return None, None, stderr.decode("utf-8", "replace").strip()  # never got as far as our init
    # Killed before init could report (our cgroup kill, an OOM kill of the whole box).
    return None, -returncode if returncode < 0 else signal.SIGKILL, None


def _launch_argv(launch: Path, procs_files: list[str], limits: Limits, uid: int, gid: int) -> list[str]:
    """stockade-launch joins the box cgroup first (so bubblewrap and all it starts is accounted and
    killable), sets rlimits with hard = soft, drops to the slot's uid/gid, then execs bubblewrap."""
    cpu_s = limits.cpu_ms // 1000 + 2  # per-process backstop; the tree's CPU is watched via the cgroup
    rlimits = [
        (resource.RLIMIT_CPU, cpu_s),
        (resource.RLIMIT_FSIZE, limits.file_size_kb * 1024),
        (resource.RLIMIT_NOFILE, limits.open_files),
        (resource.RLIMIT_STACK, limits.stack_mb * 1024 * 1024),
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_NPROC, limits.processes + 8),  # per uid: the slot uid is this box's alone
        (resource.RLIMIT_MEMLOCK, MEMLOCK_BYTES),
        (resource.RLIMIT_MSGQUEUE, 0),
    ]
    argv = [str(launch)]
    for path in procs_files:
        argv += ["-p", path]
    for res, value in rlimits:
        argv += ["-r", f"{res}:{value}"]
    return [*argv, "-u", str(uid), "-g", str(gid), "--"]


async def _read_capped(stream: asyncio.StreamReader, cap: int, on_exceed: Callable[[], None]) -> tuple[bytes, bool]:
    buf = bytearray()
    truncated = False
    while True:
        chunk = await stream.read(READ_CHUNK)
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
    return bytes(buf), truncated


class Sandbox:
    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.cgroups: CgroupManager | None = None
        self.layout: HostLayout | None = None
        self.init: Path | None = None
        self.launch: Path | None = None
        self._slots = _Slots(self.config.slots)
        self._active: set[str] = set()
        self._running: dict[str, BoxCgroup] = {}
        self.quarantined: set[int] = set()  # slots whose teardown failed; never handed out again

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        """Check the host, prepare shared read-only files and reap boxes of a previous process."""
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
        etc = run / "etc"
        etc.mkdir(mode=0o755, exist_ok=True)
        for name, content in synthetic_etc().items():
            tmp = etc / f".{name}.tmp"
            tmp.write_text(content)
            tmp.chmod(0o644)
            tmp.replace(etc / name)
        self.reap()

    def close(self) -> None:
        """Give up the instance (its run dir) once no box of this object runs any more."""
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

    # -- one run -------------------------------------------------------------------------------
    async def run(self, spec: BoxSpec) -> BoxResult:
        if self.cgroups is None or self.layout is None:
            raise SandboxUnavailable("sandbox not started")
        asked = time.monotonic()
        slot = await self._slots.take()
        queue_ms = int((time.monotonic() - asked) * 1000)
        box_id = uuid.uuid4().hex[:16]
        self._active.add(box_id)
        try:
            result = await self._run_in_slot(spec, slot, box_id)
            result.queue_ms = queue_ms
            return result
        finally:
            self._active.discard(box_id)
            if slot in self.quarantined:
                # Its uid may still own a process that survived SIGKILL: no other box may ever get it.
                log.error("slot %d (uid %d) quarantined after box %s", slot, self.config.uid_base + slot, box_id)
            else:
                self._slots.give(slot)

    async def _run_in_slot(self, spec: BoxSpec, slot: int, box_id: str) -> BoxResult:
        assert self.cgroups is not None and self.layout is not None
        uid = gid = self.config.uid_base + slot
        limits = spec.limits
        box_dir = self.config.run_dir / "boxes" / box_id
        fs_root = box_dir / "fs"
        cg: BoxCgroup | None = None
        fds: list[int] = []
        t0 = time.monotonic()
        try:
            box_dir.mkdir(mode=0o711)
            fs_root.mkdir(mode=0o700)
            hostfs.mount_tmpfs(fs_root, size_mb=limits.tmpfs_mb, inodes=limits.tmpfs_inodes, uid=uid, gid=gid)
            hostfs.prepare_dirs(fs_root, uid, gid)
            hostfs.write_inputs(fs_root / "box", spec.files, uid, gid)
            cg = self.cgroups.create(box_id, limits)
            self._running[box_id] = cg
            seccomp_fd = seccomp.bpf_fd()
            fds.append(seccomp_fd)
            stdin_fd = self._stdin_fd(spec.stdin)
            fds.append(stdin_fd)
            status_r, status_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
            fds += [status_r, status_w]
            assert self.init is not None
            argv = build_argv(
                spec.argv,
                layout=self.layout,
                fs_root=fs_root,
                etc_dir=self.config.run_dir / "etc",
                seccomp_fd=seccomp_fd,
                init=self.init,
                status_fd=status_w,
                ro_paths=spec.ro_paths,
                bwrap=self.config.bwrap,
            )
            return await self._supervise(spec, argv, cg, fds, uid, gid, box_dir, t0, box_id)
        except (OSError, hostfs.HostFsError, CgroupError, ValueError) as e:
            log.exception("box %s could not be built", box_id)
            return BoxResult(status=Status.INTERNAL_ERROR, error=f"box setup failed: {e}", box_id=box_id)
        finally:
            self._running.pop(box_id, None)
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)
            if cg is not None:
                try:
                    cg.kill_and_remove()
                except (OSError, CgroupError):
                    log.exception("box %s: cgroup teardown failed", box_id)
                    self.quarantined.add(slot)
            self._remove_box_dir(box_dir)

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

    async def _supervise(
        self,
        spec: BoxSpec,
        argv: list[str],
        cg: BoxCgroup,
        fds: list[int],
        uid: int,
        gid: int,
        box_dir: Path,
        t0: float,
        box_id: str,
    ) -> BoxResult:
        limits = spec.limits
        seccomp_fd, stdin_fd, status_r, status_w = fds
        kill_reason: dict[str, bool] = {"output": False, "cpu": False, "wall": False}

        spare: frozenset[int] = frozenset()

        def kill_box() -> None:
            with contextlib.suppress(OSError, CgroupError):
                if spare:
                    cg.manager.kill_sparing(cg, spare)
                else:
                    cg.manager.kill(cg)

        assert self.launch is not None
        proc = await asyncio.create_subprocess_exec(
            *_launch_argv(self.launch, cg.procs_files, limits, uid, gid),
            *argv,
            stdin=stdin_fd,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=box_env(spec.env),
            pass_fds=(seccomp_fd, status_w),
            cwd="/",
            start_new_session=True,
        )
        for fd in (seccomp_fd, stdin_fd, status_w):
            os.close(fd)
        fds[:] = [status_r]
        spare = frozenset({proc.pid})
        assert proc.stdout is not None and proc.stderr is not None
        cap = limits.output_kb * 1024

        def output_exceeded() -> None:
            kill_reason["output"] = True
            kill_box()

        out_task = asyncio.create_task(_read_capped(proc.stdout, cap, output_exceeded))
        err_task = asyncio.create_task(_read_capped(proc.stderr, cap, output_exceeded))
        wait_task = asyncio.create_task(proc.wait())

        cpu_limit_us = limits.cpu_ms * 1000
        wall_deadline = t0 + limits.wall_ms / 1000
        try:
            while not wait_task.done():
                now = time.monotonic()
                if now >= wall_deadline:
                    kill_reason["wall"] = True
                    kill_box()
                    break
                with contextlib.suppress(OSError):
                    if cg.cpu_time_us() >= cpu_limit_us:
                        kill_reason["cpu"] = True
                        kill_box()
                        break
                await asyncio.wait({wait_task}, timeout=min(CPU_POLL_S, wall_deadline - now))
            try:
                # bubblewrap exits once its child, our init, is gone; it was spared by any kill so far.
                returncode = await asyncio.wait_for(asyncio.shield(wait_task), REAP_TIMEOUT_S)
            except TimeoutError:
                spare = frozenset()
                kill_box()
                returncode = await wait_task
            wall_ms = int((time.monotonic() - t0) * 1000)
            # The command is gone; anything it left (daemons, stopped children) dies with the cgroup now,
            # before any output file is read, so nothing can race the copy-out.
            spare = frozenset()
            kill_box()
            (stdout, out_trunc), (stderr, err_trunc) = await asyncio.wait_for(
                asyncio.gather(out_task, err_task), REAP_TIMEOUT_S
            )
        except BaseException:
            # Cancelled (client gone, shutdown) or failed: the box dies now, teardown follows in the caller.
            spare = frozenset()
            kill_box()
            for task in (out_task, err_task, wait_task):
                task.cancel()
            raise
        stats = cg.stats()

        # Every holder of the status pipe is dead now: this read cannot block.
        try:
            report = decode_status(os.read(status_r, 64))
        except BlockingIOError:
            report = None
        exit_code, sig, setup_error = _exit_facts(report, returncode, stderr)
        failed = sig is not None or exit_code != 0
        at_fsize = failed and hostfs.any_file_at_least(box_dir / "fs", limits.file_size_kb * 1024)
        status, timeout_kind = decide(
            Facts(
                exit_code=exit_code,
                signal=sig,
                setup_error=setup_error,
                oom_killed=stats.oom_kills > 0,
                output_exceeded=kill_reason["output"],
                cpu_exceeded=kill_reason["cpu"] or stats.cpu_time_us > cpu_limit_us,
                wall_exceeded=kill_reason["wall"],
                file_at_size_limit=at_fsize,
            )
        )
        if setup_error:
            log.error("box %s: bubblewrap failed: %s", box_id, setup_error)
        files: list[OutputFile] = []
        skipped: list[str] = []
        if spec.collect_files and status is not Status.INTERNAL_ERROR:
            files, skipped = hostfs.collect_outputs(
                box_dir / "fs" / "box", max_bytes=spec.collect_max_bytes, max_files=spec.collect_max_files
            )
        return BoxResult(
            status=status,
            exit_code=exit_code,
            signal=sig,
            timeout_kind=timeout_kind,
            cpu_time_ms=stats.cpu_time_us // 1000,
            wall_time_ms=wall_ms,
            peak_memory_kb=stats.peak_memory_bytes // 1024,
            stdout=stdout,
            stderr=stderr,
            stdout_truncated=out_trunc,
            stderr_truncated=err_trunc,
            oom_killed=stats.oom_kills > 0,
            pids_limit_hit=stats.pids_limit_hits > 0,
            files=files,
            files_skipped=skipped,
            error=setup_error,
            box_id=box_id,
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
