from __future__ import annotations

import pytest

import routing
from claudeapp.core import tokensize
from routing import services
from routing.errors import ModelDisabled, UnknownModel
from routing.models import Model, RoutingDecision


def test_an_explicit_model_is_used_as_asked(published_set, make_request):
    decision = services.route(make_request(requested_model="claude-opus-5-5"))
    assert (decision.model_id, decision.mode) == ("claude-opus-5-5", "sync")
    assert decision.reason == "requested model claude-opus-5-5"
    assert decision.fallback_chain == ("claude-opus-5-5", "claude-sonnet-5-5", "claude-haiku-5-5")


def test_an_explicit_alias_resolves_to_its_model(published_set, make_request):
    assert services.route(make_request(requested_model="simple")).model_id == "claude-haiku-5-5"


def test_an_unknown_or_disabled_explicit_model_is_refused(published_set, make_request):
    with pytest.raises(UnknownModel):
        services.route(make_request(requested_model="claude-gpt-9"))
    with pytest.raises(ModelDisabled):
        services.route(make_request(requested_model="claude-fable-5-2"))
    assert not RoutingDecision.objects.exists()


def test_auto_with_no_rules_goes_to_the_moderate_tier(published_set, make_request):
    decision = services.route(make_request(requested_model="auto"))
    assert decision.model_id == "claude-sonnet-5-5"
    assert "no rule decided" in decision.reason


def test_auto_keeps_a_conversation_on_its_previous_model(published_set, make_request):
    decision = services.route(make_request(previous_model="claude-haiku-5-5"))
    assert decision.model_id == "claude-haiku-5-5"
    assert "stays on claude-haiku-5-5" in decision.reason


def test_stickiness_is_dropped_when_the_previous_model_was_disabled(published_set, make_request):
    Model.objects.filter(model_id="claude-haiku-5-5").update(enabled=False)
    routing.modelmap.invalidate_local()
    assert services.route(make_request(previous_model="claude-haiku-5-5")).model_id == "claude-sonnet-5-5"


def test_a_rule_with_a_target_overrides_stickiness(rule_factory, make_request):
    rule_factory(message_regex="prove", target="complex")
    decision = services.route(make_request("prove that sqrt 2 is irrational", previous_model="claude-haiku-5-5"))
    assert decision.model_id == "claude-opus-5-5"


def test_a_classify_rule_yields_to_stickiness_without_calling_the_classifier(rule_factory, make_request):
    rule = rule_factory(requested_model="auto", classify=True)
    decision = services.route(make_request(previous_model="claude-opus-5-5"))
    assert decision.model_id == "claude-opus-5-5" and decision.rule_id == rule.pk
    assert decision.classifier_label is None and decision.classifier_usage is None


def test_a_mode_only_rule_keeps_the_default_model_and_sets_the_mode(rule_factory, make_request):
    rule_factory(metadata_tags="nightly=yes", mode="queue")
    decision = services.route(make_request(requested_model="claude-opus-5-5", metadata={"nightly": "yes"}))
    assert (decision.model_id, decision.mode) == ("claude-opus-5-5", "queue")


def test_a_rule_can_set_model_and_batch_mode_together(rule_factory, make_request):
    rule_factory(metadata_tags="bulk=true", target="simple", mode="batch")
    decision = services.route(make_request(metadata={"bulk": "true"}, interactive=False, mode="queue"))
    assert (decision.model_id, decision.mode) == ("claude-haiku-5-5", "batch")


def test_batch_is_downgraded_to_the_callers_mode_for_an_interactive_request(rule_factory, make_request):
    rule_factory(metadata_tags="bulk=true", target="simple", mode="batch")
    decision = services.route(make_request(metadata={"bulk": "true"}))
    assert (decision.model_id, decision.mode) == ("claude-haiku-5-5", "sync")
    assert "batch not allowed for an interactive request" in decision.reason


def test_every_decision_is_stored_with_its_reason_and_features(rule_factory, make_request):
    rule = rule_factory(name="Long → complex", min_input_tokens=10, target="complex")
    decision = routing.route(make_request("x" * 100, metadata={"team": "ops"}))
    row = RoutingDecision.objects.get(pk=decision.decision_id)
    assert (row.model_id, row.mode, row.rule_id, row.rule_name) == ("claude-opus-5-5", "sync", rule.pk, rule.name)
    assert row.reason == decision.reason and row.message_excerpt == "x" * 100
    assert row.input_tokens == tokensize.text_tokens("x" * 100) == 34  # the pipeline's one estimate
    assert row.metadata == {"team": "ops"} and row.requested_model == "auto"


def test_the_reason_is_header_safe_ascii_even_for_unicode_rule_names(rule_factory, make_request):
    rule_factory(name="Lång → complex\r\nX-Evil: 1", target="complex")
    reason = services.route(make_request(), store=False).reason
    assert reason.isascii() and "\n" not in reason and "\r" not in reason


def test_routing_runs_one_insert_and_no_other_query_when_the_map_is_warm(
    rule_factory, make_request, django_assert_num_queries
):
    rule_factory(target="simple")
    services.route(make_request(), store=False)
    with django_assert_num_queries(1):
        services.route(make_request())
