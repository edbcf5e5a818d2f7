"""Seed step: list prices from CLAUDE-API.md A5, one version per (model, effective date).

Runs after routing's seed (INSTALLED_APPS order) and only adds missing versions, so prices an
operator edited in the admin stay as they are.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TextIO

from billing.models import PriceVersion
from routing.models import Model

# Before any traffic this deployment can have billed: the base version of every model.
SINCE = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
SONNET_5_5_READ_CUT = dt.datetime(2026, 10, 7, tzinfo=dt.UTC)

# USD per million tokens: input, 5m cache write, 1h cache write, cache read, output.
OPUS_5 = ("5", "6.25", "10", "0.50", "25")
SONNET_4_6 = ("3", "3.75", "6", "0.30", "15")
FABLE_5_2 = ("8", "10", "16", "0.20", "40")

# (model_id, effective_from, prices, band (threshold, prices) or None, note)
PRICES: list[tuple[str, dt.datetime, tuple[str, ...], tuple[int, tuple[str, ...]] | None, str]] = [
    ("claude-opus-5-5", SINCE, ("4", "5", "8", "0.20", "20"), None, "docs models/opus-5-5"),
    ("claude-sonnet-5-5", SINCE, ("2", "2.50", "4", "0.20", "10"), None, "docs sonnet-5-5 (before the read cut)"),
    ("claude-sonnet-5-5", SONNET_5_5_READ_CUT, ("2", "2.50", "4", "0.10", "10"), None, "cache read cut 2026-10-07"),
    (
        "claude-haiku-5-5",
        SINCE,
        ("0.10", "0.125", "0.20", "0.01", "0.50"),
        (100_000, ("0.50", "0.625", "1.00", "0.05", "2.50")),
        "docs haiku-5-5; prompts over 100k tokens priced at the long-context band",
    ),
    ("claude-opus-5", SINCE, OPUS_5, None, "docs pricing"),
    ("claude-sonnet-5", SINCE, ("2", "2.50", "4", "0.20", "10"), None, "docs sonnet-5"),
    ("claude-opus-4-8", SINCE, OPUS_5, None, "docs pricing"),
    ("claude-opus-4-7", SINCE, OPUS_5, None, "docs pricing"),
    ("claude-opus-4-6", SINCE, OPUS_5, None, "docs pricing"),
    ("claude-opus-4-5", SINCE, OPUS_5, None, "docs pricing"),
    ("claude-sonnet-4-6", SINCE, SONNET_4_6, None, "docs pricing"),
    ("claude-sonnet-4-5", SINCE, SONNET_4_6, None, "docs pricing"),
    ("claude-haiku-4-5", SINCE, ("1", "1.25", "2", "0.10", "5"), None, "docs pricing"),
    ("claude-fable-5-2", SINCE, FABLE_5_2, None, "3p, released 2026-11-09"),
    ("claude-mythos-5-2", SINCE, FABLE_5_2, None, "inferred: Mythos shares Fable's pricing (unverified)"),
]

_CLASSES = ("input", "cache_write_5m", "cache_write_1h", "cache_read", "output")


def micros(dollars_per_mtok: str) -> int:
    return int(Decimal(dollars_per_mtok) * 1_000_000)


def _fields(prices: tuple[str, ...], prefix: str = "") -> dict[str, int]:
    return {f"{prefix}{cls}_micros": micros(p) for cls, p in zip(_CLASSES, prices, strict=True)}


def run(*, stdout: TextIO) -> None:
    models = {m.model_id: m for m in Model.objects.filter(model_id__in={row[0] for row in PRICES})}
    created = 0
    for model_id, since, prices, band, note in PRICES:
        if model_id not in models:
            continue  # the operator removed it from the model map
        defaults: dict[str, object] = {**_fields(prices), "note": note}
        if band:
            defaults.update(_fields(band[1], prefix="band_"), band_threshold_tokens=band[0])
        _, was_created = PriceVersion.objects.get_or_create(
            model=models[model_id], effective_from=since, defaults=defaults
        )
        created += was_created
    stdout.write(f"billing: {len(PRICES)} price versions ({created} new)\n")
