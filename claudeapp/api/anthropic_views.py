"""The Anthropic-compatible surface: `POST /anthropic/v1/messages` (JSON and SSE) and
`POST /anthropic/v1/messages/count_tokens`, so the official SDKs work with
`base_url=<gateway>/anthropic` and a partner key, through the same limits, budgets, router and ledger.

Streams relay upstream's events verbatim (the gateway's raw-event mode); the events before the
first delta are held back so a retry or fallback before it stays invisible, as for every stream.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import replace
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse

from claudeapp.api import anthropic_version, fastpath, gateway_headers, sse
from claudeapp.api.anthropic_version import version_required
from claudeapp.api.auth import partner_key_required
from claudeapp.api.bodies import json_object
from claudeapp.api.call_errors import answer_call_error, describe_call_error
from claudeapp.api.errors import ErrorInfo, response_for
from claudeapp.api.message_bodies import anthropic_message
from claudeapp.api.message_inputs import CountTokensInput, anthropic_request, check_no_upstream_override
from claudeapp.api.models import Scope
from claudeapp.calls import accounting, run
from claudeapp.calls.admission import Admission
from claudeapp.calls.run import Completed
from claudeapp.claude import tokens
from claudeapp.claude.results import GatewayResult, RawEvent, StreamStart
from routing import modelmap
from routing.rules import AUTO

log = logging.getLogger(__name__)
COUNT_MODEL_FOR_AUTO = "moderate"  # `auto` is decided per request; count with the default tier's tokenizer


def _error(request: HttpRequest, exc: BaseException, admission: Admission | None = None) -> JsonResponse:
    response = answer_call_error(request, exc, anthropic=True)
    for name, value in gateway_headers.for_error(admission, exc).items():
        response[name] = value
    return response


def _not_post(request: HttpRequest) -> JsonResponse | None:
    if request.method == "POST":
        return None
    return response_for(request, ErrorInfo(405, "invalid_request_error", "Method not allowed."))


@partner_key_required(Scope.MESSAGES)
@version_required
async def messages(request: HttpRequest) -> HttpResponse:
    refused = _not_post(request)
    if refused is not None:
        return refused
    admission = None
    try:
        direct = gateway_headers.direct(request)
        body = json_object(request)
        anthropic_version.check_body(body, request.META["HTTP_ANTHROPIC_VERSION"])
        model, spec, stream = anthropic_request(body, cap=None)
        spec = replace(spec, headers=anthropic_version.upstream_headers(request), direct=direct)
        admission, spec = await run.admit(
            principal=request.principal, requested_model=model, spec=spec, streamed=stream
        )
        after = fastpath.after_reply(request)  # the reply carries no bill: it need not wait for the settlement
        if stream:
            events = run.stream(admission=admission, spec=spec, raw_events=True, reply_first=after is not None)
            first = await anext(events)  # nothing can answer: the last upstream error, as Anthropic would say it
            answered_by = first.model if isinstance(first, StreamStart) else None
            return sse.response(_relay(first, events, after), gateway_headers.for_stream(admission, answered_by))
        done = await run.complete(
            admission=admission, spec=spec, reply_first=after is not None, settle_after=fastpath.reply_out(request)
        )
        if after is not None and done.settling is not None:
            after.append(done.settling)
    except Exception as exc:
        return _error(request, exc, admission)
    response = JsonResponse(anthropic_body(done.result))
    for name, value in gateway_headers.for_reply(admission, done.result).items():
        response[name] = value
    return response


def anthropic_body(result: GatewayResult) -> dict[str, Any]:
    """The message as upstream sent it: every usage field upstream reported (service_tier,
    server_tool_use, output_tokens_details...) on top of the four the gateway bills."""
    body = anthropic_message(result)
    body["usage"] = {**body["usage"], **result.raw_usage}
    return body


async def _relay(first: Any, events: AsyncIterator[Any], after: list[Any] | None) -> AsyncIterator[bytes]:
    """Upstream's frames as they came; the body ends with upstream's stream, before the bill when `after`
    (fastpath.after_reply) takes the settlement, which the request then awaits once its body is out."""
    async with aclosing(events):
        event = first
        while True:
            if isinstance(event, RawEvent):
                yield sse.frame(event.event, event.data)
            elif isinstance(event, Completed):
                if event.settling is not None and after is not None:
                    after.append(event.settling)
                if event.truncated_by is not None:  # upstream failed after tokens went out: say so, as upstream does
                    error = describe_call_error(event.truncated_by, anthropic=True)
                    yield sse.frame("error", {"type": "error", "error": {"type": error.type, "message": error.message}})
                return
            event = await anext(events)


@partner_key_required(Scope.MESSAGES)
@version_required
async def count_tokens(request: HttpRequest) -> HttpResponse:
    """Upstream's own count (free upstream, so no limits or budget); `auto` counts with the default tier."""
    refused = _not_post(request)
    if refused is not None:
        return refused
    try:
        body = json_object(request)
        check_no_upstream_override(body)
        data = CountTokensInput(data=body)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        mm = await modelmap.aget_model_map()
        model_id = mm.resolve(COUNT_MODEL_FOR_AUTO if v["model"] == AUTO else v["model"])
        extra = {k: val for k, val in body.items() if k not in ("model", "messages", "system")} or None
        headers = anthropic_version.upstream_headers(request)
        counted = await _count(model_id, v["messages"], v.get("system"), extra, headers)
    except Exception as exc:
        return _error(request, exc)
    return JsonResponse(counted)


async def _count(
    model_id: str, messages: Any, system: Any, extra: dict[str, Any] | None, headers: dict[str, str]
) -> dict[str, Any]:
    """Upstream's count, shared with the pipeline's own counts (one cache, keyed by body hash). A count
    under betas is upstream's alone: a beta may count the same body differently."""
    key = accounting.count_key(model_id, accounting.count_body(messages=messages, system=system, extra=extra))
    shared = "anthropic-beta" not in headers
    cached = await _cache_get(key) if shared else None
    if isinstance(cached, int):
        return {"input_tokens": cached}
    counted = await tokens.acount_tokens(model=model_id, messages=messages, system=system, extra=extra, headers=headers)
    if shared and isinstance(counted.get("input_tokens"), int) and set(counted) == {"input_tokens"}:
        await _cache_set(key, counted["input_tokens"])
    return counted


async def _cache_get(key: str) -> Any:
    try:
        return await cache.aget(key)
    except Exception:  # Redis down: ask upstream
        return None


async def _cache_set(key: str, value: int) -> None:
    try:
        await cache.aset(key, value, timeout=settings.ACCOUNTING_COUNT_CACHE_SECONDS)
    except Exception:  # a count not kept is asked again next time
        log.warning("could not cache a token count", exc_info=True)
