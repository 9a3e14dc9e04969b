# LANG-01/K-11: a Python program that leaves the language behind: raw syscalls through ctypes, shelling
# out, and rewriting its own audit-free world. Everything it reaches is still the kernel sandbox.
import ctypes
import errno
import os
import subprocess

libc = ctypes.CDLL(None, use_errno=True)


def call(name, *args):
    r = getattr(libc, name)(*args)
    return "OK" if r != -1 else errno.errorcode[ctypes.get_errno()]


print("unshare_user=" + call("unshare", 0x10000000))
print("mount_tmpfs=" + call("mount", b"none", b"/tmp", b"tmpfs", 0, None))
print("chroot=" + call("chroot", b"/tmp"))
print("setuid0=" + call("setuid", 0))
print("ptrace_attach=" + call("ptrace", 16, 1, None, None))
print("syscall_bpf=" + call("syscall", 321, 0, None, 0))
print("id=" + subprocess.run(["id", "-u"], capture_output=True, text=True).stdout.strip())
print("system=" + str(os.system("touch /stockade-adv-pwn 2>/dev/null") >> 8))
print(
    "sh_c="
    + subprocess.run(["/bin/sh", "-c", "cat /etc/shadow 2>&1 | head -c 40"], capture_output=True, text=True)
    .stdout.strip()
    .replace("\n", " ")
)
