from __future__ import annotations

import pytest

from routing import classifier, services


@pytest.fixture
def classify_rule(rule_factory):
    return rule_factory(requested_model="auto", classify=True)


def classifier_calls(emulator) -> int:
    return emulator.stats()["by_model"].get("claude-haiku-5-5", 0)


@pytest.mark.parametrize(
    ("reply", "label"),
    [("simple", "simple"), ("  Complex\n", "complex"), ("BULK.", "bulk"), ("moderate", "moderate")],
)
def test_a_clean_label_parses_case_and_whitespace_tolerantly(reply, label):
    assert classifier.parse_label(reply)[0] == label


@pytest.mark.parametrize("reply", ["", "complex-ish", "simple or moderate", "I think complex", "hard", "tier: simple"])
def test_anything_but_exactly_one_label_is_refused(reply):
    assert classifier.parse_label(reply) is None


@pytest.mark.parametrize(
    ("text", "label", "model"),
    [
        ("What is the capital of Peru?", "simple", "claude-haiku-5-5"),
        ("Write a friendly note to my team about the office move next week.", "moderate", "claude-sonnet-5-5"),
        ("Prove that there are infinitely many primes, step by step.", "complex", "claude-opus-5-5"),
    ],
)
def test_the_label_picks_the_tier_model(classifier_emulator, classify_rule, make_request, text, label, model):
    decision = services.route(make_request(text))
    assert (decision.classifier_label, decision.model_id, decision.mode) == (label, model, "sync")
    assert decision.classifier_usage.model_id == "claude-haiku-5-5"
    assert decision.classifier_usage.input_tokens > 0 and decision.classifier_confidence == 1.0


def test_bulk_sends_a_non_interactive_request_to_batch_on_the_simple_tier(
    classifier_emulator, classify_rule, make_request
):
    text = "For each of the following 40 product reviews, give the sentiment: ..."
    decision = services.route(make_request(text, interactive=False, mode="queue"))
    assert (decision.classifier_label, decision.model_id, decision.mode) == ("bulk", "claude-haiku-5-5", "batch")


def test_bulk_on_an_interactive_request_stays_sync_on_the_simple_tier(classifier_emulator, classify_rule, make_request):
    decision = services.route(make_request("For each of the following rows, extract the date: ..."))
    assert (decision.model_id, decision.mode) == ("claude-haiku-5-5", "sync")


def test_an_unparseable_reply_falls_back_to_sonnet(classifier_emulator, classify_rule, make_request, monkeypatch):
    # Without its marker the emulator answers like a chat model: prose, not a label.
    monkeypatch.setattr(classifier, "SYSTEM_PROMPT", "Say something.")
    decision = services.route(make_request("hello, how do tides work?"))
    assert decision.model_id == "claude-sonnet-5-5" and decision.classifier_label is None
    assert "classifier reply not a label" in decision.reason
    assert decision.classifier_usage is not None  # the call was made and is billed


def test_a_slow_classifier_times_out_to_sonnet(classifier_emulator, classify_rule, make_request, settings):
    settings.ROUTER_CLASSIFIER_TIMEOUT_SECONDS = 0.3
    decision = services.route(make_request("[[latency:5000]] What is the capital of Peru?"))
    assert decision.model_id == "claude-sonnet-5-5"
    assert "classifier timed out after 0.3s" in decision.reason


def test_an_overloaded_classifier_falls_back_to_sonnet(classifier_emulator, classify_rule, make_request):
    decision = services.route(make_request("[[fault:529]] What is the capital of Peru?"))
    assert decision.model_id == "claude-sonnet-5-5"
    assert "HTTP 529" in decision.reason and decision.classifier_usage is None


def test_a_failed_classification_is_not_cached(classifier_emulator, classify_rule, make_request):
    text = "[[fault:529:1]] What is the capital of Chile?"
    assert services.route(make_request(text)).model_id == "claude-sonnet-5-5"
    assert services.route(make_request(text)).model_id == "claude-haiku-5-5"


def test_a_repeated_prompt_is_answered_from_the_cache_with_no_call(classifier_emulator, classify_rule, make_request):
    first = services.route(make_request("Prove Fermat's little theorem."))
    calls = classifier_calls(classifier_emulator)
    second = services.route(make_request("Prove Fermat's little theorem."))
    assert classifier_calls(classifier_emulator) == calls == 1
    assert first.model_id == second.model_id == "claude-opus-5-5"
    assert second.classifier_usage is None and second.classifier_cached
    assert first.classifier_usage is not None and not first.classifier_cached


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_aroute_classifies_with_the_async_client_and_stores_the_decision(
    classifier_emulator, classify_rule, make_request
):
    from asgiref.sync import sync_to_async
    from django.db import connections

    from claudeapp.claude.client import aclose_async_client
    from routing.models import RoutingDecision

    try:
        decision = await services.aroute(make_request("Design a sharded architecture for a chat service."))
        stored = await RoutingDecision.objects.filter(pk=decision.decision_id, classifier_label="complex").aexists()
    finally:
        await aclose_async_client()
        await sync_to_async(connections.close_all)()  # the ORM thread's connection, before the DB is dropped
    assert (decision.classifier_label, decision.model_id) == ("complex", "claude-opus-5-5")
    assert stored
