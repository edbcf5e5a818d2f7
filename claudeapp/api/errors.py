"""The API's error shape, and the one place any exception becomes an error response.

/api/v1 answers `{"error": {"type", "message", "field"}, "request_id"}`; /anthropic answers
Anthropic's own shape `{"type": "error", "error": {"type", "message"}, "request_id"}` with the
same statuses, so the official SDK raises its own exception classes. Other packages' domain
errors join through `register_error`, called once from ApiConfig.ready() (claudeapp/api/apps.py).
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import set_rollback

from claudeapp.api import requestid
from claudeapp.calls.errors import BUDGET, LIMIT, REFUSAL_STATUS
from claudeapp.core import unavailable

logger = logging.getLogger(__name__)

ANTHROPIC_PREFIX = "/anthropic/"
NO_CREDENTIALS = "No API key provided: send `Authorization: Bearer <key>` or `x-api-key: <key>`."
TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


# --- this package's domain errors -------------------------------------------------------


class InvalidKey(Exception):
    """A partner key that does not authenticate. `reason` is for logs; callers see a generic message."""

    MESSAGES = {"revoked": "This API key has been revoked.", "expired": "This API key has expired."}

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(self.MESSAGES.get(reason, "Invalid API key."))


class UnknownScope(ValueError):
    def __init__(self, scope: str) -> None:
        self.scope = scope
        super().__init__(f"unknown scope {scope!r}")


class Conflict(exceptions.APIException):
    status_code = 409
    default_detail = "The request conflicts with the current state of the resource."
    default_code = "conflict"


class RequestTooLarge(exceptions.APIException):
    status_code = 413
    default_detail = "Request body is too large."
    default_code = "request_too_large"


# --- the registry -----------------------------------------------------------------------

MessageFn = Callable[[Any], str]
HeadersFn = Callable[[Any], dict[str, str]]


@dataclass(frozen=True)
class _Mapping:
    status: int
    type: str
    message_fn: MessageFn
    headers_fn: HeadersFn | None
    anthropic_type: str | None = None
    field: str | None = None
    info_fn: Callable[[Any], ErrorInfo] | None = None  # the whole answer, for errors whose status depends on data


@dataclass
class ErrorInfo:
    status: int
    type: str
    message: str
    field: str | None = None
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    anthropic_type: str | None = None  # where /anthropic must say it in Anthropic's own vocabulary
    # More about the error for /api/v1's `error` object, e.g. {"budget": {...}} on a 402.
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


_registry: dict[type[BaseException], _Mapping] = {}
_optional_registered = False
_registry_lock = threading.Lock()


def register_error(
    exc_class: type[BaseException],
    status: int,
    type: str,
    message_fn: MessageFn = str,
    *,
    headers_fn: HeadersFn | None = None,
    anthropic_type: str | None = None,
    field: str | None = None,
    info_fn: Callable[[Any], ErrorInfo] | None = None,
) -> None:
    """Map a domain exception (and its subclasses) to an API error. Later registrations win.

    `info_fn`, when given, builds the whole ErrorInfo (the status may depend on the exception's data);
    status, type and message_fn then only document the usual case."""
    _registry[exc_class] = _Mapping(status, type, message_fn, headers_fn, anthropic_type, field, info_fn)


def _registered(exc: BaseException) -> _Mapping | None:
    for cls in type(exc).__mro__:
        found = _registry.get(cls)
        if found is not None:
            return found
    return None


def retry_after_headers(seconds: float | None, extra: dict[str, str] | None = None) -> dict[str, str]:
    headers = dict(extra or {})
    if seconds is not None:
        headers["retry-after"] = str(max(1, math.ceil(seconds)))
    return headers


def register_defaults() -> None:
    """The API's own errors, the database's, and billing's, the gateway's and routing's (ApiConfig.ready
    builds the registry once: these first, then each API module's own, which may override them)."""
    global _optional_registered
    if _optional_registered:
        return
    with _registry_lock:
        if _optional_registered:
            return
        _register_own()
        billing = _module("billing.errors")
        if billing is not None:
            # The statuses of calls/errors.py's one table of refusals, which the request log writes too.
            budget, limit = REFUSAL_STATUS[BUDGET], REFUSAL_STATUS[LIMIT]
            _maybe(billing, "BudgetExceeded", budget, "budget_exceeded", _budget_message, _budget_headers, _budget_info)
            _maybe(billing, "RateLimited", limit, "rate_limit_error", _rate_message, _rate_headers, _rate_info)
        gateway = _module("claudeapp.claude.errors")
        if gateway is not None:
            _maybe(gateway, "NoModelAvailable", OVERLOADED, "overloaded_error", _no_model_message, None, _no_model)
        routing = _module("routing.errors")
        if routing is not None:  # the same answer on every surface: 404 naming `model`, as Anthropic answers
            for name in ("UnknownModel", "ModelDisabled"):
                _maybe(routing, name, 404, "not_found_error", _unknown_model_message, field="model")
        _optional_registered = True


# One status for "no model can answer now" on every surface: 529 `overloaded_error`, what Anthropic
# itself answers (the SDK retries it and raises OverloadedError). 503 stays for our own outages (database).
OVERLOADED = 529


def _budget_message(exc: Any) -> str:
    return exc.explain() if hasattr(exc, "explain") else f"Budget exceeded; it resets at {exc.resets_at.isoformat()}."


def _budget_headers(exc: Any) -> dict[str, str]:
    """x-budget-* on a 402, so a client can act without parsing the body (amounts in micro-dollars)."""
    detail = exc.detail()
    return {
        "x-budget-limit": str(detail["limit_micros"]),
        "x-budget-remaining": str(detail["remaining_micros"]),
        "x-budget-held": str(detail["held_micros"]),
        "x-budget-reset": detail["resets_at"],
    }


def _budget_info(exc: Any) -> ErrorInfo:
    message, headers = _budget_message(exc), _budget_headers(exc)
    return ErrorInfo(
        REFUSAL_STATUS[BUDGET], "budget_exceeded", message, headers=headers, extra={"budget": exc.detail()}
    )


def _rate_message(exc: Any) -> str:
    return exc.explain() if hasattr(exc, "explain") else "Rate limit exceeded."


def _rate_headers(exc: Any) -> dict[str, str]:
    return retry_after_headers(exc.retry_after_seconds, exc.headers)


def _rate_info(exc: Any) -> ErrorInfo:
    limit = {
        "axis": getattr(exc, "axis", "") or None,
        "scope": getattr(exc, "scope", "") or None,
        "limit": getattr(exc, "limit_value", None),
        "retry_after_seconds": round(exc.retry_after_seconds, 3),
    }
    message, headers = _rate_message(exc), _rate_headers(exc)
    return ErrorInfo(REFUSAL_STATUS[LIMIT], "rate_limit_error", message, headers=headers, extra={"limit": limit})


def _no_model_message(exc: Any) -> str:
    return "No model is available right now; retry later."


def _no_model(exc: Any) -> ErrorInfo:
    """Upstream's own rate limit (429, with its retry-after) is reported as such, not as an overload."""
    last = exc.last_error
    headers = retry_after_headers(exc.retry_after or 1.0)
    if last is not None and last.status == 429:
        message = "The upstream API is rate limiting this gateway; retry later."
        return ErrorInfo(429, "rate_limit_error", message, headers=headers, extra={"limit": {"axis": "upstream"}})
    return ErrorInfo(OVERLOADED, "overloaded_error", _no_model_message(exc), headers=headers)


def _unknown_model_message(exc: Any) -> str:
    return f"model: {exc.name!r} is not a model this gateway serves."


def _module(name: str) -> Any:
    package = name.rpartition(".")[0]
    try:
        if importlib.util.find_spec(package) is None or importlib.util.find_spec(name) is None:
            return None
        return importlib.import_module(name)
    except Exception:  # a half-written module must not turn every error response into a crash
        logger.exception("could not import %s; its errors answer 500 until it imports", name)
        return None


def _maybe(
    module: Any,
    name: str,
    status: int,
    type_: str,
    message_fn: MessageFn,
    headers_fn: HeadersFn | None = None,
    info_fn: Callable[[Any], ErrorInfo] | None = None,
    *,
    field: str | None = None,
) -> None:
    cls = getattr(module, name, None)
    if isinstance(cls, type) and cls not in _registry:
        register_error(cls, status, type_, message_fn, headers_fn=headers_fn, field=field, info_fn=info_fn)


def _register_own() -> None:
    register_error(InvalidKey, 401, "authentication_error")
    register_error(UnknownScope, 400, "invalid_request_error")
    # Postgres unreachable (down, restarting, pool exhausted): retryable, so 503 with retry-after, which the
    # anthropic SDK retries; Anthropic's vocabulary has no "unavailable" type, its 5xx type is api_error.
    for db_error in unavailable.DATABASE_ERRORS:
        register_error(
            db_error,
            503,
            "service_unavailable",
            lambda e: unavailable.MESSAGE,
            headers_fn=lambda e: retry_after_headers(unavailable.RETRY_AFTER_SECONDS),
            anthropic_type="api_error",
        )


# --- exception -> ErrorInfo -------------------------------------------------------------


def first_error(detail: Any, path: tuple[str, ...] = ()) -> tuple[str | None, str]:
    """The first failing field of a DRF error detail as a dotted path ('messages.0.content'), and its message."""
    if isinstance(detail, dict):
        for name, value in detail.items():
            if _has_error(value):
                nested = path if name in ("non_field_errors", "__all__") else (*path, str(name))
                return first_error(value, nested)
    elif isinstance(detail, list):
        for index, value in enumerate(detail):
            if _has_error(value):
                nested = path if isinstance(value, str) else (*path, str(index))
                return first_error(value, nested)
    elif detail:
        return (".".join(path) or None, str(detail))
    return (".".join(path) or None, "Invalid request.")


def _has_error(value: Any) -> bool:
    return bool(value) if isinstance(value, dict | list) else value is not None and str(value) != ""


def describe(exc: BaseException) -> ErrorInfo:
    """What the caller is told about `exc`: status, error type, message, failing field, extra headers."""
    try:
        return _describe(exc)
    except Exception:  # a broken message_fn must still yield a response, not a crash in the handler
        logger.exception("could not describe %r", exc)
        return ErrorInfo(500, "api_error", "Internal server error.")


def _describe(exc: BaseException) -> ErrorInfo:
    mapping = _registered(exc)
    if mapping is not None and mapping.info_fn is not None:
        return mapping.info_fn(exc)
    if mapping is not None:
        headers = mapping.headers_fn(exc) if mapping.headers_fn else {}
        message = mapping.message_fn(exc)
        return ErrorInfo(
            mapping.status, mapping.type, message, mapping.field, headers=headers, anthropic_type=mapping.anthropic_type
        )
    if isinstance(exc, Http404):
        return ErrorInfo(404, "not_found_error", "Not found.")
    if isinstance(exc, DjangoPermissionDenied):
        return ErrorInfo(403, "permission_error", "You do not have permission to perform this action.")
    if isinstance(exc, RequestDataTooBig):
        return ErrorInfo(413, "request_too_large", "Request body is too large.")
    if isinstance(exc, exceptions.ValidationError):
        name, message = first_error(exc.detail)
        return ErrorInfo(400, "invalid_request_error", f"{name}: {message}" if name else message, name)
    if isinstance(exc, exceptions.APIException):
        return _describe_drf(exc)
    return ErrorInfo(500, "api_error", "Internal server error.")


def _describe_drf(exc: exceptions.APIException) -> ErrorInfo:
    status = exc.status_code
    error_type = TYPE_BY_STATUS.get(status, "invalid_request_error" if status < 500 else "api_error")
    if isinstance(exc, exceptions.ParseError):
        # DRF's own parsers (browser views) say "JSON parse error - <decoder detail>"; ours say what is wrong.
        detail = str(exc.detail)
        message = "Request body is not valid JSON." if detail.startswith("JSON parse error") else detail
    elif isinstance(exc, exceptions.NotAuthenticated):
        message = NO_CREDENTIALS
    else:
        message = first_error(exc.detail)[1]
    headers: dict[str, str] = {}
    if isinstance(exc, exceptions.Throttled):
        headers = retry_after_headers(exc.wait)
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header  # type: ignore[attr-defined]
    return ErrorInfo(status, error_type, message, headers=headers)


# --- rendering ----------------------------------------------------------------------------


def is_anthropic_path(path: str) -> bool:
    return path.startswith(ANTHROPIC_PREFIX)


def api_error_body(info: ErrorInfo, request_id: str) -> dict[str, Any]:
    error = {"type": info.type, "message": info.message, "field": info.field, **info.extra}
    return {"error": error, "request_id": request_id}


def anthropic_error_body(info: ErrorInfo, request_id: str) -> dict[str, Any]:
    error_type = info.anthropic_type or info.type
    return {"type": "error", "error": {"type": error_type, "message": info.message}, "request_id": request_id}


def _body_for(request: HttpRequest | None, info: ErrorInfo) -> dict[str, Any]:
    rid = requestid.of(request)
    if request is not None and is_anthropic_path(request.path):
        return anthropic_error_body(info, rid)
    return api_error_body(info, rid)


def _log(request: HttpRequest | None, exc: BaseException, info: ErrorInfo) -> None:
    if info.status >= 500 and info.status != OVERLOADED:  # an overload is upstream's state, not our bug
        logger.error(
            "api %s %s failed (request id %s)",
            getattr(request, "method", "-"),
            getattr(request, "path", "-"),
            requestid.of(request),
            exc_info=exc,
        )


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF's EXCEPTION_HANDLER: every exception becomes the error shape; nothing is re-raised."""
    request = context.get("request")
    django_request = getattr(request, "_request", request)
    info = describe(exc)
    _log(django_request, exc, info)
    set_rollback()
    response = Response(_body_for(django_request, info), status=info.status, headers=info.headers)
    response.reason_phrase = REASONS.get(info.status, response.reason_phrase)
    return response


# Statuses the http module has no phrase for (Django would say "Unknown Status Code").
REASONS = {529: "Overloaded"}


def _json(body: dict[str, Any], status: int, headers: dict[str, str] | None) -> JsonResponse:
    response = JsonResponse(body, status=status, reason=REASONS.get(status))
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def api_error_response(
    *,
    status: int,
    type: str,
    message: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
    request: HttpRequest | None = None,
) -> JsonResponse:
    """The /api/v1 error shape, for plain (async) Django views."""
    return _json(api_error_body(ErrorInfo(status, type, message, field), requestid.of(request)), status, headers)


def anthropic_error_response(
    *,
    status: int,
    type: str,
    message: str,
    headers: dict[str, str] | None = None,
    request: HttpRequest | None = None,
) -> JsonResponse:
    """Anthropic's error shape, for the /anthropic views, so the SDK raises its own exception classes."""
    return _json(anthropic_error_body(ErrorInfo(status, type, message), requestid.of(request)), status, headers)


def error_response_for(request: HttpRequest, exc: BaseException) -> JsonResponse:
    """Any exception as a response in the shape the request's path calls for (for async views and middleware)."""
    info = describe(exc)
    _log(request, exc, info)
    return _json(_body_for(request, info), info.status, info.headers)


def response_for(request: HttpRequest, info: ErrorInfo) -> JsonResponse:
    return _json(_body_for(request, info), info.status, info.headers)
