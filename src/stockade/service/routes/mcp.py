"""The MCP server (docs/agents.md), on the official `mcp` SDK: tools over the one execution path.

Tools: `run_code` (execution.execute_for: rate limit, a claimed place, the quota hold, the workspace's
lease, the run, the write-back, the record and the audit record, as POST /v1/execute), `list_languages`,
and the workspace tools (the store of workspaces.py, each call counted by the rate limit). A result is
text for the model, the wire result as structured content, and each collected file as an image (PNG,
JPEG, GIF, WebP) or an embedded resource. A refusal is a tool error whose text starts with its code.

Two transports: `stockade mcp` over stdio (cli/mcp_cmd.py), every call as one configured tenant; and
streamable HTTP at /mcp in the service (`McpEndpoint`), stateless (each POST a whole exchange: any node
can answer it), where every request is authenticated with the same bearer key as the HTTP API.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import mimetypes
from collections.abc import AsyncIterator, Callable
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import (
    BlobResourceContents,
    CallToolResult,
    ContentBlock,
    EmbeddedResource,
    ImageContent,
    TextContent,
    TextResourceContents,
)
from pydantic import ValidationError
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

import stockade
from stockade.service.errors import ApiError
from stockade.service.node import Caller, Service
from stockade.service.routes.execution import execute_for, workspaces_of
from stockade.service.wire import ExecuteIn

CallerOf = Callable[[Context], Caller]
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
TEXT_CHARS = 16 * 1024  # of stdout, stderr and compiler output in the text block (all of it is structured)
INSTRUCTIONS = (
    "Stockade runs code in a fresh, locked-down sandbox per call (no network). Use list_languages for the "
    "language ids. A workspace keeps files between calls: create one, pass its id to run_code, and the files "
    "the program leaves in its working directory are kept. `collect` returns files the program wrote "
    "(globs such as *.png or out/**); pictures come back as images."
)


def refusal(e: ApiError) -> CallToolResult:
    text = f"{e.code}: {e.message}" + (f" (retry after {e.retry_after} s)" if e.retry_after else "")
    body = {"error": e.code, "message": e.message, "retry_after": e.retry_after}
    return CallToolResult(content=[TextContent(text=text)], structured_content=body, is_error=True)


def _clip(text: str) -> str:
    return text if len(text) <= TEXT_CHARS else text[:TEXT_CHARS] + f"\n[... {len(text) - TEXT_CHARS} more chars]"


def summary(out: dict[str, Any]) -> str:
    """The result as a model reads it: verdict, output, the compiler's complaint, the files."""
    lines = [f"status: {out['status']} (exit code {out['exit_code']}, signal {out['signal']}, "
             f"{out['time_ms']} ms CPU, {out['memory_kb']} KiB)"]  # fmt: skip
    if out["status"] == "timeout":
        lines.append(f"timeout: the {out['timeout_kind']} time limit")
    comp = out.get("compile")
    if comp and out["status"] in ("compile_error", "compile_limit"):
        lines += ["--- compiler output ---", _clip(comp["stderr"] + comp["stdout"])]
    lines += ["--- stdout ---", _clip(out["stdout"]), "--- stderr ---", _clip(out["stderr"])]
    for f in out.get("files", []):
        lines.append(f"file: {f['path']} ({f['size']} bytes)")
    for s in out.get("files_skipped", []):
        lines.append(f"file not returned: {s['path']} ({s['reason']})")
    if ws := out.get("workspace"):
        state = "saved" if ws["saved"] else "NOT saved" + (f": {ws['error']['message']}" if ws["error"] else "")
        lines.append(f"workspace {ws['id']}: {state} ({ws['files']} files, {ws['bytes']} bytes)")
    return "\n".join(lines)


def file_block(uri: str, path: str, data: bytes) -> ContentBlock:
    """An image for pictures, else an embedded resource (text when it is UTF-8 text)."""
    mime = mimetypes.guess_type(path)[0] or "application/octet-stream"
    if mime in IMAGE_TYPES:
        return ImageContent(data=base64.b64encode(data).decode(), mime_type=mime)
    if mime.startswith("text/") or mime in ("application/json", "application/octet-stream"):
        with contextlib.suppress(UnicodeDecodeError):
            text_mime = "text/plain" if mime == "application/octet-stream" else mime
            return EmbeddedResource(resource=TextResourceContents(uri=uri, mime_type=text_mime, text=data.decode()))
    blob = BlobResourceContents(uri=uri, mime_type=mime, blob=base64.b64encode(data).decode())
    return EmbeddedResource(resource=blob)


