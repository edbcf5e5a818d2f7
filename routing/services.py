"""`route(request) -> RouteDecision`: the verb the gateway calls before every Claude call.

Hot path: the rules and the model map come from the per-process snapshot (no query), the
classifier runs only when a rule asks for it and its label is not cached, and storing the
decision is one INSERT, or none for a decision nothing points at (routing/decisionlog.py).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from django.conf import settings

from claudeapp.accounts.principals import Principal
from claudeapp.core import rows, tokensize
from routing import decisionlog, engine, modelmap
from routing.classifier import ClassifierUsage, aclassify, classify
from routing.models import RoutingDecision
from routing.rules import AUTO, CompiledRule, Features, compile_rule_set


@dataclass(frozen=True)
class RouteRequest:
    principal: Principal
    requested_model: str = AUTO  # a model id, an alias, or "auto"
    messages: Sequence[Mapping[str, Any]] = ()
    system: str | Sequence[Mapping[str, Any]] | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    estimated_input_tokens: int | None = None
    previous_model: str | None = None  # the model that answered this conversation last
    interactive: bool = True  # someone waits for the answer: batch is not allowed
    mode: str = "sync"  # the caller's own mode: "sync" (chat, API) or "queue" (jobs API)


@dataclass(frozen=True)
class RouteDecision:
    model_id: str
    mode: str  # sync | queue | batch
    fallback_chain: tuple[str, ...]
    reason: str  # printable ASCII; send as the x-route-reason header
    rule_id: int | None = None
    rule_name: str | None = None
    classifier_label: str | None = None
    classifier_confidence: float | None = None
    classifier_usage: ClassifierUsage | None = None  # bill as its own ledger line when not None
    classifier_cached: bool = False
    elapsed_ms: float = 0.0
    decision_id: int | None = None  # the stored RoutingDecision


@dataclass(frozen=True)
class Planned:
    """The rules' verdict before any I/O: a model, or "ask the classifier" (NeedsLabel)."""

    features: Features
    outcome: engine.Outcome | engine.NeedsLabel
    started: float

    @property
    def needs_classifier(self) -> bool:
        return isinstance(self.outcome, engine.NeedsLabel)

    @property
    def provisional_model(self) -> str:
        """The model decided, or the one an unclear label falls back to (for limits taken before the label)."""
        if isinstance(self.outcome, engine.Outcome):
            return self.outcome.model_id
        return engine.default_model(modelmap.get_model_map())

    @property
    def classifier_text(self) -> str:
        return self.features.text


def plan(request: RouteRequest) -> Planned:
    """Rules only, no I/O: cheap enough to run before limits and budgets."""
    started = time.perf_counter()
    mm = modelmap.get_model_map()
    f = features_for(request)
    return Planned(f, engine.plan(f, mm, mm.rules), started)


def decide(planned: Planned, *, store: bool = True, later: bool = False) -> RouteDecision:
    """Finish a plan: ask the classifier when a rule said so (a Claude call unless the label is
    cached), then store the decision: at once, or with `later` queued for the bulk writer when one
    runs (for a decision no row will hold a foreign key to). Its id is known either way.
    Raises UnknownModel / ModelDisabled for a bad explicit model."""
    mm = modelmap.get_model_map()
    outcome = planned.outcome
    if isinstance(outcome, engine.NeedsLabel):
        outcome = engine.finish(planned.features, mm, outcome, classify(planned.features.text, mm=mm))
    decision = _decision(outcome, mm, planned.started)
    return stored(planned, decision, later=later) if store else decision


def stored(planned: Planned, decision: RouteDecision, *, later: bool = False) -> RouteDecision:
    """Store a decision taken with `store=False`, by a caller that keeps it only once its call is admitted."""
    row = _row(planned.features, decision)
    pk = decisionlog.queue(row) if later and decisionlog.taken() else rows.insert(RoutingDecision(**row))
    return _with_id(decision, pk)


def route(request: RouteRequest, *, store: bool = True) -> RouteDecision:
    """Decide model and mode for one request. Raises UnknownModel / ModelDisabled for a bad explicit model."""
    return decide(plan(request), store=store)


