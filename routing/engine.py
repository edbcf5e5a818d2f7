"""The decision itself, with no I/O: rules in priority order, first match wins, then the default.

Split in two so the sync and async routers (and replay) share it: `plan()` either decides or says a
label is needed; the caller gets one (classifier call, cache, or stored label) and calls `finish()`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

from routing.classifier import Classification
from routing.errors import RoutingError, UnknownModel
from routing.modelmap import ModelMap
from routing.rules import CompiledRule, Features, matches

log = logging.getLogger(__name__)

DEFAULT_TIER = "moderate"  # "anything unclear -> Sonnet"


@dataclass(frozen=True)
class Outcome:
    model_id: str
    mode: str
    reason: str
    rule: CompiledRule | None = None
    classification: Classification | None = None


@dataclass(frozen=True)
class NeedsLabel:
    rule: CompiledRule
    mode: str  # the rule's mode, '' to let the label decide


def plan(f: Features, mm: ModelMap, rules: Sequence[CompiledRule]) -> Outcome | NeedsLabel:
    for rule in rules:
        if not matches(rule, f, mm):
            continue
        decided = _apply(rule, f, mm)
        if decided is not None:
            return decided if isinstance(decided, NeedsLabel) else guard_batch(decided, f)
    return guard_batch(_default(f, mm, rule=None, mode=""), f)


def finish(f: Features, mm: ModelMap, pending: NeedsLabel, c: Classification) -> Outcome:
    prefix = f"rule {_name(pending.rule)}: "
    if c.label is None:
        model_id = default_model(mm)
        outcome = Outcome(model_id, pending.mode or f.mode, f"{prefix}{c.error} -> {DEFAULT_TIER} {model_id}")
    elif c.label == "bulk":
        model_id = _tier(mm, "simple")
        outcome = Outcome(model_id, pending.mode or "batch", f"{prefix}classifier: bulk -> batch on {model_id}")
    else:
        model_id = _tier(mm, c.label)
        outcome = Outcome(model_id, pending.mode or f.mode, f"{prefix}classifier: {c.label} -> {model_id}")
    return guard_batch(replace(outcome, rule=pending.rule, classification=c), f)


def guard_batch(outcome: Outcome, f: Features) -> Outcome:
    """Batch answers within 24 h: never for a caller waiting on the answer. Keep the model, use the caller's mode."""
    if outcome.mode != "batch" or not f.interactive:
        return outcome
    mode = f.mode if f.mode != "batch" else "sync"
    return replace(outcome, mode=mode, reason=f"{outcome.reason}; batch not allowed for an interactive request")


def _apply(rule: CompiledRule, f: Features, mm: ModelMap) -> Outcome | NeedsLabel | None:
    if rule.target:
        try:
            model_id = mm.resolve(rule.target)
        except RoutingError as exc:  # the target was disabled after the rule was saved: skip, never fail
            log.warning("routing rule %s skipped: %s", rule.id, exc)
            return None
        return Outcome(model_id, rule.mode or f.mode, f"rule {_name(rule)}: {rule.target} -> {model_id}", rule)
    if rule.classify:
        sticky = sticky_model(f, mm)
        if sticky is None:
            return NeedsLabel(rule, rule.mode)
        reason = f"rule {_name(rule)}: conversation stays on {sticky} (warm prompt cache), not reclassified"
        return Outcome(sticky, rule.mode or f.mode, reason, rule)
    return _default(f, mm, rule=rule, mode=rule.mode)


def _default(f: Features, mm: ModelMap, *, rule: CompiledRule | None, mode: str) -> Outcome:
    prefix = f"rule {_name(rule)}: " if rule else ""
    if not f.is_auto:
        model_id = mm.resolve(f.requested_model)  # UnknownModel / ModelDisabled: the caller answers 400
        return Outcome(model_id, mode or f.mode, f"{prefix}requested model {model_id}", rule)
    sticky = sticky_model(f, mm)
    if sticky is not None:
        return Outcome(sticky, mode or f.mode, f"{prefix}auto: conversation stays on {sticky}", rule)
    model_id = default_model(mm)
    return Outcome(model_id, mode or f.mode, f"{prefix}auto: no rule decided -> {DEFAULT_TIER} {model_id}", rule)


def sticky_model(f: Features, mm: ModelMap) -> str | None:
    """The conversation's previous model, if this is an auto request and that model is still enabled."""
    if not f.is_auto or not f.previous_model:
        return None
    try:
        return mm.resolve(f.previous_model)
    except RoutingError:
        return None


def default_model(mm: ModelMap) -> str:
    return _tier(mm, DEFAULT_TIER)


def _tier(mm: ModelMap, tier: str) -> str:
    try:
        return mm.resolve(tier)
    except RoutingError:
        pass
    # The alias is missing or its model is off: any enabled Sonnet keeps the router answering.
    for info in mm.models.values():
        if info.enabled and info.family == "sonnet":
            return info.model_id
    raise UnknownModel(tier)


def _name(rule: CompiledRule | None) -> str:
    if rule is None:
        return "-"
    # The reason goes into an HTTP header: keep operator-typed names to printable ASCII.
    safe = rule.name.encode("ascii", "replace").decode().replace("\r", " ").replace("\n", " ")
    return f"'{safe}' (#{rule.id})"
