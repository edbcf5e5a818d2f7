"""Token counting through upstream's `POST /v1/messages/count_tokens` (free, not billed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.conf import settings

from claudeapp.claude.client import get_async_client, get_client
from claudeapp.claude.errors import UPSTREAM_EXCEPTIONS, from_exception


async def acount_tokens(
    *,
    model: str,
    messages: Sequence[Mapping[str, Any]],
    system: str | Sequence[Mapping[str, Any]] | None = None,
    extra: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Upstream's answer as a dict (`{"input_tokens": N}`). One attempt, no fallback: a count is cheap
    to ask again, and another model's count would be wrong. `headers` go upstream with the call (a
    proxied caller's anthropic-version and anthropic-beta). Raises UpstreamError subclasses."""
    params: dict[str, Any] = {"model": model, "messages": list(messages)}
    if system is not None:
        params["system"] = system
    if extra:
        params["extra_body"] = dict(extra)  # tools, thinking, ...: counted by upstream as sent
    if headers:
        params["extra_headers"] = dict(headers)
    try:
        async with get_async_client().messages.with_streaming_response.count_tokens(**params) as resp:
            return dict(await resp.json())
    except UPSTREAM_EXCEPTIONS as exc:
        raise from_exception(exc, model=model) from exc


def count_tokens(*, model: str, body: Mapping[str, Any]) -> int:
    """Upstream's input count for a request body (messages, system, tools, tool_choice, thinking).
    Sync, for admission (which runs on a worker thread). Raises UpstreamError subclasses."""
    params: dict[str, Any] = {"model": model, "messages": list(body["messages"])}
    params["timeout"] = settings.ACCOUNTING_COUNT_TIMEOUT_SECONDS
    if body.get("system") is not None:
        params["system"] = body["system"]
    extra = {k: v for k, v in body.items() if k not in ("messages", "system")}
    if extra:
        params["extra_body"] = extra
    try:
        with get_client().messages.with_streaming_response.count_tokens(**params) as resp:
            return int(resp.json()["input_tokens"])
    except UPSTREAM_EXCEPTIONS as exc:
        raise from_exception(exc, model=model) from exc
