"""Billing's domain exceptions. Each carries the data a view needs to answer the caller."""

from __future__ import annotations

import datetime as dt

from billing.money import usd


class BillingError(Exception):
    pass


class PriceMissing(BillingError):
    """No price covers this model at this time: the request is refused, never billed $0."""

    def __init__(self, *, model_id: str) -> None:
        self.model_id = model_id
        super().__init__(f"no price for model {model_id!r}")


class BudgetExceeded(BillingError):
    """A budget refused a hold. Carries what a caller can act on: which budget, what is left of it, what
    is held by calls still running, when it resets, and whether it is used up (`exhausted`) or only too
    small for this request's worst case (`insufficient`: a lower max_tokens may fit)."""

    EXHAUSTED = "exhausted"
    INSUFFICIENT = "insufficient"

    def __init__(
        self,
        *,
        scope: str,
        scope_id: int | None,
        limit_micros: int,
        spent_micros: int,
        resets_at: dt.datetime,
        budget_id: int | None = None,
        period: str = "",
        held_micros: int = 0,
        requested_micros: int = 0,
    ) -> None:
        self.scope = scope
        self.scope_id = scope_id
        self.limit_micros = limit_micros
        self.spent_micros = spent_micros
        self.resets_at = resets_at
        self.budget_id = budget_id
        self.period = period
        self.held_micros = held_micros
        self.requested_micros = requested_micros
        who = scope if scope_id is None else f"{scope} {scope_id}"
        super().__init__(
            f"budget of {who} exceeded: spent {spent_micros} of {limit_micros} micro-dollars, resets {resets_at}"
        )

    @property
    def remaining_micros(self) -> int:
        """What is left for new calls now: the limit less what is spent and what running calls hold."""
        return max(self.limit_micros - self.spent_micros - self.held_micros, 0)

    @property
    def reason(self) -> str:
        # Used up when nothing is left beside what running calls hold; otherwise a smaller request could
        # still fit, and the caller should be told so.
        if self.remaining_micros <= 0 or self.requested_micros <= 0:
            return self.EXHAUSTED
        return self.INSUFFICIENT

    @property
    def label(self) -> str:
        """How the caller is told which budget: `partner_key 12 (month)`, `global (day)`."""
        who = self.scope if self.scope_id is None else f"{self.scope} {self.scope_id}"
        return f"{who} ({self.period})" if self.period else who

    def detail(self) -> dict[str, object]:
        """The refusal as data, for every surface's error body."""
        return {
            "id": self.budget_id,
            "scope": self.scope,
            "scope_id": self.scope_id,
            "period": self.period or None,
            "limit_micros": self.limit_micros,
            "spent_micros": self.spent_micros,
            "held_micros": self.held_micros,
            "remaining_micros": self.remaining_micros,
            "requested_micros": self.requested_micros,
            "resets_at": self.resets_at.isoformat(),
            "reason": self.reason,
        }

    def explain(self) -> str:
        """One sentence a partner can act on."""
        resets = self.resets_at.isoformat()
        if self.reason == self.EXHAUSTED:
            return f"Budget {self.label} is used up: {usd(self.limit_micros)}; it resets at {resets}."
        return (
            f"This request's worst case ({usd(self.requested_micros)}) is more than what is left of budget "
            f"{self.label} ({usd(self.remaining_micros)} of {usd(self.limit_micros)}, {usd(self.held_micros)} held "
            f"by calls in flight); lower max_tokens or wait until {resets}."
        )


class RateLimited(BillingError):
    """A rate limit had no room. `axis` names it when known (`requests`, `input-tokens`, `output-tokens` per
    minute, or `concurrent` requests, as in the x-ratelimit-* headers), with the policy's scope and size."""

    AXIS_NAMES = {
        "requests": "requests per minute",
        "input-tokens": "input tokens per minute",
        "output-tokens": "output tokens per minute",
        "concurrent": "concurrent requests",
    }

    def __init__(
        self,
        *,
        retry_after_seconds: float,
        headers: dict[str, str] | None = None,
        axis: str = "",
        scope: str = "",
        limit_value: int | None = None,
    ) -> None:
        self.retry_after_seconds = retry_after_seconds
        self.headers = dict(headers or {})
        self.axis = axis
        self.scope = scope
        self.limit_value = limit_value
        super().__init__(f"rate limited; retry after {retry_after_seconds:.1f}s")

    def explain(self) -> str:
        wait = f"retry in {max(retry_seconds(self.retry_after_seconds), 1)} s"
        if not self.axis:
            return f"Rate limit exceeded; {wait}."
        size = f" ({self.limit_value})" if self.limit_value is not None else ""
        scope = f" of the {self.scope} policy" if self.scope else ""
        return f"Rate limit exceeded: {self.AXIS_NAMES.get(self.axis, self.axis)}{size}{scope}; {wait}."


def retry_seconds(seconds: float) -> int:
    return int(seconds) + (0 if seconds == int(seconds) else 1)


class LimiterUnavailable(RateLimited):
    """Redis is unreachable and BILLING_RATE_LIMIT_FAIL_OPEN is off."""

    def __init__(self) -> None:
        super().__init__(retry_after_seconds=1.0)
