from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError

from claudeapp.accounts.principals import Principal
from routing import regexguard, services
from routing.errors import UnsafeRegex


def route(make_request, text="please review this paragraph for tone", **fields):
    return services.route(make_request(text, **fields), store=False)


def test_a_rule_with_no_conditions_matches_every_request(rule_factory, make_request):
    rule = rule_factory(target="complex")
    decision = route(make_request)
    assert decision.model_id == "claude-opus-5-5" and decision.rule_id == rule.pk


def test_rules_are_evaluated_by_priority_and_the_first_match_wins(rule_factory, make_request):
    rule_factory(priority=20, target="complex")
    first = rule_factory(priority=10, target="simple")
    rule_factory(priority=5, target="complex", enabled=False)
    decision = route(make_request)
    assert decision.rule_id == first.pk and decision.model_id == "claude-haiku-5-5"


def test_principal_kind_condition(rule_factory, make_request):
    rule_factory(principal_kind="partner_key", target="simple")
    partner = Principal(kind="partner_key", id=7, user_id=1)
    assert route(make_request, principal=partner).model_id == "claude-haiku-5-5"
    assert route(make_request).model_id == "claude-sonnet-5-5"


def test_group_condition(rule_factory, make_request):
    legal = Group.objects.create(name="legal")
    rule_factory(group=legal, target="complex")
    member = Principal(kind="user", id=2, user_id=2, group_ids=frozenset({legal.pk}))
    assert route(make_request, principal=member).model_id == "claude-opus-5-5"
    assert route(make_request).model_id == "claude-sonnet-5-5"


def test_partner_key_condition_matches_only_that_key(rule_factory, make_request):
    rule_factory(partner_key_id=7, target="simple")
    assert route(make_request, principal=Principal(kind="partner_key", id=7, user_id=1)).model_id == "claude-haiku-5-5"
    assert route(make_request, principal=Principal(kind="partner_key", id=8, user_id=1)).model_id == "claude-sonnet-5-5"
    assert route(make_request, principal=Principal(kind="user", id=7, user_id=7)).model_id == "claude-sonnet-5-5"


def test_requested_model_condition_matches_auto_an_alias_or_the_model_it_means(rule_factory, make_request):
    rule_factory(priority=1, requested_model="complex", target="moderate", mode="queue")
    rule_factory(priority=2, requested_model="auto", target="simple")
    assert route(make_request, requested_model="claude-opus-5-5").mode == "queue"
    assert route(make_request, requested_model="complex").model_id == "claude-sonnet-5-5"
    assert route(make_request, requested_model="auto").model_id == "claude-haiku-5-5"
    assert route(make_request, requested_model="claude-sonnet-5-5").model_id == "claude-sonnet-5-5"


def test_input_size_range_condition(rule_factory, make_request):
    rule_factory(min_input_tokens=100, max_input_tokens=1000, target="complex")
    assert route(make_request, estimated_input_tokens=99).model_id == "claude-sonnet-5-5"
    assert route(make_request, estimated_input_tokens=100).model_id == "claude-opus-5-5"
    assert route(make_request, estimated_input_tokens=1000).model_id == "claude-opus-5-5"
    assert route(make_request, estimated_input_tokens=1001).model_id == "claude-sonnet-5-5"


def test_input_tokens_are_estimated_from_the_text_when_not_given(rule_factory, make_request):
    rule_factory(min_input_tokens=500, target="complex")
    # The pipeline's one estimate (core.tokensize, UTF-8 bytes / 3): 1,497 bytes are 499 tokens, 1,500 are 500.
    assert route(make_request, text="x" * 1497).model_id == "claude-sonnet-5-5"
    assert route(make_request, text="x" * 1500).model_id == "claude-opus-5-5"


def test_regex_condition_searches_the_last_user_message(rule_factory, make_request):
    rule_factory(message_regex=r"(?i)\btraceback\b", target="complex")
    messages = [
        {"role": "user", "content": "Traceback (most recent call last)"},
        {"role": "assistant", "content": "Let me look."},
        {"role": "user", "content": [{"type": "text", "text": "thanks, and now?"}]},
    ]
    assert route(make_request, messages=messages).model_id == "claude-sonnet-5-5"
    assert route(make_request, text="Traceback (most recent call last):").model_id == "claude-opus-5-5"


def test_regex_only_sees_the_capped_text(rule_factory, make_request, settings):
    rule_factory(message_regex=r"NEEDLE", target="complex")
    assert route(make_request, text="a" * settings.ROUTER_REGEX_MAX_CHARS + "NEEDLE").model_id == "claude-sonnet-5-5"


def test_metadata_tags_must_all_match(rule_factory, make_request):
    rule_factory(metadata_tags="bulk=true, team=legal", target="simple")
    assert route(make_request, metadata={"bulk": True, "team": "Legal"}).model_id == "claude-haiku-5-5"
    assert route(make_request, metadata={"bulk": "true"}).model_id == "claude-sonnet-5-5"
    assert route(make_request, metadata={"bulk": "false", "team": "legal"}).model_id == "claude-sonnet-5-5"


def test_a_rule_whose_target_was_disabled_is_skipped_not_fatal(rule_factory, make_request):
    from routing.models import Model

    rule_factory(priority=1, target="claude-opus-4-8")
    Model.objects.filter(model_id="claude-opus-4-8").update(enabled=False)
    from routing import modelmap

    modelmap.invalidate_local()
    decision = route(make_request)
    assert decision.model_id == "claude-sonnet-5-5" and decision.rule_id is None


@pytest.mark.parametrize("pattern", [r"(a+)+b", r"(\w+\s?)*\d", r"(?:x*)*y"])
def test_nested_unbounded_repeats_are_refused(pattern):
    with pytest.raises(UnsafeRegex, match="inside another"):
        regexguard.validate(pattern)


@pytest.mark.parametrize("pattern", [r"\w+\s*\w+\s*!", r"a.*a.*b"])
def test_patterns_that_backtrack_polynomially_are_caught_by_the_probe(pattern):
    with pytest.raises(UnsafeRegex, match="too slow"):
        regexguard.validate(pattern)


def test_ordinary_patterns_pass_the_guard():
    for pattern in [r"(?i)\bfor each of the following\b", r"```", r"^\s*(hi|hello)\b", r"\b\d{3,}\s+rows\b"]:
        regexguard.validate(pattern)


def test_saving_a_rule_validates_regex_tags_target_and_action(rule_factory):
    with pytest.raises(ValidationError) as exc:
        rule_factory(message_regex="(unclosed", metadata_tags="novalue", target="claude-gpt-9")
    assert set(exc.value.message_dict) == {"message_regex", "metadata_tags", "target"}
    with pytest.raises(ValidationError):
        rule_factory(target="simple", classify=True)
    with pytest.raises(ValidationError):
        rule_factory(name="does nothing")
