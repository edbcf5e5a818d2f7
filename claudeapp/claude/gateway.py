"""The Messages API call with retries, circuit breaker and fallback chain.

    complete(...)   sync, for Celery workers and scripts
    acomplete(...)  async, for ASGI views
    astream(...)    async generator of StreamStart / TextDelta / StreamEnd | StreamTruncated

The caller decides the chain (`models`: the model asked first, then its fallbacks); this module
decides how hard to try each one. It owns retries (the SDK's are off, see client.py).
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import anthropic
from django.conf import settings

from claudeapp.claude import transport
from claudeapp.claude.breaker import Breaker, Ticket, default_breaker
from claudeapp.claude.client import get_client
from claudeapp.claude.errors import (
    UPSTREAM_EXCEPTIONS,
    ModelFailure,
    NoModelAvailable,
    UpstreamError,
    from_exception,
)
from claudeapp.claude.policy import Decision, Step, decide
from claudeapp.claude.results import (
    Attempt,
    GatewayResult,
    MessageBuilder,
    RawEvent,
    StreamEnd,
    StreamEvent,
    StreamStart,
    StreamTruncated,
    TextDelta,
    ratelimit_headers,
)

__all__ = [
    "GatewayResult",
    "RawEvent",
    "StreamEnd",
    "StreamEvent",
    "StreamStart",
    "StreamTruncated",
    "TextDelta",
    "acomplete",
    "astream",
    "complete",
]


@dataclass(frozen=True)
class _Request:
    messages: Sequence[Mapping[str, Any]]
    max_tokens: int
    system: str | Sequence[Mapping[str, Any]] | None = None
    metadata: Mapping[str, Any] | None = None
    stop_sequences: Sequence[str] | None = None
    extra: Mapping[str, Any] | None = None
    timeout: float | None = None
    headers: Mapping[str, str] | None = None  # the caller's anthropic-version / anthropic-beta (/anthropic)

    @property
    def streams_internally(self) -> bool:
        # Long answers stream even when the caller wants one result: a silent connection
        # would hit read timeouts, and the SDK refuses such calls without streaming anyway.
        return self.max_tokens > settings.CLAUDE_NONSTREAMING_MAX_TOKENS

    def params(self, model: str, *, stream: bool) -> dict[str, Any]:
        params: dict[str, Any] = {"model": model, "max_tokens": self.max_tokens, "messages": self.messages}
        for name in ("system", "metadata", "stop_sequences", "timeout"):
            value = getattr(self, name)
            if value is not None:
                params[name] = value
        if self.extra:
            params["extra_body"] = dict(self.extra)  # tools, thinking, cache_control...: passed through untouched
        if self.headers:
            params["extra_headers"] = dict(self.headers)
        if stream:
            params["stream"] = True
        return params

    def body(self, model: str, *, stream: bool) -> dict[str, Any]:
        """The request body as the API reads it (`params` is the SDK's spelling of the same)."""
        body: dict[str, Any] = {"model": model, "max_tokens": self.max_tokens, "messages": self.messages}
        for name in ("system", "metadata", "stop_sequences"):
            value = getattr(self, name)
            if value is not None:
                body[name] = value
        if self.extra:
            body.update(self.extra)  # tools, thinking, cache_control...: passed through untouched
        if stream:
            body["stream"] = True
        return body


class _Run:
    """Bookkeeping for one gateway call across attempts and models."""

    def __init__(self, models: Sequence[str], max_attempts: int | None = None) -> None:
        if not models:
            raise ValueError("models: at least one model id is required")
        self.models = list(models)
        # Per model. Callers that own retries themselves (the job queue) pass 1.
        self.max_attempts = max_attempts or settings.CLAUDE_MAX_ATTEMPTS
        self.attempts: list[Attempt] = []
        self.failures: list[ModelFailure] = []
        self.last_error: UpstreamError | None = None
        self.started = time.perf_counter()
        self.finished = False

    def skip(self, model: str) -> None:
        self.attempts.append(Attempt(model=model, outcome="circuit_open"))
        self.failures.append(ModelFailure(model=model, reason="circuit_open"))
        _observe_attempt(self.attempts[-1])

    def failed(
        self, model: str, err: UpstreamError, *, attempt: int, builder: MessageBuilder, started: float
    ) -> Decision:
        self.attempts.append(_failed_attempt(model, err, builder, started))
        self.last_error = err
        decision = decide(err, attempt=attempt, max_attempts=self.max_attempts)
        _observe_attempt(self.attempts[-1], retrying=decision.step is Step.RETRY)
        if decision.step is not Step.RETRY:
            failure = ModelFailure(model=model, reason=err.error_type, status=err.status, message=err.message)
            self.failures.append(failure)
        err.attempts = list(self.attempts)
        return decision

    def result(
        self, model: str, builder: MessageBuilder, headers: Mapping[str, str], *, started: float, ttft_ms: float | None
    ) -> GatewayResult:
        self.attempts.append(Attempt(model, "ok", 200, _ms_since(started), builder.request_id))
        self.finished = True
        _observe_attempt(self.attempts[-1])
        return _observe_result(self._build(model, builder, headers, ttft_ms=ttft_ms, truncated=False))

    def truncated(
        self, model: str, err: UpstreamError, builder: MessageBuilder, headers: Mapping[str, str], *, started: float,
        ttft_ms: float | None,
    ) -> GatewayResult:  # fmt: skip
        self.attempts.append(_failed_attempt(model, err, builder, started))
        self.finished = True
        _observe_attempt(self.attempts[-1])
        return _observe_result(self._build(model, builder, headers, ttft_ms=ttft_ms, truncated=True))

    def exhausted(self) -> NoModelAvailable:
        return NoModelAvailable(
            models=self.models, failures=self.failures, last_error=self.last_error, attempts=self.attempts
        )

    def _build(
        self, model: str, builder: MessageBuilder, headers: Mapping[str, str], *, ttft_ms: float | None, truncated: bool
    ) -> GatewayResult:
        return GatewayResult(
            model_requested=self.models[0],
            model_used=model,
            attempts=self.attempts,
            fallback_reason=self._fallback_reason(model),
            request_id=builder.request_id,
            message_id=builder.message_id,
            text=builder.text,
            content=builder.content,
            stop_reason=builder.stop_reason,
            stop_sequence=builder.stop_sequence,
            usage=builder.billable_usage if truncated else builder.usage,
            latency_ms=_ms_since(self.started),
            ttft_ms=ttft_ms,
            truncated=truncated,
            ratelimit_headers=ratelimit_headers(headers),
            raw_usage=dict(builder.raw_usage),
        )

    def _fallback_reason(self, model: str) -> str | None:
        if model == self.models[0]:
            return None
        return "; ".join(f"{f.model}: {f.reason}" for f in self.failures)


def _failed_attempt(model: str, err: UpstreamError, builder: MessageBuilder, started: float) -> Attempt:
    usage = builder.billable_usage if builder.started else None
    request_id = err.request_id or builder.request_id
    attempt = Attempt(model, err.error_type, err.status, _ms_since(started), request_id, err.retry_after, usage)
    attempt.body_lost = builder.awaiting_body
    return attempt


@functools.cache
def _observer(path: str) -> Any:
    # settings.CLAUDE_OBSERVER names a module with upstream_attempt() and upstream_result() (the metrics):
    # by path, because this package imports nothing from the project but settings.
    return importlib.import_module(path) if path else None


def _observe_attempt(attempt: Attempt, *, retrying: bool = False) -> None:
    observer = _observer(getattr(settings, "CLAUDE_OBSERVER", ""))
    if observer is not None:
        observer.upstream_attempt(
            model=attempt.model, outcome=attempt.outcome, latency_ms=attempt.latency_ms, retrying=retrying
        )


def _observe_result(result: GatewayResult) -> GatewayResult:
    observer = _observer(getattr(settings, "CLAUDE_OBSERVER", ""))
    if observer is not None:
        observer.upstream_result(
            first_model=result.model_requested, model_used=result.model_used, ttft_ms=result.ttft_ms
        )
    return result


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


# --- sync -------------------------------------------------------------------------------


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
    req = _Request(messages, max_tokens, system, metadata, stop_sequences, extra, timeout, headers)
    run, brk = _Run(models, max_attempts), breaker or default_breaker
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
                _report_failure(brk, ticket, err)
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


def _call(model: str, req: _Request, builder: MessageBuilder) -> Mapping[str, str]:
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


def _report_failure(brk: Breaker, ticket: Ticket, err: UpstreamError) -> None:
    if err.counts_for_breaker:
        brk.record_failure(ticket)
    else:
        brk.release(ticket)  # a 4xx/429 says nothing about upstream health: no verdict


def _refuse_inside_event_loop() -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError("gateway.complete() blocks; inside async code use acomplete() or astream()")


# --- async ------------------------------------------------------------------------------


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
    req = _Request(messages, max_tokens, system, metadata, stop_sequences, extra, timeout, headers)
    run, brk = _Run(models, max_attempts), breaker or default_breaker
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
                await _areport_failure(brk, ticket, err)
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


async def _acall(model: str, req: _Request, builder: MessageBuilder) -> Mapping[str, str]:
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


async def _areport_failure(brk: Breaker, ticket: Ticket, err: UpstreamError) -> None:
    if err.counts_for_breaker:
        await brk.arecord_failure(ticket)
    else:
        await brk.arelease(ticket)


# --- streaming --------------------------------------------------------------------------


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
    req = _Request(messages, max_tokens, system, metadata, stop_sequences, extra, timeout, headers)
    run, brk = _Run(models, max_attempts), breaker or default_breaker
    for model in run.models:
        async with aclosing(_astream_model(model, req, run, brk, raw_events)) as events:
            async for event in events:
                yield event
        if run.finished:
            return
    raise run.exhausted()


async def _astream_model(
    model: str, req: _Request, run: _Run, brk: Breaker, raw_events: bool = False
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
            await _areport_failure(brk, ticket, err)
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

    def __init__(self, model: str, req: _Request, run: _Run, *, raw_events: bool = False) -> None:
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
        self.ttft_ms = _ms_since(self.run.started)
        return StreamStart(self.model, self.builder.request_id, self.builder.message_id, self.builder.usage)

    def result(self) -> GatewayResult:
        return self.run.result(self.model, self.builder, self.headers, started=self.started, ttft_ms=self.ttft_ms)

    def truncated(self, err: UpstreamError) -> GatewayResult:
        return self.run.truncated(
            self.model, err, self.builder, self.headers, started=self.started, ttft_ms=self.ttft_ms
        )
