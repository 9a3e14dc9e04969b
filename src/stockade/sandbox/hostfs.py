"""Host-side files of a box: its private tmpfs, copy-in before the run, no-follow copy-out after it.

Copy-in happens on a tmpfs mounted a moment earlier that no box process has ever seen; copy-out happens
after every box process is dead. Both walk with dir fds and O_NOFOLLOW, so the host never follows a path
the box controls, never opens a FIFO or device it made, and never reads more than the caps.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import re
import stat
from pathlib import Path

from stockade.sandbox.spec import InputFile, OutputFile

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MNT_DETACH = 0x2
# Box dirs inside each box tmpfs: all share its size and inode caps.
BOX_DIRS = ("box", "tmp", "shm")
MAX_DEPTH = 32


class HostFsError(RuntimeError):
    pass


def _mount(what: str, source: str | None, target: Path, fstype: str | None, flags: int, data: str | None) -> None:
    src, fs, opts = (x.encode() if x is not None else None for x in (source, fstype, data))
    if _libc.mount(src, str(target).encode(), fs, flags, opts) != 0:
        e = ctypes.get_errno()
        raise HostFsError(f"{what} on {target}: {os.strerror(e)}")


def mount_tmpfs(
    target: Path,
    *,
    size_mb: int,
    inodes: int,
    uid: int,
    gid: int,
    mode: int = 0o700,
    nodev: bool = True,
    source: str = "stockade-box",  # what mountinfo shows: how oracles tell a box's tmpfs from others
) -> None:
    opts = f"size={size_mb}m,nr_inodes={inodes},mode={mode:04o},uid={uid},gid={gid}"
    _mount("mount tmpfs", source, target, "tmpfs", MS_NOSUID | (MS_NODEV if nodev else 0), opts)


def resize_tmpfs(target: Path, *, size_mb: int, inodes: int) -> None:
    """Set a box tmpfs's caps for its run (it was mounted before the run was known)."""
    opts = f"size={size_mb}m,nr_inodes={inodes}"
    _mount("resize tmpfs", None, target, None, MS_REMOUNT | MS_NOSUID | MS_NODEV, opts)


def make_private(target: Path) -> None:
    """Mounts under target neither propagate out of it nor into it (the host's /run is shared)."""
    _mount("make private", None, target, None, MS_PRIVATE, None)


def remount_read_only(target: Path) -> None:
    """A tmpfs read-only for good: its superblock and its mount."""
    _mount("remount read-only", None, target, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID, None)
    _mount("remount read-only", None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID, None)


def bind_read_only(source: Path, target: Path) -> None:
    """Bind source (and the mounts under it) at target: read-only, nosuid, nodev, each of them."""
    _mount("bind", str(source), target, None, MS_BIND | MS_REC, None)
    for mount_point in mounts_under(target):
        _mount(
            "remount read-only", None, mount_point, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, None
        )


def mounts_under(path: Path) -> list[Path]:
    """Mount points at or under path, outermost first, from this process's mountinfo."""
    prefix = str(path)
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), line.split()[4])  # \040 is a space
            if mp == prefix or mp.startswith(prefix + "/"):
                found.append(Path(mp))
    return sorted(set(found), key=lambda p: len(p.parts))


def umount(target: Path) -> None:
    if _libc.umount2(str(target).encode(), MNT_DETACH) != 0:
        e = ctypes.get_errno()
        if e not in (22, 2):  # EINVAL: not a mount point; ENOENT: gone already
            raise HostFsError(f"umount {target}: {os.strerror(e)}")


def is_mountpoint(path: Path) -> bool:
    try:
        return path.stat().st_dev != path.parent.stat().st_dev
    except FileNotFoundError:
        return False


def prepare_dirs(fs_root: Path, uid: int, gid: int) -> None:
    for name in BOX_DIRS:
        d = fs_root / name
        d.mkdir(mode=0o700 if name != "shm" else 0o1777)
        os.chown(d, uid, gid)


def _split(path: str) -> list[str]:
    parts = path.split("/")
    if not path or path.startswith("/") or any(p in ("", ".", "..") or "\0" in p for p in parts):
        raise HostFsError(f"invalid box path: {path!r}")
    return parts


def write_inputs(box_dir: Path, files: list[InputFile], uid: int, gid: int) -> None:
    """Write request files into a fresh box dir (nothing has run in it yet; still never follow links)."""
    root = os.open(box_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        for f in files:
            parts = _split(f.path)
            dfd = os.dup(root)
            try:
                for part in parts[:-1]:
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(part, 0o755, dir_fd=dfd)
                        os.chown(part, uid, gid, dir_fd=dfd, follow_symlinks=False)
                    nfd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
                    os.close(dfd)
                    dfd = nfd
                mode = 0o755 if f.executable else 0o644
                fd = os.open(
                    parts[-1],
                    os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                    mode,
                    dir_fd=dfd,
                )
                try:
                    view = memoryview(f.content)
                    while view:
                        view = view[os.write(fd, view) :]
                    os.fchown(fd, uid, gid)
                    os.fchmod(fd, mode)
                finally:
                    os.close(fd)
            finally:
                os.close(dfd)
    finally:
        os.close(root)


def collect_outputs(box_dir: Path, *, max_bytes: int, max_files: int) -> tuple[list[OutputFile], list[str]]:
    """Regular files under box_dir, walked without following anything; others are listed as skipped."""
    files: list[OutputFile] = []
    skipped: list[str] = []
    budget = [max_bytes]

    def walk(dfd: int, prefix: str, depth: int) -> None:
        for entry in sorted(os.listdir(dfd)):
            rel = f"{prefix}{entry}"
            try:
                st = os.stat(entry, dir_fd=dfd, follow_symlinks=False)
            except OSError:
                skipped.append(rel)
                continue
            if stat.S_ISDIR(st.st_mode) and depth < MAX_DEPTH:
                try:
                    sub = os.open(entry, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
                except OSError:
                    skipped.append(rel + "/")
                    continue
                try:
                    walk(sub, rel + "/", depth + 1)
                finally:
                    os.close(sub)
                continue
            content = read_regular(dfd, entry, budget[0]) if stat.S_ISREG(st.st_mode) else None
            if content is None or len(files) >= max_files:
                skipped.append(rel)
                continue
            budget[0] -= len(content)
            files.append(OutputFile(rel, content, bool(st.st_mode & 0o111)))

    root = os.open(box_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        walk(root, "", 0)
    finally:
        os.close(root)
    return files, skipped


def read_regular(dfd: int, name: str, cap: int) -> bytes | None:
    """Contents of a regular file at most `cap` bytes long, else None. O_NONBLOCK: a FIFO swapped in
    after the stat cannot block us, and fstat on the opened fd is what decides."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY, dir_fd=dfd)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > cap:
            return None
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, min(1 << 20, cap + 1 - total))
            if not chunk:
                break
            total += len(chunk)
            if total > cap:
                return None
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def any_file_at_least(fs_root: Path, size: int, *, max_entries: int = 100_000) -> bool:
    """Whether the box tmpfs holds a regular file of `size` bytes or more (lstat only, nothing opened)."""
    seen = 0
    for dirpath, dirnames, filenames in os.walk(fs_root, followlinks=False):
        for name in filenames:
            seen += 1
            if seen > max_entries:
                return False
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(dirpath, name))
                if stat.S_ISREG(st.st_mode) and st.st_size >= size:
                    return True
        del dirnames[max(0, max_entries - seen) :]
    return False
