"""The browser playground (service/static), at every path no route has."""

from __future__ import annotations

from importlib import resources

from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocketClose


class Playground:
    """The router's default: it sees only paths no route matches, even by path alone (a route asked with
    another method answers 405 itself). A file of the playground is GET or HEAD, other methods 405 with
    `Allow`; any other path is 404, whatever the method (not 405: there is nothing there)."""

    ALLOW = "GET, HEAD"

    def __init__(self) -> None:
        self.files = StaticFiles(directory=str(resources.files("stockade.service") / "static"), html=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await WebSocketClose()(scope, receive, send)
            return
        if scope["method"] in ("GET", "HEAD"):
            await self.files(scope, receive, send)
            return
        # As a GET: a missing file raises 404 here; a file that exists is there for GET only.
        await self.files.get_response(self.files.get_path(scope), {**scope, "method": "GET"})
        raise HTTPException(405, headers={"Allow": self.ALLOW})
