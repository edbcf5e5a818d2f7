"""The async gateway call for one full answer (ASGI views): the pooled transport, each model in turn."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any

from claudeapp.claude import transport
from claudeapp.claude.attempts import CallRequest, CallRun, areport_failure
from claudeapp.claude.breaker import Breaker, default_breaker
from claudeapp.claude.errors import UpstreamError
from claudeapp.claude.policy import Step
from claudeapp.claude.results import GatewayResult, MessageBuilder


async def acomplete(
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
    """One full answer, trying each model of the chain in turn."""
    req = CallRequest(messages, max_tokens, system, metadata, stop_sequences, extra, timeout, headers)
    run, brk = CallRun(models, max_attempts), breaker or default_breaker
    for model in run.models:
        for attempt in range(1, run.max_attempts + 1):
            ticket = await brk.aallow(model)
            if not ticket.allowed:
                run.skip(model)
                break
            builder, started = MessageBuilder(max_tokens=req.max_tokens), time.perf_counter()
            try:
                headers = await _acall(model, req, builder)
            except UpstreamError as err:
                await areport_failure(brk, ticket, err)
                decision = run.failed(model, err, attempt=attempt, builder=builder, started=started)
                if decision.step is Step.STOP:
                    raise
                if decision.step is Step.NEXT_MODEL:
                    break
                await asyncio.sleep(decision.delay)
                continue
            except BaseException:
                await brk.arelease(ticket)
                raise
            await brk.arecord_success(ticket)
            return run.result(model, builder, headers, started=started, ttft_ms=None)
    raise run.exhausted()


async def _acall(model: str, req: CallRequest, builder: MessageBuilder) -> Mapping[str, str]:
    stream = req.streams_internally
    async with transport.post_messages(
        req.body(model, stream=stream), model=model, timeout=req.timeout, headers=req.headers
    ) as resp:
        builder.request_id = resp.request_id
        if stream:
            async for event, data in resp.sse():
                builder.feed(event, data)
            builder.require_complete()
        else:
            builder.awaiting_body = True
            builder.load(await resp.json())
        return resp.headers
