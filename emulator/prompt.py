"""Read plain text out of a validated request (for replies, markers and the classifier)."""

from __future__ import annotations

from typing import Any

from emulator.validation import MessageRequest


def block_text(block: dict[str, Any]) -> str:
    kind = block.get("type")
    if kind == "text":
        return block["text"]
    if kind == "tool_result":
        return _tool_result_text(block.get("content"))
    if kind == "document":
        source = block.get("source") or {}
        return source.get("data", "") if source.get("type") == "text" else ""
    if kind == "search_result":
        return " ".join(b.get("text", "") for b in block.get("content") or [] if isinstance(b, dict))
    return ""


def _tool_result_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(block_text(b) for b in content if isinstance(b, dict))
    return ""


def message_text(message: dict[str, Any]) -> str:
    return "\n".join(t for t in (block_text(b) for b in message["content"]) if t)


def last_user_message(req: MessageRequest) -> dict[str, Any]:
    for message in reversed(req.messages):
        if message["role"] == "user":
            return message
    return req.messages[0]


def last_user_text(req: MessageRequest) -> str:
    return message_text(last_user_message(req))


def system_text(req: MessageRequest) -> str:
    return "\n".join(b["text"] for b in req.system)


def user_and_system_text(req: MessageRequest) -> str:
    """All text a marker may hide in: the system prompt and every user turn."""
    parts = [system_text(req)]
    parts.extend(message_text(m) for m in req.messages if m["role"] == "user")
    return "\n".join(parts)


def answers_tool_result(req: MessageRequest) -> bool:
    return any(b.get("type") == "tool_result" for b in last_user_message(req)["content"])
