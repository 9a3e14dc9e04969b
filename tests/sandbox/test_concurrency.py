"""Concurrent boxes: twice as many hostile and benign runs as there are slots, all at once.

Benign runs must stay `ok`; boxes must not see, signal or ptrace each other; each concurrent box runs
under its own host uid; /tmp, /dev/shm and /box are shared-nothing. The global host oracle of the
adversarial suite (tests/sandbox/adversarial/stockade_adv_harness.py) runs after every test here too.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import re
import shutil
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from stockade.sandbox import BoxResult, BoxSpec, Sandbox, SandboxUnavailable, Status
from stockade.sandbox.bwrap import synthetic_etc


def _load_harness() -> Any:
    name = "stockade_adv_harness"
    if name not in sys.modules:
        path = Path(__file__).resolve().parent / "adversarial" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


H = _load_harness()
describe, parse_kv = H.describe, H.parse_kv

CONC_NAME = "stockade-conc"
CONC_UID_BASE = 62100
SLOTS = 4
LIMITS = H.DEFAULT_LIMITS


@pytest.fixture(scope="module")
def conc_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any]]:
    planted = H.Secrets()
    planted.plant()
    listeners = H.Listeners()
    config = H.sandbox_config(CONC_NAME, CONC_UID_BASE, SLOTS)
    sandbox = Sandbox(config)
    try:
        sandbox.start()
    except SandboxUnavailable as e:
        pytest.fail(f"sandbox unavailable: {e}")
    planted.watch(sorted(sandbox.root / "etc" / name for name in synthetic_etc()))
    oracle = H.Oracle(sandbox, planted, listeners)
    problems = oracle.precondition_problems()
    if problems:
        pytest.fail("; ".join(problems))
    yield oracle, H.Compiler(tmp_path_factory.mktemp("conc-bin"))
    assert sandbox.cgroups is not None
    parents = sandbox.cgroups.parents.values()
    sandbox.reap()
    sandbox.close()  # unmounts its read-only root before the run dir is removed
    shutil.rmtree(config.run_dir, ignore_errors=True)
    for parent in parents:
        with contextlib.suppress(OSError):
            parent.rmdir()
    listeners.close()
    planted.remove()


@pytest.fixture
async def conc(conc_env: tuple[Any, Any]) -> AsyncIterator[Any]:
    oracle, compiler = conc_env
    handle = H.Adversary(oracle, compiler)
    handle._before = oracle.snapshot()
    yield handle
    await oracle.verify(handle._before, handle.results)


def sh(script: str, **limits: Any) -> BoxSpec:
    return BoxSpec(argv=["/bin/sh", "-c", script], limits=LIMITS.with_overrides(**limits))


def _ok(r: BoxResult, stdout: bytes | None = None) -> None:
    assert r.status is Status.OK, describe(r)
    if stdout is not None:
        assert r.stdout == stdout, describe(r)


async def test_twice_the_slots_of_mixed_hostile_and_benign_runs(conc):
    hostile = [
        conc.c_spec("pr_forkbomb"),
        conc.c_spec("tm_threads_burn", "4"),
        conc.c_spec("mem_heap"),
        conc.c_spec("out_flood", "stdout"),
    ]
    benign = [sh(f"sleep 0.3; echo benign-{i}") for i in range(3)]
    benign.append(BoxSpec(argv=["/usr/bin/python3", "-c", "print(sum(range(10**6)))"], limits=LIMITS))
    results = await conc.gather(*hostile, *benign)
    assert len(results) == 2 * SLOTS
    fork, burn, heap, flood = results[:4]
    # Eight boxes share two cores: whether the bombs run out of CPU, wall or (32 processes) memory first
    # depends on the scheduler; each is capped either way.
    assert fork.status in (Status.TIMEOUT, Status.MEMORY_LIMIT) and fork.pids_limit_hit, describe(fork)
    assert burn.status is Status.TIMEOUT, describe(burn)
    assert heap.status is Status.MEMORY_LIMIT, describe(heap)
    assert flood.status is Status.OUTPUT_LIMIT, describe(flood)
    for i, r in enumerate(results[4:7]):
        _ok(r, f"benign-{i}\n".encode())
    _ok(results[7], b"499999500000\n")
    assert len({r.box_id for r in results}) == 2 * SLOTS


async def test_boxes_see_only_their_own_processes(conc):
    # Each box lists every process it can see: its own init (pid 1), its shell (whose argv carries the
    # box's marker), sleep and tr; any other cmdline belongs to someone else.
    script = (
        "sleep 2 & for p in /proc/[0-9]*; do printf '%s ' \"${p#/proc/}\"; tr '\\0' ' ' < $p/cmdline; echo; done; "
        "kill %1; : marker-{i}"
    )
    results = await conc.gather(*(sh(script.replace("{i}", str(i))) for i in range(2 * SLOTS)))
    for i, r in enumerate(results):
        _ok(r)
        lines = [line for line in r.stdout.decode().splitlines() if line.strip()]
        assert 3 <= len(lines) <= 5, describe(r)
        for line in lines:
            theirs = line.split()[1:] in (["sleep", "2"], ["tr", "\\0", " "]) or line.startswith("1 /.stockade-init ")
            assert f"marker-{i}" in line or theirs, describe(r)
        assert not any(f"marker-{j}" in r.stdout.decode() for j in range(2 * SLOTS) if j != i), describe(r)


async def test_a_box_killing_everything_it_can_see_does_not_touch_a_concurrent_sleeper(conc):
    scanner = conc.c_spec("pr_signal_scan", "65536")
    ptracer = conc.c_spec("k_ptrace")
    sleepers = [sh("trap '' TERM; sleep 1.2; echo survived") for _ in range(2)]
    scan, trace, *slept = await conc.gather(scanner, ptracer, *sleepers)
    _ok(scan)
    out = parse_kv(scan.stdout)
    assert out["visible_pids"] == "1,2," and out["eperm"] == "0", describe(scan)
    _ok(trace)
    assert parse_kv(trace.stdout)["ptrace_attach_init"] == "EPERM", describe(trace)
    for r in slept:
        _ok(r, b"survived\n")
        assert r.wall_time_ms >= 1200, describe(r)


def _cgroup_of(pid: int) -> str | None:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
            m = re.search(r"/box-([0-9a-f]+)$", line)
            if m:
                return m.group(1)
    return None


async def test_concurrent_boxes_run_under_distinct_host_uids(conc):
    script = "head -n1 /proc/self/uid_map; awk '$5 == \"/box\"' /proc/self/mountinfo | head -n1; sleep 1.5"
    seen: dict[str, set[int]] = {}

    async def watch() -> None:
        end = time.monotonic() + 3
        while time.monotonic() < end:
            for p in H.processes_in_uid_range(conc.oracle.uid_lo, conc.oracle.uid_hi):
                if p.state == "Z":
                    continue
                box = _cgroup_of(p.pid)
                uids = {i for i in H._proc_ids(str(p.pid)) if conc.oracle.uid_lo <= i < conc.oracle.uid_hi}
                if box and uids:
                    seen.setdefault(box, set()).update(uids)
            await asyncio.sleep(0.05)

    watcher = asyncio.create_task(watch())
    results = await conc.gather(*(sh(script) for _ in range(SLOTS)))
    await watcher
    host_uid_of = {}
    for r in results:
        _ok(r)
        # Inside, uid_map shows the box's mapping relative to bubblewrap's intermediate user namespace
        # (--disable-userns nests a second one), so the host uid is read from the box tmpfs's options.
        uid_map, mount = r.stdout.decode().splitlines()[:2]
        assert uid_map.split()[0] == "1000" and uid_map.split()[2] == "1", describe(r)
        host_uid_of[r.box_id] = int(re.search(r"\buid=(\d+)", mount).group(1))  # type: ignore[union-attr]
        assert seen.get(r.box_id) == {host_uid_of[r.box_id]}, (seen, describe(r))
    assert len(set(host_uid_of.values())) == SLOTS, host_uid_of
    assert all(conc.oracle.uid_lo <= u < conc.oracle.uid_hi for u in host_uid_of.values())


async def test_tmp_shm_and_box_are_shared_nothing(conc):
    script = (
        "for d in /tmp /dev/shm /box; do echo $$ > $d/marker-{i}; done; sleep 0.6; "
        "echo tmp=$(ls -A /tmp); echo shm=$(ls -A /dev/shm); echo box=$(ls -A /box)"
    )
    results = await conc.gather(*(sh(script.replace("{i}", str(i))) for i in range(2 * SLOTS)))
    for i, r in enumerate(results):
        _ok(r)
        out = parse_kv(r.stdout)
        assert out == {"tmp": f"marker-{i}", "shm": f"marker-{i}", "box": f"marker-{i}"}, describe(r)


async def test_thread_and_fork_bombs_do_not_starve_concurrent_boxes(conc):
    bombs = [conc.c_spec("pr_thread_tree", wall_ms=2500), conc.c_spec("pr_forkbomb", cpu_ms=2000, wall_ms=2500)]
    spawn = "import threading; t=[threading.Thread(target=lambda: None) for _ in range(16)]; [x.start() for x in t]; "
    spawn += (
        "[x.join() for x in t]; import subprocess; print(subprocess.run(['echo','child'],capture_output=True).stdout)"
    )
    benign = [BoxSpec(argv=["/usr/bin/python3", "-c", spawn], limits=LIMITS) for _ in range(2)]
    tree, fork, *ok = await conc.gather(*bombs, *benign)
    assert tree.status is Status.TIMEOUT and tree.pids_limit_hit, describe(tree)
    assert fork.status in (Status.TIMEOUT, Status.MEMORY_LIMIT) and fork.pids_limit_hit, describe(fork)
    for r in ok:
        _ok(r, b"b'child\\n'\n")
        assert not r.pids_limit_hit


async def test_noisy_neighbours_do_not_change_a_benign_box_cpu_time(conc):
    """TM-06: burners next to a benign box cost it wall time (two shared cores; other sessions load this
    machine too, hence the long wall limit) but not CPU time, which is what the verdict is based on."""
    work = (
        "import time; t=time.process_time(); s=0\nfor i in range(3*10**6): s+=i\nprint(round(time.process_time()-t, 3))"
    )
    benign = BoxSpec(argv=["/usr/bin/python3", "-c", work], limits=LIMITS.with_overrides(wall_ms=30_000))
    alone = await conc.run_spec(benign)
    _ok(alone)
    noisy = [conc.c_spec("tm_threads_burn", "4", cpu_ms=2000, wall_ms=4000) for _ in range(SLOTS - 1)]
    *burners, shared = await conc.gather(*noisy, benign)
    _ok(shared)
    for r in burners:
        assert r.status is Status.TIMEOUT, describe(r)
    assert float(shared.stdout) < 3 * float(alone.stdout) + 0.2, (alone.stdout, shared.stdout)
    assert shared.cpu_time_ms < 3 * alone.cpu_time_ms + 200, (describe(alone), describe(shared))


@pytest.mark.xfail(
    strict=True,
    reason="known gap, docs/sandbox.md 'Known gaps': locks on shared read-only inodes are a low-rate covert "
    "channel between concurrent boxes; denying flock/fcntl locks (isolate) breaks SQLite and Go builds",
)
async def test_advisory_locks_on_shared_files_are_no_channel_between_boxes(conc):
    """SC-01: two concurrent boxes must not be able to exchange bits. flock/OFD locks on an inode every
    box sees (here /usr/bin/true, bound read-only) are visible across boxes unless the policy blocks them
    (isolate's inode-lock restriction)."""
    holder, probe = await conc.gather(conc.c_spec("sc_flock", "hold"), conc.c_spec("sc_flock", "probe"))
    _ok(holder)
    _ok(probe)
    assert parse_kv(holder.stdout)["flock_ex"] == "OK", describe(holder)
    out = parse_kv(probe.stdout)
    assert out["flock_probe"] == "OK", ("the probe saw the other box's flock", describe(probe))
    assert out["ofd_conflict"] == "0", ("the probe saw the other box's OFD lock", describe(probe))
