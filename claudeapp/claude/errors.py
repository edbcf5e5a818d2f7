"""Gateway domain errors, and the one place that turns SDK/transport exceptions into them.

Callers (views, tasks, billing) branch on these classes and their data, never on SDK
exceptions: `retryable` says whether the same request may succeed later, `retry_after`
how long upstream asked us to wait.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx2


class GatewayError(Exception):
    """Base of everything the gateway raises."""


class UpstreamError(GatewayError):
    status: int | None = None
    default_type = "api_error"

    def __init__(
        self,
        message: str = "",
        *,
        status: int | None = None,
        error_type: str | None = None,
        request_id: str | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
        model: str | None = None,
    ) -> None:
        super().__init__(message or self.__class__.__name__)
        self.message = message
        self.status = status if status is not None else self.status
        self.error_type = error_type or self.default_type
        self.request_id = request_id
        self.retryable = retryable
        self.retry_after = retry_after
        self.model = model
        # Every attempt of the gateway call that ended in this error (set by the gateway).
        self.attempts: list[Any] = []
        # Upstream's `anthropic-ratelimit-*` headers on the error reply (from_status), for the caller.
        self.ratelimit_headers: dict[str, str] = {}

    @property
    def counts_for_breaker(self) -> bool:
        # The breaker only hears about upstream being sick (5xx/529/timeouts/connection).
        # 429 is a quota answer from a healthy upstream: the limiter handles it.
        return isinstance(self, UpstreamUnavailable | UpstreamOverloaded)

    def describe(self) -> str:
        status = f"{self.status} " if self.status else ""
        return f"{status}{self.error_type}: {self.message}".strip()

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.describe()!r}, retryable={self.retryable})"


class UpstreamRateLimited(UpstreamError):
    status = 429
    default_type = "rate_limit_error"


class UpstreamOverloaded(UpstreamError):
    status = 529
    default_type = "overloaded_error"


class UpstreamUnavailable(UpstreamError):
    """5xx other than 529, timeouts, connection failures, streams cut short."""

    default_type = "api_error"


class UpstreamBadRequest(UpstreamError):
    status = 400
    default_type = "invalid_request_error"


class UpstreamAuthError(UpstreamError):
    status = 401
    default_type = "authentication_error"


class UpstreamNotFound(UpstreamError):
    status = 404
    default_type = "not_found_error"


class CircuitOpen(GatewayError):
    def __init__(self, model: str) -> None:
        super().__init__(f"circuit open for {model}")
        self.model = model


@dataclass
class ModelFailure:
    model: str
    reason: str  # "circuit_open" or the upstream error_type
    status: int | None = None
    message: str = ""


@dataclass
class NoModelAvailable(GatewayError):
    """Every model in the chain failed or had its circuit open."""

    models: list[str]
    failures: list[ModelFailure] = field(default_factory=list)
    last_error: UpstreamError | None = None
    attempts: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(str(self))

    @property
    def retryable(self) -> bool:
        return True

    @property
    def retry_after(self) -> float | None:
        return self.last_error.retry_after if self.last_error else None

    def __str__(self) -> str:
        reasons = "; ".join(f"{f.model}: {f.reason}" for f in self.failures)
        return f"no model available ({reasons})"


_RETRYABLE_STATUSES = {408, 409, 429}
_CLASS_BY_STATUS: dict[int, type[UpstreamError]] = {
    400: UpstreamBadRequest,
    401: UpstreamAuthError,
    402: UpstreamBadRequest,
    403: UpstreamAuthError,
    404: UpstreamNotFound,
    413: UpstreamBadRequest,
    422: UpstreamBadRequest,
    429: UpstreamRateLimited,
    529: UpstreamOverloaded,
}
# In-stream `event: error` arrives after HTTP 200, so the status says nothing; the body's type does.
_CLASS_BY_TYPE: dict[str, tuple[type[UpstreamError], int]] = {
    "overloaded_error": (UpstreamOverloaded, 529),
    "rate_limit_error": (UpstreamRateLimited, 429),
    "api_error": (UpstreamUnavailable, 500),
    "timeout_error": (UpstreamUnavailable, 504),
    "invalid_request_error": (UpstreamBadRequest, 400),
    "request_too_large": (UpstreamBadRequest, 413),
    "authentication_error": (UpstreamAuthError, 401),
    "permission_error": (UpstreamAuthError, 403),
    "not_found_error": (UpstreamNotFound, 404),
}


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds upstream asked us to wait: `retry-after-ms`, then `retry-after` (seconds or HTTP date)."""
    if not headers:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            return max(float(raw) * scale, 0.0)
        except ValueError:
            parsed = email.utils.parsedate_tz(raw)
            if parsed is not None:
                return max(float(email.utils.mktime_tz(parsed)) - time.time(), 0.0)
    return None


def from_status(
    status: int,
    *,
    error_type: str | None,
    message: str,
    request_id: str | None,
    headers: Mapping[str, str] | None = None,
    model: str | None = None,
) -> UpstreamError:
    cls = _CLASS_BY_STATUS.get(status)
    if cls is None:
        cls = UpstreamUnavailable if status >= 500 else UpstreamBadRequest
    retryable = status in _RETRYABLE_STATUSES or status >= 500
    should_retry = (headers or {}).get("x-should-retry")
    if should_retry in ("true", "false"):
        retryable = should_retry == "true"
    err = cls(
        message,
        status=status,
        error_type=error_type,
        request_id=request_id,
        retryable=retryable,
        retry_after=parse_retry_after(headers),
        model=model,
    )
    prefix = "anthropic-ratelimit-"
    err.ratelimit_headers = {k.lower(): v for k, v in (headers or {}).items() if k.lower().startswith(prefix)}
    return err


def from_stream_error(body: Any, *, request_id: str | None, model: str | None = None) -> UpstreamError:
    """An `event: error` inside a 200 stream: classify by the body's error.type."""
    error = body.get("error", {}) if isinstance(body, dict) else {}
    error_type = str(error.get("type") or "api_error")
    message = str(error.get("message") or "stream error")
    cls, status = _CLASS_BY_TYPE.get(error_type, (UpstreamUnavailable, 500))
    retryable = status in _RETRYABLE_STATUSES or status >= 500
    return cls(message, status=status, error_type=error_type, request_id=request_id, retryable=retryable, model=model)


def from_exception(exc: BaseException, *, model: str | None = None) -> UpstreamError:
    """Map an SDK or transport exception (raised by a call or while reading a stream)."""
    if isinstance(exc, UpstreamError):
        return exc
    if isinstance(exc, anthropic.APIStatusError):
        if exc.status_code == 200:
            return from_stream_error(exc.body, request_id=exc.request_id, model=model)
        return from_status(
            exc.status_code,
            error_type=exc.type,
            message=exc.api_message or exc.message,
            request_id=exc.request_id,
            headers=exc.response.headers,
            model=model,
        )
    if isinstance(exc, anthropic.APITimeoutError | httpx2.TimeoutException):
        return UpstreamUnavailable("upstream timed out", error_type="timeout", retryable=True, model=model)
    if isinstance(exc, anthropic.APIConnectionError | httpx2.TransportError):
        return UpstreamUnavailable(
            f"connection failed: {exc.__class__.__name__}", error_type="connection_error", retryable=True, model=model
        )
    raise TypeError(f"not an upstream exception: {exc!r}") from exc


UPSTREAM_EXCEPTIONS: tuple[type[BaseException], ...] = (anthropic.APIError, httpx2.TransportError)
