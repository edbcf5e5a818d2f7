"""The billed call for work that runs later: a queued job's attempt, a request inside a Message Batch.

The same steps as `admission.admit` / `run.settle_ending`, for a caller that owns its retries and
was routed when it was created: the rate-limit ticket when it runs (or the token share of the limits
for a batch request), the input bound (upstream's count when unsure), the budget hold, and after the
call one ledger line with what every attempt consumed upstream. Sync: workers and beat call it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Callable, Mapping
from typing import Any

from django.db import transaction

from billing import budgets, costs, limits
from billing.limits import LimitTicket
from billing.models import LedgerEntry, Reservation
from billing.prices import current_price
from claudeapp.accounts.principals import Principal
from claudeapp.calls import accounting, admission, inflight, run, settlement

Payload = Mapping[str, Any]


def local_bound(payload: Payload) -> accounting.InputBound:
    """The prompt's local upper bound (every block type, system, tools): cheap, no I/O."""
    return accounting.local_bound(
        messages=payload.get("messages") or [],
        system=payload.get("system"),
        tools=payload.get("tools"),
        tool_choice=payload.get("tool_choice"),
    )


def input_bound(*, principal: Principal, model_id: str, payload: Payload, batch: bool = False) -> int:
    """The bound a hold is taken for, as for every other call (admission.input_bound)."""
    extra = {k: payload[k] for k in ("tools", "tool_choice", "thinking") if payload.get(k) is not None}
    return admission.input_bound(
        principal,
        model_id,
        payload["messages"],
        payload.get("system"),
        extra,
        local_bound(payload),
        int(payload["max_tokens"]),
        batch=batch,
    ).tokens


def check(*, principal: Principal, model_id: str, payload: Payload, batch: bool) -> None:
    """Refuse work up front when the part of its worst case we are sure of would not fit the budgets
    now (BudgetExceeded, PriceMissing). Nothing is held: the attempt holds for real when it runs."""
    local = local_bound(payload)
    budgets.check(
        principal=principal,
        model_id=model_id,
        input_tokens=local.tokens - local.guessed,
        max_tokens=int(payload["max_tokens"]),
        batch=batch,
    )


def acquire(*, principal: Principal, model_id: str, payload: Payload) -> LimitTicket:
    """The attempt's rate-limit ticket (one request, its input bound and max_tokens), or RateLimited."""
    return limits.acquire(
        principal=principal,
        model_id=model_id,
        input_tokens=local_bound(payload).tokens,
        max_tokens=int(payload["max_tokens"]),
    )


def acquire_tokens(*, principal: Principal, model_id: str, payload: Payload) -> None:
    """A batch request's share of the token limits, or RateLimited. No request slot: the batch is one
    create call, and nothing is given back later (the window has moved on by then)."""
    limits.acquire_tokens(
        principal=principal,
        model_id=model_id,
        input_tokens=local_bound(payload).tokens,
        max_tokens=int(payload["max_tokens"]),
    )


def finish(*, ticket: LimitTicket | None, result: Any) -> None:
    """Correct the ticket with the real usage, or with None when no usage came back (the call failed)."""
    if ticket is not None:
        usage = costs.Usage.from_anthropic(result.usage) if result is not None else None
        limits.finish(ticket=ticket, usage=usage)


def hold(
    *,
    principal: Principal,
    model_id: str,
    payload: Payload,
    batch: bool,
    hold_for: dt.timedelta,
    note: Callable[[Reservation], object] | None = None,
) -> Reservation:
    """Hold the worst case of one attempt or batch request on the principal's budgets. An attempt's
    upstream call follows at once: its write-ahead record (calls/inflight.py) is written here and
    travels on the returned hold to settle / settle_failed / release.

    `note(reservation)` records the hold where whoever takes over from a dead worker looks for it (the
    job row), in the hold's own transaction: a worker killed between the two left a hold nobody knew
    to give back until the reaper's age limit."""
    bound = input_bound(principal=principal, model_id=model_id, payload=payload, batch=batch)
    with transaction.atomic() if note is not None else contextlib.nullcontext():
        reservation = budgets.reserve(
            principal=principal,
            model_id=model_id,
            input_tokens=bound,
            max_tokens=int(payload["max_tokens"]),
            batch=batch,
            hold_for=hold_for,
        )
        if note is not None:
            note(reservation)
    if not batch:  # a Message Batch request is not a call in flight: its result is polled for
        reservation.inflight_id = inflight.open_sync(  # type: ignore[attr-defined]
            principal=principal, reservation=reservation, model_id=model_id, input_tokens=bound,
            max_tokens=int(payload["max_tokens"]), kind="job",
        )  # fmt: skip
    return reservation


