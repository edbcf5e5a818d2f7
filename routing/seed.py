"""Seed step: the current Claude models and the tier aliases.

Data, not code: operators edit all of it in the admin. Existing rows are left as
the operator set them; only missing ones are created.
"""

from __future__ import annotations

import datetime as dt
from typing import TextIO

from routing.models import Model, ModelAlias

# (model_id, display name, family, enabled, context window, max output, fallback, retires_on)
MODELS: list[tuple[str, str, str, bool, int, int, str | None, dt.date | None]] = [
    ("claude-opus-5-5", "Claude Opus 5.5", "opus", True, 200_000, 64_000, "claude-sonnet-5-5", None),
    ("claude-sonnet-5-5", "Claude Sonnet 5.5", "sonnet", True, 200_000, 64_000, "claude-haiku-5-5", None),
    ("claude-haiku-5-5", "Claude Haiku 5.5", "haiku", True, 200_000, 64_000, None, None),
    ("claude-opus-5", "Claude Opus 5", "opus", True, 200_000, 64_000, "claude-sonnet-5", None),
    ("claude-sonnet-5", "Claude Sonnet 5", "sonnet", True, 200_000, 64_000, "claude-haiku-5-5", None),
    ("claude-opus-4-8", "Claude Opus 4.8", "opus", True, 200_000, 32_000, "claude-sonnet-4-6", None),
    ("claude-opus-4-7", "Claude Opus 4.7", "opus", True, 200_000, 32_000, "claude-sonnet-4-6", None),
    ("claude-opus-4-6", "Claude Opus 4.6", "opus", True, 200_000, 32_000, "claude-sonnet-4-6", None),
    ("claude-sonnet-4-6", "Claude Sonnet 4.6", "sonnet", True, 200_000, 64_000, "claude-haiku-4-5", None),
    ("claude-haiku-4-5", "Claude Haiku 4.5", "haiku", True, 200_000, 64_000, None, None),
    ("claude-opus-4-5", "Claude Opus 4.5", "opus", True, 200_000, 32_000, "claude-sonnet-4-6", dt.date(2027, 1, 22)),
    (
        "claude-sonnet-4-5",
        "Claude Sonnet 4.5",
        "sonnet",
        True,
        200_000,
        64_000,
        "claude-haiku-4-5",
        dt.date(2026, 11, 30),
    ),
    # Invitation-only families: present so an operator with access can switch them on.
    ("claude-fable-5-2", "Claude Fable 5.2", "fable", False, 200_000, 64_000, "claude-opus-5-5", None),
    ("claude-mythos-5-2", "Claude Mythos 5.2", "mythos", False, 200_000, 64_000, "claude-opus-5-5", None),
]

ALIASES = {
    "simple": ("claude-haiku-5-5", "Short, factual or formulaic requests."),
    "moderate": ("claude-sonnet-5-5", "Everyday writing, coding and analysis."),
    "complex": ("claude-opus-5-5", "Hard reasoning, long multi-step work."),
}


def run(*, stdout: TextIO) -> None:
    created = 0
    for order, (model_id, name, family, enabled, context, max_out, _, retires) in enumerate(MODELS):
        _, was_created = Model.objects.get_or_create(
            model_id=model_id,
            defaults={
                "display_name": name,
                "family": family,
                "enabled": enabled,
                "context_window": context,
                "max_output_tokens": max_out,
                "retires_on": retires,
                "sort_order": (order + 1) * 10,
            },
        )
        created += was_created
    by_id = {m.model_id: m for m in Model.objects.all()}
    for model_id, *_, fallback_id, _ in MODELS:
        model = by_id[model_id]
        if fallback_id and model.fallback_id is None:
            model.fallback = by_id[fallback_id]
            model.save(update_fields=["fallback"])
    for alias, (model_id, description) in ALIASES.items():
        ModelAlias.objects.get_or_create(name=alias, defaults={"model": by_id[model_id], "description": description})
    stdout.write(f"routing: {len(MODELS)} models ({created} new), {len(ALIASES)} aliases\n")
