"""API errors in the real wire shape and with the real status codes."""

from __future__ import annotations

import json

ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}

DEFAULT_MESSAGES: dict[int, str] = {
    400: "Invalid request",
    401: "invalid x-api-key",
    402: "Your credit balance is too low to access the Anthropic API.",
    403: "Your API key does not have permission to use the specified resource.",
    404: "Not found",
    408: "Request timed out",
    409: "Conflict",
    413: "Request exceeds the maximum allowed number of bytes.",
    429: "This request would exceed the rate limit for your organization. Please reduce the prompt "
    "length or the maximum tokens requested, or try again later.",
    500: "Internal server error",
    503: "Service unavailable",
    504: "Request timed out",
    529: "Overloaded",
}


class ApiError(Exception):
    """Raised anywhere in a handler; the app turns it into an error response."""

    def __init__(self, status: int, message: str | None = None, headers: dict[str, str] | None = None):
        self.status = status
        self.error_type = ERROR_TYPES.get(status, "api_error")
        self.message = message or DEFAULT_MESSAGES.get(status, "Error")
        self.headers = headers or {}
        super().__init__(f"{status} {self.error_type}: {self.message}")


def invalid(message: str) -> ApiError:
    return ApiError(400, message)


def error_object(error_type: str, message: str, request_id: str | None) -> dict[str, object]:
    return {"type": "error", "error": {"type": error_type, "message": message}, "request_id": request_id}


def error_body(err: ApiError, request_id: str) -> bytes:
    return json.dumps(error_object(err.error_type, err.message, request_id)).encode()
