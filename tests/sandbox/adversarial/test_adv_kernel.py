"""Kernel attack surface reachable from a box (catalogue section 11, plus PR-07, FS-10, FS-11, K-13 and
LANG-01): namespaces, mounts, ptrace, the ENOSYS/EPERM/KILL lists of seccomp.py, other syscall ABIs,
setuid binaries, device nodes, page-cache writes to shared read-only files, and a ctypes escape."""

from __future__ import annotations

import pytest
from stockade_adv_harness import describe, parse_kv

from stockade.sandbox import InputFile, Status


async def test_no_new_namespaces_by_any_route(adv):
    r = await adv.run_c("k_namespaces")
    assert r.status is Status.OK, describe(r)
    out = parse_kv(r.stdout)
    for key, value in out.items():
        if key.startswith(("unshare_", "clone_", "setns_")):
            assert value == "EPERM", (key, describe(r))
    assert out["clone3_user"] == "ENOSYS", describe(r)
    assert len([k for k in out if k.startswith(("unshare_", "clone_", "setns_"))]) == 9 + 8 + 1 + 7, describe(r)


async def test_mounts_chroot_pivot_root_and_new_mount_api_are_refused(adv):
    r = await adv.run_c("k_mount")
    assert r.status is Status.OK, describe(r)
    out = parse_kv(r.stdout)
    refused = "remount_root_rw remount_usr_rw mount_tmpfs mount_proc mount_sysfs mount_cgroup_v1 mount_cgroup2"
    refused += " mount_bind_proc umount_proc_mask umount_root chroot pivot_root"
    for key in refused.split():
        assert out[key] == "EPERM", (key, describe(r))
    for key in ("fsopen", "fspick", "open_tree", "move_mount", "mount_setattr"):
        assert out[key] == "ENOSYS", (key, describe(r))


async def test_ptrace_and_process_vm_are_refused(adv):
    r = await adv.run_c("k_ptrace")
    assert r.status is Status.OK, describe(r)
    out = parse_kv(r.stdout)
    for key in ("ptrace_traceme", "ptrace_attach_child", "ptrace_seize_child", "ptrace_attach_init",
                "process_vm_readv_child", "process_vm_writev_init"):  # fmt: skip
        assert out[key] == "EPERM", (key, describe(r))
    # The box's pid 1 is Stockade's init: not dumpable, so its memory and environment are closed to the
    # box; and it is exactly as confined as the program: same seccomp filter, no_new_privs, no capabilities.
    assert out["open_init_mem"] == out["open_init_environ"] == "EACCES", describe(r)
    assert out["init_Seccomp"] == "2" and out["init_NoNewPrivs"] == "1", describe(r)
    assert int(out["init_CapEff"], 16) == 0 and int(out["init_CapBnd"], 16) == 0, describe(r)


async def test_probed_kernel_interfaces_return_enosys(adv):
    r = await adv.run_c("k_enosys")
    assert r.status is Status.OK, describe(r)
    out = parse_kv(r.stdout)
    assert len(out) == 14, describe(r)
    for key, value in out.items():
        assert value == "ENOSYS", (key, describe(r))


async def test_host_acting_calls_return_eperm(adv):
    r = await adv.run_c("k_eperm_misc")
    assert r.status is Status.OK, describe(r)
    out = parse_kv(r.stdout)
    for key in ("swapon", "swapoff", "syslog", "acct", "quotactl", "sethostname", "setdomainname", "iopl", "ioperm",
                "vhangup"):  # fmt: skip
        assert out[key] == "EPERM", (key, describe(r))


async def test_modify_ldt_is_refused(adv):
    """K-13 lists modify_ldt among the calls to deny (Docker's default profile does): it only serves
    16-bit/segment tricks, and its kernel code has a CVE history. The policy is default-allow and does
    not list it, so a box can install LDT entries."""
    r = await adv.run_c("k_eperm_misc")
    out = parse_kv(r.stdout)
    assert out["modify_ldt_write"] in ("EPERM", "ENOSYS"), describe(r)


