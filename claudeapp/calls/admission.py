"""Admission: decide the model, take the rate-limit ticket and the budget hold, in that order.

All of it is short synchronous work (Redis + one small transaction); async callers
run it through `asgiref.sync.sync_to_async` and close the DB connection after.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from billing import budgets, ledger, limits, prices, upstream
from billing.costs import Usage
from billing.limits import LimitTicket
from billing.models import Reservation
from claudeapp.accounts.principals import Principal
from claudeapp.calls.errors import UpstreamBusy
from routing import services as routing
from routing.services import RouteDecision, RouteRequest


@dataclass
class Admission:
    principal: Principal
    decision: RouteDecision
    reservation: Reservation
    ticket: LimitTicket
    input_tokens: int
    max_tokens: int

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
    system: str | None,
    max_tokens: int,
    input_tokens: int,
    metadata: Mapping[str, str] | None = None,
    previous_model: str | None = None,
    interactive: bool = True,
    subject: str = "",
) -> Admission:
    """Raises routing.errors.*, billing.errors.RateLimited / BudgetExceeded / PriceMissing, UpstreamBusy."""
    decision = routing.route(
        RouteRequest(
            principal=principal,
            requested_model=requested_model,
            messages=list(messages),
            system=system or None,
            metadata=dict(metadata or {}),
            estimated_input_tokens=input_tokens,
            previous_model=previous_model or None,
            interactive=interactive,
        )
    )
    bill_classifier(principal=principal, decision=decision, subject=subject)
    prices.current_price(model_id=decision.model_id)  # an unpriced model is refused, never billed at $0
    _wait_for_upstream_room(model_id=decision.model_id, input_tokens=input_tokens)
    ticket = limits.acquire(
        principal=principal, model_id=decision.model_id, input_tokens=input_tokens, max_tokens=max_tokens
    )
    try:
        reservation = budgets.reserve(
            principal=principal, model_id=decision.model_id, input_tokens=input_tokens, max_tokens=max_tokens
        )
    except Exception:
        limits.finish(ticket=ticket, usage=None)
        raise
    return Admission(principal, decision, reservation, ticket, input_tokens, max_tokens)


def _wait_for_upstream_room(*, model_id: str, input_tokens: int) -> None:
    """Keep the whole deployment under the org's Anthropic limits (learned from response headers):
    wait a moment when that is enough, otherwise refuse before hammering Claude into 429s."""
    wait = upstream.upstream_wait_seconds(model_id=model_id, input_tokens=input_tokens)
    if wait > settings.UPSTREAM_MAX_WAIT_SECONDS:
        raise UpstreamBusy(model_id=model_id, retry_after_seconds=wait)
    if wait > 0:
        time.sleep(wait)  # admission runs in a worker thread, never on the event loop


def bill_classifier(*, principal: Principal, decision: RouteDecision, subject: str) -> None:
    """The router's Haiku call is the principal's spend too: its own ledger line, once per decision."""
    usage = decision.classifier_usage
    if usage is None or decision.decision_id is None:
        return  # no call was made (rules decided, or the label came from the cache)
    ledger.record_once(
        principal=principal,
        kind="classification",
        subject=subject or f"route:{decision.decision_id}",
        model_id=usage.model_id,
        usage=Usage(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens),
        price=prices.current_price(model_id=usage.model_id),
        event_key=f"classification:{decision.decision_id}",
        batch=False,
    )


def _header_safe(text: str) -> str:
    return "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in text)[:200]
