"""Spec -> bubblewrap argv: every isolation flag is there, in an order bubblewrap applies correctly."""

from pathlib import Path

import pytest

from stockade.sandbox.bwrap import BASE_ENV, BOX_UID, HostLayout, box_env, build_argv, check_ro_path, synthetic_etc

LAYOUT = HostLayout(
    symlinks={"/bin": "usr/bin", "/lib": "usr/lib"},
    dirs=("/usr",),
    etc=("ld.so.cache", "ssl"),
    proc_files=("kcore", "keys"),
    proc_dirs=("acpi",),
)


def argv(ro: list[str] | None = None) -> list[str]:
    return build_argv(
        layout=LAYOUT,
        fs_root=Path("/run/stockade/boxes/abc/fs"),
        etc_dir=Path("/run/stockade/etc"),
        seccomp_fd=7,
        init=Path("/run/stockade/stockade-init-x"),
        status_fd=9,
        control_fd=11,
        ro_paths=ro or [],
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
    assert ("/run/stockade/stockade-init-x", "/.stockade-init") in pairs(a, "--ro-bind")


def test_filesystem_is_read_only_except_the_box_tmpfs() -> None:
    a = argv()
    assert ("/usr", "/usr") in pairs(a, "--ro-bind")
    assert ("usr/bin", "/bin") in pairs(a, "--symlink")
    assert ("/etc/ld.so.cache", "/etc/ld.so.cache") in pairs(a, "--ro-bind")
    assert pairs(a, "--bind") == [
        ("/run/stockade/boxes/abc/fs/box", "/box"),
        ("/run/stockade/boxes/abc/fs/tmp", "/tmp"),
        ("/run/stockade/boxes/abc/fs/shm", "/dev/shm"),
    ]
    # The root and /dev are remounted read-only after everything is mounted on them.
    last_remounts = [i for i, x in enumerate(a) if x == "--remount-ro"][-2:]
    assert min(last_remounts) > a.index("/dev/shm")
    assert [a[i + 1] for i, x in enumerate(a) if x == "--remount-ro"][-2:] == ["/dev", "/"]
    assert not any(src in ("/home", "/root", "/var", "/run") for src, _ in pairs(a, "--ro-bind"))


def test_dev_is_minimal_and_proc_is_masked() -> None:
    a = argv()
    assert [d for _, d in pairs(a, "--dev-bind")] == [
        f"/dev/{n}" for n in ("null", "zero", "full", "random", "urandom")
    ]
    assert "--dev" not in a  # bubblewrap's own /dev adds tty, pts and a kcore link
    assert ("/dev/null", "/proc/kcore") in pairs(a, "--ro-bind")
    assert a.index("--proc") < a.index("/proc/kcore")  # masks go on top of the new procfs
    assert "/proc/acpi" in a


def test_extra_ro_paths_are_checked() -> None:
    a = argv(ro=["/etc/java-17-openjdk", "/var/lib/ghc"])
    assert ("/etc/java-17-openjdk", "/etc/java-17-openjdk") in pairs(a, "--ro-bind-try")
    assert ("/var/lib/ghc", "/var/lib/ghc") in pairs(a, "--ro-bind-try")
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
