"""cgroup layer: detection and limits on v1 (real, this host) and v2 (a fake cgroupfs tree)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from stockade.sandbox import cgroups
from stockade.sandbox.spec import Limits

LIMITS = Limits(memory_mb=64, processes=10, cpu_cores=0.5)


def write(p: Path, text: str) -> None:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)


@pytest.fixture
def fake_v2(tmp_path: Path) -> tuple[Path, Path, Path]:
    root = tmp_path / "fs"
    mnt = root / "sys/fs/cgroup"
    write(mnt / "cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n")
    own = mnt / "system.slice/stockade.service"
    write(own / "cgroup.subtree_control", "")
    write(own / "cgroup.procs", "4242\n4243\n")
    write(own / "cgroup.type", "domain\n")
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text("35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw\n")
    self_cg = tmp_path / "self_cgroup"
    self_cg.write_text("0::/system.slice/stockade.service\n")
    return root, mountinfo, self_cg


def test_v2_is_chosen_and_the_service_moves_to_a_leaf(fake_v2: tuple[Path, Path, Path]) -> None:
    root, mountinfo, self_cg = fake_v2
    m = cgroups.detect(
        "stockade", mountinfo_path=str(mountinfo), proc_self_cgroup_path=str(self_cg), root_override=root
    )
    own = root / "sys/fs/cgroup/system.slice/stockade.service"
    assert isinstance(m, cgroups.CgroupV2)
    assert m.parents == {"unified": own / "stockade"}
    # "no internal processes": the service's processes moved into a leaf before controllers were delegated.
    assert (own / "supervisor/cgroup.procs").read_text() in ("4242", "4243")
    assert (own / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"
    assert (own / "stockade/cgroup.subtree_control").read_text() == "+memory +pids +cpu"


def test_v2_box_limits_stats_and_kill(fake_v2: tuple[Path, Path, Path]) -> None:
    root, mountinfo, self_cg = fake_v2
    m = cgroups.detect(
        "stockade", mountinfo_path=str(mountinfo), proc_self_cgroup_path=str(self_cg), root_override=root
    )
    box = m.create("b1", LIMITS)
    d = box.dirs["unified"]
    assert d.parent == m.parents["unified"] and d.name == "box-b1"
    assert (d / "memory.max").read_text() == str(64 * 1024 * 1024)
    assert (d / "pids.max").read_text() == "10"
    assert (d / "cpu.max").read_text() == "50000 100000"
    assert (d / "memory.oom.group").read_text() == "1"
    assert box.procs_files == [str(d / "cgroup.procs")]
    for name in ("memory.max", "pids.max", "cpu.max", "memory.oom.group"):
        (d / name).write_text("untouched")
    m.apply_limits(box, replace(LIMITS, memory_mb=8, cpu_ms=1), since=LIMITS)
    assert (d / "memory.max").read_text() == str(8 * 1024 * 1024)
    assert {(d / n).read_text() for n in ("pids.max", "cpu.max", "memory.oom.group")} == {"untouched"}
    m.set_cpu_weight(box, running=False)
    assert (d / "cpu.weight").read_text() == "1"
    m.set_cpu_weight(box, running=True)
    assert (d / "cpu.weight").read_text() == "100"
    write(d / "cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n")
    write(d / "memory.peak", "1048576\n")
    write(d / "memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    write(d / "pids.events", "max 2\n")
    assert box.stats() == cgroups.CgroupStats(
        cpu_time_us=1500, peak_memory_bytes=1048576, oom_kills=1, pids_limit_hits=2
    )
    write(d / "cgroup.kill", "")
    m.kill(box)
    assert (d / "cgroup.kill").read_text() == "1"
    assert [c.name for c in m.leftovers()] == ["b1"]


def test_v2_without_controllers_falls_back_to_v1_or_fails_naming_why(tmp_path: Path) -> None:
    root = tmp_path / "fs"
    write(root / "sys/fs/cgroup/unified/cgroup.controllers", "\n")
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text("30 24 0:26 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n")
    self_cg = tmp_path / "self_cgroup"
    self_cg.write_text("0::/\n")
    with pytest.raises(cgroups.CgroupError) as e:
        cgroups.detect(mountinfo_path=str(mountinfo), proc_self_cgroup_path=str(self_cg), root_override=root)
    assert "lacks" in str(e.value) and "memory" in str(e.value) and "v1 controller pids not mounted" in str(e.value)


def test_v1_fake_tree_limits(tmp_path: Path) -> None:
    root = tmp_path / "fs"
    lines = []
    for i, c in enumerate(("memory", "pids", "cpu,cpuacct")):
        (root / f"sys/fs/cgroup/{c}/svc").mkdir(parents=True)
        lines.append(f"{40 + i} 24 0:{40 + i} / /sys/fs/cgroup/{c} rw - cgroup cgroup rw,{c}")
    write(root / "sys/fs/cgroup/memory/svc/memory.memsw.limit_in_bytes", "9223372036854771712")
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text("\n".join(lines) + "\n")
    self_cg = tmp_path / "self_cgroup"
    self_cg.write_text("5:memory:/svc\n4:pids:/svc\n3:cpu,cpuacct:/svc\n0::/\n")
    m = cgroups.detect("sk", mountinfo_path=str(mountinfo), proc_self_cgroup_path=str(self_cg), root_override=root)
    assert isinstance(m, cgroups.CgroupV1)
    assert m.parents["cpu"] == m.parents["cpuacct"] == root / "sys/fs/cgroup/cpu,cpuacct/svc/sk"
    box = m.create("x", LIMITS)
    mem = box.dirs["memory"]
    assert (mem / "memory.limit_in_bytes").read_text() == str(64 * 1024 * 1024)
    assert (mem / "memory.kmem.tcp.limit_in_bytes").read_text() == str(64 * 1024 * 1024)  # socket buffers
    assert (box.dirs["pids"] / "pids.max").read_text() == "10"
    assert (box.dirs["cpu"] / "cpu.cfs_quota_us").read_text() == "50000"
    assert len(box.procs_files) == 3  # cpu and cpuacct share one directory
    # A run's limits: only what differs from the box's is written.
    for f in (mem / "memory.limit_in_bytes", box.dirs["pids"] / "pids.max", box.dirs["cpu"] / "cpu.cfs_quota_us"):
        f.write_text("untouched")
    m.apply_limits(box, replace(LIMITS, processes=20, wall_ms=99), since=LIMITS)
    assert (box.dirs["pids"] / "pids.max").read_text() == "20"
    for f in (mem / "memory.limit_in_bytes", box.dirs["cpu"] / "cpu.cfs_quota_us"):
        assert f.read_text() == "untouched"
    m.apply_limits(box, replace(LIMITS, memory_mb=8, cpu_cores=2.0), since=LIMITS)
    assert (mem / "memory.limit_in_bytes").read_text() == str(8 * 1024 * 1024)
    assert (mem / "memory.kmem.tcp.limit_in_bytes").read_text() == str(8 * 1024 * 1024)
    assert (box.dirs["cpu"] / "cpu.cfs_quota_us").read_text() == "200000"
    m.set_cpu_weight(box, running=False)
    assert (box.dirs["cpu"] / "cpu.shares").read_text() == "2"
    m.set_cpu_weight(box, running=True)
    assert (box.dirs["cpu"] / "cpu.shares").read_text() == "1024"


def test_socket_accounting_turned_off_at_boot_is_refused(fake_v2: tuple[Path, Path, Path], tmp_path: Path) -> None:
    root, mountinfo, self_cg = fake_v2
    cmdline = tmp_path / "cmdline"
    for line, off in (
        ("ro quiet cgroup.memory=nokmem,nosocket\n", True),
        ("cgroup.memory=nosocket", True),
        ("ro cgroup.memory=nokmem", False),
        ("ro -- cgroup.memory=nosocket", False),  # an argument of init, not the kernel's
    ):
        assert cgroups.socket_accounting_off(line) is off, line
    cmdline.write_text("ro cgroup.memory=nosocket\n")
    with pytest.raises(cgroups.CgroupError, match="nosocket"):
        cgroups.detect(
            mountinfo_path=str(mountinfo),
            proc_self_cgroup_path=str(self_cg),
            cmdline_path=str(cmdline),
            root_override=root,
        )


def test_real_host_box_limits_can_be_raised_and_lowered_after_creation() -> None:
    """A box built ahead gets its run's limits late: above or below the ones it was created with."""
    m = cgroups.detect("stockade-unit")
    box = m.create("unit-limits", Limits(memory_mb=256, processes=64))
    try:
        had = Limits(memory_mb=256, processes=64)
        for mb, pids in ((1024, 128), (32, 8), (32, 16), (256, 64)):
            m.apply_limits(box, Limits(memory_mb=mb, processes=pids), since=had)
            had = Limits(memory_mb=mb, processes=pids)
            mem_files = (
                ["memory.max"]
                if m.mode == "v2"
                else ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "memory.kmem.tcp.limit_in_bytes"]
            )
            for name in mem_files:
                path = box.dirs["unified" if m.mode == "v2" else "memory"] / name
                if path.exists():
                    assert int(path.read_text()) == mb * 1024 * 1024, name
            assert int((box.dirs["unified" if m.mode == "v2" else "pids"] / "pids.max").read_text()) == pids
    finally:
        box.kill_and_remove()