def _inflight_id(reservation: Reservation | None) -> str | None:
    return getattr(reservation, "inflight_id", None)


def settle(
    *, reservation: Reservation, payload: Payload, result: Any, event_key: str, kind: str, subject: str
) -> LedgerEntry:
    """One ledger line for the call: its usage and what failed attempts of its chain consumed."""
    usage = _billed_usage(payload, result)
    call_id = _inflight_id(reservation)
    # Before the bill: a worker dying between it and the delete leaves a record the reaper finds billed.
    inflight.checkpoint_sync(
        call_id, ek=event_key, rid=result.request_id or "", msg=result.message_id or "", kind=kind, subject=subject,
        final=json.dumps(usage), model_used=result.model_used,
    )  # fmt: skip
    entry = budgets.settle(
        reservation=reservation,
        usage=settlement.usage_from_gateway(usage),
        event_key=event_key,
        kind=kind,
        subject=subject,
        upstream_request_id=result.request_id or "",
        upstream_message_id=result.message_id or "",
        model_id=result.model_used,
    )
    _done_after_commit(call_id)
    return entry


def settle_cost(*, reservation: Reservation, payload: Payload, result: Any) -> int:
    """What `settle` bills for `result` when its event key is new: budgets.settle's price rule on the
    same usage. No write, so a caller can store the cost before the bill and make the bill its
    transaction's last statement (the ledger's rollup row is shared by every call of a principal and
    model in a day: its lock is held from the bill to the commit)."""
    usage = settlement.usage_from_gateway(_billed_usage(payload, result))
    price = budgets.settle_price(reservation, result.model_used or reservation.model_id)
    return costs.compute_cost(price=price, usage=usage, batch=reservation.batch).total_micros


def _billed_usage(payload: Payload, result: Any) -> dict[str, int]:
    return run.billed_usage(result, input_bound=local_bound(payload).tokens, max_tokens=int(payload["max_tokens"]))


def _done_after_commit(call_id: str | None) -> None:
    if call_id:
        transaction.on_commit(lambda: inflight.done(call_id))  # at once outside a transaction


def settle_failed(
    *, reservation: Reservation | None, payload: Payload, error: BaseException, event_key: str, kind: str, subject: str
) -> None:
    """A failed attempt: bill what it consumed upstream (a cut after message_start, a 200 whose body
    was lost), else give the hold back."""
    attempts = list(getattr(error, "attempts", None) or [])
    usage = run.attempts_usage(attempts, input_bound=local_bound(payload).tokens, max_tokens=int(payload["max_tokens"]))
    if usage is None or reservation is None:
        release(reservation=reservation)
        return
    last = next(a for a in reversed(attempts) if a.usage or a.body_lost)
    inflight.checkpoint_sync(_inflight_id(reservation), ek=event_key, rid=last.request_id or "", kind=kind,
                             subject=subject, final=json.dumps(usage), model_used=last.model)  # fmt: skip
    budgets.settle(
        reservation=reservation,
        usage=settlement.usage_from_gateway(usage),
        event_key=event_key,
        kind=kind,
        subject=subject,
        upstream_request_id=last.request_id or "",
        model_id=last.model,
    )
    _done_after_commit(_inflight_id(reservation))


def release(*, reservation: Reservation | None) -> None:
    if reservation is not None:
        budgets.release(reservation=reservation)
        _done_after_commit(_inflight_id(reservation))


def empty_hold(*, principal: Principal, model_id: str, batch: bool) -> Reservation:
    """For a result whose hold is gone (reaped, or given back at a cancel): settle then bills the
    ledger and adds the spend to the covering budgets, holding nothing (upstream charged it)."""
    empty = Reservation(
        principal_kind=principal.kind,
        principal_id=principal.id,
        user_id=principal.user_id,
        model_id=model_id,
        price_version=current_price(model_id=model_id),
        amount_micros=0,
        batch=batch,
    )
    empty.budget_ids = budgets.covering_ids(principal)
    return empty


def settle_message(
    *, reservation: Reservation, message: Mapping[str, Any], event_key: str, kind: str, subject: str
) -> LedgerEntry:
    """Bill a Messages response body (a batch result) once."""
    return budgets.settle(
        reservation=reservation,
        usage=costs.Usage.from_anthropic(message.get("usage") or {}),
        event_key=event_key,
        kind=kind,
        subject=subject,
        upstream_message_id=message.get("id") or "",
        model_id=message.get("model") or reservation.model_id,
    )
