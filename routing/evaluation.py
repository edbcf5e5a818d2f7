"""Offline evaluation of the router: seeded (or published) rules + the classifier over labelled prompts."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from routing import classifier, engine, modelmap
from routing.costs import Fallback, estimate_micros
from routing.models import RoutingRule
from routing.rules import CompiledRule, Features, compile_rule

TIERS = ("simple", "moderate", "complex", "bulk")
ASSUMED_OUTPUT_TOKENS = 400
# Labelled fallback only: CLAUDE-API.md A5 list prices (USD/MTok in, out), used when billing has no price.
LIST_PRICES: Fallback = {
    "claude-opus-5-5": (4.0, 20.0),
    "claude-sonnet-5-5": (2.0, 10.0),
    "claude-haiku-5-5": (0.10, 0.50),
}


@dataclass
class EvalResult:
    total: int = 0
    correct: int = 0
    confusion: Counter[tuple[str, str]] = field(default_factory=Counter)
    misses: list[tuple[str, str, str]] = field(default_factory=list)
    routed_micros: int = 0
    classifier_micros: int = 0
    opus_micros: int = 0
    sonnet_micros: int = 0
    classifier_calls: int = 0
    prices_from: set[str] = field(default_factory=set)

    def accuracy(self, tier: str | None = None) -> float:
        if tier is None:
            return self.correct / self.total if self.total else 0.0
        expected = sum(n for (e, _), n in self.confusion.items() if e == tier)
        return self.confusion[(tier, tier)] / expected if expected else 0.0


def seeded_rules() -> tuple[CompiledRule, ...]:
    from routing.seed import RULES

    rows = [
        RoutingRule(pk=-(i + 1), priority=p, name=name, requested_model="auto", **cond, **action)
        for i, (p, name, cond, action) in enumerate(RULES)
    ]
    return tuple(compile_rule(r) for r in sorted(rows, key=lambda r: r.priority))


def load_cases(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def evaluate(cases: list[dict[str, str]], rules: tuple[CompiledRule, ...]) -> EvalResult:
    from routing.services import estimate_tokens

    mm = modelmap.get_model_map()
    tier_of = {mm.resolve(t): t for t in ("simple", "moderate", "complex")}
    result = EvalResult()
    for case in cases:
        messages = [{"role": "user", "content": case["prompt"]}]
        f = _features(case["prompt"], estimate_tokens(messages, None))
        outcome = engine.plan(f, mm, rules)
        if isinstance(outcome, engine.NeedsLabel):
            outcome = engine.finish(f, mm, outcome, classifier.classify(f.text, mm=mm))
        got = "bulk" if outcome.mode == "batch" else tier_of.get(outcome.model_id, "moderate")
        _score(result, case, got, outcome, f.input_tokens)
    return result


def _features(text: str, tokens: int) -> Features:
    # A jobs-API style caller: nobody waits, so bulk work may go to batch.
    return Features(
        requested_model="auto",
        principal_kind="user",
        principal_id=0,
        group_ids=frozenset(),
        input_tokens=tokens,
        text=text[:2000],
        metadata={},
        interactive=False,
        mode="queue",
    )


def _score(result: EvalResult, case: dict[str, str], got: str, outcome: engine.Outcome, tokens: int) -> None:
    expected = case["expected"]
    result.total += 1
    result.correct += got == expected
    result.confusion[(expected, got)] += 1
    if got != expected:
        result.misses.append((expected, got, case["prompt"][:90].replace("\n", " ")))
    result.routed_micros += _price(result, outcome.model_id, tokens, batch=outcome.mode == "batch")
    result.opus_micros += _price(result, "claude-opus-5-5", tokens)
    result.sonnet_micros += _price(result, "claude-sonnet-5-5", tokens)
    usage = outcome.classification.usage if outcome.classification else None
    if usage is not None:
        result.classifier_calls += 1
        result.classifier_micros += _price(result, usage.model_id, usage.input_tokens, output=usage.output_tokens)


def _price(result: EvalResult, model_id: str, tokens: int, *, batch: bool = False, output: int | None = None) -> int:
    out = ASSUMED_OUTPUT_TOKENS if output is None else output
    billed = estimate_micros(model_id=model_id, input_tokens=tokens, output_tokens=out, batch=batch)
    if billed is not None:
        result.prices_from.add("billing price table")
        return billed
    result.prices_from.add("CLAUDE-API.md A5 list prices (fallback)")
    fallback = estimate_micros(
        model_id=model_id, input_tokens=tokens, output_tokens=out, batch=batch, fallback=LIST_PRICES
    )
    return fallback or 0
