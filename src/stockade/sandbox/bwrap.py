"""Box -> bubblewrap argv, and what a box sees. Pure: everything host-specific comes in through HostLayout."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

INIT_PATH = "/.stockade-init"
FORWARD_PATH = "/.stockade-forward"  # a box's way to its egress proxy (forward.c)
EMPTY_DIR = "/.stockade-empty"  # in the read-only root: what a masked /proc directory shows
BOX_UID = 1000  # identity inside the box; on the host it maps to the slot's own uid, never to root
BOX_GID = 1000
HOSTNAME = "stockade"
BASE_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": "/box",
    "PWD": "/box",  # the working directory, as bubblewrap's --chdir would have told the command
    "TMPDIR": "/tmp",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "TZ": "UTC",
    "USER": "box",
    "LOGNAME": "box",
}
# Top-level host entries a toolchain may need; on merged-/usr hosts most are symlinks into /usr.
SYSTEM_ENTRIES = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32")
# Read-only pieces of the host /etc that toolchains need; nothing else of /etc is visible.
ETC_ENTRIES = ("ld.so.cache", "alternatives", "ssl", "ca-certificates", "mime.types")
DEV_NODES = ("null", "zero", "full", "random", "urandom")
# Paths in the box's own procfs that disclose host-kernel facts or poke host-wide knobs. A file is masked
# only if the box could open it (open_to_box): each mask costs bubblewrap a reread of the mount table.
PROC_MASK_FILES = (
    "kcore",
    "keys",
    "key-users",
    "timer_list",
    "sched_debug",
    "latency_stats",
    "kallsyms",
    "sysrq-trigger",
    "kpagecount",
    "kpageflags",
    "kpagecgroup",
    "vmallocinfo",
    "slabinfo",
)
PROC_MASK_DIRS = ("acpi", "scsi", "asound", "driver", "fs", "irq", "bus", "tty", "sysvipc")
# Toolchain data lives under /usr, /etc and /var/lib/<package> (GHC's package db); nothing else of the
# host's state, and never Stockade's own data.
FORBIDDEN_RO_PREFIXES = ("/proc", "/sys", "/dev", "/run", "/home", "/root", "/tmp", "/boot", "/var/lib/stockade",
                         "/var/run", "/var/log", "/var/tmp", "/var/spool", "/var/mail", "/var/backups", "/var/cache",
                         "/etc/shadow", "/etc/gshadow", "/etc/ssh", "/etc/sudoers")  # fmt: skip
FORBIDDEN_RO_EXACT = ("/var", "/var/lib", "/etc", "/usr/local")


@dataclass(frozen=True)
class HostLayout:
    symlinks: dict[str, str] = field(default_factory=dict)  # "/bin" -> "usr/bin"
    dirs: tuple[str, ...] = ()  # top-level directories bound read-only
    etc: tuple[str, ...] = ()  # /etc entries present on this host
    proc_files: tuple[str, ...] = ()
    proc_dirs: tuple[str, ...] = ()

    @classmethod
    def probe(cls) -> HostLayout:
        symlinks, dirs = {}, []
        for name in SYSTEM_ENTRIES:
            p = f"/{name}"
            if os.path.islink(p):
                symlinks[p] = os.readlink(p)
            elif os.path.isdir(p):
                dirs.append(p)
        return cls(
            symlinks=symlinks,
            dirs=tuple(dirs),
            etc=tuple(e for e in ETC_ENTRIES if os.path.exists(f"/etc/{e}")),
            proc_files=tuple(
                f for f in PROC_MASK_FILES if os.path.isfile(f"/proc/{f}") and open_to_box(os.stat(f"/proc/{f}"))
            ),
            proc_dirs=tuple(d for d in PROC_MASK_DIRS if os.path.isdir(f"/proc/{d}")),
        )


def open_to_box(st: os.stat_result) -> bool:
    """Whether a box could open this file at all. One owned by root:root with no access for others is
    closed to it: its uid is never root, root is not mapped in its user namespace (so no capability
    there overrides the file's owner) and it holds no capability anyway."""
    return st.st_uid != 0 or st.st_gid != 0 or bool(st.st_mode & 0o007)


def check_ro_path(path: str) -> str:
    norm = os.path.normpath(path)
    if not path.startswith("/") or norm != path.rstrip("/") or norm == "/":
        raise ValueError(f"ro path must be absolute and normalised: {path!r}")
    if norm in FORBIDDEN_RO_EXACT or any(norm == p or norm.startswith(p + "/") for p in FORBIDDEN_RO_PREFIXES):
        raise ValueError(f"ro path may not expose {norm}")
    return norm


def box_env(extra: dict[str, str]) -> dict[str, str]:
    return {**BASE_ENV, **extra}


def build_argv(
    *,
    layout: HostLayout,
    root: Path,
    fs_root: Path,
    seccomp_fd: int,
    status_fd: int,
    control_fd: int,
    bwrap: str = "bwrap",
) -> list[str]:
    """The box: a prepared read-only root (stockade.sandbox.rootfs), its own procfs with the host's
    knobs masked, and the box's own tmpfs at /box, /tmp and /dev/shm."""
    a = [
        bwrap,
        "--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
        "--unshare-cgroup",
        "--disable-userns",
        "--uid", str(BOX_UID), "--gid", str(BOX_GID),
        "--hostname", HOSTNAME,
        "--new-session",
        "--die-with-parent",
        "--as-pid-1",  # our init is pid 1: it reports the real wait status and reaps orphans
        "--cap-drop", "ALL",
        # Read-only, nosuid and nodev on the host already, every mount of it; the box cannot change
        # that (the flags are locked in its user namespace). Its only device nodes are harmless ones.
        "--dev-bind", str(root), "/",
        "--proc", "/proc",
    ]  # fmt: skip
    for f in layout.proc_files:
        a += ["--ro-bind", "/dev/null", f"/proc/{f}"]
    # One read-only bind each, not a tmpfs plus a remount: bubblewrap rereads the mount table for both.
    for d in layout.proc_dirs:
        a += ["--ro-bind", f"{root}{EMPTY_DIR}", f"/proc/{d}"]
    a += [
        "--bind", str(fs_root / "box"), "/box",
        "--bind", str(fs_root / "tmp"), "/tmp",
        "--bind", str(fs_root / "shm"), "/dev/shm",
        "--chdir", "/box",
        "--seccomp", str(seccomp_fd),
        "--",
        INIT_PATH, str(status_fd), str(control_fd),  # the command comes later, over control_fd
    ]  # fmt: skip
    return a


def synthetic_etc() -> dict[str, str]:
    """The box's own identity files: it sees one user, itself, and one host, itself."""
    return {
        "passwd": f"root:x:0:0:root:/nonexistent:/usr/sbin/nologin\n"
        f"box:x:{BOX_UID}:{BOX_GID}:box:/box:/bin/sh\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
        "group": f"root:x:0:\nbox:x:{BOX_GID}:\nnogroup:x:65534:\n",
        "hosts": f"127.0.0.1 localhost {HOSTNAME}\n::1 localhost ip6-localhost ip6-loopback\n",
        "hostname": f"{HOSTNAME}\n",
        "nsswitch.conf": "passwd: files\ngroup: files\nshadow: files\nhosts: files\n",
    }
