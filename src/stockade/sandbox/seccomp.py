"""The box's seccomp policy, compiled once with libseccomp into classic BPF and handed to bubblewrap.

Default-allow: namespaces, uids and mounts already confine the box; the filter removes kernel attack
surface and the calls that act on host-global objects. Calls that runtimes probe and fall back from get
ENOSYS; calls a normal program may try but must not succeed get EPERM (or EAFNOSUPPORT for sockets);
calls no program needs kill the whole process, which the verdict reports as `syscall_blocked`.
"""

from __future__ import annotations

import errno
import functools
import os
import tempfile
from dataclasses import dataclass

import pyseccomp as sc

# Runtimes probe these and fall back (libuv tries io_uring, glibc tries clone3 before clone).
ENOSYS_CALLS = (
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "userfaultfd",
    "bpf",
    "perf_event_open",
    "keyctl",
    "add_key",
    "request_key",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    "open_by_handle_at",
    "name_to_handle_at",
    "clone3",  # flags live in a struct seccomp cannot read; glibc then uses clone(), which we can check
    "lookup_dcookie",
    "quotactl_fd",
    "modify_ldt",  # 16-bit segments: old exploit surface; Wine-style probes fall back
    # inotify watches inodes, and the box's read-only view shares its inodes with the host and every
    # other box: a watch there reports their opens as they happen. No runtime needs it to start; file
    # watchers (tail -f, Node's fs.watch) fall back to polling or report ENOSYS (docs/sandbox.md).
    "inotify_init",
    "inotify_init1",
    "inotify_add_watch",
)

EPERM_CALLS = (
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "unshare",
    "setns",
    "swapon",
    "swapoff",
    "syslog",
    "acct",
    "quotactl",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "sethostname",
    "setdomainname",
    "iopl",
    "ioperm",
    "vhangup",
    # Unprivileged fanotify (Linux 5.13+) watches opens of shared files like inotify; EPERM is what an
    # unprivileged caller got before.
    "fanotify_init",
    "fanotify_mark",
)

# Nothing legitimate in a box loads kernels or modules or reboots: kill, and say so in the verdict.
KILL_CALLS = (
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "reboot",
)

CLONE_NAMESPACE_FLAGS = {
    "CLONE_NEWNS": 0x00020000,
    "CLONE_NEWCGROUP": 0x02000000,
    "CLONE_NEWUTS": 0x04000000,
    "CLONE_NEWIPC": 0x08000000,
    "CLONE_NEWUSER": 0x10000000,
    "CLONE_NEWPID": 0x20000000,
    "CLONE_NEWNET": 0x40000000,
}

ALLOWED_SOCKET_FAMILIES = (1, 2, 10)  # AF_UNIX, AF_INET, AF_INET6
TIOCSTI = 0x5412
TIOCLINUX = 0x541C


@dataclass(frozen=True)
class Policy:
    """Everything that decides the compiled filter; the cache key."""

    enosys: tuple[str, ...] = ENOSYS_CALLS
    eperm: tuple[str, ...] = EPERM_CALLS
    kill: tuple[str, ...] = KILL_CALLS


DEFAULT_POLICY = Policy()


def build_filter(policy: Policy = DEFAULT_POLICY) -> sc.SyscallFilter:
    f = sc.SyscallFilter(sc.ALLOW)
    # Any syscall through a non-native ABI (i386 int 0x80, x32) kills the process.
    f.set_attr(sc.Attr.ACT_BADARCH, sc.KILL_PROCESS)
    # bubblewrap sets NO_NEW_PRIVS itself before loading the program.
    f.set_attr(sc.Attr.CTL_NNP, 0)
    for name in policy.enosys:
        f.add_rule(sc.ERRNO(errno.ENOSYS), name)
    for name in policy.eperm:
        f.add_rule(sc.ERRNO(errno.EPERM), name)
    for name in policy.kill:
        f.add_rule(sc.KILL_PROCESS, name)
    for flag in CLONE_NAMESPACE_FLAGS.values():
        f.add_rule(sc.ERRNO(errno.EPERM), "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
    for request in (TIOCSTI, TIOCLINUX):
        f.add_rule(sc.ERRNO(errno.EPERM), "ioctl", sc.Arg(1, sc.MASKED_EQ, 0xFFFFFFFF, request))
    for call in ("socket", "socketpair"):
        # Families are small ints: deny 0, every gap below AF_INET6 and everything above it.
        for family in range(0, max(ALLOWED_SOCKET_FAMILIES)):
            if family not in ALLOWED_SOCKET_FAMILIES:
                f.add_rule(sc.ERRNO(errno.EAFNOSUPPORT), call, sc.Arg(0, sc.MASKED_EQ, 0xFFFFFFFF, family))
        f.add_rule(sc.ERRNO(errno.EAFNOSUPPORT), call, sc.Arg(0, sc.GT, max(ALLOWED_SOCKET_FAMILIES)))
    return f


@functools.cache
def compiled_bpf(policy: Policy = DEFAULT_POLICY) -> bytes:
    """Classic BPF program for `bwrap --seccomp FD`; compiled once per policy per process."""
    with tempfile.TemporaryFile() as tmp:
        build_filter(policy).export_bpf(tmp)
        tmp.seek(0)
        return tmp.read()


def bpf_fd(policy: Policy = DEFAULT_POLICY) -> int:
    """A fresh readable fd holding the program (bubblewrap reads it to EOF). Caller closes it."""
    data = compiled_bpf(policy)
    fd = os.memfd_create("stockade-seccomp", os.MFD_CLOEXEC)
    try:
        os.write(fd, data)
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd
