"""Reads for the API's views. Views render what these return; they hold no queries of their own."""

from __future__ import annotations

import datetime as dt
from typing import Any

from billing import prices
from billing.errors import PriceMissing
from routing.models import Model


def list_models(*, with_prices: bool = False) -> list[dict[str, Any]]:
    """Enabled models of the routing model map, in picker order; with `pricing` (the price in effect
    now, or None for a model no price covers yet: calls to it are refused) when asked."""
    models = Model.objects.filter(enabled=True).prefetch_related("aliases").order_by("sort_order", "model_id")
    return [
        {
            "id": model.model_id,
            "display_name": model.display_name,
            "family": model.family,
            "context_window": model.context_window,
            "max_output_tokens": model.max_output_tokens,
            "aliases": sorted(alias.name for alias in model.aliases.all()),
            "retires_on": model.retires_on,
            "created_at": model.created_at,
            **({"pricing": pricing(model.model_id)} if with_prices else {}),
        }
        for model in models
    ]


def pricing(model_id: str) -> dict[str, Any] | None:
    """Micro-dollars per million tokens of each token class, the batch discount and the long-prompt band."""
    try:
        price = prices.current_price(model_id=model_id)
    except PriceMissing:
        return None
    band = None
    if price.band_threshold_tokens is not None:
        band = {"above_input_tokens": price.band_threshold_tokens, **_per_mtok(price.rates(banded=True))}
    return {
        "currency": "USD",
        "unit": "micro-dollars per million tokens",
        **_per_mtok(price.rates(banded=False)),
        "batch_discount_percent": price.batch_discount_percent,
        "long_context": band,
        "effective_from": price.effective_from,
    }


def _per_mtok(rates: dict[str, int]) -> dict[str, int]:
    return {f"{name}_per_mtok_micros": value for name, value in rates.items()}


def _anthropic_model(row: dict[str, Any]) -> dict[str, Any]:
    """Anthropic's ModelInfo: a model with a retirement date is `deprecated` (we do not record when it
    was deprecated, so `deprecated_at` stays null), every other enabled model `active`."""
    created: dt.datetime = row["created_at"]
    retires_on: dt.date | None = row["retires_on"]
    return {
        "type": "model",
        "id": row["id"],
        "display_name": row["display_name"],
        "created_at": _rfc3339(created),
        "max_input_tokens": row["context_window"],
        "max_tokens": row["max_output_tokens"],
        "lifecycle": "deprecated" if retires_on else "active",
        "deprecated_at": None,
        "retires_at": _rfc3339(dt.datetime.combine(retires_on, dt.time(), dt.UTC)) if retires_on else None,
    }


def _rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def anthropic_models_page(*, limit: int, after_id: str | None, before_id: str | None) -> dict[str, Any]:
    """The models list in Anthropic's page shape (`data`, `has_more`, `first_id`, `last_id`)."""
    rows = [_anthropic_model(row) for row in list_models()]
    ids = [row["id"] for row in rows]
    if after_id is not None:
        rows = rows[ids.index(after_id) + 1 :] if after_id in ids else []
        page, has_more = rows[:limit], len(rows) > limit
    elif before_id is not None:
        rows = rows[: ids.index(before_id)] if before_id in ids else []
        page, has_more = rows[-limit:], len(rows) > limit
    else:
        page, has_more = rows[:limit], len(rows) > limit
    return {
        "data": page,
        "has_more": has_more,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
    }


def anthropic_model(model_id: str) -> dict[str, Any] | None:
    """One enabled model by id or alias, in Anthropic's shape."""
    for row in list_models():
        if model_id == row["id"] or model_id in row["aliases"]:
            return _anthropic_model(row)
    return None