def test_real_host_box_cgroup_accounts_and_kills_a_tree() -> None:
    """On this host (v1 here, v2 elsewhere): a real box cgroup under the service's own, not at a root."""
    m = cgroups.detect("stockade-unit")
    own = cgroups._own_paths(Path("/proc/self/cgroup").read_text())
    for ctrl, parent in m.parents.items():
        assert parent.name == "stockade-unit"
        assert parent.parent != parent.parent.parent  # never the hierarchy root itself
        if ctrl in own and own[ctrl] != "/":
            assert own[ctrl].strip("/") in str(parent)
    box = m.create("unit1", Limits(memory_mb=32, processes=8))
    pid = os.fork()
    if pid == 0:  # the child joins, forks a grandchild, and both spin until killed
        for f in box.procs_files:
            with open(f, "w") as fh:
                fh.write("0")
        os.fork()
        while True:
            pass
    try:
        import time

        deadline = time.monotonic() + 5
        while box.cpu_time_us() < 50_000 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert box.cpu_time_us() >= 50_000
        box.kill_and_remove()
        assert os.waitpid(pid, 0)[1] != 0
        assert all(not d.exists() for d in box.dirs.values())
    finally:
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
    for p in set(m.parents.values()):
        p.rmdir()


def test_real_host_a_waiting_box_yields_the_cpu_to_a_running_one() -> None:
    """Building boxes ahead must not slow the runs: on one shared CPU, a box at the waiting weight
    gets almost nothing while a box at the running weight spins."""
    m = cgroups.detect("stockade-unit")
    waiting, running = m.create("unit-wait", Limits(cpu_cores=1)), m.create("unit-run", Limits(cpu_cores=1))
    m.set_cpu_weight(waiting, running=False)
    m.set_cpu_weight(running, running=True)
    cpu = min(os.sched_getaffinity(0))
    pids = []
    attached_r, attached_w = os.pipe()
    for box in (waiting, running):
        pid = os.fork()
        if pid == 0:
            os.sched_setaffinity(0, {cpu})
            for f in box.procs_files:
                with open(f, "w") as fh:
                    fh.write("0")
            os.write(attached_w, b"x")
            while True:
                pass
        pids.append(pid)
    try:
        import time

        # Count only from when both spin in their cgroups: the first child spins alone until then.
        assert len(os.read(attached_r, 1) + os.read(attached_r, 1)) == 2
        w0, r0 = waiting.cpu_time_us(), running.cpu_time_us()
        deadline = time.monotonic() + 5
        while running.cpu_time_us() - r0 < 300_000 and time.monotonic() < deadline:
            time.sleep(0.01)
        w, r = waiting.cpu_time_us() - w0, running.cpu_time_us() - r0
        assert r >= 300_000
        assert w * 20 < r, (w, r)
    finally:
        for pid in pids:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        waiting.kill_and_remove()
        running.kill_and_remove()
