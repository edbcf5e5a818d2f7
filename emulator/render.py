"""JSON shapes of Message, content blocks and usage, as the API returns them."""

from __future__ import annotations

from typing import Any

from emulator.cache import CacheUsage
from emulator.reply import Block, Reply


def block_json(block: Block) -> dict[str, Any]:
    if block.kind == "text":
        return {"type": "text", "text": block.text}
    if block.kind == "thinking":
        return {"type": "thinking", "thinking": block.text, "signature": block.signature}
    assert block.tool is not None
    return {"type": "tool_use", **block.tool}


def usage_json(cache: CacheUsage, output_tokens: int, tier: str, thinking_tokens: int = 0) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "input_tokens": cache.input_tokens,
        "cache_creation_input_tokens": cache.creation,
        "cache_read_input_tokens": cache.read,
        "cache_creation": {
            "ephemeral_5m_input_tokens": cache.creation_5m,
            "ephemeral_1h_input_tokens": cache.creation_1h,
        },
        "output_tokens": output_tokens,
        "service_tier": tier,
    }
    if thinking_tokens:
        usage["output_tokens_details"] = {"thinking_tokens": thinking_tokens}
    return usage


def message_json(msg_id: str, model: str, reply: Reply, cache: CacheUsage, tier: str) -> dict[str, Any]:
    return {
        "id": msg_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [block_json(b) for b in reply.blocks],
        "stop_reason": reply.stop_reason,
        "stop_sequence": reply.stop_sequence,
        "usage": usage_json(cache, reply.output_tokens, tier, reply.thinking_tokens),
    }
