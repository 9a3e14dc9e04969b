"""Stockade's Python SDK: `from stockade.client import Client, AsyncClient` (docs/sdk.md). It talks HTTP
only and imports nothing of the server.

- sdk.py: Client and AsyncClient over one sans-IO core (request flows, retries)
- types.py: Limits, File and the results (ExecutionResult, CompileStage, Runtime), built and parsed
- errors.py: StockadeError and one subclass per API error code
- workspaces.py: `client.workspaces`, the workspace methods (docs/agents.md)
- judging.py: `client.judge()` and `client.problems`, judge mode (docs/judge.md)
- stream.py: `client.stream()`, output as it comes and interactive stdin over a WebSocket (docs/sdk.md)
"""

from stockade.client.errors import (
    ConnectionFailed,
    Forbidden,
    InternalError,
    InvalidRequest,
    LimitOutOfRange,
    Overloaded,
    PayloadTooLarge,
    QuotaExceeded,
    RateLimited,
    StockadeError,
    ToolchainMissing,
    Unauthenticated,
    UnexpectedResponse,
    UnknownLanguage,
    VersionUnavailable,
)
from stockade.client.judging import JudgeResult, Problem, Test, TestVerdict
from stockade.client.sdk import (
    API_KEY_ENV,
    AsyncClient,
    Client,
)
from stockade.client.stream import AsyncStream, Stream, StreamEvent
from stockade.client.types import (
    CollectedFile,
    CompileStage,
    ExecutionResult,
    File,
    Limits,
    Runtime,
    RuntimeRef,
)
from stockade.client.workspaces import AsyncWorkspaces, WorkspaceInfo, Workspaces

__all__ = [
    "API_KEY_ENV",
    "AsyncClient",
    "AsyncStream",
    "AsyncWorkspaces",
    "Client",
    "CollectedFile",
    "CompileStage",
    "ConnectionFailed",
    "ExecutionResult",
    "File",
    "Forbidden",
    "InternalError",
    "InvalidRequest",
    "JudgeResult",
    "LimitOutOfRange",
    "Limits",
    "Overloaded",
    "PayloadTooLarge",
    "Problem",
    "QuotaExceeded",
    "RateLimited",
    "Runtime",
    "RuntimeRef",
    "StockadeError",
    "Stream",
    "StreamEvent",
    "Test",
    "TestVerdict",
    "ToolchainMissing",
    "Unauthenticated",
    "UnexpectedResponse",
    "UnknownLanguage",
    "VersionUnavailable",
    "WorkspaceInfo",
    "Workspaces",
]
