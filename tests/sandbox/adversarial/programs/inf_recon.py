# INF-01..INF-09 in Python: everything a curious program would print about its host.
import glob
import os
import socket

print("environ", dict(os.environ))
for path in [
    "/proc/1/environ",
    "/proc/self/environ",
    "/proc/1/cmdline",
    "/etc/passwd",
    "/etc/hosts",
    "/etc/hostname",
    "/proc/self/mountinfo",
    "/proc/self/cgroup",
    "/proc/version",
    "/proc/cmdline",
]:
    try:
        with open(path, "rb") as f:
            print(path, f.read(2000))
    except OSError as e:
        print(path, "ERR", e.errno)
for pattern in [
    "/root/*",
    "/root/.*",
    "/etc/*canary*",
    "/etc/stockade*",
    "/home/*",
    "/tmp/*",
    "/var/*",
    "/run/*",
    "/proc/[0-9]*/environ",
    "/usr/share/stockade-sentinel/*",
    "/dev/*",
    "/box/*",
]:
    for p in glob.glob(pattern):
        try:
            with open(p, "rb") as f:
                print("read", p, f.read(512))
        except OSError as e:
            print("glob", p, "ERR", e.errno)
print("hostname", socket.gethostname())
print("uid", os.getuid(), os.geteuid(), os.getgroups())
print("cwd", os.getcwd(), sorted(os.listdir("/")))
print("recon=done")
