"""Seed step: the current Claude models, the tier aliases and a first published rule set.

Data, not code: operators edit all of it in the admin. Existing rows are left as
the operator set them; only missing ones are created.
"""

from __future__ import annotations

import datetime as dt
from typing import TextIO

from django.utils import timezone

from routing.models import Model, ModelAlias, RoutingRule, RuleSet

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


# (priority, name, conditions, action). Every rule is for `auto` requests: an explicit model is the caller's choice.
RULES: list[tuple[int, str, dict[str, object], dict[str, object]]] = [
    (
        10,
        "Bulk-tagged work -> batch on the simple tier",
        {"metadata_tags": "bulk=true"},
        {"target": "simple", "mode": "batch"},
    ),
    (
        20,
        "Greetings and thanks -> simple",
        {
            "max_input_tokens": 30,
            "message_regex": r"^\s*(?i:hi|hello|hey|thanks|thank you|good (?:morning|afternoon|evening))\b",
        },
        {"target": "simple"},
    ),
    (
        30,
        "Very long input -> complex",
        {"min_input_tokens": 50_000},
        {"target": "complex"},
    ),
    (
        100,
        "Everything else on auto -> ask the classifier",
        {},
        {"classify": True},
    ),
]


def run(*, stdout: TextIO) -> None:
    _seed_models(stdout)
    _seed_rules(stdout)


def _seed_rules(stdout: TextIO) -> None:
    # Only on a fresh install: once any rule set exists, the rules are the operators' to edit.
    if RuleSet.objects.exists():
        stdout.write("routing: rule sets exist, rules left as they are\n")
        return
    rule_set = RuleSet.objects.create(
        name="Seeded defaults", status=RuleSet.Status.PUBLISHED, published_at=timezone.now()
    )
    for priority, name, conditions, action in RULES:
        RoutingRule.objects.create(
            rule_set=rule_set, priority=priority, name=name, requested_model="auto", **conditions, **action
        )
    stdout.write(f"routing: published {len(RULES)} seeded rules\n")


def _seed_models(stdout: TextIO) -> None:
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
