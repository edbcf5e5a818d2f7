"""Response bodies of the message endpoints: the gateway's own shape and Anthropic's."""

from __future__ import annotations

from typing import Any

from claudeapp.calls.run import Completed
from claudeapp.claude.results import CACHE_SPLIT_KEYS, GatewayResult
from claudeapp.conversations.models import Conversation, Message


def anthropic_usage(usage: dict[str, int]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "input_tokens": usage.get("input_tokens", 0),
        "output_tokens": usage.get("output_tokens", 0),
        "cache_creation_input_tokens": usage.get("cache_creation_input_tokens", 0),
        "cache_read_input_tokens": usage.get("cache_read_input_tokens", 0),
    }
    split = {key: usage[key] for key in CACHE_SPLIT_KEYS if key in usage}
    if split:
        body["cache_creation"] = split
    return body


def anthropic_message(result: GatewayResult) -> dict[str, Any]:
    """The upstream message as Anthropic sends it (content blocks untouched)."""
    return {
        "id": result.message_id,
        "type": "message",
        "role": "assistant",
        "model": result.model_used,
        "content": result.content,
        "stop_reason": result.stop_reason,
        "stop_sequence": result.stop_sequence,
        "usage": anthropic_usage(result.usage),
    }


def stateless_message(done: Completed) -> dict[str, Any]:
    result = done.result
    return {
        "id": result.message_id,
        "conversation_id": None,
        "status": "truncated" if result.truncated else "complete",
        "model": result.model_used,
        "content": result.content,
        "text": result.text,
        "stop_reason": result.stop_reason,
        "usage": anthropic_usage(result.usage),
        "cost_micros": done.entry.cost_micros,
        "routing_reason": done.admission.decision.reason,
        "fallback_reason": result.fallback_reason,
        "upstream_message_id": result.message_id,
    }


def conversation_message(answer: Message, conversation: Conversation) -> dict[str, Any]:
    return {
        "id": str(answer.public_id),
        "conversation_id": str(conversation.public_id),
        "status": answer.status,
        "model": answer.model_used,
        "content": [{"type": "text", "text": answer.content}] if answer.content else [],
        "text": answer.content,
        "stop_reason": answer.stop_reason or None,
        "usage": {
            "input_tokens": answer.input_tokens,
            "output_tokens": answer.output_tokens,
            "cache_creation_input_tokens": answer.cache_write_tokens,
            "cache_read_input_tokens": answer.cache_read_tokens,
        },
        "cost_micros": answer.cost_micros,
        "routing_reason": answer.routing_reason,
        "fallback_reason": answer.fallback_reason or None,
        "upstream_message_id": answer.upstream_message_id or None,
    }


def queued_body(answer: Message, conversation: Conversation) -> dict[str, Any]:
    return {
        "id": str(answer.public_id),
        "conversation_id": str(conversation.public_id),
        "status": "queued",
        "job_id": str(answer.job_id),
        "message": answer.error_message,
    }