@pytest.mark.parametrize(
    "call", ["kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "reboot"]
)
async def test_kernel_loading_and_reboot_kill_the_box(adv, call):
    r = await adv.run_c("k_killcall", call)
    assert r.status is Status.SYSCALL_BLOCKED and r.signal == 31, describe(r)
    assert r.stdout == f"calling={call}\n".encode(), describe(r)


async def test_i386_int80_is_killed(adv):
    r = await adv.run_c("k_int80")
    assert r.status is Status.SYSCALL_BLOCKED and r.signal == 31, describe(r)
    assert r.stdout == b"before=1\n", describe(r)


async def test_x32_syscall_numbers_are_killed(adv):
    r = await adv.run_c("k_x32")
    assert r.status is Status.SYSCALL_BLOCKED and r.signal == 31, describe(r)
    assert r.stdout == b"before=1\n", describe(r)


async def test_exec_of_a_32_bit_binary_is_killed_at_its_first_syscall(adv):
    r = await adv.run_c("k_exec_i386")
    assert r.status is Status.SYSCALL_BLOCKED and r.signal == 31, describe(r)
    assert r.stdout == b"exec32=1\n", describe(r)


async def test_setuid_binaries_do_not_elevate(adv):
    preload = InputFile("k_preload.so", adv.compiler.build("k_preload"))
    r = await adv.run_c("k_setuid_probe", extra_files=[preload], processes=64, cpu_ms=3000)
    assert r.status is Status.OK, describe(r)
    found = int(parse_kv(r.stdout)["setuid_binaries"])
    lines = r.stdout.decode().splitlines()
    reports = {line.split()[1]: line.split()[2:] for line in lines if line.startswith("SUID ")}
    ran = {line.split()[1]: int(line.split()[2]) for line in lines if line.startswith("RAN ")}
    assert found >= 3 and len(ran) == found, describe(r)  # su, mount, passwd, ... on Debian
    for path, status in ran.items():
        if status == 127:  # not executable for the box user at all (e.g. mode 4754 root:messagebus)
            assert path not in reports, describe(r)
            continue
        assert reports.get(path) == ["ruid=1000", "euid=1000", "suid=1000", "egid=1000"], (path, describe(r))
    assert len(reports) >= 3, describe(r)


async def test_device_nodes_cannot_be_made(adv):
    r = await adv.run_c("k_mknod")
    assert r.status is Status.OK, describe(r)
    out = parse_kv(r.stdout)
    for key in ("mknod_char_box", "mknod_char_tmp", "mknod_block_shm"):
        assert out[key] == "EPERM", (key, describe(r))
    assert out["mknod_whiteout"] in ("OK", "EPERM"), describe(r)  # 0:0 is an overlay whiteout, inert
    assert out["mknod_char_dev"] in ("EROFS", "EPERM"), describe(r)
    assert out["mknod_fifo"] == out["mknod_sock"] == out["mknod_reg"] == "OK", describe(r)


async def test_page_cache_of_shared_read_only_files_cannot_be_written(adv):
    r = await adv.run_c("k_dirty_pipe", str(adv.secrets.usr_sentinel), cpu_ms=8000)
    assert r.status is Status.OK, describe(r)
    out = parse_kv(r.stdout)
    assert out["file_changed"] == "0" and out["file_pwned"] == "0", describe(r)
    # The oracle re-hashes the sentinel on the host after the run as well.


async def test_python_ctypes_escape_stays_in_the_sandbox(adv):
    r = await adv.run_script("k_ctypes_escape.py")
    assert r.status is Status.OK, describe(r)
    out = parse_kv(r.stdout)
    assert out["unshare_user"] == out["mount_tmpfs"] == out["chroot"] == "EPERM", describe(r)
    assert out["setuid0"] in ("EPERM", "EINVAL"), describe(r)  # uid 0 is not even mapped
    assert out["ptrace_attach"] == "EPERM" and out["syscall_bpf"] == "ENOSYS", describe(r)
    assert out["id"] == "1000" and out["system"] == "1", describe(r)
    assert out["sh_c"].startswith("cat: /etc/shadow: No such file"), describe(r)


async def test_perl_raw_syscalls_stay_in_the_sandbox(adv):
    r = await adv.run_script("k_perl_syscall.pl")
    assert r.status is Status.OK, describe(r)
    out = parse_kv(r.stdout)
    assert out == {"unshare_user": "EPERM", "mount": "EPERM", "ptrace": "EPERM", "id": "1000"}, describe(r)
