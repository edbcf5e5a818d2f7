"""Routing rules as plain immutable objects: compiled once per snapshot, matched with no I/O."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from routing.rulechecks import parse_tags

if TYPE_CHECKING:
    from routing.modelmap import ModelMap

AUTO = "auto"


@dataclass(frozen=True)
class Features:
    """What a rule may look at. Built from a live request, or from a stored RoutingDecision for replay."""

    requested_model: str
    principal_kind: str
    principal_id: int
    group_ids: frozenset[int]
    input_tokens: int
    text: str  # the last user message, first ROUTER_REGEX_MAX_CHARS characters
    metadata: Mapping[str, object]
    previous_model: str = ""
    interactive: bool = True
    mode: str = "sync"

    @property
    def is_auto(self) -> bool:
        return self.requested_model.strip().lower() in ("", AUTO)


@dataclass(frozen=True)
class CompiledRule:
    id: int
    name: str
    priority: int
    principal_kind: str
    group_id: int | None
    partner_key_id: int | None
    requested_model: str
    min_input_tokens: int | None
    max_input_tokens: int | None
    regex: re.Pattern[str] | None
    tags: tuple[tuple[str, str], ...]
    target: str
    classify: bool
    mode: str


def compile_rule(row) -> CompiledRule:  # type: ignore[no-untyped-def]
    """A RoutingRule row -> CompiledRule. The regex was vetted on save, so only compile it here."""
    return CompiledRule(
        id=row.pk,
        name=row.name,
        priority=row.priority,
        principal_kind=row.principal_kind,
        group_id=row.group_id,
        partner_key_id=row.partner_key_id,
        requested_model=row.requested_model.strip(),
        min_input_tokens=row.min_input_tokens,
        max_input_tokens=row.max_input_tokens,
        regex=re.compile(row.message_regex) if row.message_regex else None,
        tags=parse_tags(row.metadata_tags),
        target=row.target.strip(),
        classify=row.classify,
        mode=row.mode,
    )


def compile_rule_set(rule_set_id: int) -> tuple[CompiledRule, ...]:
    from routing.models import RoutingRule

    rows = RoutingRule.objects.filter(rule_set_id=rule_set_id, enabled=True).order_by("priority", "id")
    return tuple(compile_rule(r) for r in rows)


def matches(rule: CompiledRule, f: Features, mm: ModelMap) -> bool:
    """Every condition the rule sets holds for these features."""
    if rule.principal_kind and rule.principal_kind != f.principal_kind:
        return False
    if rule.group_id is not None and rule.group_id not in f.group_ids:
        return False
    if rule.partner_key_id is not None and (f.principal_kind, f.principal_id) != ("partner_key", rule.partner_key_id):
        return False
    if rule.requested_model and not _same_model(rule.requested_model, f, mm):
        return False
    if rule.min_input_tokens is not None and f.input_tokens < rule.min_input_tokens:
        return False
    if rule.max_input_tokens is not None and f.input_tokens > rule.max_input_tokens:
        return False
    if rule.tags and not all(_tag_matches(f.metadata, k, v) for k, v in rule.tags):
        return False
    return rule.regex is None or rule.regex.search(f.text) is not None


def _same_model(wanted: str, f: Features, mm: ModelMap) -> bool:
    if wanted.lower() == AUTO:
        return f.is_auto
    if f.is_auto:
        return False
    if wanted == f.requested_model:
        return True
    # An alias condition also matches the model id it stands for (enabled or not), and vice versa.
    target = mm.model_id_for(wanted)
    return target is not None and target == mm.model_id_for(f.requested_model)


def _tag_matches(metadata: Mapping[str, object], key: str, expected: str) -> bool:
    if key not in metadata:
        return False
    value = metadata[key]
    text = str(value).lower() if not isinstance(value, bool) else ("true" if value else "false")
    return text == expected.lower()
