"""CPU time and wall time (catalogue section 5): busy loops, sleeping and blocking, parallel and orphaned
burners, kernel-time storms and clock tampering. CPU is the whole tree's cgroup time (user + sys)."""

from __future__ import annotations

import time

import pytest
from stockade_adv_harness import WALL_LIMITS, describe, parse_kv

from stockade.sandbox import Status, TimeoutKind


def _cpu_timeout(r, limit_ms: int = 1000) -> None:  # type: ignore[no-untyped-def]
    assert r.status is Status.TIMEOUT and r.timeout_kind is TimeoutKind.CPU, describe(r)
    assert limit_ms <= r.cpu_time_ms < limit_ms + 1000, describe(r)


def _wall_timeout(r, limit_ms: int = 2000) -> None:  # type: ignore[no-untyped-def]
    assert r.status is Status.TIMEOUT and r.timeout_kind is TimeoutKind.WALL, describe(r)
    assert limit_ms <= r.wall_time_ms < limit_ms + 3000, describe(r)
    assert r.cpu_time_ms < 500, describe(r)


async def test_busy_loop_hits_the_cpu_limit(adv):
    r = await adv.run_c("tm_busy")
    _cpu_timeout(r)


async def test_sleep_hits_the_wall_limit(adv):
    _wall_timeout(await adv.run_c("tm_sleep", **WALL_LIMITS))


async def test_stdin_is_a_finite_snapshot_and_blocking_reads_hit_the_wall_limit(adv):
    r = await adv.run_c("tm_block_stdin", stdin=b"x" * 100_000, **WALL_LIMITS)
    _wall_timeout(r)
    out = parse_kv(r.stdout)
    assert out["stdin_bytes"] == "100000" and out["stdin_end"] == "EOF" and out["blocking"] == "1", describe(r)
    assert "unblocked" not in out


@pytest.mark.parametrize("how", ["futex", "pause"])
async def test_futex_and_pause_hit_the_wall_limit(adv, how):
    _wall_timeout(await adv.run_c("tm_futex_pause", how, **WALL_LIMITS))


async def test_parallel_threads_are_summed(adv):
    # Two cores of quota and two burning threads: each thread alone stays at ~half the limit, so only a
    # summed (cgroup) count can end this run as a CPU timeout before the wall limit.
    r = await adv.run_c("tm_threads_burn", "2", cpu_cores=2.0, cpu_ms=1000)
    _cpu_timeout(r)


async def test_many_threads_under_a_one_core_quota(adv):
    r = await adv.run_c("tm_threads_burn", "8")
    _cpu_timeout(r)


async def test_children_cpu_is_counted(adv):
    r = await adv.run_c("tm_children_burn", "3", cpu_cores=2.0)
    _cpu_timeout(r)


async def test_orphaned_never_waited_children_cpu_is_counted(adv):
    r = await adv.run_c("tm_children_burn", "3", "orphan", cpu_cores=2.0)
    _cpu_timeout(r)


@pytest.mark.parametrize("mode", ["syscall", "fault", "clock"])
async def test_kernel_time_storms_count_as_cpu(adv, mode):
    r = await adv.run_c("tm_sys_storm", mode)
    _cpu_timeout(r)
    assert "waited" not in parse_kv(r.stdout)


async def test_clock_tampering_is_refused(adv):
    before = time.time()
    r = await adv.run_c("tm_clock_tamper")
    after = time.time()
    assert r.status is Status.OK, describe(r)
    out = parse_kv(r.stdout)
    for key in ("settimeofday", "clock_settime_realtime", "adjtimex_set", "clock_adjtime_set", "unshare_newtime",
                "stime_via_settimeofday_tz"):  # fmt: skip
        assert out[key] == "EPERM", (key, describe(r))
    assert out["clock_settime_monotonic"] in ("EPERM", "EINVAL"), describe(r)
    assert abs(int(out["now"]) - after) < 5 and after - before < 5, describe(r)
