from __future__ import annotations

import pytest

from routing import rulesets, services
from routing.models import RoutingRule, RuleSet


@pytest.fixture
def admin_client(client, user_factory):
    client.force_login(user_factory(is_staff=True, is_superuser=True))
    return client


def test_the_rules_list_renders_with_editable_priorities(admin_client, rule_factory):
    rule_factory(name="Greetings", target="simple")
    page = admin_client.get("/admin/routing/routingrule/")
    assert page.status_code == 200
    assert b"Greetings" in page.content and b"form-0-priority" in page.content and b"Try it" in page.content


def test_try_it_shows_the_decision_and_why_without_storing_it(admin_client, rule_factory):
    rule = rule_factory(name="Long input", min_input_tokens=1000, target="complex")
    page = admin_client.post(
        "/admin/routing/routingrule/try/",
        {
            "prompt": "Summarise this.",
            "requested_model": "auto",
            "principal_kind": "user",
            "input_tokens": 5000,
            "mode": "sync",
            "interactive": "on",
        },
    )
    assert page.status_code == 200
    decision = page.context["decision"]
    assert decision.model_id == "claude-opus-5-5" and decision.rule_id == rule.pk
    assert b"Long input" in page.content and b"claude-opus-5-5" in page.content
    from routing.models import RoutingDecision

    assert not RoutingDecision.objects.exists()


def test_try_it_reports_an_unknown_model(admin_client, published_set):
    page = admin_client.post(
        "/admin/routing/routingrule/try/",
        {"prompt": "hi", "requested_model": "claude-gpt-9", "principal_kind": "user", "mode": "sync"},
    )
    assert b"unknown model or alias" in page.content


def test_replay_shows_how_the_mix_would_change_and_publish_makes_the_draft_live(
    admin_client, rule_factory, published_set, make_request
):
    for text in ["short one", "x" * 8000, "another short one"]:
        services.route(make_request(text))
    draft = rulesets.create_draft()
    RoutingRule.objects.create(rule_set=draft, name="Long -> complex", min_input_tokens=1000, target="complex")
    page = admin_client.get(f"/admin/routing/ruleset/{draft.pk}/replay/", {"limit": 100})
    assert page.status_code == 200
    report = page.context["report"]
    assert report.count == 3 and len(report.changes) == 1
    assert report.published.rows[("claude-sonnet-5-5", "sync")].requests == 3
    assert report.draft.rows[("claude-opus-5-5", "sync")].requests == 1
    assert b"1 of 3 decisions would go elsewhere" in page.content and b"publish-link" in page.content

    response = admin_client.post(f"/admin/routing/ruleset/{draft.pk}/publish/", {"confirm": "on"})
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.status == RuleSet.Status.PUBLISHED
    assert services.route(make_request("y" * 8000), store=False).model_id == "claude-opus-5-5"


def test_replay_uses_stored_classifier_labels_without_calling_claude(
    admin_client, rule_factory, published_set, make_request
):
    from routing.models import RoutingDecision

    services.route(make_request("prove it"))
    RoutingDecision.objects.update(classifier_label="complex", classifier_confidence=1.0)
    draft = rulesets.create_draft()
    RoutingRule.objects.create(rule_set=draft, name="Classify", requested_model="auto", classify=True)
    report = admin_client.get(f"/admin/routing/ruleset/{draft.pk}/replay/", {"limit": 10}).context["report"]
    assert report.draft.rows[("claude-opus-5-5", "sync")].requests == 1 and report.unlabeled == 0


def test_stored_decisions_are_read_only_in_the_admin(admin_client, published_set, make_request):
    decision = services.route(make_request())
    listing = admin_client.get("/admin/routing/routingdecision/")
    assert listing.status_code == 200 and b"claude-sonnet-5-5" in listing.content
    assert admin_client.get("/admin/routing/routingdecision/add/").status_code == 403
    detail = admin_client.get(f"/admin/routing/routingdecision/{decision.decision_id}/change/")
    assert detail.status_code == 200 and b'name="_save"' not in detail.content
