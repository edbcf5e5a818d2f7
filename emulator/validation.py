"""Validate a Messages request body like the API does and normalise it into a MessageRequest.

Messages are normalised so every `content` is a list of blocks and consecutive same-role turns
are merged. Error messages follow the API's "path: problem" style.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from emulator.errors import invalid

V2023 = "2023-06-01"
V2026 = "2026-10-21"
API_VERSIONS = frozenset({V2023, V2026})

COMMON_KEYS = frozenset(
    {
        "model",
        "messages",
        "system",
        "tools",
        "tool_choice",
        "thinking",
        "cache_control",
        "output_config",
        "speed",
        "user_profile_id",
        "workspace_id",
        "context_management",
        "mcp_servers",
    }
)
CREATE_KEYS = frozenset(
    {"max_tokens", "stream", "stop_sequences", "metadata", "service_tier", "inference_geo", "container", "diagnostics"}
)
SAMPLING_KEYS = ("temperature", "top_p", "top_k")
BLOCK_TYPES = frozenset(
    {"text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking", "search_result"}
)
ASSISTANT_ONLY = frozenset({"tool_use", "thinking", "redacted_thinking"})
USER_ONLY = frozenset({"tool_result", "image"})
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
MAX_BREAKPOINTS = 4


@dataclass
class MessageRequest:
    model: str
    messages: list[dict[str, Any]]
    system: list[dict[str, Any]] = field(default_factory=list)
    max_tokens: int = 0
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: dict[str, Any] | None = None
    stop_sequences: list[str] = field(default_factory=list)
    stream: bool = False
    thinking: dict[str, Any] | None = None
    cache_control: dict[str, Any] | None = None

    @property
    def is_prefill(self) -> bool:
        return self.messages[-1]["role"] == "assistant"


def validate_request(body: Any, version: str, *, count_only: bool = False) -> MessageRequest:
    """Validate a /v1/messages (or count_tokens when count_only) body; raise ApiError(400) on problems."""
    if not isinstance(body, dict):
        raise invalid("Request body must be a JSON object")
    _check_keys(body, version, count_only)
    model = _require(body, "model")
    if not isinstance(model, str) or not model:
        raise invalid("model: Input should be a valid string")
    req = MessageRequest(model=model, messages=_messages(_require(body, "messages"), version))
    req.system = _system(body.get("system"))
    req.tools = _tools(body.get("tools"))
    req.tool_choice = _tool_choice(body.get("tool_choice"), req.tools)
    req.cache_control = _cache_control(body.get("cache_control"), "cache_control")
    if not count_only:
        _create_fields(body, req, version)
    req.thinking = _thinking(body.get("thinking"), None if count_only else req.max_tokens)
    _check_breakpoints(req)
    return req


def _check_keys(body: dict[str, Any], version: str, count_only: bool) -> None:
    allowed = COMMON_KEYS if count_only else COMMON_KEYS | CREATE_KEYS
    for key in body:
        if key in SAMPLING_KEYS and not count_only:
            if version == V2023:
                continue
            raise invalid(f"{key}: is not supported with anthropic-version {version}; remove it")
        if key not in allowed:
            raise invalid(f"{key}: Extra inputs are not permitted")


def _require(body: dict[str, Any], key: str) -> Any:
    if key not in body:
        raise invalid(f"{key}: Field required")
    return body[key]


def _create_fields(body: dict[str, Any], req: MessageRequest, version: str) -> None:
    max_tokens = _require(body, "max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 0:
        raise invalid("max_tokens: Input should be a valid non-negative integer")
    req.max_tokens = max_tokens
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise invalid("stream: Input should be a valid boolean")
    req.stream = stream
    req.stop_sequences = _stop_sequences(body.get("stop_sequences"))
    _metadata(body.get("metadata"))
    if version == V2023:
        _sampling(body)


def _sampling(body: dict[str, Any]) -> None:
    for key, upper in (("temperature", 1.0), ("top_p", 1.0)):
        value = body.get(key)
        if value is None:
            continue
        if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= upper:
            raise invalid(f"{key}: Input should be a number between 0 and {upper:g}")
    top_k = body.get("top_k")
    if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 0):
        raise invalid("top_k: Input should be a non-negative integer")
    thinking = body.get("thinking") or {}
    if thinking.get("type") == "enabled" and body.get("temperature") not in (None, 1, 1.0):
        raise invalid("`temperature` may only be set to 1 when thinking is enabled.")


def _stop_sequences(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise invalid("stop_sequences: Input should be a valid list of strings")
    for s in value:
        if not s.strip():
            raise invalid("stop_sequences: each stop sequence must contain non-whitespace")
    return value


def _metadata(value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise invalid("metadata: Input should be a valid dictionary")
    for key, item in value.items():
        if key != "user_id":
            raise invalid(f"metadata.{key}: Extra inputs are not permitted")
        if item is not None and (not isinstance(item, str) or len(item) > 256):
            raise invalid("metadata.user_id: String should have at most 256 characters")


def _system(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if isinstance(value, str):
        return [{"type": "text", "text": value}] if value else []
    if not isinstance(value, list):
        raise invalid("system: Input should be a valid string or list of text blocks")
    for i, block in enumerate(value):
        if not isinstance(block, dict) or block.get("type") != "text":
            raise invalid(f"system.{i}.type: Input should be 'text'")
        _text_block(block, f"system.{i}", "user", V2023)
        if "cache_control" in block:
            _cache_control(block["cache_control"], f"system.{i}.cache_control")
    return value


def _messages(value: Any, version: str) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise invalid("messages: Input should be a valid list")
    if not value:
        raise invalid("messages: at least one message is required")
    merged: list[dict[str, Any]] = []
    for i, message in enumerate(value):
        role, blocks = _message(message, i, version)
        if merged and merged[-1]["role"] == role:
            merged[-1]["content"].extend(blocks)
        else:
            merged.append({"role": role, "content": blocks})
    if merged[0]["role"] != "user":
        raise invalid('messages: first message must use the "user" role')
    _check_nonempty(merged)
    _check_tool_pairs(merged)
    return merged


def _message(message: Any, i: int, version: str) -> tuple[str, list[dict[str, Any]]]:
    if not isinstance(message, dict):
        raise invalid(f"messages.{i}: Input should be a valid dictionary")
    role = message.get("role")
    if role not in ("user", "assistant"):
        raise invalid(f"messages.{i}.role: Input should be 'user' or 'assistant'")
    content = _require_field(message, "content", f"messages.{i}")
    if isinstance(content, str):
        return role, ([{"type": "text", "text": content}] if content else [])
    if not isinstance(content, list):
        raise invalid(f"messages.{i}.content: Input should be a valid string or list")
    for j, block in enumerate(content):
        _block(block, f"messages.{i}.content.{j}", role, version)
    return role, list(content)


def _require_field(obj: dict[str, Any], key: str, path: str) -> Any:
    if key not in obj:
        raise invalid(f"{path}.{key}: Field required")
    return obj[key]


def _check_nonempty(messages: list[dict[str, Any]]) -> None:
    for i, message in enumerate(messages):
        if not message["content"] and i != len(messages) - 1:
            raise invalid(
                f"messages.{i}: all messages must have non-empty content except for the optional final "
                "assistant message"
            )
        if not message["content"] and message["role"] == "user":
            raise invalid(f"messages.{i}: user messages must have non-empty content")
    last = messages[-1]
    if last["role"] == "assistant" and last["content"]:
        tail = last["content"][-1]
        if tail.get("type") == "text" and tail["text"] != tail["text"].rstrip():
            raise invalid("messages: final assistant content cannot end with trailing whitespace")


def _block(block: Any, path: str, role: str, version: str) -> None:
    if not isinstance(block, dict):
        raise invalid(f"{path}: Input should be a valid dictionary")
    kind = block.get("type")
    if kind not in BLOCK_TYPES:
        raise invalid(f"{path}.type: Input tag '{kind}' does not match any of the expected tags")
    if kind in ASSISTANT_ONLY and role != "assistant":
        raise invalid(f"{path}: `{kind}` blocks are only allowed in assistant messages")
    if kind in USER_ONLY and role != "user":
        raise invalid(f"{path}: `{kind}` blocks are only allowed in user messages")
    if kind == "document" and role == "assistant" and version == V2026:
        raise invalid(f"{path}: `document` blocks are not allowed in assistant messages")
    CHECKS[kind](block, path, role, version)
    if "cache_control" in block:
        if kind in ("thinking", "redacted_thinking"):
            raise invalid(f"{path}.cache_control: thinking blocks cannot be cached directly")
        _cache_control(block["cache_control"], f"{path}.cache_control")


def _text_block(block: dict[str, Any], path: str, role: str, version: str) -> None:
    text = _require_field(block, "text", path)
    if not isinstance(text, str):
        raise invalid(f"{path}.text: Input should be a valid string")
    if not text:
        raise invalid(f"{path}: text content blocks must be non-empty")
    if "citations" in block and role == "user" and version == V2026:
        raise invalid(f"{path}.citations: citations are not allowed on user text blocks")


def _image_block(block: dict[str, Any], path: str, role: str, version: str) -> None:
    source = _require_field(block, "source", path)
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "base64":
        if source.get("media_type") not in IMAGE_TYPES:
            raise invalid(f"{path}.source.media_type: Input should be {', '.join(sorted(IMAGE_TYPES))}")
        if not isinstance(source.get("data"), str):
            raise invalid(f"{path}.source.data: Field required")
    elif kind == "url":
        _require_field(source, "url", f"{path}.source")
    elif kind != "file":
        raise invalid(f"{path}.source.type: Input should be 'base64', 'url' or 'file'")


def _document_block(block: dict[str, Any], path: str, role: str, version: str) -> None:
    source = _require_field(block, "source", path)
    kind = source.get("type") if isinstance(source, dict) else None
    if kind not in ("base64", "text", "content", "url", "file"):
        raise invalid(f"{path}.source.type: Input should be 'base64', 'text', 'content', 'url' or 'file'")
    if kind in ("base64", "text") and not isinstance(source.get("data"), str):
        raise invalid(f"{path}.source.data: Field required")


def _tool_use_block(block: dict[str, Any], path: str, role: str, version: str) -> None:
    for key in ("id", "name"):
        if not isinstance(block.get(key), str):
            raise invalid(f"{path}.{key}: Field required")
    if not isinstance(block.get("input"), dict):
        raise invalid(f"{path}.input: Input should be a valid dictionary")


def _tool_result_block(block: dict[str, Any], path: str, role: str, version: str) -> None:
    if not isinstance(block.get("tool_use_id"), str):
        raise invalid(f"{path}.tool_use_id: Field required")
    content = block.get("content")
    if content is None or isinstance(content, str):
        return
    if not isinstance(content, list):
        raise invalid(f"{path}.content: Input should be a valid string or list")
    for k, inner in enumerate(content):
        _block(inner, f"{path}.content.{k}", "user", version)


def _thinking_block(block: dict[str, Any], path: str, role: str, version: str) -> None:
    if not isinstance(block.get("thinking"), str) or not isinstance(block.get("signature"), str):
        raise invalid(f"{path}: thinking blocks need `thinking` and `signature` strings")


def _redacted_block(block: dict[str, Any], path: str, role: str, version: str) -> None:
    if not isinstance(block.get("data"), str):
        raise invalid(f"{path}.data: Field required")


def _search_result_block(block: dict[str, Any], path: str, role: str, version: str) -> None:
    for key in ("source", "title", "content"):
        _require_field(block, key, path)


CHECKS = {
    "text": _text_block,
    "image": _image_block,
    "document": _document_block,
    "tool_use": _tool_use_block,
    "tool_result": _tool_result_block,
    "thinking": _thinking_block,
    "redacted_thinking": _redacted_block,
    "search_result": _search_result_block,
}


def _check_tool_pairs(messages: list[dict[str, Any]]) -> None:
    """Every tool_use must be answered by a tool_result in the very next (user) turn."""
    for i, message in enumerate(messages[:-1]):
        if message["role"] != "assistant":
            continue
        ids = [b["id"] for b in message["content"] if b.get("type") == "tool_use"]
        answered = {b["tool_use_id"] for b in messages[i + 1]["content"] if b.get("type") == "tool_result"}
        missing = [t for t in ids if t not in answered]
        if missing:
            raise invalid(
                f"messages.{i + 1}: `tool_use` ids were found without `tool_result` blocks immediately "
                f"after: {', '.join(missing)}. Each `tool_use` block must have a corresponding "
                "`tool_result` block in the next message."
            )
        if answered - set(ids):
            raise invalid(
                f"messages.{i + 1}.content: unexpected `tool_use_id` found in `tool_result` blocks: "
                f"{', '.join(sorted(answered - set(ids)))}. Each `tool_result` block must have a "
                "corresponding `tool_use` block in the previous message."
            )


def _tools(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise invalid("tools: Input should be a valid list")
    names: set[str] = set()
    for i, tool in enumerate(value):
        name = _tool(tool, f"tools.{i}")
        if name in names:
            raise invalid("tools: Tool names must be unique.")
        names.add(name)
    return value


def _tool(tool: Any, path: str) -> str:
    if not isinstance(tool, dict):
        raise invalid(f"{path}: Input should be a valid dictionary")
    name = tool.get("name")
    if not isinstance(name, str) or not TOOL_NAME.match(name):
        raise invalid(f"{path}.name: String should match pattern '{TOOL_NAME.pattern}'")
    if tool.get("type", "custom") == "custom":
        schema = tool.get("input_schema")
        if not isinstance(schema, dict) or schema.get("type") != "object":
            raise invalid(f"{path}.input_schema: Input should be a JSON schema with type 'object'")
    if "cache_control" in tool:
        _cache_control(tool["cache_control"], f"{path}.cache_control")
    return name


def _tool_choice(value: Any, tools: list[dict[str, Any]]) -> dict[str, Any] | None:
    if value is None:
        return None
    kind = value.get("type") if isinstance(value, dict) else None
    if kind not in ("auto", "any", "tool", "none"):
        raise invalid("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'")
    if kind in ("any", "tool") and not tools:
        raise invalid(f"tool_choice: tool_choice.type '{kind}' requires `tools` to be provided")
    if kind == "tool" and value.get("name") not in {t["name"] for t in tools}:
        raise invalid(f"tool_choice.name: Tool '{value.get('name')}' not found in tools")
    return value


def _thinking(value: Any, max_tokens: int | None) -> dict[str, Any] | None:
    if value is None:
        return None
    kind = value.get("type") if isinstance(value, dict) else None
    if kind not in ("enabled", "disabled", "adaptive", "between_tools"):
        raise invalid("thinking.type: Input should be 'enabled', 'disabled', 'adaptive' or 'between_tools'")
    if kind == "enabled":
        budget = value.get("budget_tokens")
        if not isinstance(budget, int) or isinstance(budget, bool) or budget < 1024:
            raise invalid("thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
        if max_tokens is not None and budget >= max_tokens:
            raise invalid("`max_tokens` must be greater than `thinking.budget_tokens`.")
    return value


def _cache_control(value: Any, path: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or value.get("type") != "ephemeral":
        raise invalid(f"{path}.type: Input should be 'ephemeral'")
    if value.get("ttl", "5m") not in ("5m", "1h"):
        raise invalid(f"{path}.ttl: Input should be '5m' or '1h'")
    return value


def _check_breakpoints(req: MessageRequest) -> None:
    ttls = [b["cache_control"].get("ttl", "5m") for b in marked_blocks(req)]
    if req.cache_control is not None:
        ttls.append(req.cache_control.get("ttl", "5m"))
    if len(ttls) > MAX_BREAKPOINTS:
        raise invalid(f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. Found {len(ttls)}.")
    if "5m" in ttls and "1h" in ttls[ttls.index("5m") :]:
        raise invalid("a ttl='1h' cache_control block must not come after a ttl='5m' cache_control block")


def marked_blocks(req: MessageRequest) -> list[dict[str, Any]]:
    """Blocks carrying cache_control, in prefix order (tools, system, messages)."""
    blocks = [t for t in req.tools if t.get("cache_control")]
    blocks += [b for b in req.system if b.get("cache_control")]
    for message in req.messages:
        blocks += [b for b in message["content"] if b.get("cache_control")]
    return blocks
