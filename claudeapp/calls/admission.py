"""Admission: decide the model, take the rate-limit ticket, the budget hold and the org's upstream room, in that order.

All of it is short synchronous work (Redis + one small transaction); async callers run it on a
database thread (claudeapp/core/dbthread.py, via calls/run.py), which hands its connection back after.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from billing import budgets, limits, prices, upstream
from billing.costs import Usage
from billing.errors import BudgetExceeded, PriceMissing, RateLimited
from billing.limits import LimitTicket
from billing.models import Reservation
from claudeapp.accounts.principals import Principal
from claudeapp.calls import accounting, inflight, settlement
from claudeapp.calls.errors import UpstreamBusy
from claudeapp.claude import tokens
from routing import classifier, modelmap
from routing import services as routing
from routing.errors import RoutingError
from routing.services import RouteDecision, RouteRequest

# The call's write-ahead record, queued on the admission's last Redis round trip (calls/inflight.start_on).
Start = Callable[["Admission", Any], Callable[[list[Any] | None], None]]


@dataclass
class Admission:
    principal: Principal
    decision: RouteDecision
    reservation: Reservation
    ticket: LimitTicket
    input_tokens: int  # the upper bound held (upstream's count when it was asked)
    max_tokens: int
    classifier_usage: Usage | None = None  # the router's call, counted against the ticket at settlement
    inflight: Any = None  # the call's write-ahead record (calls/inflight.py), once its upstream call started

    @property
    def models(self) -> list[str]:
        return list(self.decision.fallback_chain) or [self.decision.model_id]

    def headers(self) -> dict[str, str]:
        """Response headers: the route taken and the caller's remaining limits."""
        return {
            "x-route-model": self.decision.model_id,
            "x-route-reason": _header_safe(self.decision.reason),
            **self.ticket.headers(),
        }


def admit(
    *,
    principal: Principal,
    requested_model: str,
    messages: Sequence[Mapping[str, Any]],
    system: str | Sequence[Mapping[str, Any]] | None,
    max_tokens: int,
    extra: Mapping[str, Any] | None = None,
    metadata: Mapping[str, str] | None = None,
    previous_model: str | None = None,
    interactive: bool = True,
    subject: str = "",
    decision_later: bool = False,
    start: Start | None = None,
) -> Admission:
    """Cheap refusals first, and none of them after an upstream call: the rules (no I/O), the rate
    limit, the classifier's own budget hold, the classifier, the input count, the budget hold, the
    org's upstream room (taken only once the hold is: a call the budget refuses takes none of it).

    `decision_later`: no row will hold the routing decision as a foreign key (a stateless call), so
    it may be written in bulk after the call (routing/decisionlog.py). `start(admission, pipe)`: the
    call's write-ahead record, written in the round trip that takes the upstream room
    (calls/inflight.start_on); dropped again, with the hold and the ticket, if that refuses.

    A call the rules route alone (no classifier, a sure local count) takes its hold while the rest goes
    to Redis in one round trip (`_admit_hold_first`): two round trips, one wait.

    Raises routing.errors.*, billing.errors.RateLimited / BudgetExceeded / PriceMissing, UpstreamBusy.
    """
    extra = extra or {}
    local = accounting.local_bound(
        messages=messages, system=system, tools=extra.get("tools"), tool_choice=extra.get("tool_choice")
    )
    planned = routing.plan(
        RouteRequest(
            principal=principal,
            requested_model=requested_model,
            messages=list(messages),
            system=system or None,
            metadata=dict(metadata or {}),
            estimated_input_tokens=local.tokens,
            previous_model=previous_model or None,
            interactive=interactive,
        )
    )
    try:
        if _hold_first(principal, planned, local):
            return _admit_hold_first(principal, planned, local, max_tokens, start=start, later=decision_later)
        return _admit_in_order(
            principal, planned, local, messages, system, extra, max_tokens,
            subject=subject, decision_later=decision_later, start=start,
        )  # fmt: skip
    except RateLimited as exc:
        _refused_until[principal.key] = time.monotonic() + min(max(exc.retry_after_seconds, 1.0), 60.0)
        raise
    except BudgetExceeded:
        _refused_until[principal.key] = time.monotonic() + _BUDGET_REFUSAL_MEMORY_SECONDS
        raise


