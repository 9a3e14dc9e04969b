"""The host side of a box's network: a filtering HTTP proxy on a unix socket in the box (docs/network.md).

A box with a policy keeps its own network namespace with only loopback in it. Its forwarder
(forward.c) listens on 127.0.0.1:PROXY_PORT there and carries each connection to this proxy's socket,
and the box's environment names that port as HTTP(S)_PROXY. The proxy reads one request per connection:
`CONNECT host:port` (HTTPS and any TCP) or an absolute-form `http://` request, checks the destination
against the policy, resolves an allowed name itself (operator pins first), checks every address, and
connects to the address it checked, so a name cannot resolve to something else later. Then it relays
bytes under the box's caps on connections and bytes. The box never resolves names: there is no DNS,
no UDP and no route out in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from stockade.sandbox.netpolicy import NetworkPolicy, NetworkUsage, Resolver, literal_address, resolve

log = logging.getLogger("stockade.sandbox")

PROXY_PORT = 3128  # on the box's own loopback
SOCKET_NAME = ".stockade-egress.sock"  # in the box's /tmp
CHUNK = 256 * 1024
MAX_HEAD = CHUNK  # the stream buffers' limit too: a smaller one throttles the relay
HEAD_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 10.0
RESOLVE_TIMEOUT_S = 10.0
_HOP_HEADERS = {"proxy-connection", "proxy-authorization", "connection", "keep-alive"}


class _Refused(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code


def proxy_env() -> dict[str, str]:
    """What a box with a policy gets in its environment: most clients honour one of these."""
    url = f"http://127.0.0.1:{PROXY_PORT}"
    return {name: url for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY")}


def _target(method: str, uri: str) -> tuple[str, int, str]:
    """(host, port, origin-form path) of a request line; _Refused for what the proxy does not carry."""
    if method == "CONNECT":
        host, sep, port = uri.rpartition(":")
        if not sep or not port.isdigit():
            raise _Refused(400, f"CONNECT {uri!r}: not host:port")
        return host.strip("[]"), int(port), ""
    parts = urlsplit(uri)
    if parts.scheme != "http" or not parts.hostname:
        raise _Refused(400, f"{method} {uri[:200]!r}: only CONNECT and absolute http:// requests are proxied")
    path = parts.path or "/"
    return parts.hostname, parts.port or 80, path + (f"?{parts.query}" if parts.query else "")


class EgressProxy:
    """One box's proxy: serves its socket while the run lasts and counts into `usage`."""

    def __init__(
        self,
        policy: NetworkPolicy,
        *,
        pins: Mapping[str, Sequence[str]] | None = None,
        resolver: Resolver = resolve,
    ) -> None:
        self.policy = policy
        self.pins = {k.lower(): list(v) for k, v in (pins or {}).items()}
        self.resolver = resolver
        self.usage = NetworkUsage()
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._pending = 0  # requests past the cap check, still checking or connecting

    async def start(self, path: Path) -> None:
        """Listen on `path`; the box's uid must be able to connect (nothing untrusted has run yet)."""
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        self._server = await asyncio.start_unix_server(self._serve, path=str(path), limit=MAX_HEAD)
        os.chmod(path, 0o666)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _budget(self) -> int:
        return self.policy.max_bytes - self.usage.bytes_in - self.usage.bytes_out

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._one(reader, writer)
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            pass  # the box or the destination went away; nothing to report beyond the counts
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT_S)
        except asyncio.LimitOverrunError:
            await self._answer(writer, 400, f"a request head is at most {MAX_HEAD} bytes")
            return
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, uri, version = lines[0].split(" ")
            host, port, path = _target(method, uri)
        except _Refused as e:
            self.usage.refuse(str(e))
            await self._answer(writer, e.code, str(e))
            return
        except ValueError:
            await self._answer(writer, 400, "not an HTTP request line")
            return
        connected = await self._connect(writer, host, port)
        if connected is None:
            return
        up_r, up_w = connected
        try:
            if method == "CONNECT":
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                kept = [h for h in lines[1:] if h and h.split(":", 1)[0].strip().lower() not in _HOP_HEADERS]
                request = "\r\n".join([f"{method} {path} {version}", *kept, "Connection: close", "", ""])
                await self._send(up_w, request.encode("latin-1"), outbound=True)
            await asyncio.gather(self._pipe(reader, up_w, outbound=True), self._pipe(up_r, writer, outbound=False))
        finally:
            up_w.close()

    async def _connect(
        self, writer: asyncio.StreamWriter, host: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """A connection to the checked address of `host`, counted; or the box told why not (None). The
        cap counts requests still checking too, so concurrent ones cannot pass it together."""
        if self.usage.connections + self._pending >= self.policy.max_connections:
            reason = f"the box's cap of {self.policy.max_connections} connections is reached"
            self.usage.refuse(reason)
            await self._answer(writer, 429, reason)
            return None
        self._pending += 1
        try:
            address = await self._check(host, port)
            connected = await asyncio.wait_for(asyncio.open_connection(address, port, limit=CHUNK), CONNECT_TIMEOUT_S)
        except _Refused as e:
            self.usage.refuse(str(e))
            await self._answer(writer, e.code, str(e))
            return None
        except (OSError, TimeoutError) as e:
            await self._answer(writer, 502, f"{host}:{port}: cannot connect ({e})")
            return None
        finally:
            self._pending -= 1
        self.usage.connections += 1
        return connected

    async def _check(self, host: str, port: int) -> str:
        if reason := self.policy.refusal(host, port):
            raise _Refused(403, reason)
        name = host.lower().rstrip(".")
        literal = literal_address(host)
        if literal is not None:
            found = [str(literal)]  # inside a network entry: refusal() said so
        elif name in self.pins:
            found = self.pins[name]
        else:
            try:
                found = await asyncio.wait_for(self.resolver(name, port), RESOLVE_TIMEOUT_S)
            except (OSError, TimeoutError) as e:
                raise _Refused(502, f"{host} does not resolve ({e})") from None
        if reason := self.policy.address_refusal(host, found):
            raise _Refused(403, reason)
        return found[0]

    async def _send(self, writer: asyncio.StreamWriter, data: bytes, *, outbound: bool) -> bool:
        """Write `data` within the byte budget; False once the budget is spent (the relay stops)."""
        allowed = max(0, self._budget())
        if len(data) > allowed:
            data = data[:allowed]
            self.usage.capped = True
        if outbound:
            self.usage.bytes_out += len(data)
        else:
            self.usage.bytes_in += len(data)
        writer.write(data)
        await writer.drain()
        return not self.usage.capped

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, *, outbound: bool) -> None:
        try:
            while data := await src.read(CHUNK):
                if not await self._send(dst, data, outbound=outbound):
                    break
        finally:
            if self.usage.capped:
                dst.close()
            elif dst.can_write_eof():
                with contextlib.suppress(OSError):
                    dst.write_eof()

    @staticmethod
    async def _answer(writer: asyncio.StreamWriter, code: int, reason: str) -> None:
        body = f"stockade egress: {reason}\n".encode()
        words = {400: "Bad Request", 403: "Forbidden", 429: "Too Many Requests", 502: "Bad Gateway"}[code]
        head = f"HTTP/1.1 {code} {words}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
        writer.write(head.encode() + b"Connection: close\r\n\r\n" + body)
        with contextlib.suppress(OSError):
            await writer.drain()
