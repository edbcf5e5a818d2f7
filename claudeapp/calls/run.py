"""One stateless billed call for async views: admit, call the gateway, settle (or give the hold back).

Shared by `POST /api/v1/messages` (without a conversation) and the Anthropic-compatible
`POST /anthropic/v1/messages`. Database work runs in short steps on a worker thread that hands
its connection back to the pool, so a call waiting on upstream holds no connection.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from billing.models import LedgerEntry
from claudeapp.accounts.principals import Principal
from claudeapp.calls import admission as calls_admission
from claudeapp.calls import settlement
from claudeapp.calls.admission import Admission
from claudeapp.claude import gateway
from claudeapp.claude.results import GatewayResult, StreamEnd, StreamEvent, StreamStart, StreamTruncated, TextDelta
from claudeapp.conversations.turns import in_db_thread
from routing import modelmap
from routing.services import estimate_tokens


@dataclass(frozen=True)
class CallSpec:
    """What to ask upstream. `metadata` is sent upstream as is; `route_tags` only steer routing."""

    messages: Sequence[Mapping[str, Any]]
    max_tokens: int
    system: str | Sequence[Mapping[str, Any]] | None = None
    metadata: Mapping[str, Any] | None = None
    route_tags: Mapping[str, Any] = field(default_factory=dict)
    stop_sequences: Sequence[str] | None = None
    extra: Mapping[str, Any] | None = None  # tools, thinking, cache_control...: passed through untouched

    @property
    def input_tokens_estimate(self) -> int:
        return estimate_tokens(self.messages, self.system)


@dataclass(frozen=True)
class Completed:
    admission: Admission
    result: GatewayResult
    entry: LedgerEntry
    truncated_by: Exception | None = None  # a stream that broke after text went out


def cap_max_tokens(max_tokens: int, model_name: str) -> int:
    """max_tokens capped by the model's max output. For a name that is not a model (`auto`), by the
    largest cap of the enabled models, so the budget hold is never for an impossible answer."""
    mm = modelmap.get_model_map()
    model_id = mm.model_id_for(model_name)
    if model_id is not None:
        caps = [mm.models[model_id].max_output_tokens]
    else:
        caps = [m.max_output_tokens for m in mm.enabled_models.values()]
    cap = max((c for c in caps if c), default=0)
    return min(max_tokens, cap) if cap else max_tokens


def _admit(*, principal: Principal, requested_model: str, spec: CallSpec, subject: str) -> tuple[Admission, CallSpec]:
    spec = replace(spec, max_tokens=cap_max_tokens(spec.max_tokens, requested_model))
    admitted = calls_admission.admit(
        principal=principal,
        requested_model=requested_model,
        messages=spec.messages,
        system=spec.system if isinstance(spec.system, str) else None,
        max_tokens=spec.max_tokens,
        input_tokens=spec.input_tokens_estimate,
        metadata={str(k): str(v) for k, v in spec.route_tags.items()},
        subject=subject,
    )
    # `auto` may have chosen a model with a smaller ceiling than the largest.
    return admitted, replace(spec, max_tokens=cap_max_tokens(spec.max_tokens, admitted.decision.model_id))


async def admit(
    *, principal: Principal, requested_model: str, spec: CallSpec, subject: str = ""
) -> tuple[Admission, CallSpec]:
    """Route, rate-limit and reserve. Raises routing.errors.*, billing.errors.* (nothing to undo then)."""
    return await in_db_thread(_admit)(principal=principal, requested_model=requested_model, spec=spec, subject=subject)


def _params(admission: Admission, spec: CallSpec) -> dict[str, Any]:
    return {
        "models": admission.models,
        "messages": spec.messages,
        "max_tokens": spec.max_tokens,
        "system": spec.system,
        "metadata": spec.metadata or {"user_id": admission.principal.key},
        "stop_sequences": spec.stop_sequences,
        "extra": spec.extra,
    }


def event_key_for(result: GatewayResult) -> str:
    # One bill per upstream message: its id is unique upstream and stable across our retries.
    return f"upstream:{result.message_id or uuid.uuid4().hex}"


async def _settle(
    admission: Admission, result: GatewayResult, *, usage: Mapping[str, int] | None = None
) -> LedgerEntry:
    step = in_db_thread(settlement.settle)(
        admission=admission,
        usage=usage if usage is not None else result.usage,
        event_key=event_key_for(result),
        kind="message",
        subject=result.message_id or "",
        model_used=result.model_used,
        upstream_request_id=result.request_id or "",
        upstream_message_id=result.message_id or "",
        ratelimit_headers=result.ratelimit_headers,
    )
    return await asyncio.shield(step)  # a client leaving must not cancel the bookkeeping


async def abandon(admission: Admission) -> None:
    await asyncio.shield(in_db_thread(settlement.abandon)(admission=admission))


async def complete(*, admission: Admission, spec: CallSpec) -> Completed:
    """One full answer. Gateway errors (NoModelAvailable, UpstreamError) give the hold back and propagate."""
    try:
        result = await gateway.acomplete(**_params(admission, spec))
    except BaseException:
        await abandon(admission)
        raise
    return Completed(admission, result, await _settle(admission, result))


async def stream(
    *, admission: Admission, spec: CallSpec, raw_events: bool = False
) -> AsyncIterator[StreamEvent | Completed]:
    """The gateway's stream events, then one Completed once settled. Errors before the first delta
    propagate (the hold given back); a consumer leaving mid-stream is billed an estimate of what it saw."""
    received: list[str] = []
    started: StreamStart | None = None
    done = False
    try:
        async for event in gateway.astream(**_params(admission, spec), raw_events=raw_events):
            if isinstance(event, StreamEnd | StreamTruncated):
                result = event.result if isinstance(event, StreamEnd) else event.partial_result
                entry = await _settle(admission, result)
                done = True
                truncated = event.error if isinstance(event, StreamTruncated) else None
                yield Completed(admission, result, entry, truncated_by=truncated)
                return
            if isinstance(event, StreamStart):
                started = event
            elif isinstance(event, TextDelta):
                received.append(event.text)
            yield event
    finally:
        if not done:
            await _left_early(admission, spec, started, "".join(received))


async def _left_early(admission: Admission, spec: CallSpec, started: StreamStart | None, text: str) -> None:
    if started is None:  # nothing reached the caller and upstream failed or was never asked
        await abandon(admission)
        return
    # The reader left mid-answer: upstream billed the prompt and what it sent. Estimate that.
    usage = {"input_tokens": admission.input_tokens, "output_tokens": estimate_tokens([{"content": text}], None)}
    result = GatewayResult(
        model_requested=admission.decision.model_id, model_used=started.model, attempts=[], fallback_reason=None,
        request_id=started.request_id, message_id=started.message_id, text=text, content=[], stop_reason=None,
        stop_sequence=None, usage=usage, latency_ms=0.0, truncated=True,
    )  # fmt: skip
    await _settle(admission, result)
