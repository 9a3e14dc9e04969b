"""A web server in a network namespace the test creates: the only "outside" egress tests may reach.

    with WebNamespace() as web:     # netns + veth pair, 10.213.X.2 in it, HTTP :8080 and HTTPS :8443
        web.address, web.cert       # the server's address; its self-signed CA-less cert for web.test

Nothing leaves this machine: the namespace's only link is the veth pair to the host. `close()` removes
the namespace, the link and the server.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import select
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from types import TracebackType

READY_TIMEOUT_S = 60.0
HTTP_PORT = 8080
HTTPS_PORT = 8443
NAME = "web.test"

SERVER = textwrap.dedent(
    """
    import http.server, ssl, sys, threading
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path.startswith("/bytes/"):
                body = b"x" * int(self.path.split("/")[2])
            else:
                body = b"hello from web.test " + self.path.encode() + b"\\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *args):
            pass
    addr, cert, key = sys.argv[1], sys.argv[2], sys.argv[3]
    plain = http.server.ThreadingHTTPServer((addr, int(sys.argv[4])), Handler)
    tls = http.server.ThreadingHTTPServer((addr, int(sys.argv[5])), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    tls.socket = ctx.wrap_socket(tls.socket, server_side=True)
    threading.Thread(target=tls.serve_forever, daemon=True).start()
    print("ready", flush=True)
    plain.serve_forever()
    """
)


def _netns_mounted() -> bool:
    """Whether /run/netns is a mount point (a bind of itself: os.path.ismount cannot tell)."""
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == "/run/netns" for line in f)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


class WebNamespace:
    def __init__(self) -> None:
        tag = secrets.token_hex(3)
        self.netns = f"stk-web-{tag}"
        self.link = f"stkw{tag}"
        octet = int(tag[:2], 16) % 250 + 1
        self.host_address = f"10.213.{octet}.1"
        self.address = f"10.213.{octet}.2"
        self.network = f"10.213.{octet}.0/30"
        self._dir = Path(tempfile.mkdtemp(prefix="stockade-web-"))
        self.cert = self._dir / "cert.pem"
        self._proc: subprocess.Popen[str] | None = None
        # `ip netns add` makes /run/netns a mount point the first time; whoever made it removes it.
        self._made_mount = not _netns_mounted()
        self._made_dir = not os.path.exists("/run/netns")
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    def _start(self) -> None:
        key = self._dir / "key.pem"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout", str(key),
             "-out", str(self.cert), "-subj", f"/CN={NAME}", "-addext", f"subjectAltName=DNS:{NAME}"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        _ip("netns", "add", self.netns)
        _ip("link", "add", self.link, "type", "veth", "peer", "name", "eth0", "netns", self.netns)
        _ip("addr", "add", f"{self.host_address}/30", "dev", self.link)
        _ip("link", "set", self.link, "up")
        _ip("-n", self.netns, "addr", "add", f"{self.address}/30", "dev", "eth0")
        _ip("-n", self.netns, "link", "set", "eth0", "up")
        _ip("-n", self.netns, "link", "set", "lo", "up")
        self._proc = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                self.netns,
                sys.executable,
                "-c",
                SERVER,
                self.address,
                str(self.cert),
                str(key),
                str(HTTP_PORT),
                str(HTTPS_PORT),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        ready, _, _ = select.select([self._proc.stdout], [], [], READY_TIMEOUT_S)
        line = self._proc.stdout.readline() if ready else ""
        if line.strip() != "ready":
            self._proc.kill()
            _, err = self._proc.communicate(timeout=30)
            raise RuntimeError(f"web server in {self.netns} did not start: {err}")

    def close(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(30)
            self._proc = None
        subprocess.run(["ip", "link", "del", self.link], capture_output=True, timeout=30)
        subprocess.run(["ip", "netns", "del", self.netns], capture_output=True, timeout=30)
        if self._made_mount and _netns_mounted() and not os.listdir("/run/netns"):
            subprocess.run(["umount", "/run/netns"], capture_output=True, timeout=30)
        if self._made_dir and not _netns_mounted():
            with contextlib.suppress(OSError):
                os.rmdir("/run/netns")
        for f in self._dir.iterdir():
            f.unlink()
        self._dir.rmdir()

    def __enter__(self) -> WebNamespace:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()
