"""Disk, inodes and file descriptors (catalogue section 7): one growing file, fallocate/ftruncate and
sparse files, copy-out caps, inode exhaustion, fd exhaustion, core dumps and log flooding."""

from __future__ import annotations

import os

import pytest
from stockade_adv_harness import describe, parse_kv

from stockade.sandbox import Status


async def test_growing_file_is_file_size_limit(adv):
    r = await adv.run_c("dsk_bigfile", collect=True)
    assert r.status is Status.FILE_SIZE_LIMIT and r.signal == 25, describe(r)  # SIGXFSZ
    big = {f.path: f for f in r.files}.get("big.out")
    assert big is not None and len(big.content) == 1024 * 1024, describe(r)


async def test_ignored_sigxfsz_gives_efbig_for_every_way_to_grow_a_file(adv):
    r = await adv.run_c("dsk_bigfile", "ignore")
    assert r.status is Status.OK, describe(r)
    out = parse_kv(r.stdout)
    assert out["write"] == "EFBIG" and out["size"] == str(1024 * 1024), describe(r)
    for key in ("pwrite_1t", "ftruncate_1t", "fallocate_10g", "write_at_1g"):
        assert out[key] == "EFBIG", (key, describe(r))


@pytest.mark.parametrize("how", ["fallocate", "ftruncate"])
async def test_fallocate_and_sparse_ftruncate_are_file_size_limit(adv, how):
    r = await adv.run_c("dsk_fallocate", how)
    assert r.status is Status.FILE_SIZE_LIMIT, describe(r)
    assert r.stdout == b"start=1\n", describe(r)


async def test_fallocate_within_the_file_size_limit_hits_the_tmpfs_size(adv):
    r = await adv.run_c("dsk_fallocate", "fallocate", file_size_kb=64 * 1024 * 1024)
    assert r.status is Status.OK, describe(r)
    assert parse_kv(r.stdout)["fallocate_10g"] == "ENOSPC", describe(r)


async def test_copy_out_caps_sparse_files_and_file_counts(adv):
    r = await adv.run_c(
        "dsk_sparse_collect", "8", collect=True, file_size_kb=16 * 1024, collect_max_bytes=1024 * 1024,
        collect_max_files=10,
    )  # fmt: skip
    assert r.status is Status.OK, describe(r)
    assert parse_kv(r.stdout)["small"] == "40"
    assert "sparse.bin" in r.files_skipped, describe(r)
    assert len(r.files) == 10, describe(r)
    assert len(r.files) + len(r.files_skipped) == 42, describe(r)  # program + sparse + 40 small
    assert sum(len(f.content) for f in r.files) <= 1024 * 1024


async def test_inode_exhaustion_is_enospc_in_the_box(adv):
    r = await adv.run_c("dsk_inodes")
    assert r.status is Status.OK, describe(r)
    out = parse_kv(r.stdout)
    assert out["files_err"] == out["dirs_err"] == out["links_err"] == "ENOSPC", describe(r)
    assert 900 < int(out["files"]) < 1024, describe(r)
    assert 0 < int(out["dirs"]) <= 50 and 0 <= int(out["links"]) <= 50, describe(r)


async def test_fd_exhaustion_is_emfile(adv):
    r = await adv.run_c("dsk_fds", open_files=128)
    assert r.status is Status.OK, describe(r)
    out = parse_kv(r.stdout)
    assert out["nofile"] == "128" and out["open"] == "EMFILE" and out["opened"] == "125", describe(r)
    for key in ("pipe", "socket", "eventfd", "epoll", "memfd"):
        assert out[key] == "EMFILE", (key, describe(r))
    assert out["dup2_high"] == "EBADF" and out["fcntl_dupfd_high"] == "EINVAL", describe(r)


async def test_crash_leaves_no_core_dump(adv):
    r = await adv.run_c("dsk_core", collect=True)
    assert r.status is Status.RUNTIME_ERROR and r.signal == 6, describe(r)
    out = parse_kv(r.stdout)
    assert out["raise_core"] == "EPERM" and out["core_limit"] == "0", describe(r)
    assert [f.path for f in r.files] == ["dsk_core"] and r.files_skipped == [], describe(r)
    assert not any(n.startswith("core") for n in os.listdir("/")), "core file on the host root"


async def test_host_logs_are_unreachable(adv):
    r = await adv.run_c("dsk_syslog")
    assert r.status is Status.OK, describe(r)
    out = parse_kv(r.stdout)
    assert out["connect_dev_log"] == out["connect_journald"] == out["open_dev_kmsg"] == "ENOENT", describe(r)
    assert out["open_proc_kmsg"] in ("EACCES", "EPERM"), describe(r)
    assert out["klogctl_read_all"] == out["klogctl_console_level"] == "EPERM", describe(r)
