"""Sample tool inputs from a tool's JSON schema, so tool_use replies validate against it."""

from __future__ import annotations

from typing import Any

MAX_DEPTH = 3


def sample_input(schema: dict[str, Any], hint: str, depth: int = 0) -> dict[str, Any]:
    properties = schema.get("properties") or {}
    wanted = schema.get("required") or list(properties)[:5]
    return {name: sample_value(properties.get(name) or {}, hint, depth + 1) for name in wanted}


def sample_value(schema: dict[str, Any], hint: str, depth: int) -> Any:
    if schema.get("enum"):
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind in ("integer", "number"):
        value = schema.get("minimum", 1)
        return int(value) if kind == "integer" else float(value)
    if kind == "boolean":
        return True
    if kind == "array":
        return [] if depth >= MAX_DEPTH else [sample_value(schema.get("items") or {}, hint, depth + 1)]
    if kind == "object":
        return {} if depth >= MAX_DEPTH else sample_input(schema, hint, depth)
    return hint or "example"
