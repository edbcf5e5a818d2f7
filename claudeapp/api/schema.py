"""OpenAPI pieces: the partner-key security schemes and the error shape on every operation."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension

_ERROR_STATUSES = {
    "400": "Invalid request: the first failing field is named in `error.field` (on /anthropic, at the start of "
    "`error.message`). Bodies: JSON objects only, nested at most API_MAX_JSON_DEPTH (64) levels, no NUL, "
    "invalid UTF-8 or lone surrogates in keys or strings, no NaN or Infinity.",
    "401": "Missing, malformed, unknown, revoked or expired API key.",
    "403": "The API key lacks the scope this endpoint needs.",
    "404": "Not found.",
    "413": "Request body larger than API_MAX_BODY_BYTES (10 MB by default), counted as it arrives (chunked too).",
    "429": "Rate limited; see `retry-after`.",
    "500": "Unexpected error; quote `request_id` when reporting it.",
}

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error", "request_id"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["type", "message", "field"],
            "properties": {
                "type": {"type": "string", "example": "invalid_request_error"},
                "message": {"type": "string", "example": "max_tokens: A valid integer is required."},
                "field": {"type": "string", "nullable": True, "example": "max_tokens"},
                "budget": {
                    "type": "object",
                    "description": "On a 402: the budget that refused and what is left of it",
                    "properties": {
                        "id": {"type": "integer", "nullable": True},
                        "scope": {"type": "string"},
                        "scope_id": {"type": "integer", "nullable": True},
                        "period": {"type": "string", "nullable": True},
                        "limit_micros": {"type": "integer"},
                        "spent_micros": {"type": "integer"},
                        "held_micros": {"type": "integer"},
                        "remaining_micros": {"type": "integer"},
                        "requested_micros": {"type": "integer"},
                        "resets_at": {"type": "string", "format": "date-time"},
                        "reason": {"type": "string", "enum": ["exhausted", "insufficient"]},
                    },
                },
                "limit": {
                    "type": "object",
                    "description": "On a 429: the limit that refused",
                    "properties": {
                        "axis": {"type": "string", "nullable": True},
                        "scope": {"type": "string", "nullable": True},
                        "limit": {"type": "integer", "nullable": True},
                        "retry_after_seconds": {"type": "number"},
                    },
                },
            },
        },
        "request_id": {"type": "string", "example": "req_0f6c4c1e1c5e4a4f9b1d2c3e4f5a6b7c"},
    },
}

ANTHROPIC_ERROR_SCHEMA = {
    "type": "object",
    "required": ["type", "error", "request_id"],
    "properties": {
        "type": {"type": "string", "enum": ["error"]},
        "error": {
            "type": "object",
            "required": ["type", "message"],
            "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
        },
        "request_id": {"type": "string"},
    },
}


class PartnerKeyScheme(OpenApiAuthenticationExtension):
    target_class = "claudeapp.api.auth.PartnerKeyAuthentication"
    name = ["PartnerKeyBearer", "PartnerKeyHeader"]

    def get_security_requirement(self, auto_schema: Any) -> list[dict[str, list[Any]]]:
        return [{"PartnerKeyBearer": []}, {"PartnerKeyHeader": []}]  # either header, not both

    def get_security_definition(self, auto_schema: Any) -> list[dict[str, Any]]:
        described = "Partner key `cgw_...`, shown once when it is created."
        return [
            {"type": "http", "scheme": "bearer", "description": described},
            {"type": "apiKey", "in": "header", "name": "x-api-key", "description": described},
        ]


# --- response headers and the statuses only some operations answer ------------------------------

_HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-Id": {"description": "The request's id (yours when you sent a valid one); quote it in reports"},
    "Request-Id": {"description": "Same as x-request-id, under the name Anthropic's SDKs read (/anthropic only)"},
    "Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "integer"}},
    "X-RateLimit-Limit-Requests": {"description": "Your tightest requests-per-minute limit"},
    "X-RateLimit-Remaining-Requests": {"description": "Requests left in it now"},
    "X-RateLimit-Reset-Requests": {"description": "Seconds until it is whole again"},
    "X-RateLimit-Limit-Tokens": {"description": "Your tightest tokens-per-minute limit (input or output)"},
    "X-RateLimit-Remaining-Tokens": {"description": "Tokens left in it now"},
    "X-RateLimit-Reset-Tokens": {"description": "Seconds until it is whole again"},
    "X-Budget-Limit": {"description": "The refusing budget's limit, micro-dollars", "schema": {"type": "integer"}},
    "X-Budget-Remaining": {"description": "What is left of it (limit - spent - held)", "schema": {"type": "integer"}},
    "X-Budget-Held": {"description": "Held by your calls in flight, micro-dollars", "schema": {"type": "integer"}},
    "X-Budget-Reset": {"description": "When its period ends (RFC 3339)", "schema": {"type": "string"}},
    "X-Route-Model": {"description": "The model the router chose"},
    "X-Route-Reason": {"description": "Why (rule, classifier label, requested model)"},
    "Location": {"description": "The job's URL"},
    "Idempotent-Replayed": {
        "description": "`true` when an Idempotency-Key was replayed: the body is the original job",
        "schema": {"type": "string", "enum": ["true"]},
    },
}
_RATE = [f"X-RateLimit-{part}-{axis}" for axis in ("Requests", "Tokens") for part in ("Limit", "Remaining", "Reset")]
_BUDGET = ["X-Budget-Limit", "X-Budget-Remaining", "X-Budget-Held", "X-Budget-Reset"]
_BY_STATUS = {"402": _BUDGET, "429": ["Retry-After", *_RATE], "503": ["Retry-After"], "529": ["Retry-After"]}

# Operations that make (or queue) a billed call: the budget, the rate limits and overload apply.
_BILLED = {"messages_create", "jobs_create", "jobs_requeue", "anthropic_messages_create"}
_ROUTED = {"messages_create", "anthropic_messages_create"}  # answer with the route and your limits
_CONFLICTS = {"jobs_create": "Idempotency-Key reused with another body", "jobs_cancel": "The job already started "
              "or ended", "jobs_requeue": "The job is not dead, failed or canceled", "jobs_discard": "The job has "
              "not ended"}  # fmt: skip
_EXTRA_STATUSES = {
    "402": "A budget cannot take this call's worst case. `error.budget` names it (id, scope, period) with its "
    "limit, spent, held and remaining micro-dollars, `resets_at`, and `reason`: `exhausted` (used up) or "
    "`insufficient` (a lower max_tokens may fit); the x-budget-* headers repeat the figures.",
    "529": "No model can answer now (`overloaded_error`, as Anthropic answers); retry after `retry-after`.",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/headers/{name}"}


def _error_content(name: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}


def _document_operation(path: str, operation: dict[str, Any], error_name: str) -> None:
    responses = operation.setdefault("responses", {})
    op_id = operation.get("operationId", "")
    for status, description in _ERROR_STATUSES.items():
        responses.setdefault(status, {"description": description, "content": _error_content(error_name)})
    if op_id in _BILLED:
        for status, description in _EXTRA_STATUSES.items():
            responses.setdefault(status, {"description": description, "content": _error_content(error_name)})
    if op_id in _CONFLICTS:
        responses.setdefault("409", {"description": _CONFLICTS[op_id], "content": _error_content(error_name)})
    for status, response in responses.items():
        names = ["X-Request-Id", *(["Request-Id"] if path.startswith("/anthropic/") else [])]
        names += _BY_STATUS.get(str(status), [])
        if op_id in _ROUTED and str(status) in ("200", "202"):
            names += ["X-Route-Model", "X-Route-Reason", *_RATE]
        if op_id in ("jobs_create", "jobs_requeue") and str(status) == "202":
            names += ["Location", *(["Idempotent-Replayed"] if op_id == "jobs_create" else [])]
        headers = response.setdefault("headers", {})
        for name in names:
            headers.setdefault(name, _ref(name))


def add_error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Postprocessing hook: every operation documents the error statuses with the shared Error component,
    the statuses only billed or stateful operations answer (402, 409, 529), and every response header."""
    components = result.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    schemas["AnthropicError"] = ANTHROPIC_ERROR_SCHEMA
    headers = components.setdefault("headers", {})
    for name, header in _HEADERS.items():
        headers.setdefault(name, {"schema": {"type": "string"}, **header})
    for path, operations in result.get("paths", {}).items():
        name = "AnthropicError" if path.startswith("/anthropic/") else "Error"
        for operation in operations.values():
            _document_operation(path, operation, name)
    return result
