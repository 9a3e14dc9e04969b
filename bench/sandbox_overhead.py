"""Sandbox overhead: a trivial command bare vs in a Stockade box, and where the box time goes.

A box is built as: subprocess (CPython's vfork path: no preexec_fn) of stockade-launch (static C:
joins the box cgroups, sets the shared rlimits, drops to the slot uid, execs bubblewrap) ->
bubblewrap -> stockade-init as the box's pid 1, which waits on a socket for the run (command, env,
rlimits, stdin), runs it and reports its real wait status. By default each slot's next box is built
as soon as the slot is free ("warm": the run finds its box ready); with build_ahead off every run
builds its box on demand ("cold").

Every round runs, in this order and in this one process: bare /bin/true, boxed /bin/true (warm,
then cold), bare `python3 -c pass`, boxed `python3 -c pass` (warm, then cold), then one sample of
each breakdown part, each building on the previous one, so differences of medians isolate one step
of building a box (what "cold" pays on the request path and "warm" pays ahead of it):

  (L)  launcher -> /bin/true               stockade-launch with the box's rlimits and slot uid,
                                           no cgroup: the cost of the extra (static) exec
  (La) launcher + cgroup -> /bin/true      the same, joining a fresh box cgroup (created before,
                                           removed after the timed span): launcher attach cost
  (N)  launcher -> bwrap, namespaces only  the box's six --unshare-* with one --ro-bind / /
  (B)  launcher -> bwrap, box argv         stockade.sandbox.bwrap.build_argv exactly as the runner
                                           calls it (mounts, /proc, /dev, seccomp, init as pid 1,
                                           status pipe, control socket with the run already
                                           queued), no cgroup; init must report "W 0"
  (F)  launcher + cgroup -> box argv       create + limits, (B) joining it, kill + remove, all
                                           timed: the box's process and kernel path without the
                                           supervisor and the tmpfs
  (a)  cgroup create + limits + remove     the box's cgroup dirs, never joined
  (b)  cgroup attach per controller        a forked child writes "0" to each cgroup.procs, timed
                                           inside the child; (b+) kill-check + remove afterwards
  (c)  tmpfs mount + umount                the box's capped tmpfs, as hostfs does it
  (R)  reference: /bin/true + preexec_fn   CPython fork()s instead of vfork()ing: what the box's
                                           spawn cost before the launcher replaced the preexec_fn

so slow drift of the host (other jobs) hits every series alike. Times are spawn-to-exit as the
caller sees them (time.perf_counter around `await sandbox.run(...)` / the subprocess).

Usage: .venv/bin/python bench/sandbox_overhead.py [--n 200] [--warmup 10] [--json PATH]  (as root)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import socket
import struct
import sys
import uuid
from pathlib import Path
from typing import Any

from _common import (
    COLD_CONFIG,
    LoadMeter,
    fmt_ms,
    machine_info,
    ms_since,
    now_ns,
    print_load,
    print_machine,
    print_table,
    spawn_timed,
    start_sandbox,
    summarize,
    write_json,
)
from stockade.sandbox import BoxSpec, Limits, Sandbox, Status, hostfs, seccomp
from stockade.sandbox.box import launch_argv
from stockade.sandbox.bwrap import box_env, build_argv
from stockade.sandbox.cgroups import BoxCgroup, CgroupManager
from stockade.sandbox.helpers import decode_status
from stockade.sandbox.supervise import run_message, run_rlimits

TRUE = ["/bin/true"]
PYTHON = ["/usr/bin/python3", "-c", "pass"]
TARGET_MS = 5.0
STRETCH_MS = 2.0
NS_ONLY = ["--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup"]


class Bench:
    def __init__(self, sandbox: Sandbox, cold: Sandbox) -> None:
        assert sandbox.cgroups is not None and sandbox.layout is not None
        assert sandbox.builder is not None
        self.sandbox = sandbox
        self.cold = cold
        self.cgroups: CgroupManager = sandbox.cgroups
        self.launch: Path = sandbox.builder.launch
        self.init: Path = sandbox.builder.init
        self.limits = Limits()
        cfg = sandbox.config
        # Slot 0's uid. The sandbox runs one box at a time here and its boxes alternate slots 1 and 0,
        # but every box is gone before the next step, so nothing else runs as this uid meanwhile.
        self.uid = self.gid = cfg.uid_base
        self.box_env = box_env({})
        self.samples: dict[str, list[float]] = {}
        self.attach_per_file: dict[str, list[float]] = {}
        # A box filesystem like the runner's (tmpfs + box/tmp/shm) for the bare bwrap runs, kept mounted.
        self.fs_dir = cfg.run_dir / "boxes" / f"bench-{uuid.uuid4().hex[:12]}"
        self.fs_root = self.fs_dir / "fs"
        self.fs_dir.mkdir(mode=0o711)
        self.fs_root.mkdir(mode=0o700)
        hostfs.mount_tmpfs(
            self.fs_root, size_mb=self.limits.tmpfs_mb, inodes=self.limits.tmpfs_inodes, uid=self.uid, gid=self.gid
        )
        hostfs.prepare_dirs(self.fs_root, self.uid, self.gid)

    def close(self) -> None:
        with contextlib.suppress(OSError, hostfs.HostFsError):
            hostfs.umount(self.fs_root)
            self.fs_root.rmdir()
            self.fs_dir.rmdir()

    def add(self, key: str, ms: float) -> None:
        self.samples.setdefault(key, []).append(ms)

    def new_cgroup(self) -> BoxCgroup:
        return self.cgroups.create(f"bench{uuid.uuid4().hex[:12]}", self.limits)

    # -- series --------------------------------------------------------------------------------
    async def bare(self, argv: list[str], preexec: bool = False) -> float:
        r = await spawn_timed(argv, env=self.box_env, cwd="/tmp", preexec_fn=(lambda: None) if preexec else None)
        if r.returncode != 0:
            raise RuntimeError(f"bare {argv}: exit {r.returncode}: {r.stderr[:300]!r}")
        return r.ms

    async def box(self, argv: list[str], sandbox: Sandbox) -> float:
        t0 = now_ns()
        res = await sandbox.run(BoxSpec(argv=list(argv)))
        ms = ms_since(t0)
        if res.status is not Status.OK:
            raise RuntimeError(f"box {argv}: {res.status} {res.error or ''} {res.stderr[:300]!r}")
        return ms

    async def launched(self, inner: str, cgroup: bool) -> dict[str, float]:
        """stockade-launch spawned as the runner spawns it (same argv builder, env, stdin memfd,
        piped output, passed fds, new session), running `inner`: "true" (/bin/true directly),
        "ns" (bwrap with the box's namespaces and one --ro-bind / /, then /bin/true) or "box"
        (bwrap with the box's argv, init and status pipe, then /bin/true). With `cgroup` it joins a
        fresh box cgroup. Returns the spawn-to-exit time ("spawn") and, with a cgroup, "create"
        (+ limits), "remove" (kill-check + rmdir) and "total" (create through remove)."""
        sfd = seccomp.bpf_fd()
        stdin_fd = Sandbox._stdin_fd(b"")
        status_r, status_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        control, control_box = socket.socketpair()
        parts: dict[str, float] = {}
        cg: BoxCgroup | None = None
        t0 = now_ns()
        try:
            if cgroup:
                cg = self.new_cgroup()
                parts["create"] = ms_since(t0)
            pass_fds: tuple[int, ...] = ()
            if inner == "true":
                command = TRUE
            elif inner == "ns":
                command = [self.sandbox.config.bwrap, *NS_ONLY, "--ro-bind", "/", "/", "--", *TRUE]
            else:
                command = self.box_argv(sfd, status_w, control_box.fileno())
                pass_fds = (sfd, status_w, control_box.fileno())
                # The run is queued before the spawn, as the runner's cold path does in effect; /bin/true
                # writes nothing, so its stdout and stderr may be the stdin memfd.
                socket.send_fds(control, [b"G"], [stdin_fd] * 5)  # no process limit: init never reads the last two
                control.sendall(run_message(TRUE, self.box_env, run_rlimits(self.limits)))
                control.shutdown(socket.SHUT_WR)
            argv = [*launch_argv(self.launch, cg.procs_files if cg else [], self.uid, self.gid), *command]
            r = await spawn_timed(argv, env=self.box_env, cwd="/", stdin=stdin_fd, pass_fds=pass_fds)
            parts["spawn"] = r.ms
        finally:
            for fd in (sfd, stdin_fd, status_w):
                os.close(fd)
            control.close()
            control_box.close()
            if cg is not None:
                t1 = now_ns()
                cg.kill_and_remove()
                parts["remove"] = ms_since(t1)
                parts["total"] = ms_since(t0)
        try:
            report = decode_status(os.read(status_r, 64)) if inner == "box" else ("W", 0)
        except BlockingIOError:
            report = None
        finally:
            os.close(status_r)
        if r.returncode != 0 or report != ("W", 0):
            raise RuntimeError(f"launch {inner}: exit {r.returncode}, init report {report}: {r.stderr[:300]!r}")
        return parts

    def box_argv(self, seccomp_fd: int, status_fd: int, control_fd: int) -> list[str]:
        """The bubblewrap argv Sandbox builds for a box (on the sandbox's shared read-only root)."""
        assert self.sandbox.layout is not None
        return build_argv(
            layout=self.sandbox.layout,
            root=self.sandbox.root,
            fs_root=self.fs_root,
            seccomp_fd=seccomp_fd,
            status_fd=status_fd,
            control_fd=control_fd,
            bwrap=self.sandbox.config.bwrap,
        )

    def cgroup_cycle(self) -> tuple[float, float]:
        """(create + limits, remove) of a box cgroup that no process ever joined."""
        t0 = now_ns()
        cg = self.new_cgroup()
        created = ms_since(t0)
        t1 = now_ns()
        cg.kill_and_remove()
        return created, ms_since(t1)

    def attach(self) -> tuple[float, list[float], float]:
        """A forked child joins a fresh box cgroup as stockade-launch does (write "0" to each
        cgroup.procs, in the same order), timing each write itself. The fork only delivers a child
        to time; it is not in the span. Returns (total, per file, kill+remove after)."""
        cg = self.new_cgroup()
        files = cg.procs_files
        try:
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:  # child: no Python-level cleanup, only syscalls, then _exit
                code = 1
                try:
                    os.close(r)
                    stamps = [now_ns()]
                    for path in files:
                        fd = os.open(path, os.O_WRONLY)
                        os.write(fd, b"0")
                        os.close(fd)
                        stamps.append(now_ns())
                    os.write(w, struct.pack(f"{len(stamps)}q", *stamps))
                    code = 0
                finally:
                    os._exit(code)
            os.close(w)
            data = b""
            while chunk := os.read(r, 4096):
                data += chunk
            os.close(r)
            _, status = os.waitpid(pid, 0)
            if status != 0 or len(data) != 8 * (len(files) + 1):
                raise RuntimeError(f"attach child failed (wait status {status})")
            stamps = list(struct.unpack(f"{len(files) + 1}q", data))
        finally:
            t0 = now_ns()
            cg.kill_and_remove()
            removed = ms_since(t0)
        per_file = [(b - a) / 1e6 for a, b in itertools.pairwise(stamps)]
        for path, ms in zip(files, per_file, strict=True):
            self.attach_per_file.setdefault(_controller(path), []).append(ms)
        return (stamps[-1] - stamps[0]) / 1e6, per_file, removed

    def tmpfs(self) -> float:
        d = self.sandbox.config.run_dir / "boxes" / f"bench-{uuid.uuid4().hex[:12]}"
        d.mkdir(mode=0o700)
        try:
            t0 = now_ns()
            hostfs.mount_tmpfs(
                d, size_mb=self.limits.tmpfs_mb, inodes=self.limits.tmpfs_inodes, uid=self.uid, gid=self.gid
            )
            hostfs.umount(d)
            return ms_since(t0)
        finally:
            with contextlib.suppress(OSError):
                d.rmdir()

    async def round(self, record: bool, breakdown: bool) -> None:
        row: dict[str, float] = {
            "bare_true": await self.bare(TRUE),
            "box_true": await self.box(TRUE, self.sandbox),
            "cold_true": await self.box(TRUE, self.cold),
            "bare_python": await self.bare(PYTHON),
            "box_python": await self.box(PYTHON, self.sandbox),
            "cold_python": await self.box(PYTHON, self.cold),
        }
        if breakdown:
            row["L_launch_true"] = (await self.launched("true", cgroup=False))["spawn"]
            row["La_launch_cgroup_true"] = (await self.launched("true", cgroup=True))["spawn"]
            row["N_launch_bwrap_ns"] = (await self.launched("ns", cgroup=False))["spawn"]
            row["B_launch_bwrap_box"] = (await self.launched("box", cgroup=False))["spawn"]
            f = await self.launched("box", cgroup=True)
            row["F_launch_cgroup_bwrap_box_total"] = f["total"]
            row["F_spawn"] = f["spawn"]
            row["F_cgroup_create_limits"] = f["create"]
            row["F_cgroup_kill_remove"] = f["remove"]
            created, removed = self.cgroup_cycle()
            row["a_cgroup_create_limits"] = created
            row["a_cgroup_remove_unused"] = removed
            row["a_cgroup_total"] = created + removed
            attach_ms, _, removed_used = self.attach()
            row["b_cgroup_attach"] = attach_ms
            row["b_cgroup_kill_remove_used"] = removed_used
            row["c_tmpfs_mount_umount"] = self.tmpfs()
            row["R_bare_true_preexec"] = await self.bare(TRUE, preexec=True)
        if record:
            for k, v in row.items():
                self.add(k, v)
        else:
            self.attach_per_file.clear()


def rss_mb() -> float:
    """Resident size of this process: what fork() must copy page tables for (the old preexec_fn path)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def _controller(procs_file: str) -> str:
    parts = Path(procs_file).parts  # /sys/fs/cgroup/<controller>/.../cgroup.procs
    return parts[4] if len(parts) > 4 else procs_file


LABELS = {
    "bare_true": "bare /bin/true (asyncio spawn+wait, vfork path)",
    "L_launch_true": "(L) launcher -> /bin/true, no cgroup",
    "La_launch_cgroup_true": "(La) launcher + cgroup join -> /bin/true (spawn only)",
    "N_launch_bwrap_ns": "(N) launcher -> bwrap, 6 namespaces, --ro-bind / /",
    "B_launch_bwrap_box": "(B) launcher -> bwrap, box argv + seccomp + init",
    "F_launch_cgroup_bwrap_box_total": "(F) = (B) in a box cgroup: create..remove",
    "F_spawn": "    spawn to exit",
    "F_cgroup_create_limits": "    cgroup create + limits",
    "F_cgroup_kill_remove": "    cgroup kill-check + remove",
    "a_cgroup_total": "(a) cgroup create+limits+remove (never joined)",
    "a_cgroup_create_limits": "    create + limits",
    "a_cgroup_remove_unused": "    remove",
    "b_cgroup_attach": "(b) attach: write 0 to each cgroup.procs",
    "b_cgroup_kill_remove_used": "(b+) kill-check + remove the joined cgroup",
    "c_tmpfs_mount_umount": "(c) tmpfs mount + umount",
    "box_true": "box /bin/true, warm (sandbox.run, box built ahead)",
    "cold_true": "box /bin/true, cold (sandbox.run, box built on demand)",
    "R_bare_true_preexec": "(R) reference: /bin/true with preexec_fn (fork)",
}


def accounting(med: dict[str, float]) -> list[tuple[str, float]]:
    """Split the cold boxed /bin/true median into additive-looking parts. Medians of different series
    do not strictly add up; the residual absorbs that along with the supervisor's own work."""
    parts = [
        ("bare spawn + exec of /bin/true", med["bare_true"]),
        ("stockade-launch: one more (static) exec, rlimits, setuid", med["L_launch_true"] - med["bare_true"]),
        ("cgroup attach by the launcher (cgroup.procs writes)", med["La_launch_cgroup_true"] - med["L_launch_true"]),
        ("bubblewrap exec + 6 namespaces", med["N_launch_bwrap_ns"] - med["L_launch_true"]),
        ("bubblewrap: box mounts, /proc, /dev, seccomp, init", med["B_launch_bwrap_box"] - med["N_launch_bwrap_ns"]),
        ("cgroup create + limits", med["F_cgroup_create_limits"]),
        ("cgroup kill-check + remove after use", med["F_cgroup_kill_remove"]),
        ("tmpfs mount + umount", med["c_tmpfs_mount_umount"]),
    ]
    explained = sum(v for _, v in parts)
    parts.append(("residual: supervisor work (dirs, memfds, polling, stats, teardown)", med["cold_true"] - explained))
    return parts


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    sandbox = start_sandbox()
    cold = start_sandbox(COLD_CONFIG)
    info = machine_info(sandbox)
    print_machine(info)
    assert sandbox.cgroups is not None
    cgroups = sandbox.cgroups.describe()
    bench = Bench(sandbox, cold)
    breakdown = not args.no_breakdown
    try:
        for _ in range(args.warmup):
            await bench.round(record=False, breakdown=breakdown)
        load = LoadMeter()
        for i in range(args.n):
            await bench.round(record=True, breakdown=breakdown)
            if (i + 1) % 50 == 0:
                print(f"  {i + 1}/{args.n} rounds", file=sys.stderr, flush=True)
        load_result = load.result()
    finally:
        bench.close()
        sandbox.close()
        cold.close()
    info["cgroup_favordynmods_end"] = machine_info()["cgroup_favordynmods"]

    stats = {k: summarize(v) for k, v in bench.samples.items()}
    med = {k: s["median"] for k, s in stats.items()}
    print()
    print(f"Sandbox overhead: {args.n} interleaved rounds after {args.warmup} warm-up rounds (times in ms)")
    rows = []
    comparison: dict[str, dict[str, float]] = {}
    for name, key in (("/bin/true", "true"), ("python3 -c pass", "python")):
        for box, prefix in (("warm", "box"), ("cold", "cold")):
            b, x = stats[f"bare_{key}"], stats[f"{prefix}_{key}"]
            over = x["median"] - b["median"]
            ratio = x["median"] / b["median"]
            comparison[f"{name} {box}"] = {"overhead_ms": over, "overhead_p95_ms": x["p95"] - b["p95"], "ratio": ratio}
            cells = [fmt_ms(b["median"], 2), fmt_ms(b["p95"], 2), fmt_ms(x["median"]), fmt_ms(x["p95"])]
            rows.append([name, box, *cells, f"{over:+.1f}", f"{ratio:.1f}x"])
    print_table(["command", "box", "bare med", "bare p95", "box med", "box p95", "overhead", "ratio"], rows)
    over = comparison["/bin/true warm"]["overhead_ms"]
    verdict = "met" if over <= TARGET_MS else "MISSED"
    stretch = "met" if over <= STRETCH_MS else "missed"
    print(
        f"target: /bin/true median overhead <= {TARGET_MS:g} ms: {verdict} ({over:.1f} ms); "
        f"stretch <= {STRETCH_MS:g} ms: {stretch}"
    )

    out: dict[str, Any] = {
        "benchmark": "sandbox_overhead",
        "params": {
            "n": args.n,
            "warmup": args.warmup,
            "cgroups": cgroups,
            "launch": str(sandbox.builder.launch if sandbox.builder else None),
            "init": str(sandbox.builder.init if sandbox.builder else None),
        },
        "machine": info,
        "bench_process_rss_mb": rss_mb(),
        "load": load_result,
        "comparison": comparison,
        "target": {
            "overhead_ms_max": TARGET_MS,
            "stretch_ms_max": STRETCH_MS,
            "met": over <= TARGET_MS,
            "stretch_met": over <= STRETCH_MS,
        },
        "stats_ms": stats,
        "samples_ms": bench.samples,
    }

    if breakdown:
        print()
        print("Breakdown, measured in the same rounds (ms)")
        rows = [
            [LABELS[k], fmt_ms(stats[k]["median"], 2), fmt_ms(stats[k]["p95"], 2), fmt_ms(stats[k]["max"], 1)]
            for k in LABELS
        ]
        print_table(["part", "median", "p95", "max"], rows)
        per_file = {c: summarize(v) for c, v in bench.attach_per_file.items()}
        print(
            "    attach per controller (median/p95): "
            + ", ".join(f"{c} {s['median']:.2f}/{s['p95']:.2f}" for c, s in per_file.items())
        )
        print()
        print("Accounting of the boxed /bin/true median (differences of medians; approximate)")
        acc = accounting(med)
        rows = [[name, f"{v:.2f}"] for name, v in acc]
        print_table(["part", "ms"], [*rows, ["= cold box /bin/true median", f"{med['cold_true']:.2f}"]])
        kernel_path = med["F_launch_cgroup_bwrap_box_total"] + med["c_tmpfs_mount_umount"]
        supervisor = med["cold_true"] - kernel_path
        print(
            f"cross-check: (F) + (c) = {kernel_path:.2f} ms is the box's process and kernel path without "
            f"Stockade's supervisor; box - (F) - (c) = {supervisor:.2f} ms is the supervisor's own work"
        )
        saved = med["R_bare_true_preexec"] - med["bare_true"]
        launcher = med["L_launch_true"] - med["bare_true"]
        print(
            f"launcher vs the old preexec_fn path: fork() costs {saved:.2f} ms over vfork() in this "
            f"{rss_mb():.0f} MB process; the launcher's extra exec costs {launcher:.2f} ms"
        )
        out["attach_per_controller_ms"] = per_file
        out["supervisor_ms"] = supervisor
        out["accounting_ms"] = dict(acc)
        out["fork_path_extra_ms"] = saved
    print()
    print_load(load_result)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200, help="measured rounds (default 200)")
    ap.add_argument("--warmup", type=int, default=10, help="discarded rounds first (default 10)")
    ap.add_argument("--no-breakdown", action="store_true", help="only bare vs box")
    ap.add_argument("--json", metavar="PATH", help="also write results and raw samples here")
    args = ap.parse_args()
    if args.n < 1:
        ap.error("--n must be >= 1")
    out = asyncio.run(main_async(args))
    write_json(args.json, out)


if __name__ == "__main__":
    main()
