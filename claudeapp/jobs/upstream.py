"""The jobs package's one door to routing, billing and the Claude gateway.

Every outside call the queue makes goes through a function here, so the rest of the
package reads as job logic and the seams are easy to see.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction

from claudeapp.accounts.principals import Principal
from claudeapp.claude import errors as claude_errors

CALL_KEYS = ("system", "metadata", "stop_sequences")


@dataclass(frozen=True)
class Failure:
    """An upstream failure reduced to what the retry policy needs."""

    retryable: bool
    retry_after: float | None
    status: int | None
    error_type: str
    message: str
    request_id: str
    limited: bool = False  # our own rate limit had no room: wait for it, neither fail nor count an attempt


def principal_of(job: Any) -> Principal:
    return Principal(kind=job.principal_kind, id=job.principal_id, user_id=job.user_id)


def user_id_of(job: Any) -> str:
    from claudeapp.calls.run import upstream_user_id

    return upstream_user_id(principal_of(job))


def route(
    *, principal: Principal, payload: dict[str, Any], requested_mode: str | None, previous_model: str | None = None
) -> Any:
    """The router's decision for a queued request (nobody waits on it, so `batch` is allowed).

    When a rule asks the classifier, its call is made inside the principal's limits and budgets
    and billed to them as its own ledger line (claudeapp.calls.admission.route).
    """
    from claudeapp.calls import admission
    from routing import services as routing

    return admission.route(
        principal=principal,
        request=routing.RouteRequest(
            principal=principal,
            requested_model=payload["model"],
            messages=payload["messages"],
            system=payload.get("system"),
            metadata=payload.get("metadata") or {},
            estimated_input_tokens=estimate_input_tokens(payload),
            previous_model=previous_model,
            interactive=False,
            mode=requested_mode or "queue",
        ),
    )


def model_chain(name: str) -> list[str]:
    """The model to call first, then its fallbacks; raises routing's UnknownModel / ModelDisabled."""
    from routing import modelmap

    return modelmap.fallback_chain(modelmap.resolve_model(name))  # the chain starts with the model itself


def call(*, models: list[str], payload: dict[str, Any], upstream_user_id: str) -> Any:
    """One gateway call for a worker; returns the gateway's GatewayResult. Upstream sees the
    principal's opaque id (claudeapp.calls.run.upstream_user_id), never the caller's metadata."""
    from claudeapp.claude import gateway

    extra = {k: v for k, v in payload.items() if k not in {"model", "messages", "max_tokens", *CALL_KEYS}}
    return gateway.complete(
        models=models,
        messages=payload["messages"],
        system=payload.get("system"),
        max_tokens=payload["max_tokens"],
        metadata={"user_id": upstream_user_id},
        stop_sequences=payload.get("stop_sequences"),
        extra=extra or None,
        timeout=settings.JOBS_CALL_TIMEOUT_SECONDS,
        max_attempts=1,  # the job row owns retries (attempts, next_attempt_at); never stack the gateway's
    )


def classify(exc: BaseException) -> Failure | None:
    """A Failure for gateway, routing and billing errors; None for anything else (a bug: let it raise)."""
    from billing.errors import BillingError, RateLimited
    from routing.errors import RoutingError

    if isinstance(exc, RateLimited):
        return Failure(True, exc.retry_after_seconds, None, "rate_limited", str(exc), "", limited=True)
    if isinstance(exc, RoutingError | BillingError):
        # The model map or the budget refuses the job now; retrying in seconds would not change that.
        return Failure(False, None, None, _snake(type(exc).__name__), str(exc), "")
    if isinstance(exc, claude_errors.NoModelAvailable):
        last = exc.last_error
        return Failure(
            retryable=True,
            retry_after=exc.retry_after,
            status=last.status if last else None,
            error_type=last.error_type if last else "no_model_available",
            message=str(exc),
            request_id=(last.request_id or "") if last else "",
        )
    if isinstance(exc, claude_errors.UpstreamError):
        return Failure(
            retryable=exc.retryable,
            retry_after=exc.retry_after,
            status=exc.status,
            error_type=exc.error_type,
            message=exc.message or str(exc),
            request_id=exc.request_id or "",
        )
    return None


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def message_json(result: Any) -> dict[str, Any]:
    """The job's result: a Messages API response body rebuilt from the GatewayResult."""
    content = [block.model_dump() if hasattr(block, "model_dump") else block for block in result.content or []]
    return {
        "id": result.message_id,
        "type": "message",
        "role": "assistant",
        "model": result.model_used,
        "content": content,
        "stop_reason": result.stop_reason,
        "usage": dict(result.usage),
    }


