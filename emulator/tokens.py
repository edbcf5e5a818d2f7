"""Deterministic token counting shared by /v1/messages, count_tokens, caching and rate limits.

The measure is ceil(chars / 4) per piece of text, plus small fixed overheads. Requests are
flattened into "units" in prompt-cache prefix order (tools, system, messages) so the cache can
sum tokens up to any breakpoint with the same numbers the usage report uses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from emulator.prompt import block_text
from emulator.validation import MessageRequest

REQUEST_OVERHEAD = 4
MESSAGE_OVERHEAD = 3
TOOLS_OVERHEAD = 250
IMAGE_TOKENS = 1200
DOCUMENT_TOKENS = 1500


@dataclass(frozen=True, slots=True)
class Unit:
    tokens: int
    tag: str  # "overhead", "tool", "system", "user" or "assistant"
    block: dict[str, Any] | None


def text_tokens(text: str) -> int:
    return (len(text) + 3) // 4


def block_tokens(block: dict[str, Any]) -> int:
    kind = block.get("type")
    if kind == "image":
        return IMAGE_TOKENS
    if kind == "document" and (block.get("source") or {}).get("type") != "text":
        return DOCUMENT_TOKENS
    if kind == "tool_use":
        return text_tokens(block["name"]) + text_tokens(json.dumps(block["input"])) + 4
    if kind == "tool_result":
        content = block.get("content")
        images = sum(1 for b in content if b.get("type") == "image") if isinstance(content, list) else 0
        return text_tokens(block_text(block)) + images * IMAGE_TOKENS + 4
    if kind == "thinking":
        return text_tokens(block["thinking"])
    if kind == "redacted_thinking":
        return text_tokens(block["data"]) // 4
    return text_tokens(block_text(block))


def tool_tokens(tool: dict[str, Any]) -> int:
    public = {k: v for k, v in tool.items() if k != "cache_control"}
    return text_tokens(json.dumps(public, separators=(",", ":")))


def units(req: MessageRequest) -> list[Unit]:
    out = [Unit(REQUEST_OVERHEAD + (TOOLS_OVERHEAD if req.tools else 0), "overhead", None)]
    out.extend(Unit(tool_tokens(t), "tool", t) for t in req.tools)
    out.extend(Unit(text_tokens(b["text"]), "system", b) for b in req.system)
    for message in req.messages:
        role = message["role"]
        for i, block in enumerate(message["content"]):
            overhead = MESSAGE_OVERHEAD if i == 0 else 0
            out.append(Unit(block_tokens(block) + overhead, role, block))
        if not message["content"]:
            out.append(Unit(MESSAGE_OVERHEAD, role, None))
    return out


def count_input_tokens(req: MessageRequest) -> int:
    return sum(u.tokens for u in units(req))
