"""The read-only root every box starts from, assembled once on the host instead of once per box.

bubblewrap rereads /proc/self/mountinfo for every bind it makes, so a box built from ~50 separate
binds spent about half of its set-up CPU in formatting and parsing that file. A root is one tmpfs,
private to the host's mount namespace and read-only, holding:
- bind mounts of the host's system dirs (/usr) and of toolchain paths outside /etc, read-only,
  nosuid, nodev, submounts included;
- the merged-/usr symlinks (/bin -> usr/bin, ...);
- /etc: the synthetic identity files, plus copies of the host /etc entries toolchains need. Only
  what any user may read is copied (world-readable files, world-searchable dirs, symlinks as they
  are), so a copy shows a box nothing the box's own uid could not read through a bind;
- /dev: the five harmless device nodes and the fd symlinks (the tmpfs is not nodev; nothing in it is
  writable);
- our helpers (init, the egress forwarder), empty mount points for /proc, /box, /tmp and /dev/shm,
  which each box mounts itself, and an empty directory that each box binds over the /proc directories it masks.

A box binds it as its / with one `--dev-bind`. Copies are taken when the root is built: a service
sees /etc changes (a newly installed toolchain's config) after a restart, as it sees new toolchains.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path

from stockade.sandbox import hostfs
from stockade.sandbox.bwrap import DEV_NODES, EMPTY_DIR, HostLayout, synthetic_etc

ROOT_SIZE_MB = 64
ROOT_INODES = 32768
MOUNT_POINTS = ("proc", "box", "tmp", "dev/shm")
DEV_LINKS = {
    "stdin": "/proc/self/fd/0",
    "stdout": "/proc/self/fd/1",
    "stderr": "/proc/self/fd/2",
    "fd": "/proc/self/fd",
}
MAX_COPY_DEPTH = 16


def added_paths(layout: HostLayout, paths: Iterable[str]) -> frozenset[str]:
    """The ro paths a root must add itself: those under a bound system dir (/usr/...) are there anyway."""
    return frozenset(p for p in paths if not any(p == d or p.startswith(d + "/") for d in layout.dirs))


def build(target: Path, *, layout: HostLayout, helpers: Mapping[str, Path], ro_paths: Iterable[str]) -> None:
    """Assemble a root at `target` (an empty dir) with `helpers` (path in the box -> host binary);
    on failure nothing of it stays mounted."""
    hostfs.mount_tmpfs(
        target, size_mb=ROOT_SIZE_MB, inodes=ROOT_INODES, uid=0, gid=0, mode=0o755, nodev=False, source="stockade-root"
    )
    try:
        hostfs.make_private(target)
        _fill(target, layout, helpers, sorted(added_paths(layout, ro_paths)))
        hostfs.remount_read_only(target)
    except BaseException:
        hostfs.umount(target)
        raise


def _fill(root: Path, layout: HostLayout, helpers: Mapping[str, Path], ro_paths: list[str]) -> None:
    for link, to in layout.symlinks.items():
        os.symlink(to, root / link.lstrip("/"))
    for d in layout.dirs:
        _bind(d, root)
    etc = root / "etc"
    etc.mkdir(mode=0o755)
    for name, content in synthetic_etc().items():
        (etc / name).write_text(content)
        (etc / name).chmod(0o644)
    os.symlink("/usr/share/zoneinfo/Etc/UTC", etc / "localtime")
    for entry in layout.etc:
        _copy_public(Path("/etc") / entry, etc / entry, 0)
    dev = root / "dev"
    dev.mkdir(mode=0o755)
    for name in DEV_NODES:
        os.mknod(dev / name, stat.S_IFCHR | 0o666, os.stat(f"/dev/{name}").st_rdev)
        os.chmod(dev / name, 0o666)  # mknod applies the umask
    for name, to in DEV_LINKS.items():
        os.symlink(to, dev / name)
    for mp in MOUNT_POINTS:
        (root / mp).mkdir(mode=0o755, parents=True)
    (root / EMPTY_DIR.lstrip("/")).mkdir(mode=0o555)
    for at, binary in helpers.items():
        shutil.copyfile(binary, root / at.lstrip("/"))
        os.chmod(root / at.lstrip("/"), 0o755)
    done: list[str] = []
    for p in ro_paths:  # sorted: a dir comes before what is under it, which it then holds already
        if not os.path.lexists(p) or any(p.startswith(d + "/") for d in done):
            continue  # a toolchain that is not installed, or already there
        done.append(p)
        if p.startswith("/etc/"):
            (root / p.lstrip("/")).parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            _copy_public(Path(p), root / p.lstrip("/"), 0)
        else:
            _bind(p, root)


def _bind(path: str, root: Path) -> None:
    dest = root / path.lstrip("/")
    dest.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    if os.path.isdir(path):
        dest.mkdir(mode=0o755, exist_ok=True)
    else:
        dest.touch(mode=0o644)
    hostfs.bind_read_only(Path(path), dest)


def _copy_public(src: Path, dst: Path, depth: int) -> None:
    """Copy what every user of the host may read; anything else (and any special file) is left out."""
    st = os.lstat(src)
    mode = stat.S_IMODE(st.st_mode) & 0o755  # never a setuid, setgid or sticky bit
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(src), dst)
    elif stat.S_ISDIR(st.st_mode) and st.st_mode & 0o005 == 0o005 and depth < MAX_COPY_DEPTH:
        dst.mkdir(mode=0o755)
        for child in sorted(os.listdir(src)):
            _copy_public(src / child, dst / child, depth + 1)
        os.chmod(dst, mode)
    elif stat.S_ISREG(st.st_mode) and st.st_mode & 0o004:
        shutil.copyfile(src, dst, follow_symlinks=False)
        os.chmod(dst, mode)


def remove(target: Path) -> None:
    """Unmount a root (its binds go with it) and remove its mount point."""
    if hostfs.is_mountpoint(target):
        hostfs.umount(target)
    target.rmdir()