def estimate_input_tokens(payload: dict[str, Any]) -> int:
    """The prompt's local upper bound (every block type, system, tools): cheap, no I/O."""
    from claudeapp.calls import accounting

    return accounting.local_bound(
        messages=payload.get("messages") or [],
        system=payload.get("system"),
        tools=payload.get("tools"),
        tool_choice=payload.get("tool_choice"),
    ).tokens


def input_bound(*, principal: Principal, model_id: str, payload: dict[str, Any], batch: bool = False) -> int:
    """The bound the hold is taken for: upstream's count when the local bound is unsure (images,
    PDFs, large prompts), as for every other call (claudeapp.calls.admission.input_bound)."""
    from claudeapp.calls import accounting
    from claudeapp.calls.admission import input_bound as pipeline_bound
    from claudeapp.claude import tokens

    extra = {k: payload[k] for k in ("tools", "tool_choice", "thinking") if payload.get(k) is not None}
    local = accounting.local_bound(
        messages=payload.get("messages") or [],
        system=payload.get("system"),
        tools=extra.get("tools"),
        tool_choice=extra.get("tool_choice"),
    )
    if not batch:
        return pipeline_bound(
            principal, model_id, payload["messages"], payload.get("system"), extra, local, int(payload["max_tokens"])
        ).tokens
    if not accounting.needs_count(local):
        return local.tokens
    # The pipeline checks the sure part at the full price before counting; a batch request costs half,
    # so that check refused batch jobs whose real hold fits. Same check, at the batch price.
    check_budget(principal=principal, model_id=model_id, payload=payload, batch=True)
    body = accounting.count_body(messages=payload["messages"], system=payload.get("system"), extra=extra)
    return accounting.counted_bound(
        model_id=model_id, body=body, local=local, count=lambda model, b: tokens.count_tokens(model=model, body=b)
    ).tokens


def check_budget(*, principal: Principal, model_id: str, payload: dict[str, Any], batch: bool) -> None:
    """Refuse a job up front when its worst case would not fit the budgets now (BudgetExceeded,
    PriceMissing). The hold is taken in a savepoint and rolled back: the worker reserves for real."""
    from billing import budgets
    from claudeapp.calls import accounting

    local = accounting.local_bound(
        messages=payload.get("messages") or [],
        system=payload.get("system"),
        tools=payload.get("tools"),
        tool_choice=payload.get("tool_choice"),
    )
    with transaction.atomic():
        budgets.reserve(
            principal=principal,
            model_id=model_id,
            input_tokens=local.tokens - local.guessed,  # the part we are sure of; the worker holds the rest
            max_tokens=int(payload["max_tokens"]),
            batch=batch,
        )
        transaction.set_rollback(True)


def acquire_limit(*, job: Any, model_id: str) -> Any:
    """The attempt's rate-limit ticket (one request, its input estimate and max_tokens), or RateLimited."""
    from billing import limits

    return limits.acquire(
        principal=principal_of(job),
        model_id=model_id,
        input_tokens=estimate_input_tokens(job.payload),
        max_tokens=int(job.payload["max_tokens"]),
    )


def acquire_batch_tokens(*, job: Any, model_id: str) -> None:
    """A batch request's share of the token limits, taken at submission, or RateLimited. No request slot:
    the batch is one create call, and nothing is given back later (the window has moved on by then)."""
    from billing import limits

    limits.acquire_tokens(
        principal=principal_of(job),
        model_id=model_id,
        input_tokens=estimate_input_tokens(job.payload),
        max_tokens=int(job.payload["max_tokens"]),
    )


def finish_limit(*, ticket: Any, result: Any) -> None:
    """Correct the ticket with the real usage, or with None when no usage came back (the call failed)."""
    from billing import costs, limits

    if ticket is not None:
        usage = costs.Usage.from_anthropic(result.usage) if result is not None else None
        limits.finish(ticket=ticket, usage=usage)


def hold_span() -> dt.timedelta:
    """How long a queued attempt's hold lives past its last heartbeat: well past the lease, so the
    reaper never takes the hold of a live call; a dead attempt's hold is released by the sweeper."""
    return dt.timedelta(seconds=settings.JOBS_LEASE_SECONDS + 300)


