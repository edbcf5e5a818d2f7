from __future__ import annotations

import pytest

from routing import rulesets, services
from routing.errors import RuleSetStateError
from routing.models import RuleSet


def test_a_draft_copies_the_published_rules(rule_factory, published_set):
    rule_factory(priority=10, target="simple", message_regex="hi")
    draft = rulesets.create_draft()
    copied = draft.rules.get()
    assert (copied.priority, copied.target, copied.message_regex) == (10, "simple", "hi")
    assert draft.status == RuleSet.Status.DRAFT


def test_only_one_draft_exists_at_a_time(published_set):
    rulesets.create_draft()
    with pytest.raises(RuleSetStateError):
        rulesets.create_draft()


def test_draft_rules_do_not_route_until_published(rule_factory, published_set, make_request):
    draft = rulesets.create_draft()
    rule_factory(rule_set=draft, target="complex")
    assert services.route(make_request(), store=False).model_id == "claude-sonnet-5-5"
    assert services.try_route(make_request(), rule_set_id=draft.pk).model_id == "claude-opus-5-5"
    rulesets.publish(rule_set_id=draft.pk)
    assert services.route(make_request(), store=False).model_id == "claude-opus-5-5"
    published_set.refresh_from_db()
    assert published_set.status == RuleSet.Status.ARCHIVED


def test_only_a_draft_can_be_published(published_set):
    with pytest.raises(RuleSetStateError):
        rulesets.publish(rule_set_id=published_set.pk)
