"""What a gateway call returns: the result, per-attempt records, stream events, and the
builder that turns a Messages JSON body or an SSE stream into them.

Everything here is plain dicts and dataclasses (no SDK models): cheaper to build on the hot
path, and billing/jobs can store them as JSON as they are.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from claudeapp.claude.errors import UpstreamError, UpstreamUnavailable, from_stream_error
from claudeapp.core.tokensize import text_tokens

USAGE_KEYS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
CACHE_SPLIT_KEYS = ("ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens")


@dataclass
class Attempt:
    model: str
    outcome: str  # "ok", "circuit_open", or the upstream error_type ("overloaded_error", "timeout", ...)
    status: int | None = None
    latency_ms: float = 0.0
    request_id: str | None = None
    retry_after: float | None = None
    # Tokens an attempt consumed even though it failed (a stream cut after message_start).
    usage: dict[str, int] | None = None
    # Upstream answered 200 but the JSON body was lost: it produced a whole message we cannot see.
    body_lost: bool = False


@dataclass
class GatewayResult:
    model_requested: str
    model_used: str
    attempts: list[Attempt]
    fallback_reason: str | None
    request_id: str | None
    message_id: str | None
    text: str
    content: list[dict[str, Any]]
    stop_reason: str | None
    stop_sequence: str | None
    usage: dict[str, int]
    latency_ms: float
    ttft_ms: float | None = None
    truncated: bool = False
    ratelimit_headers: dict[str, str] = field(default_factory=dict)
    # Upstream's usage as sent (service_tier, server_tool_use...).
    raw_usage: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StreamStart:
    model: str
    request_id: str | None
    message_id: str | None
    usage: Mapping[str, int] | None = None  # message_start's: the exact input (the in-flight record keeps it)


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class RawEvent:
    """One upstream SSE event as received (`astream(..., raw_events=True)`), for proxies that relay it."""

    event: str
    data: str


@dataclass(frozen=True)
class StreamEnd:
    result: GatewayResult


@dataclass(frozen=True)
class StreamTruncated:
    """Upstream failed after text went out: the partial result still carries the usage to bill."""

    error: UpstreamError
    partial_result: GatewayResult


StreamEvent = StreamStart | TextDelta | RawEvent | StreamEnd | StreamTruncated


def ratelimit_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items() if k.lower().startswith("anthropic-ratelimit-")}


def normalise_usage(raw: Mapping[str, Any] | None) -> dict[str, int]:
    raw = raw or {}
    usage = {key: int(raw.get(key) or 0) for key in USAGE_KEYS}
    split = raw.get("cache_creation") or {}
    for key in CACHE_SPLIT_KEYS:
        if split.get(key) is not None:
            usage[key] = int(split[key])
    return usage


def text_bound(text: str) -> int:
    """An upper bound on the tokens of generated text, rounded up per delta (core.tokensize)."""
    return text_tokens(text)


class MessageBuilder:
    """Accumulates one upstream message, from a JSON body or from SSE events.

    `usage` is upstream's figure; `billable_usage` is what to bill when the stream ended early:
    the exact input from message_start and an upper bound on output from every delta kind seen.
    """

    def __init__(self, *, request_id: str | None = None, max_tokens: int | None = None) -> None:
        self.max_tokens = max_tokens
        self.output_bound = 0  # from every delta kind received (text, thinking, tool JSON, citations)
        self.hidden_output = False  # a thinking block: upstream bills its full (summarised) thinking
        self.final_usage = False  # message_delta seen: its usage is upstream's exact figure
        self.request_id = request_id
        self.message_id: str | None = None
        self.model: str | None = None
        self.stop_reason: str | None = None
        self.stop_sequence: str | None = None
        self.raw_usage: dict[str, Any] = {}
        self.blocks: list[dict[str, Any]] = []
        self._parts: dict[int, list[str]] = {}
        self.started = False  # message_start seen: upstream has billed the input
        self.awaiting_body = False  # a 200 to a non-streamed call arrived; its JSON has not (yet)
        self.done = False

    def load(self, body: Mapping[str, Any]) -> MessageBuilder:
        self.awaiting_body = False
        self._start(body)
        self.blocks = [dict(block) for block in body.get("content") or []]
        self.stop_reason = body.get("stop_reason")
        self.stop_sequence = body.get("stop_sequence")
        self.done = True
        return self

    def feed(self, event: str | None, data: str) -> str | None:
        """Apply one SSE event; return its text delta, if any. An `error` event raises."""
        if event is None or event == "ping" or not data:
            return None
        payload = json.loads(data)
        kind = payload.get("type", event)
        if kind == "content_block_delta":
            return self._delta(payload["index"], payload["delta"])
        if kind == "content_block_start":
            self._block_start(payload["index"], payload["content_block"])
        elif kind == "content_block_stop":
            self._block_stop(payload["index"])
        elif kind == "message_start":
            self._start(payload["message"])
        elif kind == "message_delta":
            self._message_delta(payload)
        elif kind == "message_stop":
            self.done = True
        elif kind == "error":
            raise from_stream_error(payload, request_id=self.request_id, model=self.model)
        return None  # unknown event types are tolerated, as the API asks

    def require_complete(self) -> None:
        if not self.done:
            raise UpstreamUnavailable(
                "stream ended before message_stop", error_type="stream_cut", retryable=True, model=self.model
            )

    @property
    def text(self) -> str:
        return "".join(block.get("text", "") for block in self.content if block.get("type") == "text")

    @property
    def content(self) -> list[dict[str, Any]]:
        for index, parts in self._parts.items():
            self._flush(index, parts)
        return self.blocks

    @property
    def usage(self) -> dict[str, int]:
        return normalise_usage(self.raw_usage)

    @property
    def billable_usage(self) -> dict[str, int]:
        """Exact when upstream reported the final usage; otherwise the input it reported at
        message_start and an output bound (max_tokens once thinking started: thinking is summarised
        in the stream but billed in full)."""
        usage = self.usage
        if self.done or self.final_usage or not self.started:
            return usage
        bound = max(usage.get("output_tokens", 0), self.output_bound, 1)
        if self.hidden_output and self.max_tokens:
            bound = self.max_tokens
        if self.max_tokens:
            bound = min(bound, self.max_tokens)
        return {**usage, "output_tokens": bound}

    def _start(self, message: Mapping[str, Any]) -> None:
        self.started = True
        self.message_id = message.get("id")
        self.model = message.get("model") or self.model
        self.raw_usage = dict(message.get("usage") or {})

    def _message_delta(self, payload: Mapping[str, Any]) -> None:
        delta = payload.get("delta") or {}
        self.stop_reason = delta.get("stop_reason", self.stop_reason)
        self.stop_sequence = delta.get("stop_sequence", self.stop_sequence)
        self.final_usage = bool(payload.get("usage"))
        # message_delta usage is cumulative; fields it leaves out (or null) keep their start values.
        for key, value in (payload.get("usage") or {}).items():
            if value is not None:
                self.raw_usage[key] = value

    def _block_start(self, index: int, block: Mapping[str, Any]) -> None:
        while len(self.blocks) <= index:
            self.blocks.append({})
        self.blocks[index] = dict(block)
        kind = block.get("type")
        if kind in ("thinking", "redacted_thinking"):
            self.hidden_output = True
        elif kind != "text":  # tool_use and server tools: the name and the call's framing
            self.output_bound += text_bound(str(block.get("name") or "")) + 4
        self.output_bound += text_bound(str(block.get("text") or ""))

    def _delta(self, index: int, delta: Mapping[str, Any]) -> str | None:
        kind = delta.get("type")
        self.output_bound += _delta_bound(delta)
        if kind == "text_delta":
            self._parts.setdefault(index, []).append(delta["text"])
            return delta["text"]
        if kind == "input_json_delta" or kind == "thinking_delta":
            self._parts.setdefault(index, []).append(delta.get("partial_json") or delta.get("thinking") or "")
        elif kind == "signature_delta":
            self.blocks[index]["signature"] = delta.get("signature")
        elif kind == "citations_delta":
            self.blocks[index].setdefault("citations", []).append(delta.get("citation"))
        return None

    def _block_stop(self, index: int) -> None:
        parts = self._parts.get(index)
        if parts is not None:
            self._flush(index, parts)

    def _flush(self, index: int, parts: list[str]) -> None:
        if not parts:
            return
        block, joined = self.blocks[index], "".join(parts)
        parts.clear()
        kind = block.get("type")
        if kind == "text":
            block["text"] = block.get("text", "") + joined
        elif kind == "thinking":
            block["thinking"] = block.get("thinking", "") + joined
        else:  # tool_use / server_tool_use: the input arrives as JSON text in pieces
            block["_partial_json"] = block.get("_partial_json", "") + joined
            try:
                block["input"] = json.loads(block["_partial_json"])
                del block["_partial_json"]
            except ValueError:
                pass  # not complete yet (read mid-stream); the block stop will finish it


def _delta_bound(delta: Mapping[str, Any]) -> int:
    kind = delta.get("type")
    if kind == "text_delta":
        return text_bound(delta.get("text") or "")
    if kind == "thinking_delta":
        return text_bound(delta.get("thinking") or "")
    if kind == "input_json_delta":
        return text_bound(delta.get("partial_json") or "")
    if kind == "citations_delta":
        return text_bound(json.dumps(delta.get("citation") or {}, ensure_ascii=False))
    if kind == "signature_delta":
        return 0  # the signature is not generated text
    return text_bound(json.dumps(dict(delta), ensure_ascii=False))  # a delta kind newer than this code
