"""The sync gateway call (Celery workers, scripts): the SDK's client, each model of the chain in turn."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any

import anthropic

from claudeapp.claude.attempts import CallRequest, CallRun, report_failure
from claudeapp.claude.breaker import Breaker, default_breaker
from claudeapp.claude.client import get_client
from claudeapp.claude.errors import UPSTREAM_EXCEPTIONS, UpstreamError, from_exception
from claudeapp.claude.policy import Step
from claudeapp.claude.results import GatewayResult, MessageBuilder


def complete(
    *,
    models: Sequence[str],
    messages: Sequence[Mapping[str, Any]],
    max_tokens: int,
    system: str | Sequence[Mapping[str, Any]] | None = None,
    metadata: Mapping[str, Any] | None = None,
    stop_sequences: Sequence[str] | None = None,
    extra: Mapping[str, Any] | None = None,
    timeout: float | None = None,
    breaker: Breaker | None = None,
    max_attempts: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> GatewayResult:
    """One full answer, trying each model of the chain in turn. Never call it from async code."""
    _refuse_inside_event_loop()
    req = CallRequest(messages, max_tokens, system, metadata, stop_sequences, extra, timeout, headers)
    run, brk = CallRun(models, max_attempts), breaker or default_breaker
    for model in run.models:
        for attempt in range(1, run.max_attempts + 1):
            ticket = brk.allow(model)
            if not ticket.allowed:
                run.skip(model)
                break
            builder, started = MessageBuilder(max_tokens=req.max_tokens), time.perf_counter()
            try:
                headers = _call(model, req, builder)
            except UpstreamError as err:
                report_failure(brk, ticket, err)
                decision = run.failed(model, err, attempt=attempt, builder=builder, started=started)
                if decision.step is Step.STOP:
                    raise
                if decision.step is Step.NEXT_MODEL:
                    break
                time.sleep(decision.delay)
                continue
            except BaseException:
                brk.release(ticket)
                raise
            brk.record_success(ticket)
            return run.result(model, builder, headers, started=started, ttft_ms=None)
    raise run.exhausted()


def _call(model: str, req: CallRequest, builder: MessageBuilder) -> Mapping[str, str]:
    stream = req.streams_internally
    try:
        with get_client().messages.with_streaming_response.create(**req.params(model, stream=stream)) as resp:
            builder.request_id = resp.request_id
            if stream:
                for sse in anthropic.Stream.raw_events(resp.http_response):
                    builder.feed(sse.event, sse.data)
                builder.require_complete()
            else:
                builder.awaiting_body = True
                builder.load(resp.json())  # type: ignore[arg-type]
            return resp.headers
    except UPSTREAM_EXCEPTIONS as exc:
        raise from_exception(exc, model=model) from exc


def _refuse_inside_event_loop() -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError("gateway.complete() blocks; inside async code use acomplete() or astream()")