def _admit_in_order(
    principal: Principal,
    planned: routing.Planned,
    local: accounting.InputBound,
    messages: Sequence[Mapping[str, Any]],
    system: Any,
    extra: Mapping[str, Any],
    max_tokens: int,
    *,
    subject: str,
    decision_later: bool,
    start: Start | None,
) -> Admission:
    provisional = planned.provisional_model
    ticket = limits.acquire(principal=principal, model_id=provisional, input_tokens=local.tokens, max_tokens=max_tokens)
    try:
        decision, classifier_usage = _decide(principal, planned, subject=subject, later=decision_later)
        if decision.model_id != provisional:
            ticket = _retake_for(ticket, principal, provisional, decision.model_id, local.tokens, max_tokens)
        prices.current_price(model_id=decision.model_id)  # an unpriced model is refused, never billed at $0
        bound = input_bound(principal, decision.model_id, messages, system, extra, local, max_tokens)
        unheld = _ready(principal, decision, bound.tokens, max_tokens)
        reservation = budgets.take(reservation=unheld, principal=principal)
    except BaseException:
        limits.finish(ticket=ticket, usage=None)
        raise
    admitted = Admission(principal, decision, reservation, ticket, bound.tokens, max_tokens, classifier_usage)
    try:
        _wait_for_upstream_room(admitted, start=start)
    except BaseException:
        settlement.abandon(admission=admitted)
        raise
    return admitted


def _decide(
    principal: Principal, planned: routing.Planned, *, subject: str, later: bool = False
) -> tuple[RouteDecision, Usage | None]:
    """The route; when a rule asks the classifier, its worst case is held on the principal's budgets
    first (refused: 402 before any call) and its tokens billed to them as their own ledger line."""
    if not planned.needs_classifier:
        return routing.decide(planned, later=later), None
    mm = modelmap.get_model_map()
    try:
        classifier_model = classifier.classifier_model(mm)
    except RoutingError:
        return routing.decide(planned, later=later), None  # no classifier: the router falls back without a call
    prompt = _classifier_prompt(planned)
    hold = budgets.reserve(
        principal=principal, model_id=classifier_model, input_tokens=prompt.tokens, max_tokens=classifier.MAX_TOKENS
    )
    try:
        decision = routing.decide(planned, later=later)
    except BaseException:
        budgets.release(reservation=hold)
        raise
    return decision, _bill_classifier(hold, decision, subject=subject)


def _classifier_prompt(planned: routing.Planned) -> accounting.InputBound:
    return accounting.local_bound(
        messages=[{"role": "user", "content": planned.classifier_text or "(empty)"}], system=classifier.SYSTEM_PROMPT
    )


def _bill_classifier(hold: Reservation, decision: RouteDecision, *, subject: str) -> Usage | None:
    usage = decision.classifier_usage
    if usage is None or decision.decision_id is None:
        budgets.release(reservation=hold)  # the label came from the cache, or the call failed before upstream
        return None
    billed = Usage(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens)
    budgets.settle(
        reservation=hold,
        usage=billed,
        event_key=f"classification:{decision.decision_id}",
        kind="classification",
        subject=subject or f"route:{decision.decision_id}",
        model_id=usage.model_id,
    )
    return billed


def _retake_for(
    ticket: LimitTicket, principal: Principal, provisional: str, model_id: str, input_tokens: int, max_tokens: int
) -> LimitTicket:
    """The classifier chose another model than the limits were taken for: when other policies
    cover it, take its ticket too (the first one's request stays counted: never fewer than made)."""
    policies = limits.policies()
    if limits.applicable(principal, provisional, policies) == limits.applicable(principal, model_id, policies):
        return ticket
    limits.finish(ticket=ticket, usage=None)
    return limits.acquire(principal=principal, model_id=model_id, input_tokens=input_tokens, max_tokens=max_tokens)


def input_bound(
    principal: Principal,
    model_id: str,
    messages: Sequence[Mapping[str, Any]],
    system: Any,
    extra: Mapping[str, Any],
    local: accounting.InputBound,
    max_tokens: int,
    *,
    batch: bool = False,
) -> accounting.InputBound:
    """The prompt's bound for the hold: the local one, or upstream's count when the local one is unsure."""
    if not accounting.needs_count(local):
        return local
    # count_tokens is an upstream call (a free one): a budget that cannot take even the part of the
    # prompt we are sure of refuses first (at the batch price for a batch request: it costs half).
    budgets.check(
        principal=principal,
        model_id=model_id,
        input_tokens=local.tokens - local.guessed,
        max_tokens=max_tokens,
        batch=batch,
    )
    body = accounting.count_body(messages=messages, system=system, extra=extra)
    return accounting.counted_bound(
        model_id=model_id,
        body=body,
        local=local,
        count=lambda model, payload: tokens.count_tokens(model=model, body=payload),
    )


