"""The SDK's errors: one exception class per API error code, and the mapping of a response to one."""

from __future__ import annotations

import email.utils
import math
from datetime import UTC, datetime
from typing import Any

import httpx


class StockadeError(Exception):
    """An API call that did not produce an execution. `code` is the API's error code."""

    CODE = ""

    def __init__(
        self,
        code: str,
        message: str,
        status_code: int | None = None,
        error_id: str | None = None,
        *,
        retry_after: float | None = None,
    ) -> None:
        text = f"{code}: {message}"
        if error_id:
            text += f" (error id {error_id})"
        super().__init__(text)
        self.code = code
        self.message = message
        self.status_code = status_code
        self.error_id = error_id
        # Seconds the server asked us to wait (Retry-After), when it said so.
        self.retry_after = retry_after


class InvalidRequest(StockadeError):
    CODE = "INVALID_REQUEST"


class UnknownLanguage(StockadeError):
    CODE = "UNKNOWN_LANGUAGE"


class ToolchainMissing(StockadeError):
    CODE = "TOOLCHAIN_MISSING"


class VersionUnavailable(ToolchainMissing):
    """The language is there, but not the version asked for (the message lists those available)."""

    CODE = "VERSION_UNAVAILABLE"


class LimitOutOfRange(StockadeError):
    CODE = "LIMIT_OUT_OF_RANGE"


class PayloadTooLarge(StockadeError):
    CODE = "PAYLOAD_TOO_LARGE"


class Unauthenticated(StockadeError):
    CODE = "UNAUTHENTICATED"


class Forbidden(StockadeError):
    CODE = "FORBIDDEN"


class RateLimited(StockadeError):
    CODE = "RATE_LIMITED"


class QuotaExceeded(StockadeError):
    CODE = "QUOTA_EXCEEDED"


class Overloaded(StockadeError):
    CODE = "OVERLOADED"


class InternalError(StockadeError):
    CODE = "INTERNAL_ERROR"


class UnexpectedResponse(StockadeError):
    """The server answered something outside the API contract (wrong URL, proxy page, bad JSON)."""

    CODE = "UNEXPECTED_RESPONSE"


class ConnectionFailed(StockadeError):
    """No HTTP answer at all: refused, DNS failure, TLS error, timeout..."""

    CODE = "CONNECTION_FAILED"

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(self.CODE, message)
        self.url = url


_ERRORS_BY_CODE: dict[str, type[StockadeError]] = {
    cls.CODE: cls
    for cls in (
        InvalidRequest,
        UnknownLanguage,
        ToolchainMissing,
        VersionUnavailable,
        LimitOutOfRange,
        PayloadTooLarge,
        Unauthenticated,
        Forbidden,
        RateLimited,
        QuotaExceeded,
        Overloaded,
        InternalError,
    )
}

# Used only when a body carries no error code (e.g. a reverse proxy's own 503 page).
_ERRORS_BY_STATUS: dict[int, type[StockadeError]] = {
    401: Unauthenticated,
    403: Forbidden,
    413: PayloadTooLarge,
    429: RateLimited,
    500: InternalError,
    503: Overloaded,
}


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date."""
    if value is None or not value.strip():
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)


def error_from_response(response: httpx.Response) -> StockadeError:
    """Map a non-success HTTP response to the matching exception."""
    status = response.status_code
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    try:
        data = response.json()
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        code = data["error"]
        message = str(data.get("message") or code)
        error_id = data.get("id")
        cls = _ERRORS_BY_CODE.get(code, StockadeError)
        return cls(
            code,
            message,
            status,
            str(error_id) if error_id is not None else None,
            retry_after=retry_after,
        )
    fallback = _ERRORS_BY_STATUS.get(status)
    snippet = response.text[:200].strip() or response.reason_phrase
    if fallback is not None:
        return fallback(fallback.CODE, f"HTTP {status}: {snippet}", status, retry_after=retry_after)
    return UnexpectedResponse(
        UnexpectedResponse.CODE,
        f"HTTP {status} from {response.request.url} is not a Stockade API answer: {snippet}",
        status,
    )


def json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise UnexpectedResponse(
            UnexpectedResponse.CODE,
            f"expected a JSON object from {response.request.url}, got: {response.text[:200]!r}",
            response.status_code,
        )
    return data
