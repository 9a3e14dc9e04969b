"""Every non-execution outcome: one JSON shape, one fixed HTTP status per code."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

    from fastapi.responses import JSONResponse

STATUS_BY_CODE = {
    "INVALID_REQUEST": 400,
    "UNAUTHENTICATED": 401,
    "FORBIDDEN": 403,
    "NETWORK_FORBIDDEN": 403,  # `network` asks for a destination outside the tenant's allowlist (docs/network.md)
    "UNKNOWN_LANGUAGE": 404,
    "NOT_FOUND": 404,
    "WORKSPACE_NOT_FOUND": 404,  # unknown, another tenant's, or expired; or no such file in it
    "METHOD_NOT_ALLOWED": 405,
    "REQUEST_TIMEOUT": 408,  # the connection guard's: headers or body not received in time
    "WORKSPACE_BUSY": 409,  # another execution or write holds the workspace (docs/agents.md)
    "PAYLOAD_TOO_LARGE": 413,
    "PROBLEM_NOT_FOUND": 404,  # unknown or another tenant's stored problem (docs/judge.md)
    "SUBMISSION_NOT_FOUND": 404,  # unknown, another tenant's, or no longer kept (POST /v1/submissions)
    "PROBLEM_QUOTA_EXCEEDED": 413,  # the tenant's number of stored problems or their bytes
    "WORKSPACE_QUOTA_EXCEEDED": 413,  # its files or bytes, or the tenant's number of workspaces
    "TOOLCHAIN_MISSING": 422,
    "VERSION_UNAVAILABLE": 422,
    "LIMIT_OUT_OF_RANGE": 422,
    "RATE_LIMITED": 429,
    "QUOTA_EXCEEDED": 429,
    "TENANT_QUEUE_FULL": 429,  # the tenant's jobs queued on the cluster are at their bound
    "INTERNAL_ERROR": 500,
    "OVERLOADED": 503,
    "QUEUE_UNAVAILABLE": 503,  # the cluster's Redis (its job queue, shared rate limits) is unreachable
    "STORAGE_UNAVAILABLE": 503,  # the data dir cannot take the run's record: nothing is run
    "INTERRUPTED": 503,  # the run was stopped by the shutdown (drain deadline) and recorded as interrupted
}


class ApiError(Exception):
    def __init__(
        self,
        code: str,
        message: str,
        *,
        retry_after: int | None = None,
        error_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ):
        super().__init__(message)
        assert code in STATUS_BY_CODE, code
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.error_id = error_id
        self.headers = dict(headers or {})

    @property
    def status(self) -> int:
        return STATUS_BY_CODE[self.code]

    def response(self, headers: Mapping[str, str] | None = None) -> JSONResponse:
        """The JSON answer, with this error's headers and any `headers` given (a request's rate limit)."""
        # Imported here: `stockade run` formats local results through wire.py without the web stack.
        from fastapi.responses import JSONResponse

        body: dict[str, str] = {"status": "failed", "error": self.code, "message": self.message}
        if self.error_id:
            body["id"] = self.error_id
        sent = {**(headers or {}), **self.headers}
        if self.retry_after is not None:
            sent["Retry-After"] = str(self.retry_after)
        return JSONResponse(body, status_code=self.status, headers=sent or None)
