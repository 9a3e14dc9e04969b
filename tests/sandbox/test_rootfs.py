"""The read-only root boxes start from: what is in it, that nothing in it can be changed, and that it
copies nothing of the host a box could not read anyway."""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from stockade.sandbox import hostfs, rootfs
from stockade.sandbox.bwrap import DEV_NODES, HostLayout, synthetic_etc

RUN = Path("/run/stockade-t-rootfs")


def mount_line(path: Path) -> list[str] | None:
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        if line.split()[4] == str(path):
            return line.split()
    return None


@pytest.fixture
def tree() -> Iterator[Path]:
    """A host dir with a writable tmpfs mounted inside it, as a toolchain dir with a submount."""
    d = Path("/run/stockade-t-rootfs-tree")
    shutil.rmtree(d, ignore_errors=True)
    (d / "sub").mkdir(parents=True)
    (d / "lib.txt").write_text("lib\n")
    hostfs.mount_tmpfs(d / "sub", size_mb=1, inodes=64, uid=0, gid=0, mode=0o755)
    (d / "sub" / "inner.txt").write_text("inner\n")
    yield d
    hostfs.umount(d / "sub")
    shutil.rmtree(d)


@pytest.fixture
def root(tree: Path) -> Iterator[Path]:
    RUN.mkdir(exist_ok=True)
    target = RUN / "root"
    target.mkdir()
    layout = HostLayout.probe()
    rootfs.build(
        target,
        layout=layout,
        helpers={"/.stockade-init": Path("/bin/true")},
        ro_paths=[str(tree), "/etc/bash.bashrc", "/usr/lib"],
    )
    yield target
    rootfs.remove(target)
    assert not target.exists() and hostfs.mounts_under(target) == []
    RUN.rmdir()  # empty now: the test leaves nothing in /run


def test_root_holds_the_box_view(root: Path, tree: Path) -> None:
    layout = HostLayout.probe()
    for link, to in layout.symlinks.items():
        assert os.readlink(root / link.lstrip("/")) == to
    assert (root / "usr/bin/env").exists()
    for name, content in synthetic_etc().items():
        assert (root / "etc" / name).read_text() == content
    for entry in layout.etc:
        assert (root / "etc" / entry).exists()
    assert (root / "etc/bash.bashrc").read_bytes() == Path("/etc/bash.bashrc").read_bytes()
    assert (root / str(tree).lstrip("/") / "sub/inner.txt").read_text() == "inner\n"
    assert sorted(os.listdir(root / "dev")) == sorted([*DEV_NODES, "fd", "shm", "stdin", "stdout", "stderr"])
    for name in DEV_NODES:
        st = os.stat(root / "dev" / name)
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.stat(f"/dev/{name}").st_rdev
        assert stat.S_IMODE(st.st_mode) == 0o666
    for mp in ("proc", "box", "tmp", "dev/shm", ".stockade-empty"):
        assert (root / mp).is_dir() and os.listdir(root / mp) == []
    assert os.access(root / ".stockade-init", os.X_OK)


def test_nothing_in_the_root_can_be_changed_even_by_host_root(root: Path, tree: Path) -> None:
    bound = root / str(tree).lstrip("/")
    for path in (root / "new", root / "etc/passwd", root / "usr/stockade-new", bound / "new", bound / "sub/new"):
        with pytest.raises(OSError) as e:
            path.write_text("x")
        assert e.value.errno == errno.EROFS, path
    for mount_point in hostfs.mounts_under(root):
        flags = os.statvfs(mount_point).f_flag
        assert flags & os.ST_RDONLY and flags & os.ST_NOSUID, mount_point
        if mount_point != root:  # the root's own tmpfs holds the device nodes
            assert flags & os.ST_NODEV, mount_point
    # Private: nothing mounted under it reaches other mount namespaces, nothing of theirs comes in.
    line = mount_line(root)
    assert line is not None and not [f for f in line[6:] if f.startswith(("shared:", "master:"))]


def test_paths_under_a_bound_system_dir_need_nothing_of_their_own() -> None:
    layout = HostLayout(dirs=("/usr",))
    assert rootfs.added_paths(layout, ["/usr/lib/jvm", "/etc/php", "/var/lib/ghc"]) == {"/etc/php", "/var/lib/ghc"}


def test_copies_show_only_what_any_user_may_read(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "private").mkdir(parents=True)
    (src / "private" / "key").write_text("secret")
    (src / "private").chmod(0o710)
    (src / "public.conf").write_text("public")
    (src / "root-only.conf").write_text("secret")
    (src / "root-only.conf").chmod(0o600)
    (src / "setuid").write_text("x")
    (src / "setuid").chmod(0o4755)
    (src / "link").symlink_to("/usr/bin/env")
    os.mkfifo(src / "fifo")
    dst = tmp_path / "dst"
    rootfs._copy_public(src, dst, 0)
    assert sorted(os.listdir(dst)) == ["link", "public.conf", "setuid"]
    assert (dst / "public.conf").read_text() == "public"
    assert stat.S_IMODE(os.stat(dst / "setuid").st_mode) == 0o755
    assert os.readlink(dst / "link") == "/usr/bin/env"


def test_a_failed_build_leaves_nothing_mounted(tmp_path: Path) -> None:
    RUN.mkdir(exist_ok=True)
    target = RUN / "broken"
    target.mkdir()
    with pytest.raises(FileNotFoundError):
        rootfs.build(target, layout=HostLayout.probe(), helpers={"/.stockade-init": tmp_path / "no-init"}, ro_paths=())
    assert hostfs.mounts_under(target) == []
    target.rmdir()
    RUN.rmdir()