def run_result(out: dict[str, Any]) -> CallToolResult:
    blocks: list[ContentBlock] = [TextContent(text=summary(out))]
    for f in out.get("files", []):
        blocks.append(file_block(f"stockade://box/{out['execution_id']}/{f['path']}", f["path"],
                                 base64.b64decode(f["content"])))  # fmt: skip
    structured = {**out, "files": [{k: v for k, v in f.items() if k != "content"} for f in out.get("files", [])]}
    return CallToolResult(content=blocks, structured_content=structured)


def build(service: Service, caller_of: CallerOf) -> MCPServer:
    """The MCP server of `service`, each call made as `caller_of(ctx)` (stdio: one tenant; HTTP: the key's)."""
    server: MCPServer = MCPServer("stockade", version=stockade.__version__, instructions=INSTRUCTIONS)

    async def refused_or(ctx: Context, work: Callable[[Caller], Any]) -> Any:
        try:
            who = caller_of(ctx)
            return await work(who)
        except ApiError as e:
            return refusal(e)

    @server.tool()
    async def run_code(
        language: str,
        code: str,
        ctx: Context,
        stdin: str = "",
        workspace: str | None = None,
        collect: list[str] | None = None,
        limits: dict[str, int] | None = None,
        version: str | None = None,
        network: list[str] | None = None,
    ) -> CallToolResult:
        """Run `code` in a fresh sandbox and return its verdict, stdout and stderr. `language`: an id of
        list_languages (python, c, cpp, java, javascript, python-sci, ...). `workspace`: a workspace id;
        its files are the working directory and what the program leaves there is kept. `collect`: globs of
        files to return (e.g. ["*.png", "out/**"]). `limits`: cpu_ms, wall_ms, memory_mb, processes,
        output_kb, file_size_kb. `network`: hosts the program may reach over HTTP(S), within the
        tenant's egress allowlist (e.g. ["pypi.org", "files.pythonhosted.org"]); default none."""

        async def work(who: Caller) -> CallToolResult:
            fields = {"language": language, "code": code, "stdin": stdin, "workspace": workspace,
                      "collect": collect, "limits": limits, "version": version,
                      "network": {"allow": network} if network else None}  # fmt: skip
            try:
                body = ExecuteIn.model_validate(fields)
            except ValidationError as e:
                return refusal(ApiError("INVALID_REQUEST", "; ".join(err["msg"] for err in e.errors()[:5])))
            return run_result(await execute_for(service, who, body))

        result: CallToolResult = await refused_or(ctx, work)
        return result

    @server.tool()
    async def list_languages(ctx: Context) -> CallToolResult:
        """The languages this server runs: ids for run_code, with their versions."""

        async def work(who: Caller) -> CallToolResult:
            await service.rate_limit(who)
            every = await service.registry.detect_all_versions()
            rows = []
            for lang in service.registry.languages:
                if not who.tenant.allows_language(lang.id):
                    continue
                best = every[lang.id][0]
                rows.append({"language": lang.id, "name": lang.name, "version": best.version,
                             "available": best.available, "aliases": list(lang.aliases)})  # fmt: skip
            text = "\n".join(f"{r['language']}: {r['name']} {r['version']}" for r in rows if r["available"])
            return CallToolResult(content=[TextContent(text=text)], structured_content={"languages": rows})

        result: CallToolResult = await refused_or(ctx, work)
        return result

    add_workspace_tools(server, service, refused_or)
    add_file_tools(server, service, refused_or)
    return server


def _done(text: str, structured: dict[str, Any]) -> CallToolResult:
    return CallToolResult(content=[TextContent(text=text)], structured_content=structured)


def _store_caller(service: Service) -> Callable[..., Any]:
    """A workspace store call as a tool makes it: on the caller's rate limit, off the event loop."""

    async def store_call(who: Caller, fn: Callable[..., Any], *args: Any) -> Any:
        await service.rate_limit(who)
        return await asyncio.to_thread(fn, *args)

    return store_call


