"""The files of a workspace on the host (workspaces.py): every path walked from a directory fd with
O_NOFOLLOW, every file written under a temporary name and renamed into place, only regular files read."""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from stockade.service.errors import ApiError

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
TMP_PREFIX = ".put-"


@contextlib.contextmanager
def flocked(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def open_dirs(root: Path, parts: Sequence[str], *, create: bool = False) -> int:
    """A dir fd of root/parts..., each part opened with O_NOFOLLOW (made first when `create`)."""
    dfd = os.open(root, _DIR)
    try:
        for part in parts:
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o700, dir_fd=dfd)
            nfd = os.open(part, _DIR, dir_fd=dfd)
            os.close(dfd)
            dfd = nfd
    except BaseException:
        os.close(dfd)
        raise
    return dfd


def write_file(root: Path, path: str, content: bytes, *, executable: bool) -> None:
    """root/path as a regular file: written under a temporary name, then renamed over the old one."""
    parts = path.split("/")
    try:
        dfd = open_dirs(root, parts[:-1], create=True)
    except (NotADirectoryError, FileExistsError):
        raise ApiError("INVALID_REQUEST", f"a part of {path[:64]!r} is a file in the workspace") from None
    try:
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISDIR(os.stat(parts[-1], dir_fd=dfd, follow_symlinks=False).st_mode):
                raise ApiError("INVALID_REQUEST", f"{path[:64]!r} is a directory in the workspace")
        tmp = f"{TMP_PREFIX}{uuid.uuid4().hex[:12]}"
        mode = 0o755 if executable else 0o644
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dfd)
        try:
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        os.rename(tmp, parts[-1], src_dir_fd=dfd, dst_dir_fd=dfd)
    finally:
        os.close(dfd)


def read_file(root: Path, path: str) -> bytes:
    parts = path.split("/")
    try:
        dfd = open_dirs(root, parts[:-1])
    except NotADirectoryError:
        raise FileNotFoundError(path) from None
    try:
        fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dfd)
    except (OSError, NotADirectoryError) as e:
        raise FileNotFoundError(path) from e
    finally:
        os.close(dfd)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise FileNotFoundError(path)
        return f.read()


def walk(root: Path, *, read: bool) -> Iterator[tuple[str, Any, bool]]:
    """(path, content if `read` else size, executable) of every regular file under root, sorted."""

    def under(dfd: int, prefix: str) -> Iterator[tuple[str, Any, bool]]:
        for name in sorted(os.listdir(dfd)):
            if name.startswith(TMP_PREFIX):
                continue  # an upload that died before its rename
            st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                sub = os.open(name, _DIR, dir_fd=dfd)
                try:
                    yield from under(sub, f"{prefix}{name}/")
                finally:
                    os.close(sub)
            elif stat.S_ISREG(st.st_mode):
                executable = bool(st.st_mode & 0o111)
                if read:
                    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
                    with os.fdopen(fd, "rb") as f:
                        yield f"{prefix}{name}", f.read(), executable
                else:
                    yield f"{prefix}{name}", st.st_size, executable

    try:
        top = os.open(root, _DIR)
    except FileNotFoundError:
        return
    try:
        yield from under(top, "")
    finally:
        os.close(top)
