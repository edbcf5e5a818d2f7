"""Rough cost estimates for replay and evaluation, priced by billing's price table when it is there.

Routing must not depend on billing (billing depends on routing.Model), so billing is imported
lazily and any failure (no app, no price for a model) just means "no price".
"""

from __future__ import annotations

from collections.abc import Mapping

# USD per million tokens, (input, output). Only for callers that pass it explicitly as a labelled fallback.
Fallback = Mapping[str, tuple[float, float]]


def estimate_micros(
    *, model_id: str, input_tokens: int, output_tokens: int, batch: bool = False, fallback: Fallback | None = None
) -> int | None:
    """Estimated micro-dollars for one call, or None when no price is known."""
    billed = _from_billing(model_id, input_tokens, output_tokens, batch)
    if billed is not None or fallback is None or model_id not in fallback:
        return billed
    price_in, price_out = fallback[model_id]
    dollars = (input_tokens * price_in + output_tokens * price_out) / 1_000_000 * (0.5 if batch else 1.0)
    return round(dollars * 1_000_000)


def billing_prices_available() -> bool:
    try:
        from billing import prices  # noqa: F401
    except Exception:
        return False
    return True


def _from_billing(model_id: str, input_tokens: int, output_tokens: int, batch: bool) -> int | None:
    try:
        from billing import costs, prices

        price = prices.current_price(model_id=model_id)
        usage = costs.Usage(input_tokens=input_tokens, output_tokens=output_tokens)
        return costs.compute_cost(price=price, usage=usage, batch=batch).total_micros
    except Exception:  # billing not installed yet, or this model has no price: no estimate
        return None
