"""The seccomp policy as libseccomp compiles it (behaviour inside boxes is in adversarial/)."""

import errno
import tempfile

from stockade.sandbox import seccomp


def pfc() -> str:
    with tempfile.TemporaryFile("w+") as f:
        seccomp.build_filter().export_pfc(f)
        f.seek(0)
        return f.read()


def test_policy_lists_cover_the_required_calls() -> None:
    required_denied = {
        "ptrace", "process_vm_readv", "process_vm_writev", "mount", "umount2", "pivot_root", "chroot", "unshare",
        "setns", "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd", "io_uring_setup",
        "io_uring_enter", "io_uring_register", "kexec_load", "kexec_file_load", "init_module", "finit_module",
        "delete_module", "open_by_handle_at", "swapon", "swapoff", "reboot", "syslog", "acct", "quotactl",
        "fsopen", "fsmount", "move_mount", "open_tree", "fspick", "fsconfig",
    }  # fmt: skip
    p = seccomp.DEFAULT_POLICY
    assert required_denied <= set(p.enosys) | set(p.eperm) | set(p.kill)
    assert not (set(p.enosys) & set(p.eperm)) and not (set(p.eperm) & set(p.kill))


def actions_by_syscall(text: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    current = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith('# filter for syscall "'):
            current = line.split('"')[1]
            out.setdefault(current, set())
        elif line.startswith("action ") and current:
            out[current].add(line.removeprefix("action ").rstrip(";"))
        elif line.startswith("# default action") or line.startswith("# invalid architecture"):
            current = None
    return out


def test_compiled_filter_maps_each_call_to_its_action() -> None:
    text = pfc()
    actions = actions_by_syscall(text)
    p = seccomp.DEFAULT_POLICY
    for name in p.enosys:
        assert actions[name] == {f"ERRNO({errno.ENOSYS})"}, name
    for name in p.eperm:
        assert actions[name] == {f"ERRNO({errno.EPERM})"}, name
    for name in p.kill:
        assert actions[name] == {"KILL_PROCESS"}, name
    assert f"ERRNO({errno.EPERM})" in actions["clone"]  # namespace flags only
    assert actions["socket"] == {f"ERRNO({errno.EAFNOSUPPORT})"}
    assert actions["ioctl"] == {f"ERRNO({errno.EPERM})"}
    assert "read" not in actions  # default allow
    assert "ALLOW" in text.split("# default action")[1]


def test_bpf_is_compiled_once_and_handed_out_as_fresh_fds() -> None:
    assert seccomp.compiled_bpf() is seccomp.compiled_bpf()
    import os

    fd1, fd2 = seccomp.bpf_fd(), seccomp.bpf_fd()
    try:
        data = seccomp.compiled_bpf()
        assert len(data) % 8 == 0 and len(data) > 100  # sock_filter entries are 8 bytes
        assert os.read(fd1, len(data) + 1) == data
        assert os.read(fd2, len(data) + 1) == data
    finally:
        os.close(fd1)
        os.close(fd2)
