"""Replay: run a draft rule set over recent stored decisions and compare it with the published set.

Both sets are evaluated afresh with the same engine and the stored features, so the comparison is
apples to apples even when older decisions were made by an earlier rule set. Replay never calls
Claude: classifier labels come from the stored decision or the Redis label cache; a request with
neither counts as "no label" and goes to the default tier, as a failed classification would.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from routing import classifier, engine, modelmap
from routing.classifier import Classification
from routing.errors import RoutingError
from routing.models import RoutingDecision
from routing.rules import CompiledRule, Features, compile_rule_set

ASSUMED_OUTPUT_TOKENS = 400  # decisions are stored before the answer exists; cost estimates assume this


@dataclass
class MixRow:
    model_id: str
    mode: str
    requests: int = 0
    input_tokens: int = 0
    cost_micros: int | None = 0


@dataclass
class Mix:
    rows: dict[tuple[str, str], MixRow] = field(default_factory=dict)
    refused: int = 0

    def add(self, model_id: str, mode: str, tokens: int) -> None:
        row = self.rows.setdefault((model_id, mode), MixRow(model_id, mode))
        row.requests += 1
        row.input_tokens += tokens
        if row.cost_micros is not None:
            cost = _cost(model_id, mode, tokens)
            row.cost_micros = None if cost is None else row.cost_micros + cost

    @property
    def total_cost_micros(self) -> int | None:
        costs = [r.cost_micros for r in self.rows.values()]
        return None if any(c is None for c in costs) else sum(c for c in costs if c is not None)


@dataclass
class Change:
    decision_id: int
    excerpt: str
    before: str
    after: str


@dataclass
class ReplayReport:
    count: int
    published: Mix
    draft: Mix
    changes: list[Change]
    unlabeled: int
    rows: list[tuple[str, str, MixRow | None, MixRow | None]] = field(default_factory=list)


def replay(*, draft_id: int, limit: int = 500) -> ReplayReport:
    mm = modelmap.get_model_map()
    draft_rules, live_rules = compile_rule_set(draft_id), mm.rules
    published, draft, changes, unlabeled = Mix(), Mix(), [], 0
    decisions = RoutingDecision.objects.order_by("-created_at")[:limit]
    for row in decisions:
        f = features_from(row)
        before, missing_a = _evaluate(f, mm, live_rules, row)
        after, missing_b = _evaluate(f, mm, draft_rules, row)
        unlabeled += missing_a or missing_b
        _tally(published, before, f)
        _tally(draft, after, f)
        if _key(before) != _key(after):
            changes.append(Change(row.pk, row.message_excerpt[:120], _key(before), _key(after)))
    report = ReplayReport(len(decisions), published, draft, changes, unlabeled)
    report.rows = _side_by_side(published, draft)
    return report


def features_from(row: RoutingDecision) -> Features:
    return Features(
        requested_model=row.requested_model,
        principal_kind=row.principal_kind,
        principal_id=row.principal_id,
        group_ids=frozenset(row.group_ids or ()),
        input_tokens=row.input_tokens,
        text=row.message_excerpt,
        metadata=row.metadata or {},
        previous_model=row.previous_model,
        interactive=row.interactive,
        mode=row.requested_mode,
    )


def _evaluate(
    f: Features, mm: modelmap.ModelMap, rules: Sequence[CompiledRule], row: RoutingDecision
) -> tuple[engine.Outcome | None, bool]:
    try:
        outcome = engine.plan(f, mm, rules)
    except RoutingError:  # the explicit model is unknown or off now: the request would be refused
        return None, False
    if not isinstance(outcome, engine.NeedsLabel):
        return outcome, False
    label = _stored_label(row) or classifier.cached(f.text, mm)
    missing = label is None
    return engine.finish(f, mm, outcome, label or Classification(None, error="no stored label")), missing


def _stored_label(row: RoutingDecision) -> Classification | None:
    if not row.classifier_label:
        return None
    return Classification(row.classifier_label, row.classifier_confidence, cached=True)


def _tally(mix: Mix, outcome: engine.Outcome | None, f: Features) -> None:
    if outcome is None:
        mix.refused += 1
    else:
        mix.add(outcome.model_id, outcome.mode, f.input_tokens)


def _key(outcome: engine.Outcome | None) -> str:
    return "refused" if outcome is None else f"{outcome.model_id} ({outcome.mode})"


def _cost(model_id: str, mode: str, tokens: int) -> int | None:
    from routing.costs import estimate_micros

    return estimate_micros(
        model_id=model_id, input_tokens=tokens, output_tokens=ASSUMED_OUTPUT_TOKENS, batch=mode == "batch"
    )


def _side_by_side(a: Mix, b: Mix) -> list[tuple[str, str, MixRow | None, MixRow | None]]:
    keys = sorted(set(a.rows) | set(b.rows))
    grouped: dict[tuple[str, str], list[MixRow | None]] = defaultdict(list)
    for key in keys:
        grouped[key] = [a.rows.get(key), b.rows.get(key)]
    return [(k[0], k[1], v[0], v[1]) for k, v in grouped.items()]
