# Issue 27 section 1: park kernel socket memory on the box's own loopback and never read it.
# argv: tcp | udp | both, then the target in MiB (for each kind). TCP is the program: a listener with a 4 MiB
# receive buffer, clients with 4 MiB send buffers, non-blocking 1 MiB sends until EAGAIN, then the next
# connection. UDP: sockets that send 60 000-byte datagrams to themselves until their queue stops growing.
# Prints key=value: queued_kib (bytes the kernel accepted), held_kib (rmem_alloc + wmem_queued of every
# socket, SO_MEMINFO), rise_kib (the TCP + UDP 'mem' of /proc/net/sockstat, a host-wide counter, read at
# the peak against its value at the start) and stop (why it stopped: target, or the error that ended it).
import errno
import os
import socket
import struct
import sys
import time

SO_MEMINFO = 55
MIB = 1 << 20


SOCKSTAT = os.open("/proc/net/sockstat", os.O_RDONLY)  # opened first: the descriptors run out later


def sockstat_kib():
    pages = 0
    for line in os.pread(SOCKSTAT, 4096, 0).decode().splitlines():
        proto, _, rest = line.partition(":")
        fields = rest.split()
        if proto in ("TCP", "UDP") and "mem" in fields:
            pages += int(fields[fields.index("mem") + 1])
    return pages * 4


def held(s):
    info = struct.unpack("9I", s.getsockopt(socket.SOL_SOCKET, SO_MEMINFO, 36))
    return info[0] + info[5]  # SK_MEMINFO_RMEM_ALLOC + SK_MEMINFO_WMEM_QUEUED


def fill_tcp(keep, queued, target, conns):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * MIB)
    ls.bind(("127.0.0.1", 0))
    ls.listen(64)
    keep.append(ls)
    while queued[0] < target and conns > 0:
        conns -= 1
        c = socket.socket()
        c.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * MIB)
        keep.append(c)
        c.connect(ls.getsockname())
        keep.append(ls.accept()[0])
        c.setblocking(False)
        while True:
            try:
                queued[0] += c.send(b"x" * MIB)
            except BlockingIOError:
                break


def fill_udp(keep, queued, target):
    msg = b"x" * 60000
    end = queued[0] + target
    while queued[0] < end:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        keep.append(s)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * MIB)
        s.bind(("127.0.0.1", 0))
        # A datagram the receive queue cannot take is dropped without an error: stop when it stops growing.
        while queued[0] < end:
            before = held(s)
            s.sendto(msg, s.getsockname())
            if held(s) <= before:
                break
            queued[0] += len(msg)


def main():
    mode, target = sys.argv[1], int(sys.argv[2]) * MIB
    start = sockstat_kib()
    keep, queued, stop = [], [0], "target"
    try:
        if mode in ("tcp", "both"):
            # Alone, connections until the target or the descriptors run out; with UDP, a third of them.
            fill_tcp(keep, queued, target, 1 << 30 if mode == "tcp" else 40)
        if mode in ("udp", "both"):
            fill_udp(keep, queued, target)
    except OSError as e:
        stop = errno.errorcode.get(e.errno, str(e.errno))
    print(f"stop={stop}", flush=True)
    print(f"queued_kib={queued[0] >> 10}", flush=True)
    print(f"held_kib={sum(held(s) for s in keep) >> 10}", flush=True)
    print(f"rise_kib={sockstat_kib() - start}", flush=True)
    print(f"sockets={len(keep)}", flush=True)
    time.sleep(1)  # holds the memory while the host samples its own view too


main()
