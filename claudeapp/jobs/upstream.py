"""The jobs package's one door to routing, billing and the Claude gateway.

Every outside call the queue makes goes through a function here, so the rest of the
package reads as job logic and the seams are easy to see.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction

from claudeapp.accounts.principals import Principal
from claudeapp.calls.errors import BUDGET, LIMIT, REFUSAL_STATUS
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
    from claudeapp.calls import queued

    return queued.local_bound(payload).tokens


def input_bound(*, principal: Principal, model_id: str, payload: dict[str, Any], batch: bool = False) -> int:
    from claudeapp.calls import queued

    return queued.input_bound(principal=principal, model_id=model_id, payload=payload, batch=batch)


def check_budget(*, principal: Principal, model_id: str, payload: dict[str, Any], batch: bool) -> None:
    """Refuse a job up front when the sure part of its worst case would not fit the budgets now."""
    from claudeapp.calls import queued

    queued.check(principal=principal, model_id=model_id, payload=payload, batch=batch)


def acquire_limit(*, job: Any, model_id: str) -> Any:
    """The attempt's rate-limit ticket, or RateLimited."""
    from claudeapp.calls import queued

    return queued.acquire(principal=principal_of(job), model_id=model_id, payload=job.payload)


def acquire_batch_tokens(*, job: Any, model_id: str) -> None:
    """A batch request's share of the token limits, taken at submission, or RateLimited."""
    from claudeapp.calls import queued

    queued.acquire_tokens(principal=principal_of(job), model_id=model_id, payload=job.payload)


def finish_limit(*, ticket: Any, result: Any) -> None:
    from claudeapp.calls import queued

    queued.finish(ticket=ticket, result=result)


def hold_span() -> dt.timedelta:
    """How long a queued attempt's hold lives past its last heartbeat: well past the lease, so the
    reaper never takes the hold of a live call; a dead attempt's hold is released by the sweeper."""
    return dt.timedelta(seconds=settings.JOBS_LEASE_SECONDS + 300)


def reserve(
    *, job: Any, model_id: str, hold_for: dt.timedelta | None = None, note: Callable[[Any], object] | None = None
) -> Any:
    """Hold the worst case for one attempt; the heartbeat keeps extending it while the call runs.
    `note` records the hold on the job row in the hold's own transaction (calls/queued.py)."""
    from claudeapp.calls import queued

    return queued.hold(
        principal=principal_of(job),
        model_id=model_id,
        payload=job.payload,
        batch=job.mode == "batch",
        hold_for=hold_for or hold_span(),
        note=note,
    )


def extend_holds(*, reservation_ids: list[int], now: dt.datetime) -> None:
    """The heartbeat's half for budgets: push the holds of running attempts past the reaper's reach."""
    from billing.models import Reservation

    if reservation_ids:
        Reservation.objects.filter(pk__in=reservation_ids).update(expires_at=now + hold_span())


def settle(*, job: Any, reservation: Any, result: Any, attempt: int | None = None) -> int:
    """Bill the job once: the ledger's event key is the job id, so a second run bills nothing new
    (an attempt that lost its lease is billed under its own attempt key)."""
    from claudeapp.calls import queued

    key = ledger_event_key(job.id) if attempt is None else f"{ledger_event_key(job.id)}:attempt:{attempt}"
    entry = queued.settle(
        reservation=reservation, payload=job.payload, result=result, event_key=key, kind="job", subject=str(job.id)
    )
    return int(entry.cost_micros)


def settle_cost(*, job: Any, reservation: Any, result: Any) -> int:
    """What `settle` will bill for the job's result (its key still unbilled): computed, not written."""
    from claudeapp.calls import queued

    return queued.settle_cost(reservation=reservation, payload=job.payload, result=result)