def _ready(principal: Principal, decision: RouteDecision, input_tokens: int, max_tokens: int) -> Reservation:
    """The call's hold, not taken yet (budgets.ready): on the dearest model its fallback chain may end on."""
    return budgets.ready(
        principal=principal,
        model_id=_dearest(decision, input_tokens, max_tokens),
        input_tokens=input_tokens,
        max_tokens=max_tokens,
    )


def _dearest(decision: RouteDecision, input_tokens: int, max_tokens: int) -> str:
    """The hold covers the dearest model the fallback chain may end on, so a fallback never overspends."""
    chain = list(decision.fallback_chain) or [decision.model_id]
    worst = {decision.model_id: 0}
    for model_id in chain:
        try:
            price = prices.current_price(model_id=model_id)
        except PriceMissing:
            continue  # an unpriced fallback is refused when reached, never billed
        worst[model_id] = budgets.worst_case_micros(price=price, input_tokens=input_tokens, max_tokens=max_tokens)
    return max(worst, key=lambda m: worst[m])


# Principals refused a moment ago (this process) take their limits first again: by their rate limits, until
# the refusal's retry-after has passed, so a flood of refused calls costs Postgres nothing; by a budget, for
# a while, so a flood of calls on a spent budget is held by the rate limits (each counts as a request, as
# it did before the hold went first) instead of each reaching Postgres. Only the order changes, not the answer.
_refused_until: dict[str, float] = {}
_BUDGET_REFUSAL_MEMORY_SECONDS = 10.0


def _hold_first(principal: Principal, planned: routing.Planned, local: accounting.InputBound) -> bool:
    """The classifier and upstream's token count are calls of their own, made inside the limits: not these."""
    if planned.needs_classifier or accounting.needs_count(local):
        return False
    until = _refused_until.get(principal.key)
    if until is None:
        return True
    if until > time.monotonic():
        return False
    _refused_until.pop(principal.key, None)
    if len(_refused_until) > 10_000:  # never more than the principals refused lately
        _refused_until.clear()
    return True


def _admit_hold_first(
    principal: Principal,
    planned: routing.Planned,
    local: accounting.InputBound,
    max_tokens: int,
    *,
    start: Start | None,
    later: bool,
) -> Admission:
    """The hold (Postgres) taken while the rate limits, the org's upstream room and the write-ahead record
    (a stateless call's) go to Redis in one round trip: the two overlap, the hold's id drawn ahead so the
    record names it before it lands. The refusals leave what they left when the hold went first: a budget
    refusal is the answer (402, even when a limit refused too), its limits given back and its record
    dropped; a limit refusal gives the hold back and drops the record; either gives back the org's upstream
    room it took (never sent, never spent). The routing decision is stored once admitted, or refused by a
    budget, as the other order stores it."""
    decision = routing.decide(planned, store=False)
    prices.current_price(model_id=decision.model_id)  # an unpriced model is refused, never billed at $0
    reservation = _ready(principal, decision, local.tokens, max_tokens)
    admitted = Admission(principal, decision, reservation, limits.LimitTicket(id=""), local.tokens, max_tokens)
    holding = _Holding(admitted)
    try:
        _wait_for_upstream_room(admitted, start=start, with_limits=True, holding=holding)
        holding.name_in_record()
        admitted.decision = routing.stored(planned, decision, later=later)
    except BaseException:
        settlement.abandon(admission=admitted)  # what was taken: the hold if it landed, the slot, the record
        if holding.error is None:
            raise
        if isinstance(holding.error, BudgetExceeded):
            routing.stored(planned, decision, later=later)  # the router decided: the console shows it all the same
        raise holding.error from None
    return admitted


