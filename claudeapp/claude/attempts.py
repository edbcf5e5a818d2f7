"""One gateway call's request and its bookkeeping across attempts and models: the retry policy
(claude/policy.py) applied to each failure, the breaker told the verdict, the attempts observed.

The three ways of calling (sync_call, async_call, stream_call) share everything here and differ only
in how one attempt reaches upstream.
"""

from __future__ import annotations

import functools
import importlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from claudeapp.claude.breaker import Breaker, Ticket
from claudeapp.claude.errors import ModelFailure, NoModelAvailable, UpstreamError
from claudeapp.claude.policy import Decision, Step, decide
from claudeapp.claude.results import Attempt, GatewayResult, MessageBuilder, ratelimit_headers


@dataclass(frozen=True)
class CallRequest:
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


class CallRun:
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
        observe_attempt(self.attempts[-1])

    def failed(
        self, model: str, err: UpstreamError, *, attempt: int, builder: MessageBuilder, started: float
    ) -> Decision:
        self.attempts.append(failed_attempt(model, err, builder, started))
        self.last_error = err
        decision = decide(err, attempt=attempt, max_attempts=self.max_attempts)
        observe_attempt(self.attempts[-1], retrying=decision.step is Step.RETRY)
        if decision.step is not Step.RETRY:
            failure = ModelFailure(model=model, reason=err.error_type, status=err.status, message=err.message)
            self.failures.append(failure)
        err.attempts = list(self.attempts)
        return decision

    def result(
        self, model: str, builder: MessageBuilder, headers: Mapping[str, str], *, started: float, ttft_ms: float | None
    ) -> GatewayResult:
        self.attempts.append(Attempt(model, "ok", 200, ms_since(started), builder.request_id))
        self.finished = True
        observe_attempt(self.attempts[-1])
        return observe_result(self._build(model, builder, headers, ttft_ms=ttft_ms, truncated=False))

    def truncated(
        self, model: str, err: UpstreamError, builder: MessageBuilder, headers: Mapping[str, str], *, started: float,
        ttft_ms: float | None,
    ) -> GatewayResult:  # fmt: skip
        self.attempts.append(failed_attempt(model, err, builder, started))
        self.finished = True
        observe_attempt(self.attempts[-1])
        return observe_result(self._build(model, builder, headers, ttft_ms=ttft_ms, truncated=True))

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
            latency_ms=ms_since(self.started),
            ttft_ms=ttft_ms,
            truncated=truncated,
            ratelimit_headers=ratelimit_headers(headers),
            raw_usage=dict(builder.raw_usage),
        )

    def _fallback_reason(self, model: str) -> str | None:
        if model == self.models[0]:
            return None
        return "; ".join(f"{f.model}: {f.reason}" for f in self.failures)


def failed_attempt(model: str, err: UpstreamError, builder: MessageBuilder, started: float) -> Attempt:
    usage = builder.billable_usage if builder.started else None
    request_id = err.request_id or builder.request_id
    attempt = Attempt(model, err.error_type, err.status, ms_since(started), request_id, err.retry_after, usage)
    attempt.body_lost = builder.awaiting_body
    return attempt


@functools.cache
def _observer(path: str) -> Any:
    # settings.CLAUDE_OBSERVER names a module with upstream_attempt() and upstream_result() (the metrics):
    # by path, because this package imports nothing from the project but settings.
    return importlib.import_module(path) if path else None


def observe_attempt(attempt: Attempt, *, retrying: bool = False) -> None:
    observer = _observer(getattr(settings, "CLAUDE_OBSERVER", ""))
    if observer is not None:
        observer.upstream_attempt(
            model=attempt.model, outcome=attempt.outcome, latency_ms=attempt.latency_ms, retrying=retrying
        )


def observe_result(result: GatewayResult) -> GatewayResult:
    observer = _observer(getattr(settings, "CLAUDE_OBSERVER", ""))
    if observer is not None:
        observer.upstream_result(
            first_model=result.model_requested, model_used=result.model_used, ttft_ms=result.ttft_ms
        )
    return result


def ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def report_failure(brk: Breaker, ticket: Ticket, err: UpstreamError) -> None:
    if err.counts_for_breaker:
        brk.record_failure(ticket)
    else:
        brk.release(ticket)  # a 4xx/429 says nothing about upstream health: no verdict


async def areport_failure(brk: Breaker, ticket: Ticket, err: UpstreamError) -> None:
    if err.counts_for_breaker:
        await brk.arecord_failure(ticket)
    else:
        await brk.arelease(ticket)
