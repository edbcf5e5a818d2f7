"""The streamed gateway call: retries and fallback stay invisible until the first delta; after it a
failure ends the stream with StreamTruncated."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import aclosing
from typing import Any

from claudeapp.claude import transport
from claudeapp.claude.attempts import CallRequest, CallRun, areport_failure, ms_since
from claudeapp.claude.breaker import Breaker, default_breaker
from claudeapp.claude.errors import UpstreamError
from claudeapp.claude.policy import Step
from claudeapp.claude.results import (
    GatewayResult,
    MessageBuilder,
    RawEvent,
    StreamEnd,
    StreamEvent,
    StreamStart,
    StreamTruncated,
    TextDelta,
)


async def astream(
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
    raw_events: bool = False,
) -> AsyncIterator[StreamEvent]:
    """Stream one answer. Failures before the first text delta are retried / fall back unseen;
    after it the stream ends with StreamTruncated. Closing the generator closes the upstream stream.

    raw_events=True also yields every upstream SSE event as a RawEvent (before its TextDelta), for
    relaying them verbatim. The events before the first delta of any kind (message_start, ...) are
    held back until then, so a retry or fallback before it stays invisible as well.
    """
    req = CallRequest(messages, max_tokens, system, metadata, stop_sequences, extra, timeout, headers)
    run, brk = CallRun(models, max_attempts), breaker or default_breaker
    for model in run.models:
        async with aclosing(_astream_model(model, req, run, brk, raw_events)) as events:
            async for event in events:
                yield event
        if run.finished:
            return
    raise run.exhausted()


async def _astream_model(
    model: str, req: CallRequest, run: CallRun, brk: Breaker, raw_events: bool = False
) -> AsyncIterator[StreamEvent]:
    for attempt in range(1, run.max_attempts + 1):
        ticket = await brk.aallow(model)
        if not ticket.allowed:
            run.skip(model)
            return
        upstream = _UpstreamStream(model, req, run, raw_events=raw_events)
        try:
            async with aclosing(upstream.events()) as events:
                async for event in events:
                    yield event
        except UpstreamError as err:
            await areport_failure(brk, ticket, err)
            if upstream.sent_text:
                yield StreamTruncated(err, upstream.truncated(err))
                return
            decision = run.failed(model, err, attempt=attempt, builder=upstream.builder, started=upstream.started)
            if decision.step is Step.STOP:
                raise
            if decision.step is Step.NEXT_MODEL:
                return
            await asyncio.sleep(decision.delay)
            continue
        except BaseException:
            await brk.arelease(ticket)  # the consumer went away: no verdict on upstream health
            raise
        await brk.arecord_success(ticket)
        if not upstream.sent_text:
            yield upstream.start_event()
            for held in upstream.take_held():
                yield held
        yield StreamEnd(upstream.result())
        return


class _UpstreamStream:
    """One streaming attempt against one model."""

    def __init__(self, model: str, req: CallRequest, run: CallRun, *, raw_events: bool = False) -> None:
        self.model, self.req, self.run = model, req, run
        self.builder = MessageBuilder(max_tokens=req.max_tokens)
        self.headers: Mapping[str, str] = {}
        self.started = time.perf_counter()
        self.sent_text = False
        self.ttft_ms: float | None = None
        self.raw_events = raw_events
        self.held: list[RawEvent] = []  # raw events not yet released (nothing visible before the first delta)

    async def events(self) -> AsyncIterator[StreamEvent]:
        body = self.req.body(self.model, stream=True)
        async with transport.post_messages(
            body, model=self.model, timeout=self.req.timeout, headers=self.req.headers
        ) as resp:
            self.headers, self.builder.request_id = resp.headers, resp.request_id
            async for name, data in resp.sse():
                text = self.builder.feed(name, data)
                if self.raw_events:
                    for event in self._relay(name, data):
                        yield event
                elif text and not self.sent_text:
                    yield self.start_event()
                if text:
                    yield TextDelta(text)
            self.builder.require_complete()

    def _relay(self, event: str | None, data: str) -> list[StreamEvent]:
        self.held.append(RawEvent(event or "message", data))
        if not self.sent_text and event != "content_block_delta":
            return []
        released: list[StreamEvent] = [self.start_event()] if not self.sent_text else []
        return released + self.take_held()

    def take_held(self) -> list[StreamEvent]:
        held, self.held = self.held, []
        return list(held)

    def start_event(self) -> StreamStart:
        # Sent just before the first text, so a retry or fallback before it is invisible.
        self.sent_text = True
        self.ttft_ms = ms_since(self.run.started)
        return StreamStart(self.model, self.builder.request_id, self.builder.message_id, self.builder.usage)

    def result(self) -> GatewayResult:
        return self.run.result(self.model, self.builder, self.headers, started=self.started, ttft_ms=self.ttft_ms)

    def truncated(self, err: UpstreamError) -> GatewayResult:
        return self.run.truncated(
            self.model, err, self.builder, self.headers, started=self.started, ttft_ms=self.ttft_ms
        )
