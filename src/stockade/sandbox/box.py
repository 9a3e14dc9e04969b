"""One box on the host: built up to our init (which then waits for its command), and discarded.

A box is a fresh capped tmpfs, a cgroup, and stockade-launch (joins the cgroup, sets the shared
rlimits, drops to the slot's uid) exec'ing bubblewrap on a prepared read-only root (rootfs.py), with
stockade-init as pid 1. Nothing untrusted has run in a box when it is built; supervise.py hands it its
run, pool.py decides when boxes are built and torn down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import socket
import subprocess
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from stockade.sandbox import hostfs, rootfs, seccomp
from stockade.sandbox.bwrap import HostLayout, box_env, build_argv
from stockade.sandbox.cgroups import BoxCgroup, CgroupError, CgroupManager
from stockade.sandbox.spec import Limits

log = logging.getLogger("stockade.sandbox")

REAP_TIMEOUT_S = 5.0
START_TIMEOUT_S = 10.0  # for a box's init to say it is up (bubblewrap takes a few ms)
EXIT_GRACE_S = 1.0  # for a box's init to exit by itself before bubblewrap is killed
MEMLOCK_BYTES = 64 * 1024
SHARED_RLIMITS = ((resource.RLIMIT_CORE, 0), (resource.RLIMIT_MEMLOCK, MEMLOCK_BYTES), (resource.RLIMIT_MSGQUEUE, 0))
# A box is built with the default limits; a run with other ones gets its cgroup and tmpfs caps set late.
BUILD_LIMITS = Limits()


class BoxStartFailed(RuntimeError):
    """bubblewrap did not bring the box up: it failed, or hung past START_TIMEOUT_S."""


# What building or starting a box can raise; any of them fails that one run with internal_error.
BUILD_ERRORS = (OSError, hostfs.HostFsError, CgroupError, ValueError, BoxStartFailed)


@dataclass
class Box:
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


def launch_argv(launch: Path, procs_files: list[str], uid: int, gid: int) -> list[str]:
    """stockade-launch joins the box cgroup first (so bubblewrap and all it starts is accounted and
    killable), sets the rlimits every box shares, drops to the slot's uid/gid, then execs bubblewrap.
    The run's own rlimits come later, with the command, and our init sets them."""
    argv = [str(launch)]
    for path in procs_files:
        argv += ["-p", path]
    for res, value in SHARED_RLIMITS:
        argv += ["-r", f"{res}:{value}"]
    return [*argv, "-u", str(uid), "-g", str(gid), "--"]


def read_available(fd: int, cap: int = 65536) -> bytes:
    try:
        return os.read(fd, cap)
    except BlockingIOError:
        return b""


async def first_word(control: socket.socket) -> bytes:
    """What a box's init writes first on its control socket (b"R" once up); b"" at EOF, on an error
    or after START_TIMEOUT_S."""
    try:
        return await asyncio.wait_for(asyncio.get_running_loop().sock_recv(control, 1), START_TIMEOUT_S)
    except (OSError, TimeoutError):
        return b""


def remove_box_dir(box_dir: Path) -> None:
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