def add_workspace_tools(server: MCPServer, service: Service, refused_or: Any) -> None:
    """workspace_create, _files and _delete over workspaces.py."""
    store_call = _store_caller(service)

    @server.tool()
    async def workspace_create(ctx: Context) -> CallToolResult:
        """A new, empty workspace: files kept between run_code calls. Returns its id."""

        async def work(who: Caller) -> CallToolResult:
            info = await store_call(who, workspaces_of(service).create, who.tenant.id)
            return _done(f"workspace {info.id} created", info.as_dict())

        result: CallToolResult = await refused_or(ctx, work)
        return result

    @server.tool()
    async def workspace_files(workspace: str, ctx: Context) -> CallToolResult:
        """The files of a workspace: path, size, executable."""

        async def work(who: Caller) -> CallToolResult:
            entries = await store_call(who, workspaces_of(service).entries, who.tenant.id, workspace)
            listing = [{"path": e.path, "size": e.size, "executable": e.executable} for e in entries]
            text = "\n".join(f"{e['path']} ({e['size']} bytes)" for e in listing) or "(no files)"
            return _done(text, {"workspace": workspace, "files": listing})

        result: CallToolResult = await refused_or(ctx, work)
        return result

    @server.tool()
    async def workspace_delete(workspace: str, ctx: Context) -> CallToolResult:
        """Delete a workspace and every file in it."""

        async def work(who: Caller) -> CallToolResult:
            await store_call(who, workspaces_of(service).delete, who.tenant.id, workspace)
            return _done(f"workspace {workspace} deleted", {"workspace": workspace, "deleted": True})

        result: CallToolResult = await refused_or(ctx, work)
        return result


def add_file_tools(server: MCPServer, service: Service, refused_or: Any) -> None:
    """workspace_read, _write and _delete_file: one file of a workspace."""
    store_call = _store_caller(service)

    @server.tool()
    async def workspace_read(workspace: str, path: str, ctx: Context) -> CallToolResult:
        """One file of a workspace: text, an image, or a binary resource."""

        async def work(who: Caller) -> CallToolResult:
            data = await store_call(who, workspaces_of(service).read, who.tenant.id, workspace, path)
            block = file_block(f"stockade://workspaces/{workspace}/{path}", path, data)
            return CallToolResult(content=[block], structured_content={"path": path, "size": len(data)})

        result: CallToolResult = await refused_or(ctx, work)
        return result

    @server.tool()
    async def workspace_write(
        workspace: str, path: str, content: str, ctx: Context, encoding: str = "utf8"
    ) -> CallToolResult:
        """Write a file into a workspace (`encoding`: utf8 or base64), replacing any of that path."""

        async def work(who: Caller) -> CallToolResult:
            if encoding not in ("utf8", "base64"):
                raise ApiError("INVALID_REQUEST", "encoding is utf8 or base64")
            try:
                data = content.encode() if encoding == "utf8" else base64.b64decode(content, validate=True)
            except ValueError:
                raise ApiError("INVALID_REQUEST", "content is not valid base64") from None

            info = await store_call(who, workspaces_of(service).put, who.tenant.id, workspace, path, data)
            return _done(f"wrote {path} ({len(data)} bytes) to {workspace}", info.as_dict())

        result: CallToolResult = await refused_or(ctx, work)
        return result

    @server.tool()
    async def workspace_delete_file(workspace: str, path: str, ctx: Context) -> CallToolResult:
        """Delete one file of a workspace."""

        async def work(who: Caller) -> CallToolResult:
            info = await store_call(who, workspaces_of(service).remove, who.tenant.id, workspace, path)
            return _done(f"deleted {path} from {workspace}", info.as_dict())

        result: CallToolResult = await refused_or(ctx, work)
        return result


# -- streamable HTTP at /mcp -------------------------------------------------------------------------

CALLER_KEY = "stockade_caller"


def http_caller(ctx: Context) -> Caller:
    """The caller McpEndpoint authenticated, from the HTTP request the tool call came in."""
    request = ctx.request_context.request
    who = getattr(getattr(request, "state", None), CALLER_KEY, None)
    if not isinstance(who, Caller):
        raise ApiError("UNAUTHENTICATED", "an API key is required: `Authorization: Bearer <api key>`")
    return who


class McpEndpoint:
    """ASGI endpoint of /mcp: authenticates each request with the service's bearer keys (a refusal is
    the API's error shape and status), then hands it to the SDK's stateless streamable HTTP transport."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.server = build(service, http_caller)
        cfg = service.config
        loopback = ["127.0.0.1:*", "localhost:*", "[::1]:*"]
        security = TransportSecuritySettings(  # DNS rebinding: a loopback server answers loopback names only
            enable_dns_rebinding_protection=cfg.loopback,
            allowed_hosts=loopback,
            allowed_origins=[f"http://{h}" for h in loopback],
        )
        self.server.streamable_http_app(
            stateless_http=True, json_response=True, transport_security=security,
            max_request_body_size=cfg.max_body_bytes, host=cfg.host,
        )  # fmt: skip
        self.manager = self.server.session_manager

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async with self.manager.run():
            yield

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            who = self.service.authenticate(Request(scope))
        except ApiError as e:
            await e.response()(scope, receive, send)
            return
        scope.setdefault("state", {})[CALLER_KEY] = who
        await self.manager.handle_request(scope, receive, send)
