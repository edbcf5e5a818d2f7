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


def add_error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Postprocessing hook: every operation documents the error statuses with the shared Error component."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    schemas["AnthropicError"] = ANTHROPIC_ERROR_SCHEMA
    for path, operations in result.get("paths", {}).items():
        name = "AnthropicError" if path.startswith("/anthropic/") else "Error"
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status, description in _ERROR_STATUSES.items():
                responses.setdefault(
                    status,
                    {
                        "description": description,
                        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}},
                    },
                )
    return result
