"""Billing's domain exceptions. Each carries the data a view needs to answer the caller."""

from __future__ import annotations

import datetime as dt


class BillingError(Exception):
    pass


class PriceMissing(BillingError):
    """No price covers this model at this time: the request is refused, never billed $0."""

    def __init__(self, *, model_id: str) -> None:
        self.model_id = model_id
        super().__init__(f"no price for model {model_id!r}")


class BudgetExceeded(BillingError):
    def __init__(
        self, *, scope: str, scope_id: int | None, limit_micros: int, spent_micros: int, resets_at: dt.datetime
    ) -> None:
        self.scope = scope
        self.scope_id = scope_id
        self.limit_micros = limit_micros
        self.spent_micros = spent_micros
        self.resets_at = resets_at
        who = scope if scope_id is None else f"{scope} {scope_id}"
        super().__init__(
            f"budget of {who} exceeded: spent {spent_micros} of {limit_micros} micro-dollars, resets {resets_at}"
        )


class RateLimited(BillingError):
    def __init__(self, *, retry_after_seconds: float, headers: dict[str, str] | None = None) -> None:
        self.retry_after_seconds = retry_after_seconds
        self.headers = dict(headers or {})
        super().__init__(f"rate limited; retry after {retry_after_seconds:.1f}s")


class LimiterUnavailable(RateLimited):
    """Redis is unreachable and BILLING_RATE_LIMIT_FAIL_OPEN is off."""

    def __init__(self) -> None:
        super().__init__(retry_after_seconds=1.0)
