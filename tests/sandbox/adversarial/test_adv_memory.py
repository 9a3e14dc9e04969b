"""Memory (catalogue section 6): heap growth, copy-on-write multiplication, memory hidden in tmpfs,
/dev/shm, memfd and SysV shm, locked and huge pages, stack exhaustion, reserve-without-touch and kernel
objects. The cgroup limit covers the whole tree, swap is 0 and tmpfs pages count."""

from __future__ import annotations

import pytest
from stockade_adv_harness import describe, parse_kv

from stockade.sandbox import Status


def _mle(r) -> None:  # type: ignore[no-untyped-def]
    assert r.status is Status.MEMORY_LIMIT and r.oom_killed, describe(r)
    assert r.peak_memory_kb <= 64 * 1024 + 1024, describe(r)


async def test_heap_growth_touching_pages_is_memory_limit(adv):
    r = await adv.run_c("mem_heap")
    _mle(r)
    assert int(parse_kv(r.stdout)["mb"]) < 64, describe(r)


async def test_fork_copy_on_write_multiplication_is_memory_limit(adv):
    r = await adv.run_c("mem_cow_fork")
    _mle(r)


async def test_python_list_growth_is_memory_limit(adv):
    r = await adv.run_script("mem_list.py", cpu_ms=3000)
    _mle(r)


@pytest.mark.parametrize("where", ["/tmp", "/dev/shm", "/box"])
async def test_tmpfs_fill_stops_at_the_tmpfs_size(adv, where):
    r = await adv.run_c("mem_tmpfs_fill", where)
    assert r.status is Status.OK, describe(r)
    out = parse_kv(r.stdout)
    assert out["fill"] == "ENOSPC", describe(r)
    assert 12 * 1024 < int(out["kib"]) <= 16 * 1024, describe(r)


async def test_tmpfs_bigger_than_memory_is_still_bounded_by_memory(adv):
    r = await adv.run_c("mem_tmpfs_fill", "/dev/shm", tmpfs_mb=256, memory_mb=32)
    # tmpfs pages are charged to the box: it cannot store more than its memory limit there.
    assert r.status is Status.MEMORY_LIMIT and r.oom_killed, describe(r)
    assert r.peak_memory_kb <= 33 * 1024, describe(r)


async def test_memfd_ftruncate_beyond_the_file_size_limit(adv):
    r = await adv.run_c("mem_memfd", "256")
    assert r.status is Status.FILE_SIZE_LIMIT, describe(r)


async def test_memfd_touched_pages_are_memory_limit(adv):
    r = await adv.run_c("mem_memfd", "256", file_size_kb=512 * 1024)
    _mle(r)


async def test_shm_mapping_beyond_the_tmpfs_is_sigbus(adv):
    r = await adv.run_c("mem_shm_sigbus", file_size_kb=64 * 1024)
    assert r.status is Status.RUNTIME_ERROR and r.signal == 7, describe(r)
    assert "touched" not in parse_kv(r.stdout)


async def test_sysv_shm_segment_is_charged_and_dropped(adv):
    r = await adv.run_c("mem_sysv_shm")
    _mle(r)
    out = parse_kv(r.stdout)
    assert out["shmget"] == "OK" and out["shmat"] == "OK" and "touched" not in out, describe(r)


async def test_mlock_and_huge_pages_beyond_the_allowance_fail(adv):
    r = await adv.run_c("mem_mlock")
    assert r.status is Status.OK, describe(r)
    out = parse_kv(r.stdout)
    assert out["mlock_4k"] == "OK", describe(r)
    assert out["mlock_8m"] in ("ENOMEM", "EPERM"), describe(r)
    assert out["mlockall"] in ("ENOMEM", "EPERM"), describe(r)
    assert out["mmap_locked"] in ("EAGAIN", "ENOMEM", "EPERM"), describe(r)
    assert out["mmap_hugetlb"] in ("ENOMEM", "EPERM"), describe(r)
    assert out["shmget_hugetlb"] in ("ENOMEM", "EPERM"), describe(r)
    assert out["shm_lock"] in ("ENOMEM", "EPERM"), describe(r)


@pytest.mark.parametrize("how", ["recurse", "alloca"])
async def test_stack_exhaustion_is_a_segfault(adv, how):
    r = await adv.run_c("mem_stack", how)
    assert r.status is Status.RUNTIME_ERROR and r.signal == 11, describe(r)
    assert not r.oom_killed


async def test_reserve_without_touch_is_allowed_and_harmless(adv):
    r = await adv.run_c("mem_noreserve")
    assert r.status is Status.OK, describe(r)
    out = parse_kv(r.stdout)
    assert out["mmap_1t"] == "OK" and out["touched"] == "256" and out["brk_1g"] == "OK", describe(r)
    assert r.peak_memory_kb < 32 * 1024, describe(r)


async def test_kernel_object_memory_is_bounded(adv):
    r = await adv.run_c("mem_kernel_objects")
    # 100 pipes grown to 1 MiB and filled: pipe buffers are charged to the box's memory cgroup.
    _mle(r)