async def aroute(request: RouteRequest, *, store: bool = True) -> RouteDecision:
    """route() for async views: the classifier uses AsyncAnthropic and nothing blocks the event loop."""
    started = time.perf_counter()
    mm = await modelmap.aget_model_map()
    f = features_for(request)
    outcome = engine.plan(f, mm, mm.rules)
    if isinstance(outcome, engine.NeedsLabel):
        outcome = engine.finish(f, mm, outcome, await aclassify(f.text, mm=mm))
    decision = _decision(outcome, mm, started)
    if store:
        row = await RoutingDecision.objects.acreate(**_row(f, decision))
        decision = _with_id(decision, row.pk)
    return decision


def try_route(request: RouteRequest, *, rule_set_id: int | None = None) -> RouteDecision:
    """A dry run for the admin's "Try it": any rule set (default: published), nothing stored.

    Claude is called only when a rule asks for the classifier and the label is not cached.
    """
    started = time.perf_counter()
    mm = modelmap.get_model_map()
    rules: Sequence[CompiledRule] = mm.rules if rule_set_id is None else compile_rule_set(rule_set_id)
    f = features_for(request)
    outcome = engine.plan(f, mm, rules)
    if isinstance(outcome, engine.NeedsLabel):
        outcome = engine.finish(f, mm, outcome, classify(f.text, mm=mm))
    return _decision(outcome, mm, started)


def features_for(request: RouteRequest) -> Features:
    text = last_user_text(request.messages)
    tokens = request.estimated_input_tokens
    if tokens is None:
        tokens = estimate_tokens(request.messages, request.system)
    return Features(
        requested_model=(request.requested_model or AUTO).strip(),
        principal_kind=request.principal.kind,
        principal_id=request.principal.id,
        group_ids=frozenset(request.principal.group_ids),
        input_tokens=tokens,
        text=text[: settings.ROUTER_REGEX_MAX_CHARS],
        metadata=dict(request.metadata or {}),
        previous_model=request.previous_model or "",
        interactive=request.interactive,
        mode=request.mode,
    )


def last_user_text(messages: Sequence[Mapping[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return content_text(message.get("content"))
    return ""


def content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        return "\n".join(b.get("text", "") for b in content if isinstance(b, Mapping) and b.get("type") == "text")
    return ""


def estimate_tokens(messages: Sequence[Mapping[str, Any]], system: Any) -> int:
    """The prompt's text in tokens when the caller did not count it (the admin's "Try it", evaluation):
    the same estimate (core.tokensize) the call pipeline routes live calls and holds budgets with."""
    texts = [content_text(m.get("content")) for m in messages] + [content_text(system or "")]
    return sum(tokensize.text_tokens(text) for text in texts if text)


def _decision(outcome: engine.Outcome, mm: modelmap.ModelMap, started: float) -> RouteDecision:
    c = outcome.classification
    return RouteDecision(
        model_id=outcome.model_id,
        mode=outcome.mode,
        fallback_chain=tuple(mm.fallback_chain(outcome.model_id)),
        reason=outcome.reason[:300],
        rule_id=outcome.rule.id if outcome.rule else None,
        rule_name=outcome.rule.name if outcome.rule else None,
        classifier_label=c.label if c else None,
        classifier_confidence=c.confidence if c else None,
        classifier_usage=c.usage if c else None,
        classifier_cached=c.cached if c else False,
        elapsed_ms=(time.perf_counter() - started) * 1000,
    )


def _with_id(decision: RouteDecision, pk: int) -> RouteDecision:
    return replace(decision, decision_id=pk)


def _row(f: Features, d: RouteDecision) -> dict[str, Any]:
    usage = d.classifier_usage
    return {
        "principal_kind": f.principal_kind,
        "principal_id": f.principal_id,
        "group_ids": sorted(f.group_ids),
        "requested_model": f.requested_model[:100],
        "previous_model": f.previous_model[:100],
        "interactive": f.interactive,
        "requested_mode": f.mode,
        "input_tokens": f.input_tokens,
        "message_excerpt": f.text,
        "metadata": _jsonable(f.metadata),
        "rule_id": d.rule_id,
        "rule_name": (d.rule_name or "")[:100],
        "classifier_label": d.classifier_label or "",
        "classifier_confidence": d.classifier_confidence,
        "classifier_cached": d.classifier_cached,
        "classifier_input_tokens": usage.input_tokens if usage else 0,
        "classifier_output_tokens": usage.output_tokens if usage else 0,
        "model_id": d.model_id,
        "mode": d.mode,
        "reason": d.reason,
        "elapsed_ms": d.elapsed_ms,
    }


def _jsonable(metadata: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k): v if isinstance(v, str | int | float | bool) or v is None else str(v) for k, v in metadata.items()}
