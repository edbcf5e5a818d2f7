"""The gateway's own refusals (budget, rate limit) in Anthropic's vocabulary, for /anthropic.

The SDK picks its exception class by status (402 PaymentRequiredError, 429 RateLimitError), so the
statuses stay those of /api/v1; the type becomes Anthropic's (`billing_error`, `rate_limit_error`)
and the message says which budget or which limit refused and when it frees up. Headers computed for
/api/v1 (retry-after, x-ratelimit-*, budget headers) are kept, plus `anthropic-ratelimit-*`.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from claudeapp.api import anthropic_ratelimit
from claudeapp.api.errors import ErrorInfo, describe
from claudeapp.calls.errors import BUDGET, LIMIT, REFUSAL_STATUS

AXIS_NAMES = {
    "requests": "requests per minute",
    "input-tokens": "input tokens per minute",
    "output-tokens": "output tokens per minute",
}


def budget_refusal(exc: Any) -> ErrorInfo:
    """402 billing_error naming the budget, what remains (and is held) and when it resets."""
    general = describe(exc)
    message = exc.explain() if hasattr(exc, "explain") else budget_message(exc)
    return ErrorInfo(REFUSAL_STATUS[BUDGET], "billing_error", message, headers=general.headers)


def budget_message(exc: Any) -> str:
    """For a BudgetExceeded without its own explanation: which budget, what is left, when it resets."""
    who = exc.scope if exc.scope_id is None else f"{exc.scope} {exc.scope_id}"
    remaining = max(exc.limit_micros - exc.spent_micros, 0)
    return (
        f"Budget {who} is used up: {remaining} of {exc.limit_micros} micro-dollars left; "
        f"it resets at {_iso(exc.resets_at)}."
    )


def rate_limit_refusal(exc: Any) -> ErrorInfo:
    """429 rate_limit_error naming the limit that refused, with retry-after and anthropic-ratelimit-*."""
    general = describe(exc)
    own = dict(getattr(exc, "headers", None) or {})
    headers = {**general.headers, **anthropic_ratelimit.headers(own)}
    message = exc.explain() if hasattr(exc, "explain") else rate_limit_message(exc, own)
    return ErrorInfo(REFUSAL_STATUS[LIMIT], "rate_limit_error", message, headers=headers)


def rate_limit_message(exc: Any, own: dict[str, str]) -> str:
    """For a RateLimited without its own explanation: the limit with the least room left."""
    wait = f"retry in {max(1, math.ceil(exc.retry_after_seconds))} s"
    axis = refused_axis(own)
    if axis is None:
        return f"Rate limit exceeded; {wait}."
    limit = own.get(f"x-ratelimit-limit-{axis}", "?")
    return f"Rate limit exceeded: {AXIS_NAMES.get(axis, axis)} ({limit}); {wait}."


def refused_axis(own: dict[str, str]) -> str | None:
    shares = {}
    for axis in ("requests", "input-tokens", "output-tokens"):
        try:
            limit = int(own[f"x-ratelimit-limit-{axis}"])
            remaining = int(own[f"x-ratelimit-remaining-{axis}"])
        except (KeyError, ValueError):
            continue
        shares[axis] = remaining / limit if limit else 0.0
    return min(shares, key=lambda a: shares[a]) if shares else None


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