class BoxBuilder:
    """Builds and discards the boxes of one sandbox instance (its run dir, uid range and cgroups)."""

    def __init__(
        self,
        *,
        run_dir: Path,
        uid_base: int,
        bwrap: str,
        cgroups: CgroupManager,
        layout: HostLayout,
        helpers: Mapping[str, Path],
        launch: Path,
        shared_root_paths: frozenset[str],
    ) -> None:
        self.run_dir = run_dir
        self.uid_base = uid_base
        self.bwrap = bwrap
        self.cgroups = cgroups
        self.layout = layout
        self.helpers = helpers  # path in the box -> host binary (init, forwarder)
        self.launch = launch
        self.shared_root_paths = shared_root_paths
        self.active: set[str] = set()  # ids of every box built and not yet torn down
        self._roots: dict[frozenset[str], Path] = {}  # read-only roots by the ro paths they add
        self._roots_lock = threading.Lock()

    def uid(self, slot: int) -> int:
        return self.uid_base + slot  # slot N runs as host uid/gid uid_base + N

    def root(self, ro_paths: frozenset[str]) -> Path:
        """The read-only root adding these paths, assembled on first use (the shared one at start)."""
        with self._roots_lock:
            root = self._roots.get(ro_paths)
            if root is None:
                root = self.run_dir / "roots" / uuid.uuid4().hex[:12]
                root.mkdir(mode=0o755)
                try:
                    rootfs.build(root, layout=self.layout, helpers=self.helpers, ro_paths=ro_paths)
                except BaseException:
                    root.rmdir()
                    raise
                self._roots[ro_paths] = root
            return root

    def own_roots(self) -> set[Path]:
        with self._roots_lock:
            return set(self._roots.values())

    def remove_roots(self) -> None:
        with self._roots_lock:
            for root in self._roots.values():
                try:
                    rootfs.remove(root)
                except (OSError, hostfs.HostFsError):
                    log.exception("root %s: unmount failed; the next start reaps it", root)
            self._roots.clear()

    def build(self, slot: int, extra_root_paths: frozenset[str]) -> Box:
        """Everything of a box that does not depend on the run: tmpfs, cgroup, bubblewrap and our init,
        which then waits for the command. Nothing untrusted has run in it yet. Its root adds the shared
        ro paths and `extra_root_paths` (checked, as rootfs.added_paths gives them)."""
        uid = gid = self.uid(slot)
        limits = BUILD_LIMITS
        box_id = uuid.uuid4().hex[:16]
        box_dir = self.run_dir / "boxes" / box_id
        fs_root = box_dir / "fs"
        binds = self.shared_root_paths | extra_root_paths
        root = self.root(binds)
        made: list[int] = []
        cg: BoxCgroup | None = None
        self.active.add(box_id)
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
                bwrap=self.bwrap,
            )
            proc = subprocess.Popen(
                [*launch_argv(self.launch, cg.procs_files, uid, gid), *argv],
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
            remove_box_dir(box_dir)
            self.active.discard(box_id)
            raise
        for fd in (control_box, status_w, setup_w, seccomp_fd):
            os.close(fd)
        for fd in (status_r, setup_r):
            os.set_blocking(fd, False)
        sock = socket.socket(fileno=control)
        sock.setblocking(False)
        return Box(
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

    def build_started(self, slot: int, extra_root_paths: frozenset[str]) -> Box:
        """build, then wait (blocking: a builder thread) until the box's init says it is up. So a box
        ready for a run is whole, and a box that never starts fails here, with bubblewrap's reason, not
        as its run's verdict. (A run that builds its own box waits the same way, on its loop:
        first_word.)"""
        box = self.build(slot, extra_root_paths)
        try:
            box.control.settimeout(START_TIMEOUT_S)
            said = box.control.recv(1)
            box.control.setblocking(False)
        except OSError:  # TimeoutError included
            said = b""
        try:
            self.started(box, said)
        except BoxStartFailed:
            self.discard(box)
            raise
        return box

    @staticmethod
    def started(box: Box, said: bytes) -> None:
        """Raise BoxStartFailed, with bubblewrap's words, unless the box's init said it is up. Discarding
        the box is the caller's: in a builder thread, never on the loop (a hung bubblewrap is given
        EXIT_GRACE_S there before it is killed)."""
        if said == b"R":
            return
        why = read_available(box.setup_r).decode("utf-8", "replace").strip()
        code = box.proc.poll()
        state = "still running" if code is None else f"exit status {code}"
        raise BoxStartFailed(f"box did not start (no word from its init; bubblewrap {state}): {why or 'no message'}")

    def discard(self, box: Box) -> bool:
        """Kill the box's cgroup, close the host's descriptors, unmount and remove everything of it.
        False when its processes or cgroup could not be removed: its slot must never be used again."""
        box.control.close()  # an unused box's init reads EOF and exits; a finished run's init is exiting
        whole = True
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
            whole = False
        for fd in (box.status_r, box.setup_r, box.stdout_r, box.stderr_r):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        remove_box_dir(box.box_dir)
        self.active.discard(box.box_id)
        return whole
