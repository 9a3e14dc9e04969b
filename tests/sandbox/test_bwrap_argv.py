"""Spec -> bubblewrap argv: every isolation flag is there, in an order bubblewrap applies correctly."""

import os
from pathlib import Path

import pytest

from stockade.sandbox.bwrap import (
    BASE_ENV,
    BOX_UID,
    PROC_MASK_FILES,
    HostLayout,
    box_env,
    build_argv,
    check_ro_path,
    open_to_box,
    synthetic_etc,
)

LAYOUT = HostLayout(
    symlinks={"/bin": "usr/bin", "/lib": "usr/lib"},
    dirs=("/usr",),
    etc=("ld.so.cache", "ssl"),
    proc_files=("kcore", "keys"),
    proc_dirs=("acpi",),
)


def argv() -> list[str]:
    return build_argv(
        layout=LAYOUT,
        root=Path("/run/stockade/roots/0"),
        fs_root=Path("/run/stockade/boxes/abc/fs"),
        seccomp_fd=7,
        status_fd=9,
        control_fd=11,
    )


def pairs(a: list[str], flag: str) -> list[tuple[str, str]]:
    return [(a[i + 1], a[i + 2]) for i, x in enumerate(a) if x == flag]


def test_every_namespace_is_new_and_userns_is_disabled_inside() -> None:
    a = argv()
    for flag in (
        "--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup",
        "--disable-userns", "--new-session", "--die-with-parent",
    ):  # fmt: skip
        assert flag in a, flag
    assert a[a.index("--uid") + 1] == str(BOX_UID) != "0"
    assert a[a.index("--cap-drop") + 1] == "ALL"
    assert a[a.index("--seccomp") + 1] == "7"


def test_box_ends_in_our_init_as_pid_1_waiting_for_its_command() -> None:
    a = argv()
    assert a[a.index("--") + 1 :] == ["/.stockade-init", "9", "11"]
    assert "--as-pid-1" in a


def test_the_root_is_the_prepared_one_and_only_the_box_tmpfs_is_writable() -> None:
    a = argv()
    # One bind of the read-only root (see test_rootfs), first: everything else goes on top of it.
    assert pairs(a, "--dev-bind") == [("/run/stockade/roots/0", "/")]
    assert a.index("--dev-bind") < a.index("--proc")
    assert pairs(a, "--bind") == [
        ("/run/stockade/boxes/abc/fs/box", "/box"),
        ("/run/stockade/boxes/abc/fs/tmp", "/tmp"),
        ("/run/stockade/boxes/abc/fs/shm", "/dev/shm"),
    ]
    # only the /proc masks
    assert {src for src, _ in pairs(a, "--ro-bind")} == {"/dev/null", "/run/stockade/roots/0/.stockade-empty"}
    assert "--dev" not in a and "--symlink" not in a  # bubblewrap's own /dev adds tty, pts and a kcore link


def test_proc_is_new_and_masked() -> None:
    a = argv()
    assert ("/dev/null", "/proc/kcore") in pairs(a, "--ro-bind")
    assert ("/dev/null", "/proc/keys") in pairs(a, "--ro-bind")
    assert a.index("--proc") < a.index("/proc/kcore")  # masks go on top of the new procfs
    assert ("/run/stockade/roots/0/.stockade-empty", "/proc/acpi") in pairs(a, "--ro-bind")
    assert a.index("--proc") < a.index("/proc/acpi")


def test_ro_paths_are_checked() -> None:
    for good in ("/etc/java-17-openjdk", "/var/lib/ghc", "/usr/share/doc/bash"):
        assert check_ro_path(good) == good
    for bad in ("relative", "/", "/proc/1", "/run/stockade", "/root/.ssh", "/etc/../root", "/var/lib", "/var",
                "/var/lib/stockade/stockade.db", "/etc", "/etc/shadow", "/var/log/syslog"):  # fmt: skip
        with pytest.raises(ValueError):
            check_ro_path(bad)


def test_environment_is_clean_and_fixed() -> None:
    env = box_env({"GOCACHE": "/tmp/go"})
    assert env["PATH"] == "/usr/local/bin:/usr/bin:/bin" and env["HOME"] == "/box" and env["TZ"] == "UTC"
    assert env["GOCACHE"] == "/tmp/go"
    assert set(env) == set(BASE_ENV) | {"GOCACHE"}


def test_synthetic_identity_has_the_box_user_only() -> None:
    etc = synthetic_etc()
    assert f"box:x:{BOX_UID}:" in etc["passwd"]
    assert "stockade" in etc["hostname"]
    assert "root:x:0:0" in etc["passwd"] and "/bin/bash" not in etc["passwd"]


def stat_of(mode: int, uid: int = 0, gid: int = 0) -> os.stat_result:
    return os.stat_result((mode, 1, 1, 1, uid, gid, 0, 0, 0, 0))


@pytest.mark.parametrize(
    ("mode", "uid", "gid", "masked"),
    [
        (0o100400, 0, 0, False),  # root-only: closed to the box by its uid alone
        (0o100200, 0, 0, False),  # root-only knob (sysrq-trigger)
        (0o100440, 0, 0, False),  # the root group is never the box's
        (0o100444, 0, 0, True),  # readable by anyone
        (0o100602, 0, 0, True),  # writable by anyone
        (0o100400, 1000, 0, True),  # owned by someone else: not known to be closed
        (0o100400, 0, 5, True),
    ],
)
def test_a_proc_file_is_masked_unless_closed_to_the_box(mode: int, uid: int, gid: int, masked: bool) -> None:
    assert open_to_box(stat_of(mode, uid, gid)) is masked


def test_the_host_probe_masks_every_proc_file_a_box_could_open() -> None:
    layout = HostLayout.probe()
    for name in PROC_MASK_FILES:
        path = f"/proc/{name}"
        if os.path.isfile(path):
            assert (name in layout.proc_files) is open_to_box(os.stat(path)), name
    assert "keys" in layout.proc_files  # 0444 on every kernel