def settle_failed(*, job: Any, reservation: Any, exc: BaseException) -> None:
    """An attempt that failed: what it consumed upstream is billed under its own key, else the hold goes back."""
    from claudeapp.calls import queued

    queued.settle_failed(
        reservation=reservation,
        payload=job.payload,
        error=exc,
        event_key=f"{ledger_event_key(job.id)}:attempt:{job.attempts}",
        kind="job",
        subject=str(job.id),
    )


def ledger_event_key(job_id: object) -> str:
    return f"job:{job_id}"


def release(*, reservation: Any) -> None:
    from claudeapp.calls import queued

    queued.release(reservation=reservation)


# --- Message Batches: the hold is taken at submission and found again by id when the result lands.


def held_reservation(*, job: Any, model_id: str) -> Any:
    """The job's batch hold, or an empty one (the hold was reaped or given back at a cancel): settle
    then bills the ledger at the batch price and adds the spend to the covering budgets, holding
    nothing (upstream charged it; a budget may pass its limit by this one request, as Anthropic's
    own batches may)."""
    from billing.models import Reservation
    from claudeapp.calls import queued

    if job.reservation_id and (held := Reservation.objects.filter(pk=job.reservation_id).first()):
        return held
    return queued.empty_hold(principal=principal_of(job), model_id=model_id, batch=True)


def release_held(*, reservation_id: int | None) -> None:
    from billing.models import Reservation

    if reservation_id and (held := Reservation.objects.filter(pk=reservation_id).first()):
        release(reservation=held)


def settle_message(*, job: Any, reservation: Any, message: dict[str, Any], event_key: str | None = None) -> Any:
    """Bill a batch result (a Messages response body) once, under the same key as a queued run; returns
    the ledger line (the one already written, when the key was billed before)."""
    from claudeapp.calls import queued

    return queued.settle_message(
        reservation=reservation,
        message=message,
        event_key=event_key or ledger_event_key(job.id),
        kind="job",
        subject=str(job.id),
    )


def billed(*, event_key: str) -> bool:
    from billing.models import LedgerEntry

    return LedgerEntry.objects.filter(event_key=event_key).exists()


def observe_batch_item(
    *,
    job: Any,
    model_id: str,
    upstream_batch_id: str,
    result_type: str,
    entry: Any = None,
    refused_with: int | None = None,
) -> None:
    """The request log line and the request counter for one batch item, once the settlement's
    transaction commits (never for one rolled back). The job id is its request id: a batch job has no
    request of its own, and the job id is what its owner and the operator know it by.

    `complete` with `entry` (its ledger line); `refused` with `refused_with` (429 a token limit, 402 a
    budget: refused before its batch went up); else `failed`, with the job's last error (the status of a
    refused create, or none for a result)."""
    from claudeapp.calls import observe

    complete = entry is not None
    status = "complete" if complete else "refused" if refused_with else "failed"
    transaction.on_commit(
        partial(
            observe.batch_item,
            request_id=str(job.pk),
            status=status,
            principal_kind=job.principal_kind,
            principal_id=job.principal_id,
            model_requested=model_id,
            model_used=(entry.model_id if complete else "") or ("" if refused_with else model_id),
            upstream_request_id=upstream_batch_id or job.last_error_request_id,
            entry=entry,
            error_type=None if complete else job.last_error_type or result_type,
            http_status=None if complete else refused_with or job.last_error_status,
            route_decision_id=job.routing_decision_id,
            route_reason=job.routing_reason,
            job_id=str(job.pk),
            job_status=job.status,
            job_attempt=job.attempts,
            batch_result=result_type,
        )
    )


def refusal_status(failure: Failure) -> int | None:
    """The HTTP status a job refused before any upstream call is logged with, as claudeapp/ops/job_calls.py
    logs a queued job's: REFUSAL_STATUS's (429 for our token limits, 402 for a budget); None when it was
    no refusal."""
    if failure.limited:
        return REFUSAL_STATUS[LIMIT]
    return REFUSAL_STATUS[BUDGET] if failure.error_type == "budget_exceeded" else None
