"""Run a BoxSpec in a box that exists for that run alone: the Sandbox, which joins the pieces.

Life of a box (docs/sandbox.md): built ahead of demand as soon as its slot is free (pool.py) — on the
sandbox's read-only root (rootfs.py), a fresh capped tmpfs, a cgroup, stockade-launch (joins the
cgroup, drops to the slot uid, execs bubblewrap) and stockade-init as pid 1, which waits on a socket
(box.py) -> a run arrives: tmpfs caps, inputs and cgroup limits are set, init gets stdin, stdout and
stderr, the box's process count, command, environment and rlimits -> stream stdout/stderr under caps
while watching CPU and wall time -> init reports the real wait status once it has killed and reaped the
rest of the box (or a limit kills the whole cgroup) -> read accounting and output files -> hand the
result back, while a builder thread waits out the namespaces' teardown, unmounts, removes the cgroup
and builds the slot's next box (pool.py). A box runs one command and is never reused; one run's
supervision is supervise.py.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from stockade.sandbox import rootfs, seccomp
from stockade.sandbox.box import BUILD_ERRORS, Box, BoxBuilder, first_word, remove_box_dir
from stockade.sandbox.bwrap import FORWARD_PATH, INIT_PATH, HostLayout, check_ro_path
from stockade.sandbox.cgroups import BoxCgroup, CgroupError, CgroupManager, detect
from stockade.sandbox.egress import PROXY_PORT, SOCKET_NAME, EgressProxy, proxy_env
from stockade.sandbox.helpers import HelperBuildError, build_helper
from stockade.sandbox.pool import CallerRuns, NoSlotLeft, Pool
from stockade.sandbox.spec import BoxResult, BoxSpec, Status
from stockade.sandbox.supervise import LiveIO, run_box

log = logging.getLogger("stockade.sandbox")


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
    # Names the egress proxy resolves to these addresses instead of asking DNS (docs/network.md).
    egress_pins: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


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


class Sandbox:
    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.cgroups: CgroupManager | None = None
        self.layout: HostLayout | None = None
        self.builder: BoxBuilder | None = None
        self.pool: Pool | None = None
        self._running: dict[str, BoxCgroup] = {}
        self._shared_ro_paths: frozenset[str] = frozenset(check_ro_path(p) for p in self.config.shared_ro_paths)

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
            helpers = {INIT_PATH: build_helper("init", run), FORWARD_PATH: build_helper("forward", run)}
            launch = build_helper("launch", run)
        except (HelperBuildError, OSError, subprocess.SubprocessError) as e:
            raise SandboxUnavailable(str(e)) from e
        (run / "boxes").mkdir(mode=0o711, exist_ok=True)
        (run / "roots").mkdir(mode=0o711, exist_ok=True)
        self.builder = BoxBuilder(
            run_dir=run,
            uid_base=self.config.uid_base,
            bwrap=self.config.bwrap,
            cgroups=self.cgroups,
            layout=self.layout,
            helpers=helpers,
            launch=launch,
            shared_root_paths=rootfs.added_paths(self.layout, self._shared_ro_paths),
        )
        try:
            self.reap()
        except BUILD_ERRORS as e:
            raise SandboxUnavailable(f"cannot remove what a previous process left in {run}: {e}") from e
        try:
            self.builder.root(self.builder.shared_root_paths)
        except BUILD_ERRORS as e:
            raise SandboxUnavailable(f"cannot assemble the boxes' read-only root: {e}") from e
        self.pool = Pool(self.config.slots, self.builder, build_ahead=self.config.build_ahead)
        self.pool.start()

    def close(self) -> None:
        """Settle, then give up the instance (its run dir) once no box of this object runs any more."""
        if self.pool is not None:
            self.pool.close()
            self.pool = None
        if self.builder is not None:
            self.builder.remove_roots()
        if self.cgroups is not None:
            _unlock_instance(self.config.run_dir)
            self.cgroups = None

    def reap(self) -> int:
        """Kill and remove every box left by an earlier process (kill -9 of the service mid-run)."""
        assert self.cgroups is not None and self.builder is not None
        active = self.builder.active
        count = 0
        for cg in self.cgroups.leftovers():
            if cg.name not in active:
                cg.kill_and_remove()
                count += 1
        for d in (self.config.run_dir / "boxes").iterdir():
            if d.name not in active:
                remove_box_dir(d)
                count += 1
        ours = self.builder.own_roots()
        for d in (self.config.run_dir / "roots").iterdir():
            if d not in ours:
                rootfs.remove(d)
        if count:
            log.warning("reaped %d leftover box resources", count)
        return count

    @property
    def slots_total(self) -> int:
        return self.config.slots if self.pool is None else self.pool.total

    @property
    def slots_in_use(self) -> int:
        return 0 if self.pool is None else self.pool.in_use

    @property
    def slots_waiting(self) -> int:
        return 0 if self.pool is None else self.pool.waiting

    @property
    def quarantined(self) -> set[int]:
        """Slots whose teardown failed; never handed out again."""
        return set() if self.pool is None else self.pool.quarantined

    @property
    def root(self) -> Path:
        """The read-only root of the boxes built ahead (it adds the shared ro paths)."""
        assert self.builder is not None, "sandbox not started"
        return self.builder.root(self.builder.shared_root_paths)

    @property
    def ready_box_ids(self) -> frozenset[str]:
        """Boxes built ahead of demand, waiting for their run."""
        return frozenset() if self.pool is None else self.pool.ready_box_ids

    @contextlib.contextmanager
    def recycling_deferred(self) -> Iterator[CallerRuns]:
        """Runs in this block (this context and the tasks it starts) leave their finished boxes to the
        builder thread only when the block ends. The builder's teardown and build are Python too:
        started while the caller still turns the result into its response, they contend with it for
        the GIL (~0.6 ms of the service's latency here). Yields the block's CallerRuns."""
        assert self.pool is not None, "sandbox not started"
        with self.pool.recycling_deferred() as mine:
            yield mine

    def caller_runs(self) -> CallerRuns | None:
        """The CallerRuns of the recycling_deferred() block this context is in (None outside one): whether
        a run of the block has taken a slot, i.e. started."""
        return None if self.pool is None else self.pool.caller_runs()

    async def recycled(self) -> None:
        """Wait until every box finished so far is torn down and its slot's next box built (a box
        left to a recycling_deferred() block still running counts once that block ends)."""
        if self.pool is not None:
            await self.pool.recycled()

    def settle(self) -> None:
        """Finish every pending teardown now and discard the boxes built ahead: afterwards no box of
        this sandbox exists on the host (no process, cgroup, mount or box dir) until the next run."""
        if self.pool is not None:
            self.pool.settle()

    def kill_all(self) -> int:
        """Kill every running box (shutdown deadline passed); their runs then end and tear down."""
        running = list(self._running.values())
        for cg in running:
            with contextlib.suppress(OSError, CgroupError):
                cg.manager.kill(cg)
        return len(running)

    # -- one run -------------------------------------------------------------------------------
    async def run(self, spec: BoxSpec, live: LiveIO | None = None) -> BoxResult:
        """Run `spec` in a box of its own; with `live`, its stdio is live (supervise.LiveIO)."""
        if self.pool is None or self.builder is None or self.layout is None:
            raise SandboxUnavailable("sandbox not started")
        try:
            needed = rootfs.added_paths(self.layout, [check_ro_path(p) for p in spec.ro_paths])
        except ValueError as e:
            return BoxResult(status=Status.INTERNAL_ERROR, error=f"box setup failed: {e}")
        try:
            slot, box, queue_ms = await self.pool.acquire(needed)
        except NoSlotLeft:
            why = "every slot is quarantined after a failed teardown; restart the service (its start reaps)"
            return BoxResult(status=Status.INTERNAL_ERROR, error=f"no box available: {why}")
        try:
            if slot in self.pool.quarantined:  # that discard failed: this uid may not get another box
                raise CgroupError(f"slot {slot} is quarantined: a box's teardown failed")
            if box is None:
                box = self.builder.build(slot, needed)
                self.builder.started(box, await first_word(box.control))
            self._running[box.box_id] = box.cg
            result = await self._run_in(box, spec, self.builder.uid(slot), live)
        except BUILD_ERRORS as e:
            box_id = box.box_id if box is not None else ""
            log.exception("box %s could not be built or started", box_id or "?")
            result = BoxResult(status=Status.INTERNAL_ERROR, error=f"box setup failed: {e}", box_id=box_id)
        finally:
            if box is not None:
                self._running.pop(box.box_id, None)
            self.pool.release(slot, box)
        result.queue_ms = queue_ms
        return result

    async def _run_in(self, box: Box, spec: BoxSpec, uid: int, live: LiveIO | None) -> BoxResult:
        """run_box, behind the box's egress proxy when its spec has a network policy. The proxy's socket
        goes into the box's /tmp before its command starts: nothing untrusted has run in it yet."""
        if spec.network is None:
            return await run_box(box, spec, uid, live)
        proxy = EgressProxy(spec.network, pins=self.config.egress_pins)
        await proxy.start(box.fs_root / "tmp" / SOCKET_NAME)
        wrapped = replace(
            spec,
            argv=[FORWARD_PATH, f"/tmp/{SOCKET_NAME}", str(PROXY_PORT), *spec.argv],
            env={**proxy_env(), **spec.env},
        )
        try:
            result = await run_box(box, wrapped, uid, live)
        finally:
            await proxy.close()
        result.network = proxy.usage
        return result
