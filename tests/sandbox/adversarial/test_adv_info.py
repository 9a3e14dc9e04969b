"""Information disclosure (catalogue section 9): environment, other processes, host secrets on disk,
/proc and /sys reconnaissance, identity and capabilities, inherited fds, mounts and cgroups. The canary
grep of the `adv` fixture covers every byte these programs print."""

from __future__ import annotations

import os

from stockade_adv_harness import describe, parse_kv

from stockade.sandbox import Status
from stockade.sandbox.bwrap import BASE_ENV

WRITABLE = {"/box", "/tmp", "/dev/shm"}
DEVICES = {f"/dev/{n}" for n in ("null", "zero", "full", "random", "urandom")}


async def test_environment_is_the_fixed_base_only(adv):
    assert os.environ["STOCKADE_CANARY_ENV"] == adv.secrets.env_token  # the supervisor does carry it
    r = await adv.run_c("inf_env")
    assert r.status is Status.OK, describe(r)
    env = dict(line[4:].split("=", 1) for line in r.stdout.decode().splitlines() if line.startswith("ENV "))
    assert env == BASE_ENV, describe(r)
    assert b"STOCKADE_CANARY" not in r.stdout


async def test_proc_shows_only_the_box_and_no_foreign_environ(adv):
    r = await adv.run_c("inf_proc_scan")
    assert r.status is Status.OK, describe(r)
    out = parse_kv(r.stdout)
    assert sorted(int(p) for p in out["pids"].split(",") if p) == [1, 2], describe(r)
    assert b"pytest" not in r.stdout and b"python" not in r.stdout, describe(r)
    # The box's own init and the program both run as the box user of the box's user namespace.
    for pid in ("1", "2"):
        assert "Uid:\t1000\t1000\t1000\t1000" in out[f"{pid}_status"], describe(r)


async def test_host_kernel_disclosures_are_masked_and_knobs_read_only(adv):
    r = await adv.run_c("inf_proc_masks")
    assert r.status is Status.OK, describe(r)
    out = parse_kv(r.stdout)
    for name in ("kcore", "kallsyms", "keys", "key-users", "timer_list", "sched_debug", "slabinfo", "vmallocinfo",
                 "kpagecount", "kpageflags"):  # fmt: skip
        assert out[f"read_{name}"] in ("0", "EACCES", "EPERM", "ENOENT"), (name, describe(r))
    for name in ("sysvipc", "acpi", "scsi", "driver", "irq", "bus", "tty", "fs"):
        assert out[f"list_{name}"] in ("0", "-1"), (name, describe(r))
    for key, value in out.items():
        if key.startswith("write_") and "oom_score_adj" not in key:
            assert value in ("EACCES", "EROFS", "EPERM", "ENOENT"), (key, describe(r))
    # Lowering its own OOM priority below the supervisor's would need CAP_SYS_RESOURCE.
    assert out["write_self/oom_score_adj"] == "EACCES", describe(r)


async def test_host_secret_paths_do_not_exist(adv):
    r = await adv.run_c(
        "inf_paths", str(adv.secrets.root_canary), "/etc/stockade-canary", str(adv.secrets.etc_sentinel)
    )
    assert r.status is Status.OK, describe(r)
    out = parse_kv(r.stdout)
    assert len(out) == 32, describe(r)
    for key, value in out.items():
        # Through /proc/1/root the box meets its non-dumpable init: EACCES, which is no less absent.
        assert value == "ENOENT" or (key.startswith("stat_/proc/1/root") and value == "EACCES"), (key, describe(r))


async def test_identity_is_box_user_without_capabilities(adv):
    r = await adv.run_c("inf_identity")
    assert r.status is Status.OK, describe(r)
    out = parse_kv(r.stdout)
    assert (out["uid"], out["euid"], out["gid"], out["egid"]) == ("1000",) * 4, describe(r)
    assert out["ngroups"] in ("0", "1") and all(out[k] == "1000" for k in out if k.startswith("group_")), describe(r)
    assert out["nodename"] == "stockade", describe(r)
    for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(out[cap], 16) == 0, (cap, describe(r))
    assert out["NoNewPrivs"] == "1" and out["Seccomp"] == "2" and out["prctl_nnp"] == "1", describe(r)
    assert out["clear_nnp"] == "EINVAL", describe(r)
    for key in ("setuid0", "setgid0", "setresuid0", "setgroups0", "capset_all", "ambient_raise", "sethostname"):
        assert out[key] in ("EPERM", "EINVAL"), (key, describe(r))
    assert out["fsuid_after_setfsuid0"] == "1000", describe(r)


async def test_only_stdio_fds_are_inherited(adv):
    r = await adv.run_c("inf_fds")
    assert r.status is Status.OK, describe(r)
    out = parse_kv(r.stdout)
    assert out["open"] == "0,1,2,", describe(r)
    assert not any(k.startswith("escape_via_fd") for k in out), describe(r)


async def test_mount_table_exposes_no_host_dirs_and_only_box_dirs_are_writable(adv):
    r = await adv.run_c("inf_mounts")
    assert r.status is Status.OK, describe(r)
    mounts = [line.split(" ", 4)[1:] for line in r.stdout.decode().splitlines() if line.startswith("MOUNT ")]
    points = {m[0] for m in mounts}
    for forbidden in ("/root", "/home", "/var", "/run", "/sys", "/work", "/boot"):
        assert not any(p == forbidden or p.startswith(forbidden + "/") for p in points), (forbidden, describe(r))
    writable = {mp for mp, opts, fstype, _ in mounts if "rw" in opts.split(",") and fstype != "proc"}
    assert writable - DEVICES == WRITABLE, describe(r)
    for mp, opts, _fstype, _ in mounts:
        if mp in WRITABLE:
            assert "nosuid" in opts.split(",") and "nodev" in opts.split(","), (mp, opts)
    cgroups = [line[7:] for line in r.stdout.decode().splitlines() if line.startswith("CGROUP ")]
    assert cgroups and all(line.endswith(":/") for line in cgroups), describe(r)


async def test_python_reconnaissance_finds_no_secret(adv):
    r = await adv.run_script("inf_recon.py", output_kb=1024)
    assert r.status is Status.OK, describe(r)
    assert b"recon=done" in r.stdout and b"hostname stockade" in r.stdout, describe(r)
    assert b"uid 1000 1000" in r.stdout
    # The canary tokens themselves are grepped by the oracle; the host's real passwd is not visible either.
    assert open("/etc/passwd", "rb").read() not in r.stdout  # noqa: SIM115