class _Holding:
    """The budget hold, taken while admission's Redis round trip is under way: its refusal is kept until the
    replies are read (what the round trip took must be known to be given back)."""

    def __init__(self, admitted: Admission) -> None:
        self.admitted = admitted
        self.named = (admitted.reservation.pk, list(admitted.reservation.budget_ids))  # as the record has it
        self.error: Exception | None = None

    def __call__(self) -> None:
        try:
            budgets.take(reservation=self.admitted.reservation, principal=self.admitted.principal)
        except Exception as exc:
            self.error = exc

    def raise_refusal(self) -> None:
        if self.error is not None:
            raise self.error

    def name_in_record(self) -> None:
        """Budgets deleted or disabled since they were read: the hold was taken on the others, and the
        record (which the reaper settles by) must say so. Rare: its own round trip."""
        held = self.admitted.reservation
        if (held.pk, list(held.budget_ids)) != self.named:
            inflight.checkpoint_sync(
                inflight.call_id_of(self.admitted),
                res="" if held.pk is None else str(held.pk),
                budgets=",".join(map(str, held.budget_ids)),
            )


def _wait_for_upstream_room(
    admitted: Admission, *, start: Start | None, with_limits: bool = False, holding: _Holding | None = None
) -> None:
    """Keep the whole deployment under the org's Anthropic limits (learned from response headers):
    wait a moment when that is enough, otherwise refuse before hammering Claude into 429s.
    `with_limits`: the rate limits go in the same round trip, their ticket set on `admitted` (or
    RateLimited raised) before any wait. `holding`: the budget hold, taken meanwhile (its refusal raised
    before any wait too)."""
    model_id = admitted.decision.model_id
    taking = _Taking(admitted, start, with_limits)
    wait = upstream.upstream_wait_seconds(
        model_id=model_id,
        input_tokens=admitted.input_tokens,
        also=taking if start or with_limits else None,
        meanwhile=holding,
    )
    try:
        if taking.asked is not None:  # read even if never sent (Redis unreachable): the limiter's outage rule decides
            admitted.ticket = taking.asked.read(taking.limit_reply)
        if holding is not None:
            holding.raise_refusal()
    except BaseException:
        if wait == 0 and taking.reached:  # refused beside its take of the org's room: not sent, so not spent
            upstream.give_back(model_id=model_id, input_tokens=admitted.input_tokens)
        raise
    if wait > settings.UPSTREAM_MAX_WAIT_SECONDS:
        raise UpstreamBusy(model_id=model_id, retry_after_seconds=wait)
    if wait > 0:
        time.sleep(wait)  # admission runs in a worker thread, never on the event loop


class _Taking:
    """What admission queues beside its take of the org's upstream room (billing/upstream.Also): the
    rate limits (hold-first admission) and the call's write-ahead record, and where their replies go."""

    def __init__(self, admitted: Admission, start: Start | None, with_limits: bool) -> None:
        a = admitted
        self.admitted, self.start = admitted, start
        self.asked = limits.ask(
            principal=a.principal, model_id=a.decision.model_id, input_tokens=a.input_tokens, max_tokens=a.max_tokens
        ) if with_limits else None  # fmt: skip
        self.limit_reply: object = None
        self.reached = False  # the round trip came back (the org's room was taken if its wait was 0)

    def __call__(self, pipe: Any) -> Callable[[list[Any] | None], None]:
        mine = self.asked.queue_on(pipe) if self.asked is not None else 0
        record = self.start(self.admitted, pipe) if self.start is not None else None

        def replied(replies: list[Any] | None) -> None:
            self.reached = replies is not None
            if mine and replies is not None:
                self.limit_reply = replies[0]
            if record is not None:
                record(None if replies is None else replies[mine:])

        return replied


def route(*, principal: Principal, request: RouteRequest, subject: str = "") -> RouteDecision:
    """A route for work admitted later (a job at creation): the rules, and when a rule asks the
    classifier, its call inside the principal's rate limits and budgets, billed to them."""
    planned = routing.plan(request)
    if not planned.needs_classifier:
        return routing.decide(planned)
    prompt = _classifier_prompt(planned)
    ticket = limits.acquire(
        principal=principal, model_id=planned.provisional_model, input_tokens=prompt.tokens,
        max_tokens=classifier.MAX_TOKENS,
    )  # fmt: skip
    try:
        decision, usage = _decide(principal, planned, subject=subject)
    except BaseException:
        limits.finish(ticket=ticket, usage=None)
        raise
    limits.finish(ticket=ticket, usage=usage or Usage(input_tokens=0, output_tokens=0))
    return decision


def _header_safe(text: str) -> str:
    return "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in text)[:200]
