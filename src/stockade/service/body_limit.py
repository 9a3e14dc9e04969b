"""`BodyLimit`, the outermost ASGI middleware: an oversized body is refused whatever the load."""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stockade.service.errors import ApiError


class BodyLimit:
    """Refuse bodies over the cap before they are read into memory in full: by Content-Length when it is
    given, else by reading at most the cap (then the buffered body is replayed to the app)."""

    def __init__(self, app: ASGIApp, max_bytes: int, on_reject: Callable[[], None] = lambda: None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.on_reject = on_reject

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def too_large() -> None:  # built only when needed: every request passes here
            self.on_reject()
            await ApiError("PAYLOAD_TOO_LARGE", f"request body exceeds {self.max_bytes} bytes").response()(
                scope, receive, send
            )

        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            if not length.isdigit() or int(length) > self.max_bytes:
                await too_large()
                return
            await self.app(scope, receive, send)
            return
        buffered: list[Message] = []
        seen = 0
        while True:
            message = await receive()
            buffered.append(message)
            if message["type"] != "http.request":
                break
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                await too_large()
                return
            if not message.get("more_body", False):
                break

        await self.app(scope, replaying(buffered, receive), send)


def replaying(buffered: list[Message], receive: Receive) -> Receive:
    """`receive` for the app after a middleware has read these messages itself."""

    async def replay() -> Message:
        return buffered.pop(0) if buffered else await receive()

    return replay