def reserve(*, job: Any, model_id: str, hold_for: dt.timedelta | None = None) -> Any:
    """Hold the worst case for one attempt; the heartbeat keeps extending it while the call runs."""
    from billing import budgets

    principal = principal_of(job)
    return budgets.reserve(
        principal=principal,
        model_id=model_id,
        input_tokens=input_bound(
            principal=principal, model_id=model_id, payload=job.payload, batch=job.mode == "batch"
        ),
        max_tokens=int(job.payload["max_tokens"]),
        batch=job.mode == "batch",
        hold_for=hold_for or hold_span(),
    )


def extend_holds(*, reservation_ids: list[int], now: dt.datetime) -> None:
    """The heartbeat's half for budgets: push the holds of running attempts past the reaper's reach."""
    from billing.models import Reservation

    if reservation_ids:
        Reservation.objects.filter(pk__in=reservation_ids).update(expires_at=now + hold_span())


def settle(*, job: Any, reservation: Any, result: Any, attempt: int | None = None) -> int:
    """Bill the job once: the ledger's event key is the job id, so a second run bills nothing new.
    Attempts of the chain that failed after upstream produced tokens are part of the bill."""
    from billing import budgets
    from claudeapp.calls import run, settlement

    usage = run.billed_usage(
        result, input_bound=estimate_input_tokens(job.payload), max_tokens=int(job.payload["max_tokens"])
    )
    entry = budgets.settle(
        reservation=reservation,
        usage=settlement.usage_from_gateway(usage),
        event_key=ledger_event_key(job.id) if attempt is None else f"{ledger_event_key(job.id)}:attempt:{attempt}",
        kind="job",
        subject=str(job.id),
        upstream_request_id=result.request_id or "",
        upstream_message_id=result.message_id or "",
        model_id=result.model_used,
    )
    return int(entry.cost_micros)


def settle_failed(*, job: Any, reservation: Any, exc: BaseException) -> None:
    """An attempt that failed: bill what it consumed upstream (a cut after message_start, a 200 whose
    body was lost) under this attempt's own key, else give the hold back."""
    from billing import budgets
    from claudeapp.calls import run, settlement

    attempts = list(getattr(exc, "attempts", None) or [])
    usage = run.attempts_usage(
        attempts, input_bound=estimate_input_tokens(job.payload), max_tokens=int(job.payload["max_tokens"])
    )
    if usage is None or reservation is None:
        release(reservation=reservation)
        return
    last = next(a for a in reversed(attempts) if a.usage or a.body_lost)
    budgets.settle(
        reservation=reservation,
        usage=settlement.usage_from_gateway(usage),
        event_key=f"{ledger_event_key(job.id)}:attempt:{job.attempts}",
        kind="job",
        subject=str(job.id),
        upstream_request_id=last.request_id or "",
        model_id=last.model,
    )


def ledger_event_key(job_id: object) -> str:
    return f"job:{job_id}"


def release(*, reservation: Any) -> None:
    from billing import budgets

    if reservation is not None:
        budgets.release(reservation=reservation)


# --- Message Batches: the hold is taken at submission and found again by id when the result lands.


def held_reservation(*, job: Any, model_id: str) -> Any:
    """The job's batch hold, or an empty one (the hold was reaped or given back at a cancel): settle
    then bills the ledger at the batch price and adds the spend to the covering budgets, holding
    nothing (upstream charged it; a budget may pass its limit by this one request, as Anthropic's
    own batches may)."""
    from billing import budgets
    from billing.models import Reservation
    from billing.prices import current_price

    if job.reservation_id and (held := Reservation.objects.filter(pk=job.reservation_id).first()):
        return held
    empty = Reservation(
        principal_kind=job.principal_kind,
        principal_id=job.principal_id,
        user_id=job.user_id,
        model_id=model_id,
        price_version=current_price(model_id=model_id),
        amount_micros=0,
        batch=True,
    )
    empty.budget_ids = budgets.covering_ids(principal_of(job))
    return empty


def release_held(*, reservation_id: int | None) -> None:
    from billing.models import Reservation

    if reservation_id and (held := Reservation.objects.filter(pk=reservation_id).first()):
        release(reservation=held)


def settle_message(*, job: Any, reservation: Any, message: dict[str, Any], event_key: str | None = None) -> int:
    """Bill a batch result (a Messages response body) once, under the same key as a queued run."""
    from billing import budgets, costs

    entry = budgets.settle(
        reservation=reservation,
        usage=costs.Usage.from_anthropic(message.get("usage") or {}),
        event_key=event_key or ledger_event_key(job.id),
        kind="job",
        subject=str(job.id),
        upstream_message_id=message.get("id") or "",
        model_id=message.get("model") or reservation.model_id,
    )
    return int(entry.cost_micros)
