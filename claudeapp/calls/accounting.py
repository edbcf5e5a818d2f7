"""Input accounting: an upper bound on what a request's prompt will cost, before it is sent.

Every block type counts (text, image, document, tool_use, tool_result, search_result, thinking,
redacted_thinking), and so do `system`, `tools` and `tool_choice`. Text is bounded by its UTF-8
length / 3 (claudeapp/core/tokensize.py, the gateway's one estimate; docs/billing.md gives the
measured error). Blocks whose size cannot be known
from the body (images, PDFs, URLs, unknown types) and large prompts are "unsure": the pipeline
then asks upstream's free `count_tokens` for the exact figure (cached by body hash) and falls
back to the conservative figures below only when upstream cannot answer.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache

from claudeapp.core.tokensize import json_tokens, text_tokens

log = logging.getLogger(__name__)

REQUEST_OVERHEAD = 8
MESSAGE_OVERHEAD = 4
BLOCK_OVERHEAD = 4
TOOLS_OVERHEAD = 350  # the tool-use system prompt upstream adds when `tools` is present
# Fallbacks used only when upstream's count_tokens cannot be reached for an unsure block.
IMAGE_FALLBACK = 4_800  # a high-resolution image (2576 px long edge) on the newest models
PDF_FALLBACK_PER_BYTE = 0.5  # text plus one page image per page; a page is well over 1 KB of PDF
URL_DOCUMENT_FALLBACK = 300_000  # 100 pages at 3,000 tokens: the API's page limit
UNKNOWN_BLOCK_FALLBACK = 4_800


@dataclass(frozen=True)
class InputBound:
    tokens: int
    unsure: bool = False  # the local figure guessed at a block's size: ask upstream when possible
    counted: bool = False  # the figure is upstream's own count
    guessed: int = 0  # the part of `tokens` that was guessed (tokens - guessed: a floor for a pre-check)


class _Counter:
    def __init__(self) -> None:
        self.tokens = 0
        self.guessed = 0

    def guess(self, tokens: int) -> None:
        self.tokens += tokens
        self.guessed += tokens

    def content(self, content: Any) -> None:
        if isinstance(content, str):
            self.tokens += BLOCK_OVERHEAD + text_tokens(content)
            return
        if not isinstance(content, Sequence):
            self.guess(json_tokens(content))
            return
        for block in content:
            self.tokens += BLOCK_OVERHEAD
            if isinstance(block, Mapping):
                self.block(block)
            else:
                self.guess(json_tokens(block))

    def block(self, block: Mapping[str, Any]) -> None:
        kind = block.get("type")
        if kind == "text":
            self.tokens += text_tokens(str(block.get("text") or ""))
            if block.get("citations"):
                self.tokens += json_tokens(block["citations"])
        elif kind == "image":
            self.guess(IMAGE_FALLBACK)
        elif kind == "document":
            self.document(block)
        elif kind in ("tool_use", "server_tool_use"):
            self.tokens += text_tokens(str(block.get("name") or "")) + json_tokens(block.get("input") or {})
        elif isinstance(kind, str) and kind.endswith("tool_result"):
            self.tool_result(block)
        elif kind == "search_result":
            self.tokens += text_tokens(str(block.get("source") or "")) + text_tokens(str(block.get("title") or ""))
            self.content(block.get("content") or [])
        elif kind == "thinking":
            self.tokens += text_tokens(str(block.get("thinking") or ""))
        elif kind == "redacted_thinking":
            self.tokens += text_tokens(str(block.get("data") or ""))
        else:
            self.guess(max(json_tokens(block), UNKNOWN_BLOCK_FALLBACK))

    def tool_result(self, block: Mapping[str, Any]) -> None:
        content = block.get("content")
        if content is None:
            return
        if isinstance(content, str):
            self.tokens += text_tokens(content)
        else:
            self.content(content)

    def document(self, block: Mapping[str, Any]) -> None:
        for extra in ("title", "context"):
            if block.get(extra):
                self.tokens += text_tokens(str(block[extra]))
        source = block.get("source") or {}
        kind = source.get("type") if isinstance(source, Mapping) else None
        if kind == "text":
            self.tokens += text_tokens(str(source.get("data") or ""))
        elif kind == "content":
            self.content(source.get("content") or [])
        elif kind == "base64":
            self.guess(max(UNKNOWN_BLOCK_FALLBACK, int(_decoded_size(source.get("data")) * PDF_FALLBACK_PER_BYTE)))
        else:  # url, file id, or something new: its size is not in the body
            self.guess(URL_DOCUMENT_FALLBACK)


def _decoded_size(data: Any) -> int:
    if not isinstance(data, str):
        return 0
    try:
        return len(base64.b64decode(data, validate=False))
    except (binascii.Error, ValueError):
        return len(data)


def local_bound(
    *,
    messages: Sequence[Mapping[str, Any]],
    system: Any = None,
    tools: Sequence[Any] | None = None,
    tool_choice: Any = None,
) -> InputBound:
    """An upper bound from the body alone, no I/O. `unsure` when a block's size had to be guessed."""
    counter = _Counter()
    counter.tokens = REQUEST_OVERHEAD
    if system:
        counter.content(system)
    if tools:
        counter.tokens += TOOLS_OVERHEAD + sum(json_tokens(tool) for tool in tools)
    if tool_choice:
        counter.tokens += json_tokens(tool_choice)
    for message in messages:
        counter.tokens += MESSAGE_OVERHEAD
        counter.content(message.get("content") if isinstance(message, Mapping) else message)
    return InputBound(counter.tokens, unsure=counter.guessed > 0, guessed=counter.guessed)


def needs_count(bound: InputBound) -> bool:
    """Ask upstream when a block's size was guessed, or the prompt is large enough that the
    bound's slack would hold real money."""
    return bound.unsure or bound.tokens > settings.ACCOUNTING_COUNT_TOKENS_ABOVE


def count_key(model_id: str, body: Mapping[str, Any]) -> str:
    digest = hashlib.sha256(
        json.dumps([model_id, body], sort_keys=True, ensure_ascii=False, default=str).encode()
    ).hexdigest()
    return f"calls:count:{digest}"


def counted_bound(*, model_id: str, body: Mapping[str, Any], local: InputBound, count: Any) -> InputBound:
    """Upstream's count when it can be had (cached by body hash), else the local bound.

    `count(model_id, body) -> int` asks upstream; it is free there but has its own rate limit,
    so the answer is kept for ACCOUNTING_COUNT_CACHE_SECONDS.
    """
    key = count_key(model_id, body)
    try:
        cached = cache.get(key)
    except Exception:  # Redis down: ask upstream, the bound is still right
        cached = None
    if isinstance(cached, int):
        return InputBound(cached, counted=True)
    try:
        tokens = int(count(model_id, body))
    except Exception as exc:  # upstream cannot count now: the conservative local figures hold
        log.warning("calls: count_tokens for %s failed (%s); holding the local bound", model_id, exc)
        return local
    try:
        cache.set(key, tokens, timeout=settings.ACCOUNTING_COUNT_CACHE_SECONDS)
    except Exception:
        log.warning("calls: could not cache a token count", exc_info=True)
    return InputBound(tokens, counted=True)


def count_body(
    *, messages: Sequence[Mapping[str, Any]], system: Any = None, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The count_tokens request body for a call: what upstream counts (no max_tokens, no stream)."""
    body: dict[str, Any] = {"messages": list(messages)}
    if system is not None:
        body["system"] = system
    for name in ("tools", "tool_choice", "thinking"):
        if extra and extra.get(name) is not None:
            body[name] = extra[name]
    return body
