from __future__ import annotations

from io import StringIO

import pytest

from claudeapp.accounts.principals import Principal
from routing import seed, services
from routing.models import RoutingRule, RuleSet
from routing.services import RouteRequest


def ask(text: str, **fields) -> RouteRequest:
    fields.setdefault("principal", Principal(kind="user", id=1, user_id=1))
    return RouteRequest(messages=[{"role": "user", "content": text}], **fields)


def test_seeding_twice_publishes_one_valid_rule_set(seeded):
    seed.run(stdout=StringIO())
    assert RuleSet.objects.get().status == RuleSet.Status.PUBLISHED
    assert RoutingRule.objects.count() == len(seed.RULES)
    for rule in RoutingRule.objects.all():
        rule.full_clean()  # the seeded regexes pass the backtracking guard too


def test_seeding_leaves_operator_rules_alone(seeded):
    RoutingRule.objects.all().delete()
    seed.run(stdout=StringIO())
    assert not RoutingRule.objects.exists()


def test_seeded_rules_send_greetings_to_haiku_without_a_classifier_call(seeded):
    decision = services.route(ask("Hi there!"), store=False)
    assert decision.model_id == "claude-haiku-5-5" and decision.classifier_usage is None


def test_seeded_rules_batch_bulk_tagged_work_on_haiku(seeded):
    decision = services.route(ask("Tag these rows", metadata={"bulk": "true"}, interactive=False, mode="queue"))
    assert (decision.model_id, decision.mode) == ("claude-haiku-5-5", "batch")


def test_seeded_rules_send_very_long_input_to_opus(seeded):
    assert services.route(ask("Summarise.", estimated_input_tokens=80_000), store=False).model_id == "claude-opus-5-5"


def test_seeded_rules_leave_an_explicit_model_alone(seeded):
    decision = services.route(ask("Hi", requested_model="claude-sonnet-5-5", metadata={"bulk": "true"}))
    assert (decision.model_id, decision.mode, decision.rule_id) == ("claude-sonnet-5-5", "sync", None)


@pytest.mark.parametrize(
    ("text", "model"),
    [
        ("Translate 'good night' into Italian.", "claude-haiku-5-5"),
        ("Draft a polite email declining a meeting invitation from a vendor.", "claude-sonnet-5-5"),
        ("Analyse the trade-offs between event sourcing and CRUD for our billing system.", "claude-opus-5-5"),
    ],
)
def test_seeded_rules_classify_other_auto_requests(seeded, classifier_emulator, text, model):
    assert services.route(ask(text), store=False).model_id == model
